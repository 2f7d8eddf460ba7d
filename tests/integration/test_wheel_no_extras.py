"""The built wheel, installed with no extra: ``finbank --help`` works and an adapter
package without its extra names the extra.

Builds the wheel (``pip wheel --no-deps``), creates a fresh venv, installs the
base dependencies of pyproject.toml only (from the configured index or the pip
cache) and the wheel with ``--no-deps``. Skips when the packages cannot be
installed (no index reachable), unless ``FINBANK_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tomllib
import venv

import pytest

from tests.conftest import REQUIRE_SERVICES

ROOT = pathlib.Path(__file__).resolve().parents[2]
PIP = [sys.executable, "-m", "pip"]


def _run(command: list[str], *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def _skip_or_fail(what: str, result: subprocess.CompletedProcess[str]) -> None:
    message = f"{what} failed (no package index reachable?): {result.stderr[-600:]}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and FINBANK_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A venv holding the finbank wheel and the base dependencies, no extra."""
    work = tmp_path_factory.mktemp("wheel")
    built = _run([*PIP, "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(ROOT)])
    if built.returncode != 0:
        _skip_or_fail("pip wheel (the build backend comes from the index)", built)
    (wheel,) = (work / "dist").glob("finbank-*.whl")

    env_dir = work / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    base = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "dependencies"
    ]
    into = [*PIP, "--python", str(python), "install", "-q"]
    deps = _run([*into, *base])
    if deps.returncode != 0:
        _skip_or_fail("installing the base dependencies", deps)
    installed = _run([*into, "--no-deps", str(wheel)])
    assert installed.returncode == 0, installed.stderr
    return env_dir


def test_no_extra_is_installed(bare_venv: pathlib.Path) -> None:
    probe = _run(
        [
            str(bare_venv / "bin" / "python"),
            "-c",
            "import importlib.util as u\n"
            "print([m for m in ('litestar', 'asyncpg', 'redis', 'aiokafka', 'aioboto3', "
            "'segno', 'rich', 'structlog') if u.find_spec(m)])",
        ]
    )
    assert probe.stdout.strip() == "[]", probe.stderr


def test_finbank_help_works_without_extras(bare_venv: pathlib.Path) -> None:
    result = _run([str(bare_venv / "bin" / "finbank"), "--help"])
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout
    assert "relay" in result.stdout
    assert result.stderr == ""


def test_a_subcommand_names_its_extra(bare_venv: pathlib.Path) -> None:
    result = _run([str(bare_venv / "bin" / "finbank"), "db", "migrate"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "finbank: finbank db migrate needs the 'postgres' extra (asyncpg is not installed): "
        "pip install 'finbank[postgres]'"
    ]


def test_importing_the_postgres_adapters_names_the_extra(bare_venv: pathlib.Path) -> None:
    result = _run([str(bare_venv / "bin" / "python"), "-c", "import finbank_adapters.postgres"])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "finbank_adapters._extras.MissingExtra: finbank_adapters.postgres needs the "
        "'postgres' extra (asyncpg is not installed): pip install 'finbank[postgres]'"
    )


def test_the_memory_profile_demo_names_the_http_extra(bare_venv: pathlib.Path) -> None:
    result = _run([str(bare_venv / "bin" / "finbank"), "demo"])
    assert result.returncode == 2
    assert "pip install 'finbank[http]'" in result.stderr
    assert "Traceback" not in result.stderr
