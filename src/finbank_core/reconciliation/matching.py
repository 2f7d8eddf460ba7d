"""The matcher: a streaming merge join of three sources sorted by key.

Memory stays bounded by the largest group of items sharing one key, whatever
the day's volume: the sources are async iterators sorted by key (adapters
sort in the database, or spill to disk), and lines are yielded as soon as a
key is complete.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from finbank_core.reconciliation.model import (
    DiscrepancyClass,
    ReconItem,
    ReconLine,
    Source,
)
from finbank_core.shared.errors import InvalidInput

_SENTINEL_KEY = "\U0010ffff"


class SourceOutOfOrder(InvalidInput):
    code = "reconciliation_source_out_of_order"
    title = "A reconciliation source is not sorted by key"


class _Cursor:
    """Reads one sorted source one key-group at a time, checking the order."""

    def __init__(self, source: Source, items: AsyncIterator[ReconItem]) -> None:
        self.source = source
        self._items = items
        self._head: ReconItem | None = None
        self._last_key = ""
        self.count = 0
        self.done = False

    async def prime(self) -> None:
        await self._advance()

    async def _advance(self) -> None:
        try:
            item = await anext(self._items)
        except StopAsyncIteration:
            self._head = None
            self.done = True
            return
        if item.key < self._last_key:
            raise SourceOutOfOrder(
                f"the {self.source.value} source is not sorted by key", source=self.source.value
            )
        self._last_key = item.key
        self.count += 1
        self._head = item

    @property
    def key(self) -> str:
        return self._head.key if self._head is not None else _SENTINEL_KEY

    async def take(self, key: str) -> list[ReconItem]:
        group: list[ReconItem] = []
        while self._head is not None and self._head.key == key:
            group.append(self._head)
            await self._advance()
        return group


def classify(
    ledger: ReconItem | None, record: ReconItem | None, statement: ReconItem | None
) -> DiscrepancyClass:
    """The class of a key from which sources have it (see the table in ``model``)."""
    if ledger is not None and record is not None and statement is not None:
        same = (
            ledger.amount_cents == record.amount_cents == statement.amount_cents
            and ledger.direction == record.direction == statement.direction
        )
        return DiscrepancyClass.MATCHED if same else DiscrepancyClass.AMOUNT_MISMATCH
    if ledger is not None and record is not None:
        return DiscrepancyClass.BOOKED_NOT_IN_STATEMENT
    if ledger is not None:
        return DiscrepancyClass.POSTING_WITHOUT_RECORD
    if statement is not None:
        return DiscrepancyClass.IN_STATEMENT_NOT_BOOKED
    return DiscrepancyClass.RECORD_WITHOUT_POSTING


def _pop_best(candidates: list[ReconItem], like: ReconItem | None) -> ReconItem | None:
    """Take the candidate that best matches ``like`` (same amount and direction first)."""
    if not candidates:
        return None
    if like is not None:
        for index, item in enumerate(candidates):
            if item.amount_cents == like.amount_cents and item.direction == like.direction:
                return candidates.pop(index)
    return candidates.pop(0)


def pair_group(
    key: str, ledger: list[ReconItem], records: list[ReconItem], statement: list[ReconItem]
) -> list[ReconLine]:
    """Pair the items of one key one-to-one; each internal item matches at most one external."""
    lines: list[ReconLine] = []
    ledger, records, statement = list(ledger), list(records), list(statement)
    while ledger or records or statement:
        anchor = statement.pop(0) if statement else None
        led = _pop_best(ledger, anchor)
        rec = _pop_best(records, anchor or led)
        lines.append(
            ReconLine(
                key=key, klass=classify(led, rec, anchor), ledger=led, record=rec, statement=anchor
            )
        )
    return lines


def _in_day(line: ReconLine, start: datetime, end: datetime) -> bool:
    """A line belongs to the day its settlement happened: the statement's say first."""
    anchor = line.statement or line.ledger or line.record
    return anchor is not None and start <= anchor.at < end


async def match_sources(
    ledger: AsyncIterator[ReconItem],
    records: AsyncIterator[ReconItem],
    statement: AsyncIterator[ReconItem],
    *,
    day_start: datetime,
    day_end: datetime,
    window: tuple[datetime, datetime] | None = None,
    counts: dict[str, int] | None = None,
) -> AsyncIterator[ReconLine]:
    """Yield one line per paired item, in key order.

    Sources may include items up to a tolerance outside ``[day_start,
    day_end)`` so that an item settled on one side of midnight matches its
    twin on the other. A line belongs to the day of its statement item (the
    central bank's settlement time), else of its ledger item, else of its
    record, so a pair straddling midnight is reported by exactly one day's
    run. ``counts`` receives the items read per source.

    ``window`` is the ``[start, end)`` the sources were read for. A statement
    item outside it is one the statement source hands to this run because no
    day's run could match it (a statement file's entry timed further from the
    file's day than any run reading that file looks; see
    ``SettlementStatementSource``): it is yielded on its own, as
    ``in_statement_not_booked``, whatever its time, rather than dropped by the
    day rule above and counted nowhere. Without ``window`` every item goes
    through the day rule.
    """
    cursors = [
        _Cursor(Source.LEDGER, ledger),
        _Cursor(Source.RECORD, records),
        _Cursor(Source.STATEMENT, statement),
    ]
    for cursor in cursors:
        await cursor.prime()
    while not all(c.done for c in cursors):
        key = min(c.key for c in cursors)
        led, rec, stm = [await c.take(key) for c in cursors]
        if window is not None:
            outside = [item for item in stm if not window[0] <= item.at < window[1]]
            for item in outside:
                yield ReconLine(
                    key=key, klass=DiscrepancyClass.IN_STATEMENT_NOT_BOOKED, statement=item
                )
            if outside:
                stm = [item for item in stm if window[0] <= item.at < window[1]]
        for line in pair_group(key, led, rec, stm):
            if _in_day(line, day_start, day_end):
                yield line
    if counts is not None:
        for cursor in cursors:
            counts[cursor.source.value] = cursor.count
