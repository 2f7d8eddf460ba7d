"""Every ``finbank`` command the operations page tells an operator to run exists as written.

The runbooks (docs/operations.md) are read at 3 a.m.: a command renamed or an
option dropped since they were written must fail here, not there. Each
``finbank ...`` line of a shell block, and each command given to an ECS task
or a Batch job as a container override (the image's entry point is
``finbank``), is parsed by the real command line parser. Running them is the
job of the tests named next to each (tests/e2e/test_doctor.py,
tests/integration/test_ops_cli.py, tests/integration/test_secrets_cli.py,
tests/e2e/test_reconcile_cli.py).
"""

from __future__ import annotations

import json
import pathlib
import re
import shlex

import pytest

from finbank_cli.main import build_parser

PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "operations.md"
_BLOCK = re.compile(r"```sh\n(.*?)```", re.S)
_ENV = re.compile(r"^[A-Z][A-Z0-9_]*=\S*$")


def _shell_commands() -> list[list[str]]:
    """The ``finbank`` invocations of the page's shell blocks (env prefixes, comments,
    a trailing ``&`` and pipes left out)."""
    found: list[list[str]] = []
    for block in _BLOCK.findall(PAGE.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split(" | ")[0], comments=True)
            while words and _ENV.match(words[0]):
                words = words[1:]
            if words and words[-1] == "&":
                words = words[:-1]
            if words and words[0] == "finbank":
                found.append(words[1:])
    return found


def _override_commands() -> list[list[str]]:
    """Commands handed to the image (entry point ``finbank``) by ECS or Batch overrides."""
    text = PAGE.read_text(encoding="utf-8")
    found = [json.loads(m) for m in re.findall(r'"command":(\[[^\]]*\])', text)]
    found += [json.loads(m) for m in re.findall(r"command=(\[[^\]]*\])", text)]
    return found


COMMANDS = _shell_commands() + _override_commands()


def test_the_page_names_the_runbook_commands_the_issue_asks_for() -> None:
    names = {" ".join(c[:2]) if c[0] in {"dlq", "secrets", "outbox"} else c[0] for c in COMMANDS}
    assert {
        "doctor",
        "outbox status",
        "dlq list",
        "dlq replay",
        "reconcile",
        "secrets status",
        "secrets rewrap",
        "relay",
    } <= names


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_each_runbook_command_parses_as_written(argv: list[str]) -> None:
    parsed = build_parser().parse_args(argv)
    assert callable(parsed.handler)
