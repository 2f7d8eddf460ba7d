"""Synthetic business days for tests and benchmarks, with injected discrepancies.

Item ``i`` of a day has the key ``E`` + ISPB + the day's ``yyyyMMdd0000`` +
``i`` in 11 digits, so every source comes out already sorted by key and can
be regenerated item by item from the seed: memory stays flat for any ``n``.
Which class item ``i`` falls in is drawn from a seeded RNG, so the expected
report is known exactly.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta

import msgspec

from finbank_core.reconciliation.model import Direction, DiscrepancyClass, ReconItem
from finbank_core.reconciliation.statement import CSV_HEADER, format_csv_line
from finbank_core.reconciliation.use_cases import BUSINESS_TZ, day_bounds

D = DiscrepancyClass


class DiscrepancyRates(msgspec.Struct, frozen=True, kw_only=True):
    """Probability of each injected class per item; the rest are clean matches."""

    amount_mismatch: float = 0.001
    in_statement_not_booked: float = 0.001
    booked_not_in_statement: float = 0.001
    record_without_posting: float = 0.001
    posting_without_record: float = 0.001
    #: clean pairs whose ledger and statement times straddle midnight (must match)
    across_midnight: float = 0.001


class GeneratedItem(msgspec.Struct, frozen=True):
    key: str
    expected: DiscrepancyClass
    ledger: ReconItem | None
    record: ReconItem | None
    statement: ReconItem | None


class SyntheticDay:
    """A day's three sources, regenerated on demand from ``seed``."""

    def __init__(
        self,
        business_day: date,
        count: int,
        *,
        seed: int = 7,
        ispb: str = "99999999",
        rates: DiscrepancyRates | None = None,
    ) -> None:
        self.business_day = business_day
        self.count = count
        self.seed = seed
        self.ispb = ispb
        self.rates = rates or DiscrepancyRates()
        self.start, self.end = day_bounds(business_day, BUSINESS_TZ)

    def items(self) -> Iterator[GeneratedItem]:
        rng = random.Random(self.seed)  # noqa: S311 - test data, not security
        r = self.rates
        thresholds: list[tuple[float, DiscrepancyClass | None]] = []
        acc = 0.0
        for injected, rate in (
            (D.AMOUNT_MISMATCH, r.amount_mismatch),
            (D.IN_STATEMENT_NOT_BOOKED, r.in_statement_not_booked),
            (D.BOOKED_NOT_IN_STATEMENT, r.booked_not_in_statement),
            (D.RECORD_WITHOUT_POSTING, r.record_without_posting),
            (D.POSTING_WITHOUT_RECORD, r.posting_without_record),
            (None, r.across_midnight),
        ):
            acc += rate
            thresholds.append((acc, injected))
        span = (self.end - self.start).total_seconds()
        stamp = self.business_day.strftime("%Y%m%d") + "0000"
        for i in range(self.count):
            key = f"E{self.ispb}{stamp}{i:011d}"
            amount = rng.randint(1, 5_000_00)
            direction = Direction.OUT if rng.random() < 0.5 else Direction.IN
            at = self.start + timedelta(seconds=rng.uniform(1, span - 1))
            roll = rng.random()
            klass: DiscrepancyClass | None = D.MATCHED
            for limit, candidate in thresholds:
                if roll < limit:
                    klass = candidate
                    break
            yield self._build(i, key, amount, direction, at, klass)

    def _build(
        self,
        i: int,
        key: str,
        amount: int,
        direction: Direction,
        at: datetime,
        klass: DiscrepancyClass | None,
    ) -> GeneratedItem:
        def item(ref: str, cents: int = amount, when: datetime = at) -> ReconItem:
            return ReconItem(
                key=key, amount_cents=cents, direction=direction, at=when, reference=f"{ref}{i}"
            )

        ledger: ReconItem | None = item("T")
        record: ReconItem | None = item("R")
        statement: ReconItem | None = item("S")
        expected = klass or D.MATCHED
        if klass is None:  # across midnight: ledger just before the day ends, statement after
            ledger = item("T", when=self.end - timedelta(seconds=2))
            record = item("R", when=self.end - timedelta(seconds=2))
            statement = item("S", when=self.end + timedelta(seconds=1))
        elif klass is D.AMOUNT_MISMATCH:
            statement = item("S", cents=amount + 1)
        elif klass is D.IN_STATEMENT_NOT_BOOKED:
            ledger = record = None
        elif klass is D.BOOKED_NOT_IN_STATEMENT:
            statement = None
        elif klass is D.RECORD_WITHOUT_POSTING:
            ledger = statement = None
        elif klass is D.POSTING_WITHOUT_RECORD:
            record = None
        return GeneratedItem(key, expected, ledger, record, statement)

    def expected(self) -> dict[str, DiscrepancyClass]:
        """Key -> class for every discrepancy (matched keys are left out)."""
        return {g.key: g.expected for g in self.items() if g.expected is not D.MATCHED}

    def settled_next_day(self) -> set[str]:
        """Keys booked before midnight but settled after: the next day's to report."""
        return {g.key for g in self.items() if g.statement and g.statement.at >= self.end}

    # -- the three sources (each regenerates the day) ---------------------------------

    async def _side(self, side: str, start: datetime, end: datetime) -> AsyncIterator[ReconItem]:
        for generated in self.items():
            item: ReconItem | None = getattr(generated, side)
            if item is not None and start <= item.at < end:
                yield item

    def postings(self, start: datetime, end: datetime) -> AsyncIterator[ReconItem]:
        return self._side("ledger", start, end)

    def settled_records(self, start: datetime, end: datetime) -> AsyncIterator[ReconItem]:
        return self._side("record", start, end)

    def statement_items(
        self, business_day: date, start: datetime, end: datetime
    ) -> AsyncIterator[ReconItem]:
        return self._side("statement", start, end)

    async def statement_csv(self, shuffle_seed: int | None = None) -> AsyncIterator[bytes]:
        """The day's statement as CSV bytes (optionally shuffled, for small days)."""
        yield (CSV_HEADER + "\n").encode()
        lines = (
            format_csv_line(g.statement) + "\n" for g in self.items() if g.statement is not None
        )
        if shuffle_seed is None:
            batch: list[str] = []
            for line in lines:
                batch.append(line)
                if len(batch) == 1000:
                    yield "".join(batch).encode()
                    batch = []
            yield "".join(batch).encode()
            return
        everything = list(lines)
        random.Random(shuffle_seed).shuffle(everything)  # noqa: S311 - test data
        yield "".join(everything).encode()
