"""Statement files and the day boundary: every statement line is matched or reported once.

One statement file per business day, read by ``FileStatementSource``: a run
reads its neighbours' files for the tolerance band, and a file's entry timed
where no run that reads the file can match it is reported by the file's own
day (``docs/reconciliation.md``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from finbank_adapters.files import InMemoryFileStore
from finbank_adapters.memory import FakeClock, InMemoryEventPublisher, InMemoryLedger
from finbank_adapters.memory.ids import SequentialIdGenerator
from finbank_adapters.reconciliation.sources import FileStatementSource
from finbank_core.reconciliation.model import (
    Direction,
    DiscrepancyClass,
    ReconciliationSummary,
    ReconItem,
    ReconLine,
)
from finbank_core.reconciliation.statement import CSV_HEADER, format_csv_line
from finbank_core.reconciliation.use_cases import ReconcileCommand, ReconcileDay

SP = ZoneInfo("America/Sao_Paulo")
DAY = date(2026, 3, 10)


class ListSource:
    """Ledger postings or PIX records from a list, as the ports want them: in the window, by key."""

    def __init__(self, items: list[ReconItem]) -> None:
        self._items = sorted(items, key=lambda i: (i.key, i.reference))

    async def _between(self, start: datetime, end: datetime) -> AsyncIterator[ReconItem]:
        for item in self._items:
            if start <= item.at < end:
                yield item

    def postings(self, start: datetime, end: datetime) -> AsyncIterator[ReconItem]:
        return self._between(start, end)

    def settled_records(self, start: datetime, end: datetime) -> AsyncIterator[ReconItem]:
        return self._between(start, end)


class LineSink:
    """Keeps the run's lines."""

    def __init__(self) -> None:
        self.lines: list[ReconLine] = []

    async def add(self, line: ReconLine) -> None:
        self.lines.append(line)

    async def finish(self, summary: ReconciliationSummary) -> list[str]:
        return []


def _item(key: str, at: datetime, ref: str) -> ReconItem:
    return ReconItem(key=key, amount_cents=100_02, direction=Direction.OUT, at=at, reference=ref)


async def _write(files: InMemoryFileStore, day: date, entries: list[ReconItem]) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield "".join(f"{line}\n" for line in [CSV_HEADER, *map(format_csv_line, entries)]).encode()

    await files.put(f"statements/{day.isoformat()}.csv", body())


async def _run(
    day: date, files: InMemoryFileStore, internal: list[ReconItem] | None = None
) -> list[ReconLine]:
    clock = FakeClock(datetime(2026, 3, 20, 9, tzinfo=UTC))
    ledger = InMemoryLedger(clock)
    sink = LineSink()
    internal = internal or []
    await ReconcileDay(
        postings=ListSource([i for i in internal if i.reference.startswith("T")]),
        records=ListSource([i for i in internal if i.reference.startswith("R")]),
        statement=FileStatementSource(files),
        holds=ledger,
        ledger=ledger,
        sink=sink,
        publisher=InMemoryEventPublisher(),
        clock=clock,
        ids=SequentialIdGenerator(),
    )(ReconcileCommand(business_day=day))
    return sink.lines


KEY = "E99999999202603110259abcdefghijk"
LATE = datetime(2026, 3, 10, 23, 59, 59, tzinfo=SP)
EARLY = datetime(2026, 3, 11, 0, 0, 1, tzinfo=SP)


@pytest.mark.parametrize(
    ("booked", "settled"),
    [(LATE, EARLY), (EARLY, LATE)],
    ids=["booked-before-settled-after", "booked-after-settled-before"],
)
async def test_a_pair_straddling_midnight_is_reported_only_by_the_day_it_settled(
    booked: datetime, settled: datetime
) -> None:
    files = InMemoryFileStore()
    settled_on, other = settled.date(), ({DAY, DAY + timedelta(days=1)} - {settled.date()}).pop()
    await _write(files, settled_on, [_item(KEY, settled, "S1")])
    await _write(files, other, [])  # D-1's and D+2's are not in the store: read as empty
    internal = [_item(KEY, booked, "T1"), _item(KEY, booked, "R1")]

    by_day = {day: await _run(day, files, internal) for day in (settled_on, other)}

    assert [(line.key, line.klass) for line in by_day[settled_on]] == [
        (KEY, DiscrepancyClass.MATCHED)
    ]
    # before the fix, the booking's own day reported it as booked_not_in_statement
    assert by_day[other] == []


async def test_every_entry_of_a_statement_file_is_matched_or_reported_by_exactly_one_run() -> None:
    files = InMemoryFileStore()
    d = DAY
    entries = {
        # ref: (time, the run that must report it)
        "in-day": (datetime(2026, 3, 10, 12, tzinfo=SP), d),
        # the next day's tolerance band: the next day's run reads this file for it
        "next-00:02": (datetime(2026, 3, 11, 0, 2, tzinfo=SP), d + timedelta(days=1)),
        "prev-23:58": (datetime(2026, 3, 9, 23, 58, tzinfo=SP), d - timedelta(days=1)),
        "prev-09:00": (datetime(2026, 3, 9, 9, tzinfo=SP), d - timedelta(days=1)),
        # no run that reads this file can match these: the file's own day reports them
        "d+2-09:00": (datetime(2026, 3, 12, 9, tzinfo=SP), d),
        "d+2-00:02": (datetime(2026, 3, 12, 0, 2, tzinfo=SP), d),  # in D+1's window
        "d-2-23:58": (datetime(2026, 3, 8, 23, 58, tzinfo=SP), d),  # in D-1's window
        "far-future": (datetime(9999, 12, 31, 23, 59, tzinfo=UTC), d),
        "far-past": (datetime(1, 1, 1, 0, 0, tzinfo=UTC), d),
    }
    statement = [
        _item(f"E99999999202603101200{n:011d}", at, ref)
        for n, (ref, (at, _)) in enumerate(entries.items())
    ]
    await _write(files, d, statement)
    days = [d + timedelta(days=offset) for offset in range(-3, 4)]
    for other in days:
        if other != d:
            await _write(files, other, [])

    reported: dict[str, list[tuple[date, DiscrepancyClass]]] = {ref: [] for ref in entries}
    for day in days:
        for line in await _run(day, files):
            assert line.statement is not None
            reported[line.statement.reference].append((day, line.klass))

    assert reported == {
        ref: [(day, DiscrepancyClass.IN_STATEMENT_NOT_BOOKED)] for ref, (_, day) in entries.items()
    }


async def test_an_entry_no_run_can_match_does_not_swallow_a_booking_it_would_pair_with() -> None:
    files = InMemoryFileStore()
    d1 = DAY + timedelta(days=1)
    booked = datetime(2026, 3, 11, 23, 59, 59, tzinfo=SP)  # D+1, last second
    # in D's file, timed 00:00:01 of D+2: inside D+1's window, out of reach of D+2's run
    stray = _item(KEY, datetime(2026, 3, 12, 0, 0, 1, tzinfo=SP), "S1")
    await _write(files, DAY, [stray])
    for day in (DAY - timedelta(days=1), d1, d1 + timedelta(days=1), d1 + timedelta(days=2)):
        await _write(files, day, [])
    internal = [_item(KEY, booked, "T1"), _item(KEY, booked, "R1")]

    assert [(line.klass, line.statement) for line in await _run(DAY, files, internal)] == [
        (DiscrepancyClass.IN_STATEMENT_NOT_BOOKED, stray)
    ]
    next_day = await _run(d1, files, internal)
    assert [(line.klass, line.ledger is not None) for line in next_day] == [
        (DiscrepancyClass.BOOKED_NOT_IN_STATEMENT, True)
    ]
    assert await _run(d1 + timedelta(days=1), files, internal) == []
