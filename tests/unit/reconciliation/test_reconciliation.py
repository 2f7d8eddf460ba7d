"""Daily reconciliation: every class detected, nothing else, reruns identical."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from finbank_adapters.files import InMemoryFileStore, LocalFileStore
from finbank_adapters.memory import FakeClock, InMemoryEventPublisher, InMemoryLedger
from finbank_adapters.memory.ids import SequentialIdGenerator
from finbank_adapters.reconciliation.generator import DiscrepancyRates, SyntheticDay
from finbank_adapters.reconciliation.report import FileStoreReportSink
from finbank_adapters.reconciliation.sorting import sort_items
from finbank_adapters.reconciliation.sources import FileStatementSource
from finbank_core.accounts.ledger import AccountFlags, NewAccount, Transfer, TransferFlags
from finbank_core.accounts.use_cases import BankAccounts, EnsureBankAccounts
from finbank_core.reconciliation.matching import SourceOutOfOrder, match_sources
from finbank_core.reconciliation.model import Direction, DiscrepancyClass, ReconItem
from finbank_core.reconciliation.statement import InvalidStatement
from finbank_core.reconciliation.use_cases import (
    DISCREPANCY_FOUND,
    RECONCILIATION_COMPLETED,
    ReconcileCommand,
    ReconcileDay,
    day_bounds,
)

DAY = date(2026, 3, 10)
RATES = DiscrepancyRates(
    amount_mismatch=0.01,
    in_statement_not_booked=0.01,
    booked_not_in_statement=0.01,
    record_without_posting=0.01,
    posting_without_record=0.01,
    across_midnight=0.01,
)


class Run:
    """Everything one reconciliation run needs, on in-memory adapters."""

    def __init__(self, day: SyntheticDay, *, statement_from_file: bool = False) -> None:
        self.day = day
        self.clock = FakeClock(datetime(2026, 3, 11, 9, tzinfo=UTC))
        self.ledger = InMemoryLedger(self.clock)
        self.files = InMemoryFileStore()
        self.events = InMemoryEventPublisher()
        self.statement_from_file = statement_from_file

    async def reconcile(self, *, apply: bool = False, prefix: str = "reports/run") -> None:
        statement = (
            FileStatementSource(self.files, chunk_size=97) if self.statement_from_file else self.day
        )
        use_case = ReconcileDay(
            postings=self.day,
            records=self.day,
            statement=statement,
            holds=self.ledger,
            ledger=self.ledger,
            sink=FileStoreReportSink(self.files, prefix),
            publisher=self.events,
            clock=self.clock,
            ids=SequentialIdGenerator(),
        )
        self.summary = await use_case(
            ReconcileCommand(business_day=self.day.business_day, apply=apply)
        )

    def keys(self, klass: DiscrepancyClass, prefix: str = "reports/run") -> list[str]:
        lines = self.files.files[f"{prefix}/{klass.value}.csv"].decode().splitlines()
        return [line.split(",")[0] for line in lines[1:]]


async def test_every_injected_discrepancy_and_nothing_else_is_reported() -> None:
    day = SyntheticDay(DAY, 4000, seed=11, rates=RATES)
    run = Run(day)
    await run.reconcile()
    expected = day.expected()
    assert {k for k in DiscrepancyClass if k is not DiscrepancyClass.ORPHAN_HOLD} <= {
        *expected.values(),
        DiscrepancyClass.MATCHED,
    }
    found = {
        key: klass
        for klass in DiscrepancyClass
        if klass is not DiscrepancyClass.MATCHED
        for key in run.keys(klass)
    }
    assert found == expected
    matched = run.keys(DiscrepancyClass.MATCHED)
    next_day = day.settled_next_day()
    assert next_day
    assert not next_day & set(matched)
    assert len(matched) == 4000 - len(expected) - len(next_day)
    assert run.summary.totals["matched"].count == len(matched)
    assert run.summary.discrepancies == len(expected)


async def test_pairs_straddling_midnight_match_and_belong_to_one_day() -> None:
    day = SyntheticDay(DAY, 3000, seed=5, rates=DiscrepancyRates(across_midnight=0.05))
    straddling = sorted(day.settled_next_day())
    assert straddling
    assert all(g.ledger.at < day.end for g in day.items() if g.key in straddling and g.ledger)
    run = Run(day)
    await run.reconcile()
    matched = set(run.keys(DiscrepancyClass.MATCHED))
    # They settled after midnight (statement time), so they belong to the next day...
    assert not matched & set(straddling)
    # ...where they match, and nothing from this day is reported again.
    start, end = day_bounds(DAY + timedelta(days=1), "America/Sao_Paulo")
    lines = [
        line
        async for line in match_sources(
            day.postings(start - timedelta(minutes=5), end),
            day.settled_records(start - timedelta(minutes=5), end),
            day.statement_items(DAY, start - timedelta(minutes=5), end),
            day_start=start,
            day_end=end,
        )
    ]
    assert sorted(line.key for line in lines) == sorted(straddling)
    assert {line.klass for line in lines} == {DiscrepancyClass.MATCHED}


async def test_the_same_day_twice_gives_byte_identical_reports() -> None:
    run = Run(SyntheticDay(DAY, 2000, seed=3, rates=RATES), statement_from_file=True)
    await run.files.put("statements/2026-03-10.csv", run.day.statement_csv(shuffle_seed=1))
    await run.reconcile(prefix="reports/a")
    await run.reconcile(prefix="reports/b")
    for klass in DiscrepancyClass:
        assert (
            run.files.files[f"reports/a/{klass.value}.csv"]
            == run.files.files[f"reports/b/{klass.value}.csv"]
        )
    first = run.files.files["reports/a/summary.json"].replace(b"reports/a", b"X")
    assert first == run.files.files["reports/b/summary.json"].replace(b"reports/b", b"X")


async def test_statement_read_from_a_shuffled_file_gives_the_same_verdicts() -> None:
    day = SyntheticDay(DAY, 1500, seed=9, rates=RATES)
    direct, from_file = Run(day), Run(day, statement_from_file=True)
    await from_file.files.put("statements/2026-03-10.csv", day.statement_csv(shuffle_seed=4))
    await direct.reconcile()
    await from_file.reconcile()
    for klass in DiscrepancyClass:
        assert direct.keys(klass) == from_file.keys(klass)


def _item(key: str, cents: int, ref: str, at: datetime) -> ReconItem:
    return ReconItem(key=key, amount_cents=cents, direction=Direction.OUT, at=at, reference=ref)


async def _iterate(items: list[ReconItem]) -> AsyncIterator[ReconItem]:
    for item in items:
        yield item


async def test_an_internal_item_matches_at_most_one_external_item() -> None:
    start, end = day_bounds(DAY, "America/Sao_Paulo")
    at = start + timedelta(hours=3)
    key = "E99999999202603100000" + "00000000042"
    lines = [
        line
        async for line in match_sources(
            _iterate([_item(key, 100, "T1", at)]),
            _iterate([_item(key, 100, "R1", at)]),
            _iterate([_item(key, 100, "S1", at), _item(key, 100, "S2", at)]),
            day_start=start,
            day_end=end,
        )
    ]
    assert [
        (line.klass, line.statement.reference if line.statement else None) for line in lines
    ] == [
        (DiscrepancyClass.MATCHED, "S1"),
        (DiscrepancyClass.IN_STATEMENT_NOT_BOOKED, "S2"),
    ]


async def test_an_unsorted_source_is_refused() -> None:
    start, end = day_bounds(DAY, "America/Sao_Paulo")
    at = start + timedelta(hours=1)
    with pytest.raises(SourceOutOfOrder):
        async for _ in match_sources(
            _iterate([_item("B" * 32, 1, "1", at), _item("A" * 32, 1, "2", at)]),
            _iterate([]),
            _iterate([]),
            day_start=start,
            day_end=end,
        ):
            pass


async def test_external_sort_spills_and_merges_in_order(tmp_path: object) -> None:
    day = SyntheticDay(DAY, 1000, seed=2)
    items = [g.statement for g in day.items() if g.statement is not None]
    shuffled = sorted(items, key=lambda i: i.reference[::-1])
    out = [i async for i in sort_items(_iterate(shuffled), chunk_size=64)]
    assert [i.key for i in out] == sorted(i.key for i in items)
    assert len(out) == len(items)


async def test_a_malformed_statement_line_is_refused_with_its_number(tmp_path: object) -> None:
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    files = LocalFileStore(tmp_path)

    async def content() -> AsyncIterator[bytes]:
        yield b"entry_ref,end_to_end_id,credit_debit,amount,booking_datetime\n"
        yield b"S1,E9999999920260310000000000000001,CRDT,10.00,2026-03-10T12:00:00+00:00\n"
        yield b"S2,E9999999920260310000000000000002,CRDT,10.5,2026-03-10T12:00:00+00:00\n"

    await files.put("statements/2026-03-10.csv", content())
    start, end = day_bounds(DAY, "America/Sao_Paulo")
    source = FileStatementSource(files)
    with pytest.raises(InvalidStatement, match="line 3"):
        async for _ in source.statement_items(DAY, start, end):
            pass


async def _ledger_with_holds(run: Run) -> tuple[uuid.UUID, uuid.UUID]:
    await EnsureBankAccounts(run.ledger)()
    customer = uuid.uuid4()
    await run.ledger.create_accounts(
        [NewAccount(id=customer, code=1, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)]
    )
    run.clock.set(datetime(2026, 3, 10, 15, tzinfo=UTC))
    await run.ledger.create_transfers(
        [
            Transfer(
                id=uuid.uuid4(),
                debit_account_id=BankAccounts.CASH,
                credit_account_id=customer,
                amount=500_00,
                code=1,
            )
        ]
    )
    stale, fresh = uuid.uuid4(), uuid.uuid4()
    for hold_id in (stale, fresh):
        await run.ledger.create_transfers(
            [
                Transfer(
                    id=hold_id,
                    debit_account_id=customer,
                    credit_account_id=BankAccounts.PIX_SETTLEMENT,
                    amount=10_00,
                    code=10,
                    flags=TransferFlags.PENDING,
                )
            ]
        )
        run.clock.advance(hours=2)
    settled = uuid.uuid4()  # a hold that was posted: not an orphan
    await run.ledger.create_transfers(
        [
            Transfer(
                id=settled,
                debit_account_id=customer,
                credit_account_id=BankAccounts.PIX_SETTLEMENT,
                amount=7_00,
                code=10,
                flags=TransferFlags.PENDING,
            )
        ]
    )
    await run.ledger.create_transfers([Transfer.post(uuid.uuid4(), settled)])
    run.clock.set(datetime(2026, 3, 11, 9, tzinfo=UTC))
    return stale, fresh


async def test_orphan_holds_are_reported_and_voided_only_with_apply_and_only_once() -> None:
    run = Run(SyntheticDay(DAY, 10, seed=1, rates=DiscrepancyRates()))
    stale, fresh = await _ledger_with_holds(run)
    await run.reconcile(prefix="reports/dry")
    assert set(run.keys(DiscrepancyClass.ORPHAN_HOLD, "reports/dry")) == {str(stale), str(fresh)}
    assert run.summary.orphan_holds_voided == 0
    [account] = await run.ledger.lookup_accounts([BankAccounts.PIX_SETTLEMENT])
    assert account.credits_pending == 20_00

    await run.reconcile(apply=True, prefix="reports/apply")
    assert run.summary.orphan_holds_voided == 2
    [account] = await run.ledger.lookup_accounts([BankAccounts.PIX_SETTLEMENT])
    assert account.credits_pending == 0

    await run.reconcile(apply=True, prefix="reports/again")
    assert run.summary.orphan_holds_voided == 0
    assert (
        run.files.files["reports/apply/orphan_hold.csv"]
        == run.files.files["reports/again/orphan_hold.csv"]
    )


async def test_events_report_completion_and_each_discrepancy_class() -> None:
    run = Run(SyntheticDay(DAY, 3000, seed=11, rates=RATES))
    await run.reconcile()
    completed = run.events.of_type(RECONCILIATION_COMPLETED)
    assert len(completed) == 1
    assert completed[0].payload["discrepancies"] == run.summary.discrepancies
    found = {e.payload["class"]: e.payload["count"] for e in run.events.of_type(DISCREPANCY_FOUND)}
    expected = day_counts(run.day)
    assert found == expected


def day_counts(day: SyntheticDay) -> dict[str, int]:
    counts: dict[str, int] = {}
    for klass in day.expected().values():
        counts[klass.value] = counts.get(klass.value, 0) + 1
    return counts


async def test_a_day_that_has_not_begun_cannot_be_reconciled() -> None:
    run = Run(SyntheticDay(date(2030, 1, 1), 1))
    with pytest.raises(Exception, match="once it has begun"):
        await run.reconcile()
