"""The ``finbank`` command without extras: help always works, and a subcommand
whose extra is missing says which one in one line and exits 2.

Each run is a child interpreter whose extras' modules are refused by a
``sys.meta_path`` blocker (tests/extras_support.py), as if ``pip install
finbank`` had been run without them.
"""

from __future__ import annotations

import json

import pytest

from tests.extras_support import ALL_EXTRAS, cli_without, run_without

HELPS = [
    [],
    ["serve"],
    ["demo"],
    ["reconcile"],
    ["relay"],
    ["worker"],
    ["worker", "pix-settlement"],
    ["aws"],
    ["aws", "bootstrap"],
    ["dev"],
    ["dev", "up"],
    ["db"],
    ["db", "migrate"],
]


@pytest.mark.parametrize("command", HELPS, ids=lambda c: " ".join(c) or "finbank")
def test_help_works_with_no_extra_installed(command: list[str]) -> None:
    result = cli_without(ALL_EXTRAS, [*command, "--help"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: finbank {' '.join(command)}".rstrip())
    assert result.stderr == ""


def test_the_top_level_help_says_which_extra_each_command_needs() -> None:
    result = cli_without(ALL_EXTRAS, ["--help"])
    out = " ".join(result.stdout.split())
    assert "run the HTTP service (needs finbank[http])" in out
    assert "publish the PostgreSQL outbox to Kafka (needs finbank[kafka,postgres])" in out
    assert "(needs finbank[postgres])" in out
    assert "(needs finbank[aws])" in out


MISSING = [
    (["serve"], ["http"], "finbank serve", "'http' extra", "http"),
    (["demo"], ["http"], "finbank demo", "'http' extra", "http"),
    (["reconcile"], ["http"], "finbank reconcile", "'http' extra", "http"),
    (["relay"], ["kafka"], "finbank relay", "'kafka' extra", "kafka"),
    (["relay"], ALL_EXTRAS, "finbank relay", "'kafka' and 'postgres' extras", "kafka,postgres"),
    (
        ["worker", "pix-settlement"],
        ["kafka"],
        "finbank worker pix-settlement",
        "'kafka' extra",
        "kafka",
    ),
    (["aws", "bootstrap"], ["aws"], "finbank aws bootstrap", "'aws' extra", "aws"),
    (["db", "migrate"], ["postgres"], "finbank db migrate", "'postgres' extra", "postgres"),
    # the quick start's venv has the http extra only
    (["dev", "up"], ["kafka", "aws"], "finbank dev up", "'aws' and 'kafka' extras", "aws,kafka"),
]


@pytest.mark.parametrize(
    ("command", "blocked", "who", "names", "pip"), MISSING, ids=lambda v: str(v)
)
def test_a_subcommand_without_its_extra_names_it_and_exits_2(
    command: list[str], blocked: list[str], who: str, names: str, pip: str
) -> None:
    result = cli_without(blocked, command)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"finbank: {who} needs the {names} (")
    assert lines[0].endswith(f"not installed): pip install 'finbank[{pip}]'")
    assert result.stdout == ""


def test_an_extra_the_profile_needs_is_named_when_the_adapter_is_first_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the local profile keeps accounts in PostgreSQL: the demo has its own extra
    # (http) but not the profile's
    monkeypatch.setenv("FINBANK_PROFILE", "local")
    result = cli_without(["postgres"], ["demo"])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("finbank: finbank_adapters.postgres needs the 'postgres' extra")
    assert lines[-1].endswith("pip install 'finbank[postgres]'")
    assert not any(line.startswith("Traceback") for line in lines)  # no uncaught error


# -- every module, with no extra and with each extra alone ---------------------------------

#: imports every module of the five packages; prints what each one gave, one JSON line
WALK = """
import importlib, json, pkgutil
outcomes = {}
for top in ("finbank_core", "finbank_adapters", "finbank", "finbank_http", "finbank_cli"):
    names = [top]
    try:
        package = importlib.import_module(top)
        names += [m.name for m in pkgutil.walk_packages(package.__path__, top + ".")]
    except ImportError:
        pass
    for name in names:
        if name.endswith(".__main__"):
            continue  # runs the command line
        try:
            importlib.import_module(name)
            outcomes[name] = "ok"
        except BaseException as exc:
            outcomes[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(outcomes))
"""


def module_outcomes(blocked: list[str]) -> dict[str, str]:
    result = run_without(blocked, WALK, timeout=180)
    assert result.returncode == 0, result.stderr
    outcomes: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcomes


@pytest.mark.parametrize(
    "installed", [None, *ALL_EXTRAS], ids=lambda extra: f"only[{extra}]" if extra else "no extra"
)
def test_every_module_imports_or_names_the_extra_it_needs(installed: str | None) -> None:
    """A newcomer's ``import`` of any module, with no extra or one extra: never a bare error."""
    outcomes = module_outcomes([extra for extra in ALL_EXTRAS if extra != installed])
    assert len(outcomes) > 150  # the walk reached the submodules
    assert outcomes["finbank"] == "ok"
    assert outcomes["finbank_adapters.memory"] == "ok"
    assert outcomes["finbank_cli.main"] == "ok"
    bare = {
        name: outcome
        for name, outcome in outcomes.items()
        if outcome != "ok" and not outcome.startswith("MissingExtra: ")
    }
    assert bare == {}
    for name, outcome in outcomes.items():
        if outcome != "ok":
            assert outcome.endswith("]'"), (name, outcome)  # ... pip install 'finbank[x]'
            assert f"[{installed}]'" not in outcome, (name, outcome)  # not the one we have


def test_the_modules_that_need_an_extra_name_it_when_imported_without_it() -> None:
    outcomes = module_outcomes(list(ALL_EXTRAS))
    expected = {
        "finbank_adapters.crypto.kms": "aws",
        "finbank_adapters.files.s3": "aws",
        "finbank_adapters.aws": "aws",
        "finbank_adapters.postgres": "postgres",
        "finbank_adapters.redis": "redis",
        "finbank_adapters.kafka": "kafka",
        "finbank_adapters.qr": "http",
        "finbank_http": "http",
        "finbank_cli.reconcile": "http",
    }
    for name, extra in expected.items():
        assert outcomes[name].startswith(f"MissingExtra: {name} needs the '{extra}' extra ("), name
        assert outcomes[name].endswith(f"pip install 'finbank[{extra}]'"), name
    # the Litestar store over Redis, with Redis installed but not the HTTP service
    only_redis = module_outcomes([extra for extra in ALL_EXTRAS if extra != "redis"])
    assert only_redis["finbank_adapters.redis"] == "ok"
    assert only_redis["finbank_adapters.redis.rate_limit"] == (
        "MissingExtra: finbank_adapters.redis.rate_limit needs the 'http' extra "
        "(litestar is not installed): pip install 'finbank[http]'"
    )


def test_doctor_on_the_memory_profile_needs_no_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FINBANK_PROFILE", "FINBANK_SECRETS_ID"):
        monkeypatch.delenv(name, raising=False)
    result = cli_without(ALL_EXTRAS, ["doctor"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skip  secret    FINBANK_SECRETS_ID not set" in result.stdout
    assert result.stdout.rstrip().endswith("everything this profile uses is ready")


def test_doctor_names_the_aws_extra_when_a_secret_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FINBANK_PROFILE", raising=False)
    monkeypatch.setenv("FINBANK_SECRETS_ID", "finbank/test/none")
    # the secret is read before the command runs: main names the extra at once
    result = cli_without(["aws"], ["doctor"])
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("pip install 'finbank[aws]'")
    assert "Traceback" not in result.stderr


# -- a backend chosen in the settings, its extra missing: open_bank names both -------------

OPEN_BANK = """
import asyncio
from finbank import open_bank
from finbank_adapters._extras import MissingExtra
from finbank_core.accounts import OpenAccountCommand
from finbank_core.auth.model import SignUpCommand
from finbank_core.auth.use_cases import LoginCommand


async def main():
    try:
        async with open_bank() as bank:  # the settings of the environment
            await bank.accounts.open(OpenAccountCommand(owner_id="a", holder_name="A"))
            await bank.auth.sign_up(SignUpCommand(username="ana", password="a long passphrase"))
            await bank.auth.login(LoginCommand(username="ana", password="a long passphrase"))
    except MissingExtra as error:
        print("MissingExtra:", error)
    else:
        print("opened")


asyncio.run(main())
"""

BACKEND_EXTRAS = [
    ({"FINBANK_CHALLENGES_BACKEND": "redis"}, "FINBANK_CHALLENGES_BACKEND=redis", "redis"),
    ({"FINBANK_PIX_LOOKUP_BACKEND": "redis"}, "FINBANK_PIX_LOOKUP_BACKEND=redis", "redis"),
    ({"FINBANK_PIX_BACKEND": "dynamodb"}, "FINBANK_PIX_BACKEND=dynamodb", "aws"),
    ({"FINBANK_FILES_BACKEND": "s3"}, "FINBANK_FILES_BACKEND=s3", "aws"),
    ({"FINBANK_IDENTITY_BACKEND": "cognito"}, "FINBANK_IDENTITY_BACKEND=cognito", "aws"),
    ({"FINBANK_AUTH_SECRETS_KMS_KEY_ID": "alias/x"}, "FINBANK_AUTH_SECRETS_KMS_KEY_ID", "aws"),
    ({"FINBANK_LEDGER_BACKEND": "postgres"}, "finbank_adapters.postgres", "postgres"),
]


@pytest.mark.parametrize(("env", "who", "extra"), BACKEND_EXTRAS, ids=lambda v: str(v))
def test_open_bank_names_the_variable_and_the_extra_its_backend_needs(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], who: str, extra: str
) -> None:
    for name in ("FINBANK_PROFILE", "FINBANK_SECRETS_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run_without(ALL_EXTRAS, OPEN_BANK, timeout=120)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith(f"MissingExtra: {who} needs the '{extra}' extra ("), line
    assert line.endswith(f"pip install 'finbank[{extra}]'"), line


def test_open_bank_names_every_redis_backend_of_the_local_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINBANK_PROFILE", "local")
    # everything else of the profile kept where no extra is needed
    for port in ("LEDGER", "ACCOUNTS", "USERS", "EVENTS", "PIX"):
        monkeypatch.setenv(f"FINBANK_{port}_BACKEND", "memory")
    monkeypatch.setenv("FINBANK_DENYLIST_BACKEND", "redis")
    monkeypatch.setenv("FINBANK_JWT_SECRET", "s" * 32)
    result = run_without(ALL_EXTRAS, OPEN_BANK, timeout=120)
    line = result.stdout.strip().splitlines()[-1]
    assert line == (
        "MissingExtra: FINBANK_CHALLENGES_BACKEND=redis, FINBANK_THROTTLE_BACKEND=redis, "
        "FINBANK_DENYLIST_BACKEND=redis, FINBANK_REFRESH_TOKENS_BACKEND=redis, "
        "FINBANK_RATE_LIMIT_BACKEND=redis, FINBANK_PIX_LOOKUP_BACKEND=redis needs the 'redis' "
        "extra (redis is not installed): pip install 'finbank[redis]'"
    ), result.stderr
