"""``bank.reconciliation``: the daily three-way match of ledger, PIX records and statement."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from finbank_adapters.containers import BankContainer
from finbank_core.reconciliation.model import ReconciliationSummary, ReconLine
from finbank_core.reconciliation.use_cases import ReconcileCommand

__all__ = ["ReconciliationFacade"]


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
        """
        from finbank_adapters.reconciliation.job import reconcile_day

        return await reconcile_day(
            self._container, command.business_day, apply=command.apply, progress=progress
        )

    def yesterday(self) -> date:
        """The business day a nightly run reconciles by default (on the bank's clock)."""
        from finbank_adapters.reconciliation.job import yesterday

        return yesterday(self._container.infra().clock().now())
