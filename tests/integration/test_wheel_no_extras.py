"""The built wheel, installed with no extra: ``finbank --help`` works and an adapter
package without its extra names the extra.

Builds the wheel (``pip wheel --no-deps``), creates a fresh venv, installs the
base dependencies of pyproject.toml only (from the configured index or the pip
cache) and the wheel with ``--no-deps``. Skips when the packages cannot be
installed (no index reachable), unless ``FINBANK_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import json
import os
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


def test_every_module_of_the_wheel_imports_or_names_its_extra(bare_venv: pathlib.Path) -> None:
    from tests.e2e.test_cli_extras import WALK

    result = _run([str(bare_venv / "bin" / "python"), "-c", WALK])
    assert result.returncode == 0, result.stderr
    outcomes: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcomes["finbank"] == "ok"
    assert outcomes["finbank_core.pix"] == "ok"
    failed = {name: outcome for name, outcome in outcomes.items() if outcome != "ok"}
    assert failed  # the adapters of the extras
    assert {
        name: outcome
        for name, outcome in failed.items()
        if not (outcome.startswith("MissingExtra: ") and outcome.endswith("]'"))
    } == {}


def test_every_package_of_the_wheel_ships_py_typed(bare_venv: pathlib.Path) -> None:
    (site,) = (bare_venv / "lib").glob("python3*/site-packages")
    for package in ("finbank_core", "finbank_adapters", "finbank", "finbank_http", "finbank_cli"):
        assert (site / package / "py.typed").is_file(), package


def test_doctor_with_no_extra_on_the_memory_profile_is_ready(
    bare_venv: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINBANK_")}
    result = subprocess.run(
        [str(bare_venv / "bin" / "finbank"), "doctor"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("everything this profile uses is ready")


#: a newcomer's embedding script, from the names docs/guides/pix.md and testing.md document
EMBEDDING = """
'''A newcomer's embedding script: only names the guides document.'''

import asyncio
from datetime import UTC, datetime

from finbank import Bank, Overrides, open_bank
from finbank_adapters.memory import FakeClock, InMemoryEventPublisher, SequentialIdGenerator
from finbank_adapters.sandbox import RemoteAccount, SimulatedInstitution, SimulatedSpi
from finbank_core.accounts import (
    CustomerAccount,
    GetBalanceQuery,
    MoveCashCommand,
    OpenAccountCommand,
)
from finbank_core.pix import (
    PaymentStatus,
    PixKey,
    PixKeyType,
    RegisterPixKeyCommand,
    SendPixCommand,
    SendPixResult,
)
from finbank_core.shared import DomainError, Money


async def fund(bank: Bank, owner: str) -> CustomerAccount:
    account = await bank.accounts.open(OpenAccountCommand(owner_id=owner, holder_name=owner))
    await bank.accounts.deposit(
        MoveCashCommand(
            account_id=account.id, amount=Money(100_00), idempotency_key="d", operator_id="t"
        )
    )
    return account


async def main() -> int:
    clock = FakeClock(datetime(2026, 3, 2, 13, 0, tzinfo=UTC))
    davi = RemoteAccount(
        branch="0001",
        account_number="1-1",
        holder_name="Davi",
        document="52998224725",
        keys=(PixKey.parse("davi@outro.example"),),
    )
    network = SimulatedSpi(
        clock, institutions=(SimulatedInstitution(ispb="87654321", name="Outro", accounts=[davi]),)
    )
    publisher = InMemoryEventPublisher()
    overrides = Overrides(event_publisher=publisher)
    async with open_bank(
        profile="memory",
        clock=clock,
        ids=SequentialIdGenerator(),
        payment_network=network,
        overrides=overrides,
    ) as bank:
        ana = await fund(bank, "ana")
        await bank.pix.register_key(
            RegisterPixKeyCommand(owner_id="ana", account_id=ana.id, key_type=PixKeyType.EVP)
        )
        sent: SendPixResult = await bank.pix.send(
            SendPixCommand(
                owner_id="ana",
                account_id=ana.id,
                idempotency_key="p1",
                amount=Money(30_00),
                key="davi@outro.example",
            )
        )
        assert sent.payment.status is PaymentStatus.SETTLED
        balance = await bank.accounts.balance(GetBalanceQuery(owner_id="ana", account_id=ana.id))
        posted: Money = balance.posted
        try:
            await bank.pix.send(
                SendPixCommand(
                    owner_id="ana",
                    account_id=ana.id,
                    idempotency_key="p2",
                    amount=Money(900_00),
                    key="davi@outro.example",
                )
            )
        except DomainError as error:
            code: str = error.code
            assert code == "insufficient_funds"
        assert davi.balance_cents == 30_00 and posted == Money(70_00)
        assert publisher.of_type("pix.payment_settled")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
"""


def _mypy_strict(bare_venv: pathlib.Path, script: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """mypy --strict on ``script`` against the wheel installed in the venv (its py.typed)."""
    return subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict", "--no-incremental",
            "--python-executable", str(bare_venv / "bin" / "python"),
            "--config-file", os.devnull, str(script),
        ],
        capture_output=True, text=True, timeout=300, check=False, cwd=script.parent,
    )  # fmt: skip


def test_an_embedding_script_of_documented_names_runs_and_is_typed_by_the_wheel(
    bare_venv: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    script = tmp_path / "embed.py"
    script.write_text(EMBEDDING, encoding="utf-8")
    ran = _run([str(bare_venv / "bin" / "python"), str(script)])
    assert ran.returncode == 0, ran.stderr
    checked = _mypy_strict(bare_venv, script)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # the types come from the wheel, not Any: a wrong annotation is an error
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        EMBEDDING.replace("posted: Money = balance.posted", "posted: str = balance.posted"),
        encoding="utf-8",
    )
    refused = _mypy_strict(bare_venv, wrong)
    assert refused.returncode == 1
    assert 'expression has type "Money", variable has type "str"' in refused.stdout
