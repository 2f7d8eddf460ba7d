"""Pieces of the reconciliation job: the default business day and its metric.

The job itself is ``bank.reconciliation.reconcile_day`` (:mod:`finbank.reconciliation`),
run by ``finbank reconcile`` (also the AWS Batch job's command) and by the
Lambda entry point :func:`finbank.lambdas.reconciliation_handler`; the file
store, the sources, the sink and the use case all come from
``container.reconciliation``. This module builds and chooses nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from finbank_adapters import metrics
from finbank_adapters.settings import Settings
from finbank_core.reconciliation.model import ReconciliationSummary
from finbank_core.reconciliation.use_cases import BUSINESS_TZ


def yesterday(now: datetime) -> date:
    """The business day a nightly run reconciles by default."""
    return (now.astimezone(ZoneInfo(BUSINESS_TZ)) - timedelta(days=1)).date()


def publish_discrepancies(summary: ReconciliationSummary, settings: Settings) -> None:
    """``ReconciliationDiscrepancies``: the run's count, written at once (EMF on AWS: the
    Batch job's log is shipped to CloudWatch, which extracts the metric the
    ``reconciliation-discrepancies`` alarm reads)."""
    recorder = metrics.configure(settings)
    recorder.set(metrics.RECONCILIATION_DISCREPANCIES, summary.discrepancies)
    recorder.flush()
