"""``finbank reconcile`` and the Lambda entry point on the memory profile with local files."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from finbank.lambdas import reconciliation_handler
from finbank_core.shared.errors import InvalidInput

STRANGER = "E88888888202601051200abcdefghijk"
STATEMENT = (
    "entry_ref,end_to_end_id,credit_debit,amount,booking_datetime\n"
    f"S1,{STRANGER},CRDT,12.34,2026-01-05T15:00:00+00:00\n"
)


def _env(root: pathlib.Path) -> dict[str, str]:
    return {**os.environ, "FINBANK_FILES_ROOT": str(root), "FINBANK_FILES_BACKEND": "local"}


def _write_statement(root: pathlib.Path) -> None:
    path = root / "statements" / "2026-01-05.csv"
    path.parent.mkdir(parents=True)
    path.write_text(STATEMENT)


def test_reconcile_reports_a_discrepancy_and_exits_1(tmp_path: pathlib.Path) -> None:
    _write_statement(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "finbank_cli", "reconcile", "--date", "2026-01-05"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        check=False,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "in_statement_not_booked" in result.stdout
    assert "1 discrepancies" in result.stdout
    report = (tmp_path / "reports/2026-01-05/in_statement_not_booked.csv").read_text()
    assert STRANGER in report
    summary = json.loads((tmp_path / "reports/2026-01-05/summary.json").read_text())
    assert summary["totals"]["in_statement_not_booked"]["count"] == 1
    assert summary["applied"] is False


def test_reconcile_refuses_a_bad_date(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "finbank_cli", "reconcile", "--date", "05/01/2026"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--date must look like" in result.stderr


def test_missing_statement_is_a_clear_failure(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "finbank_cli", "reconcile", "--date", "2026-01-05"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no file at statements/2026-01-05.csv" in result.stderr


def test_lambda_handler_returns_the_summary(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_statement(tmp_path)
    for key, value in _env(tmp_path).items():
        if key.startswith("FINBANK_"):
            monkeypatch.setenv(key, value)
    result = reconciliation_handler({"date": "2026-01-05"}, None)
    assert result["discrepancies"] == 1
    assert result["totals"]["in_statement_not_booked"]["count"] == 1
    again = reconciliation_handler({"date": "2026-01-05"}, None)  # warm start: loop reused
    assert again["totals"] == result["totals"]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"date": "2026-01-05", "apply": "false"}, "apply"),  # a string: was read as True
        ({"date": "2026-01-05", "apply": 0}, "apply"),
        ({"date": "05/01/2026"}, "date"),
        ({"date": "2026-02-30"}, "date"),
        ({"date": 20260105}, "date"),
        ({"date": "20260105"}, "date"),
    ],
)
def test_lambda_handler_refuses_an_event_it_would_misread(
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    event: dict[str, object],
    field: str,
) -> None:
    # ``"apply": "false"`` read with bool() was an apply run: a dry run voided holds
    _write_statement(tmp_path)
    for key, value in _env(tmp_path).items():
        if key.startswith("FINBANK_"):
            monkeypatch.setenv(key, value)
    with pytest.raises(InvalidInput) as refused:
        reconciliation_handler(event, None)
    assert refused.value.details.get("field") == field
