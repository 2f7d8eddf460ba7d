"""The reconciliation job, resolved from the bank's containers.

One function, :func:`reconcile_day`, used by ``finbank reconcile`` (also the
AWS Batch job's command) and by the Lambda entry point in
:mod:`finbank_adapters.reconciliation.lambda_handler`. The file store, the
sources, the sink and the use case all come from
``container.reconciliation``; this module chooses no adapter.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from finbank_adapters import metrics
from finbank_adapters.containers import (
    BankContainer,
    build_container,
    close_container,
    open_container,
    resolve,
)
from finbank_adapters.settings import Settings
from finbank_core.reconciliation.model import ReconciliationSummary, ReconLine
from finbank_core.reconciliation.ports import FileStore, ReportSink
from finbank_core.reconciliation.use_cases import BUSINESS_TZ, ReconcileCommand, ReconcileDay

Progress = Callable[[ReconLine], None]


def yesterday(now: datetime) -> date:
    """The business day a nightly run reconciles by default."""
    return (now.astimezone(ZoneInfo(BUSINESS_TZ)) - timedelta(days=1)).date()


class _ProgressSink:
    """Passes lines to the real sink and tells a progress callback."""

    def __init__(self, inner: ReportSink, progress: Progress) -> None:
        self._inner = inner
        self._progress = progress

    async def add(self, line: ReconLine) -> None:
        self._progress(line)
        await self._inner.add(line)

    async def finish(self, summary: ReconciliationSummary) -> list[str]:
        return await self._inner.finish(summary)


@contextlib.asynccontextmanager
async def open_file_store(settings: Settings) -> AsyncIterator[FileStore]:
    """The file store ``FINBANK_FILES_BACKEND`` names, from a container of its own."""
    container = build_container(settings)
    try:
        files: FileStore = await resolve(container.reconciliation.file_store())
        yield files
    finally:
        await close_container(container)


async def reconcile_day(
    container: BankContainer,
    business_day: date,
    *,
    apply: bool,
    progress: Progress | None = None,
) -> ReconciliationSummary:
    """Reconcile ``business_day`` with the adapters the settings name (container opened here)."""
    settings: Settings = container.infra.settings()
    await open_container(container)
    day = business_day.isoformat()
    sink: ReportSink = await resolve(
        container.reconciliation.report_sink(
            prefix=settings.reconciliation.report_prefix.format(date=day)
        )
    )
    if progress is not None:
        sink = _ProgressSink(sink, progress)
    use_case: ReconcileDay = await resolve(container.reconciliation.reconcile_day(sink=sink))
    summary = await use_case(ReconcileCommand(business_day=business_day, apply=apply))
    publish_discrepancies(summary, settings)
    return summary


def publish_discrepancies(summary: ReconciliationSummary, settings: Settings) -> None:
    """``ReconciliationDiscrepancies``: the run's count, written at once (EMF on AWS: the
    Batch job's log is shipped to CloudWatch, which extracts the metric the
    ``reconciliation-discrepancies`` alarm reads)."""
    recorder = metrics.configure(settings)
    recorder.set(metrics.RECONCILIATION_DISCREPANCIES, summary.discrepancies)
    recorder.flush()
