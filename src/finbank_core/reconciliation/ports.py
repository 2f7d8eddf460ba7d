"""Ports of the reconciliation context.

Every item source yields :class:`ReconItem` s **sorted by key** (adapters sort
in the database or spill to disk), which is what lets the matcher run in
bounded memory over any number of items.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator
from datetime import date, datetime
from typing import Protocol

from finbank_core.reconciliation.model import (
    PendingHold,
    ReconciliationSummary,
    ReconItem,
    ReconLine,
)


class SettlementPostings(Protocol):
    def postings(self, start: datetime, end: datetime) -> AsyncIterator[ReconItem]:
        """Posted ledger movements on the PIX settlement account in ``[start, end)``, by key."""
        ...


class PixRecordsSource(Protocol):
    def settled_records(self, start: datetime, end: datetime) -> AsyncIterator[ReconItem]:
        """PIX payments and refunds settled in ``[start, end)``, by key."""
        ...


class SettlementStatementSource(Protocol):
    def statement_items(
        self, business_day: date, start: datetime, end: datetime
    ) -> AsyncIterator[ReconItem]:
        """The central bank statement's entries within ``[start, end)``, by key.

        ``[start, end)`` is the business day widened by the tolerance on both
        sides, so entries near midnight from the neighbouring days' statements
        belong here too: an entry is matched by every run whose window holds
        it and reported by the run of the day its time falls in (see
        ``match_sources``). An entry of the day's own statement that no run
        could match (its time further from the day than any window reading
        that statement) is yielded as well, outside ``[start, end)``: the
        matcher reports it unpaired, so it is not lost.
        """
        ...


class PendingHoldsSource(Protocol):
    def pending_holds(
        self, account_id: uuid.UUID, start: datetime, end: datetime
    ) -> AsyncIterator[PendingHold]:
        """Two-phase transfers on ``account_id`` created in ``[start, end)``, any status."""
        ...


class FileStore(Protocol):
    """Where settlement statements are read and reports written (memory, disk, S3)."""

    async def put(self, path: str, chunks: AsyncIterable[bytes]) -> None:
        """Write ``path`` from a stream of chunks, replacing it whole or not at all."""
        ...

    def get(self, path: str) -> AsyncIterator[bytes]:
        """Stream the bytes of ``path``; raises ``NotFound`` if it does not exist."""
        ...

    async def exists(self, path: str) -> bool: ...


class ReportSink(Protocol):
    """Receives the run's lines and summary and stores the report."""

    async def add(self, line: ReconLine) -> None: ...

    async def finish(self, summary: ReconciliationSummary) -> list[str]:
        """Store everything; returns the paths written."""
        ...
