"""``bank.reconciliation``: the daily three-way match of ledger, PIX records and statement."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from finbank_adapters.containers import BankContainer, resolve
from finbank_adapters.settings import Settings
from finbank_core.reconciliation.model import ReconciliationSummary, ReconLine
from finbank_core.reconciliation.ports import ReportSink
from finbank_core.reconciliation.use_cases import ReconcileCommand, ReconcileDay
from finbank_core.shared.inputs import checked_types

__all__ = ["ReconciliationFacade"]


class _ProgressSink:
    """Passes lines to the real sink and tells a progress callback."""

    def __init__(self, inner: ReportSink, progress: Callable[[ReconLine], None]) -> None:
        self._inner = inner
        self._progress = progress

    async def add(self, line: ReconLine) -> None:
        self._progress(line)
        await self._inner.add(line)

    async def finish(self, summary: ReconciliationSummary) -> list[str]:
        return await self._inner.finish(summary)


class ReconciliationFacade:
    """The daily reconciliation: ``bank.reconciliation``."""

    def __init__(self, container: BankContainer) -> None:
        self._container = container

    async def reconcile_day(
        self,
        command: ReconcileCommand,
        *,
        progress: Callable[[ReconLine], None] | None = None,
    ) -> ReconciliationSummary:
        """Reconcile ``command.business_day`` (voiding orphan holds only with ``apply``).

        The statement is read from, and the report written to, the file store
        ``FINBANK_FILES_BACKEND`` names; ``progress`` is told of every report line.
        The run's discrepancy count is written as a metric at once
        (``ReconciliationDiscrepancies``, EMF on the ``aws`` profile).
        """
        from finbank_adapters.reconciliation.job import publish_discrepancies

        command = checked_types(command)
        container = self._container.reconciliation()
        settings: Settings = self._container.infra().settings()
        day = command.business_day.isoformat()
        sink: ReportSink = await resolve(
            container.report_sink(prefix=settings.reconciliation.report_prefix.format(date=day))
        )
        if progress is not None:
            sink = _ProgressSink(sink, progress)
        use_case: ReconcileDay = await resolve(container.reconcile_day(sink=sink))
        summary = await use_case(command)
        publish_discrepancies(summary, settings)
        return summary

    def yesterday(self) -> date:
        """The business day a nightly run reconciles by default (on the bank's clock)."""
        from finbank_adapters.reconciliation.job import yesterday

        return yesterday(self._container.infra().clock().now())
