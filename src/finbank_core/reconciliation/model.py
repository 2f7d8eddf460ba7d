"""Reconciliation value objects.

Three sources are compared by end-to-end id (or return id) with exact
integer amounts: the ledger's postings against the PIX settlement account,
the PIX payment records, and the central bank's settlement statement. Each
key lands in exactly one class, decided by which sources have it:

| ledger | record | statement | class |
|---|---|---|---|
| yes | yes | yes | ``matched`` (or ``amount_mismatch`` if amounts or directions differ) |
| yes | yes | no  | ``booked_not_in_statement`` |
| yes | no  | yes | ``posting_without_record`` |
| yes | no  | no  | ``posting_without_record`` |
| no  | yes | yes | ``in_statement_not_booked`` |
| no  | no  | yes | ``in_statement_not_booked`` |
| no  | yes | no  | ``record_without_posting`` |

Pending transfers on the settlement account older than their timeout are a
seventh class, ``orphan_hold``, found separately.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

import msgspec


class Direction(enum.StrEnum):
    """Seen from the bank: money that left (``OUT``) or arrived (``IN``)."""

    OUT = "OUT"
    IN = "IN"


class Source(enum.StrEnum):
    LEDGER = "ledger"
    RECORD = "record"
    STATEMENT = "statement"


class ReconItem(msgspec.Struct, frozen=True, kw_only=True):
    """One item of one source: a settlement posting, a PIX record or a statement line."""

    key: str  # E2E id or rtrId
    amount_cents: int
    direction: Direction
    at: datetime
    reference: str = ""  # the source's own id (transfer id, record id, statement entry)


class DiscrepancyClass(enum.StrEnum):
    MATCHED = "matched"
    AMOUNT_MISMATCH = "amount_mismatch"
    IN_STATEMENT_NOT_BOOKED = "in_statement_not_booked"
    BOOKED_NOT_IN_STATEMENT = "booked_not_in_statement"
    RECORD_WITHOUT_POSTING = "record_without_posting"
    POSTING_WITHOUT_RECORD = "posting_without_record"
    ORPHAN_HOLD = "orphan_hold"


class ReconLine(msgspec.Struct, frozen=True, kw_only=True):
    """The verdict on one key, with what each source said about it."""

    key: str
    klass: DiscrepancyClass
    ledger: ReconItem | None = None
    record: ReconItem | None = None
    statement: ReconItem | None = None

    @property
    def amount_cents(self) -> int:
        for item in (self.statement, self.ledger, self.record):
            if item is not None:
                return item.amount_cents
        return 0


class PendingHold(msgspec.Struct, frozen=True, kw_only=True):
    """A two-phase (pending) transfer on the settlement account and how it ended."""

    transfer_id: uuid.UUID
    amount_cents: int
    direction: Direction
    created_at: datetime
    timeout_seconds: int  # 0: no timeout of its own
    status: str  # PendingStatus value: pending, posted, voided, expired
    resolved_by: uuid.UUID | None = None  # the post/void transfer that resolved it


class ClassTotals(msgspec.Struct, kw_only=True):
    count: int = 0
    amount_cents: int = 0


class ReconciliationSummary(msgspec.Struct, kw_only=True):
    business_day: date
    timezone: str
    totals: dict[str, ClassTotals]
    items_read: dict[str, int]
    orphan_holds_voided: int
    applied: bool
    report_files: list[str]

    @property
    def discrepancies(self) -> int:
        return sum(t.count for k, t in self.totals.items() if k != DiscrepancyClass.MATCHED.value)
