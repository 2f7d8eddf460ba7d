"""The Ledger contract under concurrency: many callers on the same ids and accounts.

Every test starts ``CALLERS`` tasks at once (``asyncio.gather``; on
PostgreSQL each task holds its own pooled connection, so the server really
interleaves them) and then checks the final state as a whole
(:func:`check_invariants`): money is conserved, no flagged account is beyond
its limit, pending balances are exactly the live reservations, posted
balances and statements agree with the stored transfers, and every event was
recorded exactly once, with the call that applied something.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence

import pytest

from finbank_adapters.memory import FakeClock, InMemoryEventPublisher, InMemoryLedger
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    EntrySide,
    LedgerAccount,
    NewAccount,
    PendingStatus,
    Transfer,
    TransferFlags,
)
from finbank_core.accounts.ports import Ledger
from finbank_core.shared.events import EventEnvelope, decode_event
from tests.contract.conftest import (
    LEDGER_BACKENDS,
    POSTGRES_LEDGERS,
    LedgerHarness,
    postgres_ledger,
)
from tests.postgres_support import isolated_schema

R = CreateTransferResult
CUSTOMER = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
CALLERS = 32
POOL_SIZE = 10
#: rounds of a race: the first round on fresh connections is the least interleaved
ROUNDS = 4


@pytest.fixture(params=LEDGER_BACKENDS)
async def harness(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[LedgerHarness]:
    """Like ``ledger_harness``, with a pool big enough for real interleaving."""
    if request.param == "memory":
        publisher = InMemoryEventPublisher()

        async def recorded() -> list[EventEnvelope]:
            return list(publisher.published)

        yield LedgerHarness(InMemoryLedger(clock, publisher), clock, recorded)
    elif request.param in POSTGRES_LEDGERS:
        dsn = request.getfixturevalue("postgres_dsn")
        async with isolated_schema(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE) as (pool, _):

            async def from_outbox() -> list[EventEnvelope]:
                rows = await pool.fetch("SELECT envelope FROM outbox ORDER BY id")
                return [decode_event(row["envelope"]) for row in rows]

            yield LedgerHarness(postgres_ledger(request.param, pool, clock), clock, from_outbox)
    else:  # pragma: no cover
        raise AssertionError(request.param)


class Journal:
    """What the callers submitted, and which call's events must have been recorded."""

    def __init__(self, harness: LedgerHarness) -> None:
        self.harness = harness
        self.transfer_ids: set[uuid.UUID] = set()
        self.recorded: list[uuid.UUID] = []  # event ids of calls with at least one ok
        self.not_recorded: list[uuid.UUID] = []

    async def submit(self, transfers: Sequence[Transfer]) -> list[CreateTransferResult]:
        """One ``create_transfers`` call carrying one event of its own."""
        ledger = self.harness.ledger
        evt = EventEnvelope(
            event_id=uuid.uuid4(),
            type="ledger.concurrency_test",
            version=1,
            occurred_at=self.harness.clock.now(),
            aggregate_id=str(transfers[0].id),
            payload={"n": len(transfers)},
        )
        self.transfer_ids.update(t.id for t in transfers)
        results = await ledger.create_transfers(transfers, events=[evt])
        assert len(results) == len(transfers)
        (self.recorded if R.OK in results else self.not_recorded).append(evt.event_id)
        return results


def move(
    debit: uuid.UUID | None,
    credit: uuid.UUID | None,
    amount: int,
    *,
    id: uuid.UUID | None = None,
    flags: TransferFlags = TransferFlags.NONE,
    timeout_seconds: int = 0,
    user_data: str | None = None,
) -> Transfer:
    return Transfer(
        id=id or uuid.uuid4(),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        code=3,
        flags=flags,
        timeout_seconds=timeout_seconds,
        user_data=user_data,
    )


async def open_accounts(ledger: Ledger, *flags: AccountFlags) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in flags]
    results = await ledger.create_accounts(
        [NewAccount(id=i, code=1, flags=f) for i, f in zip(ids, flags, strict=True)]
    )
    assert results == [CreateAccountResult.OK] * len(flags)
    return ids


def _balances(acc: LedgerAccount) -> tuple[int, int, int, int]:
    return (acc.debits_pending, acc.debits_posted, acc.credits_pending, acc.credits_posted)


async def check_invariants(journal: Journal, account_ids: Sequence[uuid.UUID]) -> None:
    """The final state, as a whole, agrees with itself and with what was applied."""
    ledger = journal.harness.ledger
    accounts = await ledger.lookup_accounts(account_ids)
    assert len(accounts) == len(account_ids)
    # conservation of money
    assert sum(a.debits_posted for a in accounts) == sum(a.credits_posted for a in accounts)
    assert sum(a.debits_pending for a in accounts) == sum(a.credits_pending for a in accounts)
    for acc in accounts:
        assert min(_balances(acc)) >= 0, acc
        if acc.flags & AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS:
            assert acc.debits_pending + acc.debits_posted <= acc.credits_posted, acc
        if acc.flags & AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS:
            assert acc.credits_pending + acc.credits_posted <= acc.debits_posted, acc

    # balances are exactly what the stored transfers add up to
    records = await ledger.lookup_transfers(sorted(journal.transfer_ids))
    assert len({r.id for r in records}) == len(records)
    expected: dict[uuid.UUID, list[int]] = {a: [0, 0, 0, 0] for a in account_ids}
    postings: dict[uuid.UUID, Counter[tuple[uuid.UUID, EntrySide, int]]] = defaultdict(Counter)
    for record in records:
        flags = record.request.flags
        if record.status is PendingStatus.PENDING:
            expected[record.debit_account_id][0] += record.amount
            expected[record.credit_account_id][2] += record.amount
        elif not flags & (TransferFlags.PENDING | TransferFlags.VOID_PENDING_TRANSFER):
            expected[record.debit_account_id][1] += record.amount
            expected[record.credit_account_id][3] += record.amount
            postings[record.debit_account_id][(record.id, EntrySide.DEBIT, record.amount)] += 1
            postings[record.credit_account_id][(record.id, EntrySide.CREDIT, record.amount)] += 1
    for acc in accounts:
        assert _balances(acc) == tuple(expected[acc.id]), acc

    # statements: one entry per posting, running balances consistent
    for acc in accounts:
        entries = []
        after: int | None = None
        while True:
            page = await ledger.get_account_entries(acc.id, after_sequence=after, limit=50)
            entries.extend(page.entries)
            if page.next_after_sequence is None:
                break
            after = page.next_after_sequence
        balance = 0
        for entry in entries:
            balance += entry.signed_amount
            assert entry.balance_after == balance, entry
        assert balance == acc.credits_posted - acc.debits_posted
        assert Counter((e.transfer_id, e.side, e.amount) for e in entries) == postings[acc.id]
        sequences = [e.sequence for e in entries]
        assert sequences == sorted(set(sequences))

    # events: the ones of calls that applied something, each exactly once
    recorded = Counter(e.event_id for e in await journal.harness.recorded_events())
    assert all(n == 1 for n in recorded.values()), recorded
    assert set(recorded) == set(journal.recorded)


async def funded_customer(journal: Journal, amount: int) -> tuple[uuid.UUID, uuid.UUID]:
    """(bank, customer) with ``amount`` on the customer's account."""
    bank, customer = await open_accounts(journal.harness.ledger, AccountFlags.NONE, CUSTOMER)
    assert await journal.submit([move(bank, customer, amount)]) == [R.OK]
    return bank, customer


# -- the same transfer id from many callers ----------------------------------------------


@pytest.mark.parametrize("shape", ["single", "pending", "linked_batch", "post", "void"])
async def test_replays_of_one_transfer_apply_it_once(harness: LedgerHarness, shape: str) -> None:
    """One OK, every other caller EXISTS, whether it raced the first or came after it.

    The transfer drains the customer's account: a replay that is checked
    against the balance instead of the stored transfer answers
    ``exceeds_credits``.
    """
    journal = Journal(harness)
    bank, customer = await open_accounts(harness.ledger, AccountFlags.NONE, CUSTOMER)
    for _ in range(ROUNDS):
        assert await journal.submit([move(bank, customer, 100)]) == [R.OK]
        if shape == "single":  # PostgreSQL's single-transfer fast path
            batch = [move(customer, bank, 100)]
        elif shape == "pending":
            batch = [move(customer, bank, 100, flags=TransferFlags.PENDING, timeout_seconds=60)]
        elif shape in ("post", "void"):  # the same resolution of one pending transfer
            reserved = move(customer, bank, 100, flags=TransferFlags.PENDING)
            assert await journal.submit([reserved]) == [R.OK]
            resolve = Transfer.post if shape == "post" else Transfer.void
            batch = [resolve(uuid.uuid4(), reserved.id)]
        else:
            batch = [
                move(customer, bank, 60, flags=TransferFlags.LINKED),
                move(customer, bank, 40),
            ]
        outcomes = await asyncio.gather(*(journal.submit(batch) for _ in range(CALLERS)))
        assert outcomes.count([R.OK] * len(batch)) == 1, Counter(map(tuple, outcomes))
        # the racing replays answer like a replay after the fact (a chain whose first
        # member exists fails as a whole: the member answers EXISTS, the rest
        # LINKED_EVENT_FAILED)
        replay = await journal.submit(batch)
        assert replay == [R.EXISTS] + [R.LINKED_EVENT_FAILED] * (len(batch) - 1)
        assert outcomes.count(replay) == CALLERS - 1, Counter(map(tuple, outcomes))
        records = await harness.ledger.lookup_transfers([t.id for t in batch])
        assert [r.request for r in records] == batch
        if shape == "pending":
            assert await journal.submit([Transfer.void(uuid.uuid4(), batch[0].id)]) == [R.OK]
        if shape in ("pending", "void"):  # spend what was given back: each round drains
            assert await journal.submit([move(customer, bank, 100)]) == [R.OK]
    await check_invariants(journal, [bank, customer])


async def test_one_id_with_different_bodies_stores_exactly_one(harness: LedgerHarness) -> None:
    """Same id, 32 bodies, on two disjoint pairs of accounts: one wins, the rest are told so."""
    journal = Journal(harness)
    bank_a, customer_a = await funded_customer(journal, 1_000)
    bank_b, customer_b = await funded_customer(journal, 1_000)
    shared_id = uuid.uuid4()
    bodies = [
        move(customer_a, bank_a, n + 1, id=shared_id)
        if n % 2
        else move(customer_b, bank_b, n + 1, id=shared_id)
        for n in range(CALLERS)
    ]
    outcomes = await asyncio.gather(*(journal.submit([body]) for body in bodies))
    winners = [b for b, result in zip(bodies, outcomes, strict=True) if result == [R.OK]]
    assert len(winners) == 1, outcomes
    assert outcomes.count([R.EXISTS_WITH_DIFFERENT_FIELDS]) == CALLERS - 1
    [record] = await harness.ledger.lookup_transfers([shared_id])
    assert record.request == winners[0]
    # every replay answers like the first answer to that body
    for body, first in zip(bodies, outcomes, strict=True):
        again = await journal.submit([body])
        assert again == ([R.EXISTS] if first == [R.OK] else first)
    await check_invariants(journal, [bank_a, customer_a, bank_b, customer_b])


# -- resolving one pending transfer from many callers ------------------------------------


async def test_racing_posts_and_voids_resolve_a_pending_transfer_once(
    harness: LedgerHarness,
) -> None:
    journal = Journal(harness)
    bank, customer = await funded_customer(journal, 100)
    pending = move(customer, bank, 60, flags=TransferFlags.PENDING, timeout_seconds=3600)
    assert await journal.submit([pending]) == [R.OK]
    resolvers = [
        Transfer.post(uuid.uuid4(), pending.id, amount=(n % 3) * 10)
        if n % 2
        else Transfer.void(uuid.uuid4(), pending.id)
        for n in range(CALLERS)
    ]
    outcomes = await asyncio.gather(*(journal.submit([r]) for r in resolvers))
    [winner] = [r for r, result in zip(resolvers, outcomes, strict=True) if result == [R.OK]]
    posted = bool(winner.flags & TransferFlags.POST_PENDING_TRANSFER)
    lost = R.PENDING_TRANSFER_ALREADY_POSTED if posted else R.PENDING_TRANSFER_ALREADY_VOIDED
    assert outcomes.count([lost]) == CALLERS - 1, outcomes
    [record] = await harness.ledger.lookup_transfers([pending.id])
    assert record.status is (PendingStatus.POSTED if posted else PendingStatus.VOIDED)
    # replays of every resolver answer like their first call, or EXISTS for the winner
    for resolver, first in zip(resolvers, outcomes, strict=True):
        again = await journal.submit([resolver])
        assert again == ([R.EXISTS] if first == [R.OK] else first)
    await check_invariants(journal, [bank, customer])


async def test_posts_and_voids_racing_the_expiry(harness: LedgerHarness) -> None:
    """Half the reservations are due: every caller, whatever it does, sees the same."""
    journal = Journal(harness)
    ledger, clock = harness.ledger, harness.clock
    bank, customer = await funded_customer(journal, 10_000)
    due = [
        move(customer, bank, 10 + n, flags=TransferFlags.PENDING, timeout_seconds=60)
        for n in range(8)
    ]
    alive = [
        move(customer, bank, 20 + n, flags=TransferFlags.PENDING, timeout_seconds=120)
        for n in range(8)
    ]
    assert await journal.submit(due + alive) == [R.OK] * 16
    clock.advance(60)

    async def resolve(n: int, target: Transfer) -> list[CreateTransferResult]:
        if n % 2:
            return await journal.submit([Transfer.post(uuid.uuid4(), target.id)])
        return await journal.submit([Transfer.void(uuid.uuid4(), target.id)])

    async def noticer(n: int) -> int:
        kind = n % 4
        if kind == 0:
            return await ledger.expire_pending_transfers()
        if kind == 1:
            await ledger.lookup_accounts([customer, bank])
        elif kind == 2:
            await ledger.lookup_transfers([t.id for t in due])
        else:
            assert await journal.submit([move(bank, customer, 1)]) == [R.OK]
        return 0

    pending = due + alive
    resolutions, noticed = await asyncio.gather(
        asyncio.gather(*(resolve(n, pending[n % 16]) for n in range(CALLERS))),
        asyncio.gather(*(noticer(n) for n in range(CALLERS))),
    )
    assert sum(noticed) <= len(due)
    for n, result in enumerate(resolutions):
        target = pending[n % 16]
        if target in due:
            assert result == [R.PENDING_TRANSFER_EXPIRED], (n, result)
    # of the two callers per live reservation, exactly one resolved it
    for target in alive:
        results = [r for n, r in enumerate(resolutions) if pending[n % 16] is target]
        assert results.count([R.OK]) == 1, results
        assert [r for r in results if r != [R.OK]] in (
            [[R.PENDING_TRANSFER_ALREADY_POSTED]],
            [[R.PENDING_TRANSFER_ALREADY_VOIDED]],
        )
    records = await ledger.lookup_transfers([t.id for t in pending])
    assert [r.status for r in records[:8]] == [PendingStatus.EXPIRED] * 8
    assert all(r.status in (PendingStatus.POSTED, PendingStatus.VOIDED) for r in records[8:])
    assert await ledger.expire_pending_transfers() == 0
    await check_invariants(journal, [bank, customer])


# -- random traffic among a few flagged accounts -------------------------------------------


async def test_random_traffic_keeps_every_invariant(harness: LedgerHarness) -> None:
    """32 callers, seeded, moving money among four customers who may never overdraw."""
    journal = Journal(harness)
    ledger, clock = harness.ledger, harness.clock
    bank, *customers = await open_accounts(ledger, AccountFlags.NONE, *[CUSTOMER] * 4)
    funding = [move(bank, c, 500) for c in customers]
    assert await journal.submit(funding) == [R.OK] * 4
    refused = Counter[CreateTransferResult]()

    async def caller(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[Transfer] = []  # my pending transfers
        for step in range(8):
            debit, credit = rng.sample(customers, 2)
            amount = rng.choice([1, 5, 50, 120, 400, 600])
            choice = rng.random()
            if choice < 0.35:
                batch = [move(debit, credit, amount)]
            elif choice < 0.55:
                timeout = rng.choice([0, 1, 30])
                transfer = move(
                    debit, credit, amount, flags=TransferFlags.PENDING, timeout_seconds=timeout
                )
                mine.append(transfer)
                batch = [transfer]
            elif choice < 0.75 and mine:
                target = mine.pop(rng.randrange(len(mine)))
                posting = rng.random() < 0.5
                batch = [
                    Transfer.post(uuid.uuid4(), target.id, amount=rng.choice([0, 1]))
                    if posting
                    else Transfer.void(uuid.uuid4(), target.id)
                ]
            elif choice < 0.9:
                batch = [
                    move(debit, credit, amount, flags=TransferFlags.LINKED),
                    move(credit, rng.choice(customers), amount // 2 + 1),
                ]
            else:
                batch = [move(debit, credit, amount), move(credit, debit, amount)]
            results = await journal.submit(batch)
            refused.update(r for r in results if r is not R.OK)
            if seed == 0 and step % 2:
                clock.advance(1)  # one caller moves time: timeouts fall due mid-traffic
            if rng.random() < 0.3:
                # a replay applies nothing that was applied (what failed is re-evaluated)
                again = await journal.submit(batch)
                linked = any(t.flags & TransferFlags.LINKED for t in batch)
                for before, now in zip(results, again, strict=True):
                    if before is R.OK:
                        assert now in ((R.EXISTS, R.LINKED_EVENT_FAILED) if linked else (R.EXISTS,))

    await asyncio.gather(*(caller(seed) for seed in range(CALLERS)))
    assert refused[R.EXCEEDS_CREDITS] > 0  # the limit was really tested
    await check_invariants(journal, [bank, *customers])
    clock.advance(60)  # every timeout falls due: the first call to notice expires them
    await check_invariants(journal, [bank, *customers])
    records = await ledger.lookup_transfers(sorted(journal.transfer_ids))
    assert not [
        r for r in records if r.status is PendingStatus.PENDING and r.request.timeout_seconds
    ]


# -- accounts and expiries from many callers -------------------------------------------


async def test_one_account_id_from_many_callers_is_created_once(harness: LedgerHarness) -> None:
    ledger = harness.ledger
    for linked in (False, True):
        shared = uuid.uuid4()
        bodies = [
            NewAccount(id=shared, code=1 + n % 2, flags=CUSTOMER if n % 3 else AccountFlags.NONE)
            for n in range(CALLERS)
        ]
        if linked:  # each caller's account is the second of a linked pair
            batches = [
                [NewAccount(id=uuid.uuid4(), code=1, flags=AccountFlags.LINKED), body]
                for body in bodies
            ]
        else:
            batches = [[body] for body in bodies]
        outcomes = await asyncio.gather(*(ledger.create_accounts(b) for b in batches))
        winners = [b[-1] for b, r in zip(batches, outcomes, strict=True) if r[-1] == "ok"]
        assert len(winners) == 1, outcomes
        for body, result in zip(bodies, outcomes, strict=True):
            if result[-1] != "ok":
                same = body == winners[0]
                assert result[-1] == ("exists" if same else "exists_with_different_fields")
        [stored] = await ledger.lookup_accounts([shared])
        assert (stored.code, stored.flags) == (winners[0].code, winners[0].flags)
        if linked:  # a failed pair created neither of its accounts
            firsts = [b[0].id for b, r in zip(batches, outcomes, strict=True) if r[-1] != "ok"]
            assert await ledger.lookup_accounts(firsts) == []


async def test_many_callers_noticing_the_same_expiries_apply_each_once(
    harness: LedgerHarness,
) -> None:
    """40 reservations fall due at once; 32 callers of every kind notice them together."""
    journal = Journal(harness)
    ledger, clock = harness.ledger, harness.clock
    bank, *customers = await open_accounts(ledger, AccountFlags.NONE, *[CUSTOMER] * 4)
    assert await journal.submit([move(bank, c, 1_000) for c in customers]) == [R.OK] * 4
    reservations = [
        move(
            customers[n % 4],
            customers[(n + 1) % 4],
            10 + n,
            flags=TransferFlags.PENDING,
            timeout_seconds=30 + n % 3,
        )
        for n in range(40)
    ]
    assert await journal.submit(reservations) == [R.OK] * 40
    clock.advance(32)

    async def noticer(n: int) -> int:
        kind = n % 5
        if kind == 0:
            return await ledger.expire_pending_transfers()
        if kind == 1:
            await ledger.lookup_accounts(customers)
        elif kind == 2:
            await ledger.lookup_transfers([r.id for r in reservations[n:]])
        elif kind == 3:
            assert await journal.submit([move(bank, customers[n % 4], 1)]) == [R.OK]
        else:
            batch = [move(bank, customers[n % 4], 1), move(customers[n % 4], bank, 1)]
            assert await journal.submit(batch) == [R.OK, R.OK]
        return 0

    counted = await asyncio.gather(*(noticer(n) for n in range(CALLERS)))
    assert sum(counted) <= 40
    records = await ledger.lookup_transfers([r.id for r in reservations])
    assert {r.status for r in records} == {PendingStatus.EXPIRED}
    assert await ledger.expire_pending_transfers() == 0
    for acc in await ledger.lookup_accounts(customers):
        assert (acc.debits_pending, acc.credits_pending) == (0, 0)
    await check_invariants(journal, [bank, *customers])
