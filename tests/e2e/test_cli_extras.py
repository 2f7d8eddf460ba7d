"""The ``finbank`` command without extras: help always works, and a subcommand
whose extra is missing says which one in one line and exits 2.

Each run is a child interpreter whose extras' modules are refused by a
``sys.meta_path`` blocker (tests/extras_support.py), as if ``pip install
finbank`` had been run without them.
"""

from __future__ import annotations

import pytest

from tests.extras_support import ALL_EXTRAS, cli_without

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
