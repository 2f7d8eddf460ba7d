"""The core must not import I/O or framework packages (docs/architecture.md: imports point in)."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import finbank_core

FORBIDDEN = {
    "asyncpg",
    "redis",
    "aiokafka",
    "aioboto3",
    "aiobotocore",
    "boto3",
    "botocore",
    "litestar",
    "dependency_injector",
    "httpx",
    "aiohttp",
    "uvicorn",
    "jwt",
    "argon2",
    "pyotp",
    "segno",
    "structlog",
    "finbank_adapters",
    "finbank_http",
}
CORE = pathlib.Path(finbank_core.__file__).parent


def imported_roots(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_core_module_imports_io_or_framework_packages() -> None:
    offenders = {
        str(path.relative_to(CORE)): sorted(imported_roots(path) & FORBIDDEN)
        for path in CORE.rglob("*.py")
        if imported_roots(path) & FORBIDDEN
    }
    assert offenders == {}
    assert len(list(CORE.rglob("*.py"))) > 10  # the walk really saw the core


def test_importing_the_whole_core_loads_no_forbidden_package() -> None:
    modules = [
        "finbank_core." + ".".join(p.relative_to(CORE).with_suffix("").parts)
        for p in CORE.rglob("*.py")
        if p.name != "__init__.py"
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(set(k.split('.')[0] for k in sys.modules) & set({sorted(FORBIDDEN)!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
