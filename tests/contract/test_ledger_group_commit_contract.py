"""Group commit: concurrent callers' batches sent together must answer as if run one by one.

``PostgresLedger`` with ``group_max_in_flight`` set queues the callers that
arrive while that many write calls are in flight, and sends what waits as ONE
call (``ledger_create_transfer_group`` when every caller sent one plain
transfer, else ``ledger_create_transfers_grouped``): one transaction, one
commit. Each caller must still get exactly what its batch would have got
alone at some point of a serial order, and its events must be recorded iff
one of ITS transfers is ok.

The workload is made of small *scenes*, each on accounts of its own, whose
callers interact (overdrafts, replays of one id, a pending transfer posted and
voided by other callers, linked chains that depend on another caller's
credit). All scenes run at once, so grouped calls mix callers of different
scenes. For every scene the observed results must equal those of one of the
orders its callers could have run in: each order is replayed on a fresh
``InMemoryLedger`` (the reference rules) from the same set-up.

Runs on every ledger backend; on ``postgres_grouped`` (one call in flight)
it also asserts that grouped calls really formed, through both SQL paths.
PostgreSQL-only tests below: a member that makes the grouped call fail
(fallback, caller by caller) and cancellation before and after sending.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
import pytest

from finbank_adapters.memory import FakeClock, InMemoryEventPublisher, InMemoryLedger
from finbank_adapters.postgres import PostgresLedger
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    NewAccount,
    PendingStatus,
    Transfer,
    TransferFlags,
)
from finbank_core.accounts.ports import Ledger
from finbank_core.shared.events import EventEnvelope, decode_event
from tests.contract.conftest import LEDGER_BACKENDS, POSTGRES_LEDGERS, postgres_ledger
from tests.postgres_support import isolated_schema

R = CreateTransferResult
CUSTOMER = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
POOL_SIZE = 6
SCENES_OF_EACH_KIND = 8


@dataclass
class Harness:
    ledger: Ledger
    clock: FakeClock
    recorded_events: Callable[[], Awaitable[list[EventEnvelope]]]
    pool: asyncpg.Pool | None = None


@pytest.fixture(params=LEDGER_BACKENDS)
async def harness(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Harness]:
    if request.param == "memory":
        publisher = InMemoryEventPublisher()

        async def recorded() -> list[EventEnvelope]:
            return list(publisher.published)

        yield Harness(InMemoryLedger(clock, publisher), clock, recorded)
    elif request.param in POSTGRES_LEDGERS:
        dsn = request.getfixturevalue("postgres_dsn")
        async with isolated_schema(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE) as (pool, _):

            async def from_outbox() -> list[EventEnvelope]:
                rows = await pool.fetch("SELECT envelope FROM outbox ORDER BY id")
                return [decode_event(row["envelope"]) for row in rows]

            yield Harness(postgres_ledger(request.param, pool, clock), clock, from_outbox, pool)
    else:  # pragma: no cover
        raise AssertionError(request.param)


def move(
    debit: uuid.UUID,
    credit: uuid.UUID,
    amount: int,
    *,
    id: uuid.UUID | None = None,
    flags: TransferFlags = TransferFlags.NONE,
) -> Transfer:
    return Transfer(
        id=id or uuid.uuid4(),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        code=3,
        flags=flags,
    )


@dataclass
class Scene:
    """Accounts of its own, their funding, and the callers' batches that race."""

    name: str
    accounts: list[tuple[uuid.UUID, AccountFlags]]
    funding: list[Transfer]
    calls: list[list[Transfer]]
    #: caller index -> its results, once run
    observed: dict[int, list[CreateTransferResult]] = field(default_factory=dict)

    async def set_up(self, ledger: Ledger) -> None:
        created = await ledger.create_accounts(
            [NewAccount(id=a, code=1, flags=f) for a, f in self.accounts]
        )
        assert created == [CreateAccountResult.OK] * len(self.accounts)
        for transfer in self.funding:
            assert await ledger.create_transfers([transfer]) == [R.OK]

    async def serial_outcomes(self, clock: FakeClock) -> list[list[list[CreateTransferResult]]]:
        """What each order of the callers answers, on the reference ledger."""
        found = []
        for order in itertools.permutations(range(len(self.calls))):
            reference = InMemoryLedger(FakeClock(clock.now()))
            await self.set_up(reference)
            answers: dict[int, list[CreateTransferResult]] = {}
            for caller in order:
                answers[caller] = await reference.create_transfers(self.calls[caller])
            found.append([answers[c] for c in range(len(self.calls))])
        return found


def accounts(*flags: AccountFlags) -> list[tuple[uuid.UUID, AccountFlags]]:
    return [(uuid.uuid4(), f) for f in flags]


def overdraft_scene() -> Scene:
    """Three callers each take 60 of a customer's 100: one is ok, two exceed its credits."""
    (bank, _), (customer, _), (other, _) = found = accounts(AccountFlags.NONE, CUSTOMER, CUSTOMER)
    return Scene(
        "overdraft",
        found,
        [move(bank, customer, 100)],
        [[move(customer, other, 60)] for _ in range(3)],
    )


def replay_scene() -> Scene:
    """One transfer id from three callers, one of them with other fields."""
    (bank, _), (customer, _) = found = accounts(AccountFlags.NONE, CUSTOMER)
    shared = uuid.uuid4()
    return Scene(
        "replay",
        found,
        [],
        [
            [move(bank, customer, 10, id=shared)],
            [move(bank, customer, 10, id=shared)],
            [move(bank, customer, 11, id=shared)],
        ],
    )


def pending_scene() -> Scene:
    """A pending transfer, a post of it and a void of it, by three callers."""
    (bank, _), (customer, _) = found = accounts(AccountFlags.NONE, CUSTOMER)
    pending = move(customer, bank, 70, flags=TransferFlags.PENDING)
    return Scene(
        "pending",
        found,
        [move(bank, customer, 100)],
        [
            [pending],
            [Transfer.post(uuid.uuid4(), pending.id, amount=50)],
            [Transfer.void(uuid.uuid4(), pending.id)],
        ],
    )


def linked_scene() -> Scene:
    """A linked chain through an empty account, and another caller's credit it needs."""
    (bank, _), (middle, _), (last, _) = found = accounts(AccountFlags.NONE, CUSTOMER, CUSTOMER)
    return Scene(
        "linked",
        found,
        [],
        [
            [
                move(bank, middle, 50, flags=TransferFlags.LINKED),
                move(middle, last, 70),
                move(bank, last, 1),  # after the chain: independent of it
            ],
            [move(bank, middle, 30)],
            [move(middle, bank, 40)],  # ok only after some credit reached middle
        ],
    )


def scenes() -> list[Scene]:
    made = []
    for _ in range(SCENES_OF_EACH_KIND):
        made += [overdraft_scene(), replay_scene(), pending_scene(), linked_scene()]
    return made


class Journal:
    """One event per call; which calls must have their event recorded."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.recorded: list[uuid.UUID] = []
        self.not_recorded: list[uuid.UUID] = []

    def event(self, transfers: Sequence[Transfer]) -> EventEnvelope:
        return EventEnvelope(
            event_id=uuid.uuid4(),
            type="ledger.group_commit_test",
            version=1,
            occurred_at=self.harness.clock.now(),
            aggregate_id=str(transfers[0].id),
            payload={"n": len(transfers)},
        )

    async def submit(self, transfers: Sequence[Transfer]) -> list[CreateTransferResult]:
        """``create_transfers`` with an event; one transfer goes through ``submit_transfer``
        every other call, so both entry points queue."""
        evt = self.event(transfers)
        ledger = self.harness.ledger
        if len(transfers) == 1 and evt.event_id.int % 2:
            submitted = await ledger.submit_transfer(transfers[0], events=[evt])
            results = [submitted.result]
        else:
            results = await ledger.create_transfers(transfers, events=[evt])
        assert len(results) == len(transfers)
        (self.recorded if R.OK in results else self.not_recorded).append(evt.event_id)
        return results

    async def check_events(self) -> None:
        recorded = Counter(e.event_id for e in await self.harness.recorded_events())
        assert all(n == 1 for n in recorded.values()), recorded
        assert set(recorded) == set(self.recorded)
        assert not set(recorded) & set(self.not_recorded)


async def check_money(ledger: Ledger, all_scenes: Sequence[Scene]) -> None:
    ids = [a for scene in all_scenes for a, _ in scene.accounts]
    found = await ledger.lookup_accounts(ids)
    assert len(found) == len(ids)
    assert sum(a.debits_posted for a in found) == sum(a.credits_posted for a in found)
    assert sum(a.debits_pending for a in found) == sum(a.credits_pending for a in found)
    for acc in found:
        if acc.flags & CUSTOMER:
            assert acc.debits_pending + acc.debits_posted <= acc.credits_posted, acc


async def test_grouped_callers_answer_as_one_serial_order_allows(harness: Harness) -> None:
    all_scenes = scenes()
    for scene in all_scenes:
        await scene.set_up(harness.ledger)
    journal = Journal(harness)

    jitter = random.Random(16)

    async def caller(scene: Scene, index: int, delay: float) -> None:
        await asyncio.sleep(delay)  # arrivals spread out: several grouped calls, not one
        scene.observed[index] = await journal.submit(scene.calls[index])

    # every scene's callers at once, interleaved across scenes
    width = max(len(s.calls) for s in all_scenes)
    await asyncio.gather(
        *(
            caller(scene, index, jitter.random() * 0.01)
            for index in range(width)
            for scene in all_scenes
            if index < len(scene.calls)
        )
    )

    for scene in all_scenes:
        observed = [scene.observed[c] for c in range(len(scene.calls))]
        allowed = await scene.serial_outcomes(harness.clock)
        assert observed in allowed, (scene.name, observed, allowed)
    await check_money(harness.ledger, all_scenes)
    await journal.check_events()

    if isinstance(harness.ledger, PostgresLedger) and harness.ledger.grouped_calls:
        ledger = harness.ledger
        # batches really formed: several callers per grouped call
        assert ledger.grouped_members > ledger.grouped_calls
        assert ledger.in_flight == ledger.waiting == ledger.callers_in_flight == 0
        assert ledger.group_fallbacks == 0
    elif isinstance(harness.ledger, PostgresLedger) and harness.ledger.waiting == 0:
        assert harness.ledger.grouped_members == 0  # not the grouped variant: nothing waited


# -- PostgreSQL only: fallback and cancellation ------------------------------------------


@pytest.fixture
async def grouped(postgres_dsn: str, clock: FakeClock) -> AsyncIterator[Harness]:
    async with isolated_schema(postgres_dsn, min_size=POOL_SIZE, max_size=POOL_SIZE) as (pool, _):

        async def from_outbox() -> list[EventEnvelope]:
            rows = await pool.fetch("SELECT envelope FROM outbox ORDER BY id")
            return [decode_event(row["envelope"]) for row in rows]

        yield Harness(PostgresLedger(pool, clock, group_max_in_flight=1), clock, from_outbox, pool)


async def test_plain_callers_ride_plain_grouped_calls(grouped: Harness) -> None:
    """Many one-transfer callers at one call in flight: all but the first ride in two
    groups through ledger_create_transfer_group, with exactly their own events.

    The first goes straight out and the other 39 wait. When it returns, 40 callers
    are in the ledger, so the first group takes half of them (20), and the second the
    19 left (half of the 39 in the ledger when the first group returns is 20)."""
    ledger, _ = pg(grouped)
    (bank, _), (customer, _), (other, _) = found = accounts(AccountFlags.NONE, CUSTOMER, CUSTOMER)
    await Scene("open", found, [move(bank, customer, 10)], []).set_up(ledger)
    journal = Journal(grouped)
    # 20 credits, then 20 debits of 1 from an account that holds 10 + what was credited
    calls = [[move(bank, customer, 1)] for _ in range(20)]
    calls += [[move(customer, other, 2)] for _ in range(20)]
    results = await asyncio.gather(*(journal.submit(c) for c in calls))
    assert results[:20] == [[R.OK]] * 20
    ok = results[20:].count([R.OK])
    assert ok == 15  # in arrival order: the credits first, then (10 + 20) // 2 debits
    assert results[20:].count([R.EXCEEDS_CREDITS]) == 5
    assert ledger.grouped_calls == ledger.grouped_plain_calls == 2
    assert ledger.grouped_members == 39  # the first went straight out; the others waited
    [acc] = await ledger.lookup_accounts([customer])
    assert acc.credits_posted == 30
    assert acc.debits_posted == 30
    await journal.check_events()
    assert len(journal.not_recorded) == 5


def pg(harness: Harness) -> tuple[PostgresLedger, asyncpg.Pool]:
    assert isinstance(harness.ledger, PostgresLedger)
    assert harness.pool is not None
    return harness.ledger, harness.pool


async def wait_until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``condition`` (no time limit of our own: pytest's timeout bounds a hang)."""
    while not await condition():  # noqa: ASYNC110 - the state is the ledger's or the server's
        await asyncio.sleep(0.005)


async def lock_waiters(pool: asyncpg.Pool, count: int) -> None:
    """Until ``count`` statements wait for a lock."""

    async def waiting() -> bool:
        found: int = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return found >= count

    await wait_until(waiting)


@pytest.mark.parametrize("plain", [True, False], ids=["plain", "batches"])
async def test_a_member_that_fails_the_grouped_call_fails_alone(
    grouped: Harness, plain: bool
) -> None:
    ledger, pool = pg(grouped)
    (bank, _), (customer, _), (held, _) = found = accounts(
        AccountFlags.NONE, CUSTOMER, AccountFlags.NONE
    )
    await Scene("open", found, [], []).set_up(ledger)
    # the server refuses one transfer: the whole grouped transaction rolls back
    await pool.execute(
        """
        CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.user_data = 'poison' THEN RAISE EXCEPTION 'refused by the test'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_poison BEFORE INSERT ON ledger_transfers
            FOR EACH ROW EXECUTE FUNCTION refuse_poison();
        """
    )
    journal = Journal(grouped)
    blocker = await pool.acquire()
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("SELECT 1 FROM ledger_accounts WHERE id = $1 FOR UPDATE", held)
    try:
        first = asyncio.create_task(journal.submit([move(bank, held, 1)]))  # in flight, waits
        await lock_waiters(pool, 1)

        def batch(amount: int, user_data: str | None = None) -> list[Transfer]:
            one = Transfer(
                id=uuid.uuid4(),
                debit_account_id=bank,
                credit_account_id=customer,
                amount=amount,
                code=3,
                user_data=user_data,
            )
            return [one] if plain else [one, move(bank, customer, 1000)]

        good = [asyncio.create_task(journal.submit(batch(n))) for n in (1, 2, 3)]
        poison = asyncio.create_task(journal.submit(batch(5, "poison")))
        later = asyncio.create_task(journal.submit(batch(4)))
        await wait_until(lambda: _true(ledger.waiting == 5))
    finally:
        await tx.rollback()
        await pool.release(blocker)
    assert await first == [R.OK]
    expected = [R.OK] if plain else [R.OK, R.OK]
    for task in (*good, later):
        assert await task == expected
    with pytest.raises(asyncpg.RaiseError, match="refused by the test"):
        await poison
    # plain: six callers in the ledger when the first returned, so the good three went
    # as one group (half of them), then the poisoned one with the later one, which fell
    # back; batches: a group of batches is not split, all five went as one and fell back
    assert ledger.grouped_calls == (2 if plain else 1)
    assert ledger.grouped_members == 5
    assert ledger.group_fallbacks == 1
    [acc] = await ledger.lookup_accounts([customer])
    assert acc.credits_posted == (1 + 2 + 3 + 4) + (0 if plain else 4 * 1000)
    await journal.check_events()
    # each other caller's event once (check_events); the poisoned caller's not at all
    assert len(journal.recorded) == 5
    assert len(await grouped.recorded_events()) == 5


async def _true(value: bool) -> bool:
    return value


async def test_a_caller_cancelled_while_waiting_is_dropped(grouped: Harness) -> None:
    ledger, pool = pg(grouped)
    (bank, _), (customer, _), (held, _) = found = accounts(
        AccountFlags.NONE, CUSTOMER, AccountFlags.NONE
    )
    await Scene("open", found, [], []).set_up(ledger)
    journal = Journal(grouped)
    blocker = await pool.acquire()
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("SELECT 1 FROM ledger_accounts WHERE id = $1 FOR UPDATE", held)
    transfers = [move(bank, customer, n) for n in (1, 2, 4)]
    try:
        first = asyncio.create_task(journal.submit([move(bank, held, 1)]))
        await lock_waiters(pool, 1)
        waiting = [asyncio.create_task(journal.submit([t])) for t in transfers]
        await wait_until(lambda: _true(ledger.waiting == 3))
        waiting[1].cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting[1]
    finally:
        await tx.rollback()
        await pool.release(blocker)
    assert await first == [R.OK]
    assert await waiting[0] == [R.OK]
    assert await waiting[2] == [R.OK]
    assert ledger.in_flight == 0
    assert ledger.grouped_calls == 1
    assert ledger.grouped_members == 2  # the cancelled caller did not ride
    assert await ledger.lookup_transfers([transfers[1].id]) == []
    [acc] = await ledger.lookup_accounts([customer])
    assert acc.credits_posted == 1 + 4
    recorded = {e.event_id for e in await grouped.recorded_events()}
    assert len(recorded) == 2 + 1  # first, and the two that rode; not the cancelled one


async def test_a_caller_cancelled_after_sending_does_not_stop_its_group(grouped: Harness) -> None:
    ledger, pool = pg(grouped)
    (bank, _), (customer, _), (held, _) = found = accounts(
        AccountFlags.NONE, CUSTOMER, AccountFlags.NONE
    )
    await Scene("open", found, [], []).set_up(ledger)
    journal = Journal(grouped)
    blocker = await pool.acquire()
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("SELECT 1 FROM ledger_accounts WHERE id = $1 FOR UPDATE", held)
    transfers = [move(bank, held, 2), move(bank, held, 3)]
    try:
        # the first goes alone (not held); the two behind it go together and wait
        first = asyncio.create_task(journal.submit([move(bank, customer, 1)]))
        sent = [asyncio.create_task(journal.submit([t])) for t in transfers]
        await wait_until(lambda: _true(ledger.grouped_calls == 1))
        await lock_waiters(pool, 1)
        sent[0].cancel()
        with pytest.raises(asyncio.CancelledError):
            await sent[0]
    finally:
        await tx.rollback()
        await pool.release(blocker)
    assert await first == [R.OK]
    assert await sent[1] == [R.OK]
    await wait_until(lambda: _true(ledger.in_flight == 0))
    # the cancelled caller's transfer was applied with its group, and its event recorded
    assert [r.id for r in await ledger.lookup_transfers([transfers[0].id])] == [transfers[0].id]
    [acc] = await ledger.lookup_accounts([held])
    assert acc.credits_posted == 5
    assert len({e.event_id for e in await grouped.recorded_events()}) == 3


async def test_a_caller_woken_to_go_alone_then_cancelled_frees_its_slot(grouped: Harness) -> None:
    """White box: the slot a lone waiting caller is given is freed if it is cancelled
    before it runs (else the ledger would believe a call in flight forever)."""
    ledger, _ = pg(grouped)
    (bank, _), (customer, _) = found = accounts(AccountFlags.NONE, CUSTOMER)
    await Scene("open", found, [], []).set_up(ledger)
    ledger._in_flight = 1  # as if a call were in flight
    waiter = asyncio.create_task(ledger.create_transfers([move(bank, customer, 1)]))
    await wait_until(lambda: _true(ledger.waiting == 1))
    ledger._release()  # that call ends: the lone waiter is told to go out in its slot
    assert ledger.in_flight == 1
    waiter.cancel()  # before it could run
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert ledger.in_flight == 0
    assert ledger.waiting == 0
    # and the ledger still sends calls straight out
    assert await ledger.create_transfers([move(bank, customer, 2)]) == [R.OK]
    [acc] = await ledger.lookup_accounts([customer])
    assert acc.credits_posted == 2


async def test_a_batch_that_cannot_be_grouped_goes_out_beside_the_cap(grouped: Harness) -> None:
    """A batch that never rides with others (here: a chain left open at its end) neither
    waits for a slot nor takes one: it goes out while the one slot is held."""
    ledger, pool = pg(grouped)
    (bank, _), (customer, _), (held, _), (source, _) = found = accounts(
        AccountFlags.NONE, CUSTOMER, AccountFlags.NONE, AccountFlags.NONE
    )
    await Scene("open", found, [], []).set_up(ledger)
    blocker = await pool.acquire()
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("SELECT 1 FROM ledger_accounts WHERE id = $1 FOR UPDATE", held)
    try:
        # the call in the slot waits on held, and may hold source meanwhile: the batch
        # beside it shares neither account, else it would wait on the blocker too
        first = asyncio.create_task(ledger.create_transfers([move(source, held, 1)]))
        await lock_waiters(pool, 1)
        assert ledger.in_flight == 1
        open_chain = [move(bank, customer, 1), move(bank, customer, 2, flags=TransferFlags.LINKED)]
        results = await ledger.create_transfers(open_chain)  # would wait forever if queued
        assert results == [R.OK, R.LINKED_EVENT_CHAIN_OPEN]
        assert not first.done()
        assert ledger.in_flight == 1
        assert ledger.waiting == 0
    finally:
        await tx.rollback()
        await pool.release(blocker)
    assert await first == [R.OK]
    assert ledger.in_flight == 0


async def test_a_batch_group_stores_every_transfer_at_its_latest_time(grouped: Harness) -> None:
    """A pending transfer falls due between two waiting callers' times: the group expires
    it (as of its latest caller's time) before applying them, so every transfer of the
    group is stored at that time, never at an earlier caller's, which would record a
    transfer made while the money it spent was still reserved; and ``submit_transfer``
    answers with the time the transfer was stored at."""
    ledger, pool = pg(grouped)
    clock = grouped.clock
    (bank, _), (customer, _), (other, _), (held, _) = found = accounts(
        AccountFlags.NONE, CUSTOMER, AccountFlags.NONE, AccountFlags.NONE
    )
    await Scene("open", found, [move(bank, customer, 10)], []).set_up(ledger)
    reserved = Transfer(
        id=uuid.uuid4(),
        debit_account_id=customer,
        credit_account_id=other,
        amount=10,
        code=3,
        flags=TransferFlags.PENDING,
        timeout_seconds=5,
    )
    assert await ledger.create_transfers([reserved]) == [R.OK]
    blocker = await pool.acquire()
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("SELECT 1 FROM ledger_accounts WHERE id = $1 FOR UPDATE", held)
    try:
        first = asyncio.create_task(ledger.create_transfers([move(bank, held, 1)]))
        await lock_waiters(pool, 1)
        clock.advance(1)  # the reservation still holds the 10
        early = move(customer, other, 10, flags=TransferFlags.PENDING)  # not plain: a batch
        early_task = asyncio.create_task(ledger.submit_transfer(early))
        await wait_until(lambda: _true(ledger.waiting == 1))
        clock.advance(9)  # past the reservation's expiry
        late = move(bank, customer, 1)
        late_task = asyncio.create_task(ledger.submit_transfer(late))
        await wait_until(lambda: _true(ledger.waiting == 2))
    finally:
        await tx.rollback()
        await pool.release(blocker)
    assert await first == [R.OK]
    early_answer, late_answer = await early_task, await late_task
    assert ledger.grouped_calls == 1
    assert early_answer.result is R.OK  # the reservation had expired when it was applied
    [stored_early, stored_late] = await ledger.lookup_transfers([early.id, late.id])
    assert stored_early.timestamp == stored_late.timestamp == clock.now()
    assert early_answer.timestamp == late_answer.timestamp == clock.now()
    [expired] = await ledger.lookup_transfers([reserved.id])
    assert expired.status is PendingStatus.EXPIRED
