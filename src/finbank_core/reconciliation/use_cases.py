"""``ReconcileDay``: match a business day, report every difference, void orphan holds."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec

from finbank_core.accounts.ledger import CreateTransferResult, PendingStatus, Transfer
from finbank_core.accounts.ports import Ledger
from finbank_core.accounts.use_cases import FINBANK_NAMESPACE, BankAccounts
from finbank_core.reconciliation.matching import match_sources
from finbank_core.reconciliation.model import (
    ClassTotals,
    DiscrepancyClass,
    PendingHold,
    ReconciliationSummary,
    ReconItem,
    ReconLine,
)
from finbank_core.reconciliation.ports import (
    PendingHoldsSource,
    PixRecordsSource,
    ReportSink,
    SettlementPostings,
    SettlementStatementSource,
)
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.events import EventEnvelope, EventPublisher
from finbank_core.shared.ids import IdGenerator

BUSINESS_TZ = "America/Sao_Paulo"
RECONCILIATION_COMPLETED = "pix.reconciliation_completed"
DISCREPANCY_FOUND = "pix.discrepancy_found"
SAMPLE_KEYS = 20
# Void ids are derived from the hold, so a second run voids nothing twice.
_VOID_OK = {
    CreateTransferResult.OK,
    CreateTransferResult.EXISTS,
    CreateTransferResult.PENDING_TRANSFER_ALREADY_VOIDED,
    CreateTransferResult.PENDING_TRANSFER_EXPIRED,
}


class ReconciliationSettings(msgspec.Struct, frozen=True, kw_only=True):
    #: how far past midnight an item may sit and still be matched across the boundary
    day_boundary_tolerance_seconds: int = 300
    #: a hold with no timeout of its own is an orphan once older than this
    max_hold_age_seconds: int = 3600
    timezone: str = BUSINESS_TZ


class ReconcileCommand(msgspec.Struct, frozen=True, kw_only=True):
    business_day: date
    apply: bool = False  # dry run by default: report orphan holds, void nothing


#: the earliest business day a run accepts (the ledger's times start at the Unix epoch)
EARLIEST_BUSINESS_DAY = date(1970, 1, 1)


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of a business day in ``timezone``, as UTC instants."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def void_id_for(hold_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(FINBANK_NAMESPACE, f"reconciliation-void\x1f{hold_id}")


def is_orphan(hold: PendingHold, now: datetime, max_age_seconds: int) -> bool:
    """Still pending past its timeout (or past the maximum age), or voided by an earlier run.

    Counting holds this job voided before keeps a re-run's report identical.
    """
    if hold.status == PendingStatus.VOIDED.value:
        return hold.resolved_by == void_id_for(hold.transfer_id)
    if hold.status != PendingStatus.PENDING.value:
        return False
    limit = hold.timeout_seconds or max_age_seconds
    return hold.created_at + timedelta(seconds=limit) <= now


class ReconcileDay:
    """Compare the three sources for one business day and act on the differences.

    Streams end to end: memory does not grow with the number of items. The
    report is a pure function of the sources (no run timestamps in it), so
    reconciling the same day twice writes the same report.
    """

    def __init__(
        self,
        *,
        postings: SettlementPostings,
        records: PixRecordsSource,
        statement: SettlementStatementSource,
        holds: PendingHoldsSource,
        ledger: Ledger,
        sink: ReportSink,
        publisher: EventPublisher,
        clock: Clock,
        ids: IdGenerator,
        settings: ReconciliationSettings | None = None,
    ) -> None:
        self._postings = postings
        self._records = records
        self._statement = statement
        self._holds = holds
        self._ledger = ledger
        self._sink = sink
        self._publisher = publisher
        self._clock = clock
        self._ids = ids
        self._settings = settings or ReconciliationSettings()

    async def __call__(self, cmd: ReconcileCommand) -> ReconciliationSummary:
        now = self._clock.now()
        day = cmd.business_day
        # a day past tomorrow has not begun anywhere; one before the epoch holds nothing
        # (and date.min/date.max have no neighbouring day to bound them)
        if day > now.date() + timedelta(days=1):
            raise InvalidInput(
                "a business day can only be reconciled once it has begun", field="business_day"
            )
        if day < EARLIEST_BUSINESS_DAY:
            raise InvalidInput(
                f"a business day is {EARLIEST_BUSINESS_DAY.isoformat()} or later",
                field="business_day",
            )
        start, end = day_bounds(day, self._settings.timezone)
        if start >= now:
            raise InvalidInput(
                "a business day can only be reconciled once it has begun", field="business_day"
            )
        tolerance = timedelta(seconds=self._settings.day_boundary_tolerance_seconds)
        window = (start - tolerance, end + tolerance)

        totals = {klass.value: ClassTotals() for klass in DiscrepancyClass}
        samples: dict[str, list[str]] = {klass.value: [] for klass in DiscrepancyClass}
        counts: dict[str, int] = {}
        async for line in match_sources(
            self._postings.postings(*window),
            self._records.settled_records(*window),
            self._statement.statement_items(cmd.business_day, *window),
            day_start=start,
            day_end=end,
            window=window,
            counts=counts,
        ):
            await self._record(line, totals, samples)

        voided = 0
        async for hold in self._holds.pending_holds(BankAccounts.PIX_SETTLEMENT, *window):
            if not is_orphan(hold, now, self._settings.max_hold_age_seconds):
                continue
            line = ReconLine(
                key=str(hold.transfer_id),
                klass=DiscrepancyClass.ORPHAN_HOLD,
                ledger=ReconItem(
                    key=str(hold.transfer_id),
                    amount_cents=hold.amount_cents,
                    direction=hold.direction,
                    at=hold.created_at,
                    reference=str(hold.transfer_id),
                ),
            )
            await self._record(line, totals, samples)
            if cmd.apply and hold.status == PendingStatus.PENDING.value:
                voided += await self._void(hold)

        summary = ReconciliationSummary(
            business_day=cmd.business_day,
            timezone=self._settings.timezone,
            totals=totals,
            items_read=counts,
            orphan_holds_voided=voided,
            applied=cmd.apply,
            report_files=[],
        )
        summary.report_files = await self._sink.finish(summary)
        await self._publish(summary, samples, now)
        return summary

    async def _record(
        self, line: ReconLine, totals: Mapping[str, ClassTotals], samples: dict[str, list[str]]
    ) -> None:
        bucket = totals[line.klass.value]
        bucket.count += 1
        bucket.amount_cents += line.amount_cents
        if len(samples[line.klass.value]) < SAMPLE_KEYS:
            samples[line.klass.value].append(line.key)
        await self._sink.add(line)

    async def _void(self, hold: PendingHold) -> int:
        [result] = await self._ledger.create_transfers(
            [Transfer.void(void_id_for(hold.transfer_id), hold.transfer_id)]
        )
        if result not in _VOID_OK:
            raise InvalidInput(f"could not void orphan hold: {result.value}")
        return 1 if result is CreateTransferResult.OK else 0

    async def _publish(
        self, summary: ReconciliationSummary, samples: dict[str, list[str]], now: datetime
    ) -> None:
        aggregate = f"reconciliation:{summary.business_day.isoformat()}"
        events = [
            EventEnvelope(
                event_id=self._ids.new_id(),
                type=DISCREPANCY_FOUND,
                version=1,
                occurred_at=now,
                aggregate_id=aggregate,
                payload={
                    "business_day": summary.business_day.isoformat(),
                    "class": klass,
                    "count": totals.count,
                    "amount_cents": totals.amount_cents,
                    "sample_keys": samples[klass],
                },
            )
            for klass, totals in summary.totals.items()
            if klass != DiscrepancyClass.MATCHED.value and totals.count
        ]
        events.append(
            EventEnvelope(
                event_id=self._ids.new_id(),
                type=RECONCILIATION_COMPLETED,
                version=1,
                occurred_at=now,
                aggregate_id=aggregate,
                payload={
                    "business_day": summary.business_day.isoformat(),
                    "discrepancies": summary.discrepancies,
                    "totals": {k: msgspec.to_builtins(v) for k, v in summary.totals.items()},
                    "orphan_holds_voided": summary.orphan_holds_voided,
                    "applied": summary.applied,
                },
            )
        )
        await self._publisher.publish(events)
