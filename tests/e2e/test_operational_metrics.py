"""Operational metrics as the processes write them: the reconciliation job's discrepancy
count as the EMF line CloudWatch turns into the metric its alarm reads, and the
service's ``/metrics`` carrying the ledger's result codes."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import uuid

from finbank_adapters import metrics
from finbank_adapters.memory import FakeClock, InMemoryLedger
from finbank_core.accounts.ledger import NewAccount, Transfer
from tests.e2e.test_reconcile_cli import _write_statement


def test_the_reconciliation_job_writes_its_discrepancies_as_an_emf_line(
    tmp_path: pathlib.Path,
) -> None:
    _write_statement(tmp_path)  # one statement line nobody booked: one discrepancy
    env = {
        **os.environ,
        "FINBANK_FILES_ROOT": str(tmp_path),
        "FINBANK_FILES_BACKEND": "local",
        "FINBANK_METRICS_FORMAT": "emf",  # what the Batch job's environment sets
        "FINBANK_METRICS_ENVIRONMENT": "prod",
    }
    result = subprocess.run(
        [sys.executable, "-m", "finbank_cli", "reconcile", "--date", "2026-01-05"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr

    documents = [
        json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"_aws"')
    ]
    [document] = [d for d in documents if metrics.RECONCILIATION_DISCREPANCIES.name in d]
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == metrics.NAMESPACE
    assert directive["Dimensions"] == [["Environment"]]
    assert directive["Metrics"] == [{"Name": "ReconciliationDiscrepancies", "Unit": "Count"}]
    assert document["Environment"] == "prod"
    assert document["ReconciliationDiscrepancies"] == 1


def test_a_clean_day_writes_zero_so_the_alarm_clears(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "statements" / "2026-01-05.csv"
    path.parent.mkdir(parents=True)
    path.write_text("entry_ref,end_to_end_id,credit_debit,amount,booking_datetime\n")
    env = {
        **os.environ,
        "FINBANK_FILES_ROOT": str(tmp_path),
        "FINBANK_FILES_BACKEND": "local",
        "FINBANK_METRICS_FORMAT": "emf",
    }
    result = subprocess.run(
        [sys.executable, "-m", "finbank_cli", "reconcile", "--date", "2026-01-05"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    [line] = [x for x in result.stdout.splitlines() if "ReconciliationDiscrepancies" in x]
    assert json.loads(line)["ReconciliationDiscrepancies"] == 0


async def test_the_services_metrics_page_carries_the_ledgers_result_codes() -> None:
    from finbank_http.observability.metrics import exposition

    recorder = metrics.reset_for_tests(metrics.MetricsRecorder())
    try:
        ledger = InMemoryLedger(FakeClock())
        a, b = uuid.uuid4(), uuid.uuid4()
        await ledger.create_accounts([NewAccount(id=a, code=1), NewAccount(id=b, code=1)])
        transfer = Transfer(
            id=uuid.uuid4(), debit_account_id=a, credit_account_id=b, amount=1, code=1
        )
        await ledger.create_transfers([transfer])
        await ledger.create_transfers([transfer])
        assert recorder.value(metrics.LEDGER_RESULTS, Result="exists") == 1

        text, content_type = exposition()
    finally:
        metrics.reset_for_tests()
    assert content_type.startswith("text/plain")
    page = text.decode()
    assert 'finbank_ledger_results_total{result="ok"} 1' in page
    assert 'finbank_ledger_results_total{result="exists"} 1' in page
    assert "finbank_http_requests_total" in page or "finbank_http_requests" in page
