"""Command-line values out of range are usage errors (exit 2, the argument and the range
named) before anything starts: ``finbank serve --workers 0``, ``--workers -1`` and
``--port 70000`` used to start a server, ``--log-level bogus`` ended in uvicorn's
KeyError, and a negative ``--limit`` or timeout was passed on."""

from __future__ import annotations

import pytest

from finbank_cli.main import build_parser


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["serve", "--workers", "0"], "argument --workers: 0 is not an integer of 1 or more"),
        (["serve", "--workers", "-1"], "argument --workers: -1 is not an integer of 1 or more"),
        (["serve", "--workers", "two"], "argument --workers: 'two' is not an integer"),
        (["serve", "--port", "70000"], "argument --port: 70000 is not an integer from 1 to 65535"),
        (["serve", "--port", "0"], "argument --port: 0 is not an integer from 1 to 65535"),
        (["serve", "--log-level", "bogus"], "argument --log-level: invalid choice: 'bogus'"),
        (["demo", "--settle-timeout", "0"], "0 is not a number of seconds above 0"),
        (["demo", "--settle-timeout", "-1"], "-1 is not a number of seconds above 0"),
        (["demo", "--settle-timeout", "nan"], "nan is not a number of seconds above 0"),
        (["demo", "--settle-timeout", "inf"], "inf is not a number of seconds above 0"),
        (["outbox", "status", "--max-age", "-1"], "-1 is not a number of seconds of 0 or more"),
        (["dlq", "list", "--limit", "0"], "argument --limit: 0 is not an integer of 1 or more"),
        (["dlq", "replay", "--limit", "-5"], "argument --limit: -5 is not an integer of 1 or more"),
        (["dev", "up", "--redis-db", "-1"], "argument --redis-db: -1 is not an integer of 0"),
        (["dev", "up", "--kafka-port", "65536"], "65536 is not an integer from 0 to 65535"),
        (["med", "sweep", "--page-size", "0"], "0 is not an integer from 1 to 1000"),
        (["med", "sweep", "--page-size", "1001"], "1001 is not an integer from 1 to 1000"),
    ],
)
def test_a_value_out_of_range_is_a_usage_error_naming_it(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert said in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "attribute", "value"),
    [
        (["serve", "--workers", "1"], "workers", 1),
        (["serve", "--port", "65535"], "port", 65535),
        (["serve", "--log-level", "trace"], "log_level", "trace"),
        (["serve"], "port", 8000),
        (["demo", "--settle-timeout", "0.5"], "settle_timeout", 0.5),
        (["outbox", "status", "--max-age", "0"], "max_age", 0.0),  # any waiting event
        (["dlq", "list", "--limit", "1"], "limit", 1),
        (["dev", "up", "--kafka-port", "0"], "kafka_port", 0),  # a free port
        (["dev", "up", "--redis-db", "0"], "redis_db", 0),
    ],
)
def test_the_edges_of_each_range_are_taken(argv: list[str], attribute: str, value: object) -> None:
    assert getattr(build_parser().parse_args(argv), attribute) == value
