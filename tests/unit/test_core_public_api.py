"""The core's public API: every context package says what it exports, and embedders need no more.

Each context package (``finbank_core.accounts``, ``.auth``, ``.pix``,
``.reconciliation``, ``.shared``) lists its public names in ``__all__``:
ports, model, commands, queries, results, use cases and errors. Every name
listed must resolve, and the embedding examples and guides (``examples/``,
``docs/guides/``) import from the core only names some context exports.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTEXTS = ("accounts", "auth", "pix", "reconciliation", "shared")
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _exports(context: str) -> list[str]:
    package = importlib.import_module(f"finbank_core.{context}")
    names = getattr(package, "__all__", None)
    assert names is not None, f"finbank_core.{context} has no __all__"
    return list(names)


@pytest.mark.parametrize("context", CONTEXTS)
def test_every_name_in_all_resolves(context: str) -> None:
    package = importlib.import_module(f"finbank_core.{context}")
    names = _exports(context)
    assert names, f"finbank_core.{context}.__all__ is empty"
    assert len(names) == len(set(names)), "a name is listed twice"
    missing = [name for name in names if not hasattr(package, name)]
    assert not missing, f"finbank_core.{context}.__all__ names what it lacks: {missing}"


@pytest.mark.parametrize("context", CONTEXTS)
def test_star_import_gives_exactly_all(context: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from finbank_core.{context} import *", namespace)  # noqa: S102 - the API under test
    namespace.pop("__builtins__", None)
    assert sorted(namespace) == sorted(_exports(context))


def test_the_exports_name_the_public_api() -> None:
    """The names an embedder reaches for first are exported where they belong."""
    expected = {
        "accounts": {
            "OpenAccountCommand",
            "GetBalanceQuery",
            "GetBalance",
            "InsufficientFunds",
            "Ledger",
            "AccountRepository",
        },
        "pix": {"SendPix", "SendPixCommand", "SendPixResult", "RegisterPixKeyCommand", "PixKey"},
        "auth": {"Login", "LoginResult", "IdentityProvider", "Principal"},
        "reconciliation": {"ReconcileDay", "ReconcileCommand", "ReconciliationSummary"},
        "shared": {"Money", "Clock", "IdGenerator", "DomainError", "IdempotencyKey", "Memo"},
    }
    for context, names in expected.items():
        assert names <= set(_exports(context)), context


def _embedding_sources() -> list[tuple[str, str]]:
    sources = [
        (str(p.relative_to(ROOT)), p.read_text()) for p in sorted(ROOT.glob("examples/*.py"))
    ]
    for page in sorted(ROOT.glob("docs/guides/*.md")):
        for number, block in enumerate(_PYTHON_BLOCK.findall(page.read_text()), 1):
            sources.append((f"{page.relative_to(ROOT)} block {number}", block))
    return sources


def _core_imports(source: str) -> list[tuple[str, str]]:
    """``(module, name)`` for every ``from finbank_core... import name`` in ``source``."""
    found: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("finbank_core."):
            found.extend((node.module or "", alias.name) for alias in node.names)
    return found


def test_the_embedding_examples_need_nothing_outside_all() -> None:
    sources = _embedding_sources()
    assert sources, "no examples or guides found"
    outside = []
    for where, source in sources:
        for module, name in _core_imports(source):
            context = module.split(".")[1]
            if context not in CONTEXTS or name not in _exports(context):
                outside.append(f"{where}: {name} from {module}")
    assert not outside, "imports outside the contexts' __all__:\n" + "\n".join(outside)


def test_the_core_ships_its_type_marker() -> None:
    assert (ROOT / "src" / "finbank_core" / "py.typed").is_file()
