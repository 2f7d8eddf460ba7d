"""Group commit under randomized, adversarial load: the stored state must stay a ledger.

Many callers race on a few accounts of one ``PostgresLedger`` grouping at one
and at two calls in flight (so that grouped calls form and mix callers of every
kind): plain transfers, replays of an id with the same and with other fields,
overdrafts of accounts with ``debits_must_not_exceed_credits``, pending
transfers posted and voided (by other callers, twice, for less), pending
transfers with short timeouts while the clock moves, linked chains that fail
in the middle, chains left open (never grouped), imported batches (never
grouped), batches bigger than ``group_max_transfers``, empty calls, callers
cancelled while they wait, events on some calls, amounts of 1 and the maximum.

The results are not compared with one expected answer (the order is not
known); instead, after the run:

* every caller's answers agree with what is stored (an ``ok`` or ``exists`` is
  stored with the caller's fields, ``exists_with_different_fields`` with other
  fields, a chain fails whole, no id is ``ok`` for two callers, every stored
  id was ``ok`` for someone or sent by a cancelled caller);
* each account's balances equal the sums of its stored transfers and of its
  entries, debits equal credits, no limited account went past its limit;
* each caller's event is in the outbox once iff one of its transfers is ok
  (a cancelled caller's iff a transfer of its own was applied);
* replaying the stored transfers in their order (``seq``) on the reference
  ``InMemoryLedger`` accepts every one and ends with the same balances.

The seed is in every assertion message.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
import pytest
from msgspec.structs import replace

from finbank_adapters.memory import FakeClock, InMemoryLedger
from finbank_adapters.postgres import PostgresLedger
from finbank_core.accounts.ledger import (
    MAX_AMOUNT,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    NewAccount,
    PendingStatus,
    Transfer,
    TransferFlags,
    TransferRecord,
)
from finbank_core.shared.events import EventEnvelope, decode_event
from tests.postgres_support import isolated_schema

R = CreateTransferResult
CUSTOMER = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
POOL_SIZE = 6
CALLERS = 90
MAX_GROUP = 8
EXISTS = {R.EXISTS, R.EXISTS_WITH_DIFFERENT_FIELDS}
PEND = int(TransferFlags.PENDING)
POST = int(TransferFlags.POST_PENDING_TRANSFER)
VOID = int(TransferFlags.VOID_PENDING_TRANSFER)
IMPORTED = int(TransferFlags.IMPORTED)


@dataclass
class Caller:
    index: int
    transfers: list[Transfer]
    event: EventEnvelope | None
    via_submit: bool
    cancel_after: float | None  # seconds, or never cancelled
    results: list[CreateTransferResult] | None = None
    cancelled: bool = False
    #: positions that are members of a linked chain: position -> chain number
    chains: dict[int, int] = field(default_factory=dict)


@dataclass
class World:
    seed: int
    rng: random.Random
    clock: FakeClock
    bank: uuid.UUID
    hot: uuid.UUID
    customers: list[uuid.UUID]
    big: tuple[uuid.UUID, uuid.UUID]
    #: every caller sends one plain transfer (ledger_create_transfer_group's groups)
    plain_only: bool = False
    known: list[Transfer] = field(default_factory=list)
    #: what was stored before the callers ran
    funding_sent: list[Transfer] = field(default_factory=list)
    pendings: list[Transfer] = field(default_factory=list)

    def accounts(self) -> list[tuple[uuid.UUID, AccountFlags]]:
        return [
            (self.bank, AccountFlags.NONE),
            (self.hot, CUSTOMER),
            *[(c, CUSTOMER) for c in self.customers],
            (self.big[0], AccountFlags.NONE),
            (self.big[1], AccountFlags.NONE),
        ]

    def funding(self) -> list[Transfer]:
        return [self.plain(self.bank, c, 100) for c in self.customers] + [
            self.plain(self.bank, self.hot, 50)
        ]

    def plain(self, debit: uuid.UUID, credit: uuid.UUID, amount: int, **kw: object) -> Transfer:
        return Transfer(
            id=uuid.uuid4(),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            code=3,
            **kw,  # type: ignore[arg-type]
        )

    def two(self) -> tuple[uuid.UUID, uuid.UUID]:
        spenders = [self.hot, *self.customers, self.bank]
        debit = self.rng.choice(spenders)
        # many callers on the hot account (a settlement account)
        credit = self.hot if self.rng.random() < 0.4 else self.rng.choice(spenders)
        while credit == debit:
            credit = self.rng.choice(spenders)
        return debit, credit

    def amount(self) -> int:
        roll = self.rng.random()
        if roll < 0.15:
            return 1
        if roll < 0.2:
            return 500  # past any customer's funds
        return self.rng.randint(1, 60)

    def op(self) -> list[Transfer]:
        rng = self.rng
        roll = rng.random()
        if self.plain_only and 0.42 <= roll < 0.8:
            roll = 0.0
        if roll < 0.3:
            t = self.plain(*self.two(), self.amount())
        elif roll < 0.42 and self.known:
            old = rng.choice(self.known)
            # the same id and fields, or other fields
            t = old if rng.random() < 0.5 else replace(old, amount=old.amount + 1)
        elif roll < 0.6:
            debit, credit = self.two()
            t = self.plain(
                debit,
                credit,
                self.amount(),
                flags=TransferFlags.PENDING,
                timeout_seconds=rng.choice([0, 0, 1, 2, 5]),
            )
            self.pendings.append(t)
        elif roll < 0.8 and self.pendings:
            pending = rng.choice(self.pendings)
            if rng.random() < 0.6:
                amount = rng.choice([0, pending.amount, max(1, pending.amount - 7)])
                amount = amount if rng.random() < 0.9 else pending.amount + 1
                t = Transfer.post(uuid.uuid4(), pending.id, amount=amount)
            else:
                t = Transfer.void(uuid.uuid4(), pending.id)
        elif roll < 0.88:
            # a big amount: past the limit or the bigint ceiling
            if rng.random() < 0.5:
                t = self.plain(self.big[0], self.big[1], MAX_AMOUNT - rng.randint(0, 1))
            else:
                t = self.plain(self.big[0], self.big[1], rng.choice([1, MAX_AMOUNT]))
        else:
            # a linked chain whose middle may overdraw
            debit, credit = self.two()
            chain = [
                self.plain(debit, credit, self.amount(), flags=TransferFlags.LINKED),
                self.plain(credit, debit, self.amount(), flags=TransferFlags.LINKED),
                self.plain(*self.two(), self.amount()),
            ]
            self.known.extend(chain)
            return chain
        self.known.append(t)
        return [t]

    def caller(self, index: int) -> Caller:
        rng = self.rng
        roll = rng.random()
        transfers: list[Transfer] = []
        if self.plain_only:
            transfers = self.op()
            while len(transfers) > 1:  # no chains
                transfers = self.op()
        elif roll < 0.03:
            pass  # an empty call
        elif roll < 0.06:
            # more than a grouped call carries: goes alone
            transfers = [self.plain(*self.two(), self.amount()) for _ in range(MAX_GROUP + 2)]
        elif roll < 0.09:
            # a chain left open at the end: never grouped
            transfers = [
                self.plain(*self.two(), 1),
                self.plain(*self.two(), 1, flags=TransferFlags.LINKED),
            ]
        elif roll < 0.12:
            # imported: never grouped (timestamps after the accounts, before now)
            stamp = self.clock.now() - timedelta(minutes=30) + timedelta(seconds=index)
            transfers = [
                self.plain(
                    *self.two(), self.amount(), flags=TransferFlags.IMPORTED, timestamp=stamp
                )
            ]
        else:
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                transfers.extend(self.op())
        chains: dict[int, int] = {}
        chain = 0
        for pos, t in enumerate(transfers):
            if t.flags & TransferFlags.LINKED or (
                pos and transfers[pos - 1].flags & TransferFlags.LINKED
            ):
                chains[pos] = chain
            if not t.flags & TransferFlags.LINKED:
                chain += 1
        event = None
        if transfers and rng.random() < 0.6:
            event = EventEnvelope(
                event_id=uuid.uuid4(),
                type="ledger.group_commit_adversarial",
                version=1,
                occurred_at=self.clock.now(),
                aggregate_id=str(transfers[0].id),
                payload={"caller": index},
            )
        return Caller(
            index,
            transfers,
            event,
            via_submit=len(transfers) == 1 and rng.random() < 0.5,
            cancel_after=rng.choice([0.0, 0.001, 0.003]) if rng.random() < 0.12 else None,
            chains=chains,
        )


@pytest.fixture
async def pool(postgres_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    async with isolated_schema(postgres_dsn, min_size=POOL_SIZE, max_size=POOL_SIZE) as (p, _):
        yield p


async def run_callers(ledger: PostgresLedger, world: World, callers: list[Caller]) -> None:
    clock = world.clock
    stop = asyncio.Event()

    async def one(caller: Caller) -> None:
        events = [caller.event] if caller.event else []
        if caller.via_submit:
            submitted = await ledger.submit_transfer(caller.transfers[0], events=events)
            caller.results = [submitted.result]
        else:
            caller.results = await ledger.create_transfers(caller.transfers, events=events)

    async def ticking() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.002)
            clock.advance(1)

    async def cancelling(caller: Caller, task: asyncio.Task[None]) -> None:
        assert caller.cancel_after is not None
        await asyncio.sleep(caller.cancel_after)
        task.cancel()

    ticker = asyncio.create_task(ticking())
    tasks: list[asyncio.Task[None]] = []
    cancellers = []
    for caller in callers:
        task = asyncio.create_task(one(caller))
        tasks.append(task)
        if caller.cancel_after is not None:
            cancellers.append(asyncio.create_task(cancelling(caller, task)))
        if world.rng.random() < 0.3:
            await asyncio.sleep(0)  # arrivals in waves
    await asyncio.gather(*cancellers)
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    stop.set()
    await ticker
    for caller, outcome in zip(callers, outcomes, strict=True):
        if isinstance(outcome, asyncio.CancelledError):
            caller.cancelled = True
        elif isinstance(outcome, BaseException):
            raise AssertionError(f"seed {world.seed}: caller {caller.index} raised") from outcome
    # a group whose caller was cancelled runs on in a task of its own
    while ledger.in_flight or ledger.waiting:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def check(
    ledger: PostgresLedger, pool: asyncpg.Pool, world: World, callers: list[Caller]
) -> None:
    seed = world.seed
    msg = f"seed {seed}"
    # one snapshot of what is stored (looking transfers or accounts up expires what is due)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        rows = await conn.fetch("SELECT *, xmin::text AS xmin FROM ledger_transfers ORDER BY seq")
        stored_accounts = await conn.fetch("SELECT * FROM ledger_accounts")
        stored_entries = await conn.fetch(
            "SELECT account_id, side, sum(amount) AS s FROM ledger_entries GROUP BY 1, 2"
        )
    stored_ids = [r["id"] for r in rows]
    assert len(stored_ids) == len(set(stored_ids)), msg
    records = {r.id: r for r in await ledger.lookup_transfers(stored_ids)}
    funding_ids = {t.id for t in world.funding_sent}

    ok_by: dict[uuid.UUID, list[int]] = defaultdict(list)
    sent_by_cancelled: set[uuid.UUID] = set()
    for caller in callers:
        if caller.cancelled:
            sent_by_cancelled.update(t.id for t in caller.transfers)
            continue
        results = caller.results
        assert results is not None, (msg, caller.index)
        assert len(results) == len(caller.transfers), (msg, caller.index)
        for pos, (t, result) in enumerate(zip(caller.transfers, results, strict=True)):
            where = (msg, caller.index, pos, result, t)
            record = records.get(t.id)
            if result is R.OK:
                ok_by[t.id].append(caller.index)
                assert record is not None, where
                assert record.request == t, (*where, record)
            elif result is R.EXISTS:
                assert record is not None, where
                assert record.request == t, (*where, record)
            elif result is R.EXISTS_WITH_DIFFERENT_FIELDS:
                assert record is not None, where
                assert record.request != t, (*where, record)
        # a chain succeeds or fails whole
        by_chain: dict[int, set[bool]] = defaultdict(set)
        for pos, chain in caller.chains.items():
            by_chain[chain].add(results[pos] is R.OK)
        assert all(len(v) == 1 for v in by_chain.values()), (msg, caller.index, results)
    for tid, who in ok_by.items():
        assert len(who) == 1, (msg, "ok for two callers", tid, who)
    for tid in stored_ids:
        assert tid in ok_by or tid in sent_by_cancelled or tid in funding_ids, (
            msg,
            "stored, ok for nobody",
            tid,
        )
    # a failed (not exists) answer: if stored with the caller's fields, an ok stored it
    # (another caller's, or this caller's own at another position of its batch)
    for caller in callers:
        if caller.cancelled or caller.results is None:
            continue
        for t, result in zip(caller.transfers, caller.results, strict=True):
            if result is R.OK or result in EXISTS:
                continue
            record = records.get(t.id)
            if record is not None and record.request == t:
                assert t.id in sent_by_cancelled or ok_by.get(t.id), (
                    msg,
                    "failed but stored as its own",
                    caller.index,
                    t,
                    result,
                )

    # events: once per caller with an ok; a cancelled caller's iff a transfer of its own applied
    outbox = Counter(
        decode_event(r["envelope"]).event_id
        for r in await pool.fetch("SELECT envelope FROM outbox ORDER BY id")
    )
    cancelled_senders = Counter(
        t.id for caller in callers if caller.cancelled for t in set(caller.transfers)
    )
    for caller in callers:
        if caller.event is None:
            continue
        count = outbox.get(caller.event.event_id, 0)
        if caller.cancelled:
            # a transfer stored with its fields that nobody else can have stored
            # (not funding, ok for no one, sent by no other cancelled caller)
            own = any(
                (rec := records.get(t.id)) is not None
                and rec.request == t
                and not ok_by.get(t.id)
                and t.id not in funding_ids
                and cancelled_senders[t.id] == 1
                for t in caller.transfers
            )
            shared = any(
                t.id in funding_ids or ok_by.get(t.id) or cancelled_senders[t.id] > 1
                for t in caller.transfers
            )
            allowed = {0, 1} if shared and not own else {1 if own else 0}
            assert count in allowed, (msg, "cancelled caller's event", caller.index, count)
        else:
            assert caller.results is not None
            want = 1 if R.OK in caller.results else 0
            assert count == want, (msg, "event", caller.index, caller.results, count)

    # balances: the stored sums, the entries, the limits
    accounts = {r["id"]: r for r in stored_accounts}
    sums: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # dp dpo cp cpo
    for row in rows:
        flags = row["flags"]
        if flags & VOID:
            continue
        if flags & PEND:
            if row["status"] == "pending":
                sums[row["debit_account_id"]][0] += row["amount"]
                sums[row["credit_account_id"]][2] += row["amount"]
            continue
        sums[row["debit_account_id"]][1] += row["amount"]
        sums[row["credit_account_id"]][3] += row["amount"]
    entries: dict[tuple[uuid.UUID, str], int] = defaultdict(int)
    for e in stored_entries:
        entries[(e["account_id"], e["side"])] = int(e["s"])
    for aid, acc in accounts.items():
        have = [
            acc["debits_pending"],
            acc["debits_posted"],
            acc["credits_pending"],
            acc["credits_posted"],
        ]
        assert have == sums[aid], (
            msg,
            "balances vs transfers",
            aid,
            have,
            sums[aid],
            world.clock.now(),
            [
                (r["seq"], r["amount"], r["status"], r["expires_at"], r["created_at"])
                for r in rows
                if r["flags"] & PEND and aid in (r["debit_account_id"], r["credit_account_id"])
            ],
        )
        assert entries[(aid, "debit")] == have[1], (msg, "entries", aid)
        assert entries[(aid, "credit")] == have[3], (msg, "entries", aid)
        if acc["flags"] & 1:
            assert have[0] + have[1] <= have[3], (msg, "limit", aid, have)
    assert sum(a["debits_posted"] for a in accounts.values()) == sum(
        a["credits_posted"] for a in accounts.values()
    ), msg
    assert sum(a["debits_pending"] for a in accounts.values()) == sum(
        a["credits_pending"] for a in accounts.values()
    ), msg

    await replay(ledger, world, rows, records)


async def replay(
    ledger: PostgresLedger,
    world: World,
    rows: list[asyncpg.Record],
    records: dict[uuid.UUID, TransferRecord],
) -> None:
    """Replay the stored transfers in their order (``seq``) on the reference ledger.

    Time is left out: transfers are stored with their callers' times, not in
    ``seq`` order, so pending transfers are replayed without a timeout and an
    expiry is a void placed where PostgreSQL did it: just before the first
    transfer stored by the transaction that expired it (its row's ``xmin``),
    or before an earlier pending transfer resolved since (whose ``xmin`` no
    longer tells which transaction stored it), else (that transaction stored
    nothing) right after the pending transfer, the most lenient place: the
    limits are then checked on the stored state.
    """
    msg = f"seed {world.seed}"
    expire_before: dict[int, list[uuid.UUID]] = defaultdict(list)
    for n, row in enumerate(rows):
        if row["status"] != "expired":
            continue
        # rows that transaction inserted (a pending transfer's xmin moves when it is
        # resolved: only rows never updated since tell where the transaction stored)
        later = [
            m
            for m in range(n + 1, len(rows))
            if rows[m]["xmin"] == row["xmin"]
            and (not rows[m]["flags"] & PEND or rows[m]["status"] == "pending")
        ]
        # else as early as it may have been: a call stamped before the due time can
        # commit after one stamped after it (times are taken before the round trip)
        place = n + 1
        if later:
            # A resolved pending transfer before that row may be the transaction's own
            # first row (its xmin is now its resolver's; a grouped call can store a
            # pending transfer and more after expiring): the earliest such row, then.
            place = next(
                m
                for m in range(n + 1, later[0] + 1)
                if m == later[0] or (rows[m]["flags"] & PEND and rows[m]["status"] != "pending")
            )
        expire_before[place].append(row["id"])
    reference = InMemoryLedger(FakeClock(world.clock.now()))
    created = await reference.create_accounts(
        [NewAccount(id=a, code=1, flags=f) for a, f in world.accounts()]
    )
    assert created == [CreateAccountResult.OK] * len(created), msg

    async def expire(n: int) -> None:
        for pending in expire_before.get(n, []):
            [voided] = await reference.create_transfers([Transfer.void(uuid.uuid4(), pending)])
            assert voided is R.OK, (msg, "replayed expiry", pending, voided)

    strip = TransferFlags.IMPORTED | TransferFlags.LINKED
    for n, row in enumerate(rows):
        await expire(n)
        req = records[row["id"]].request
        # one by one (a chain's transfers are all stored), without time
        req = replace(req, flags=req.flags & ~strip, timestamp=None, timeout_seconds=0)
        [result] = await reference.create_transfers([req])
        assert result is R.OK, (msg, "serial replay", row["seq"], req, result)
    await expire(len(rows))
    # what expired after the snapshot, then the balances
    await ledger.expire_pending_transfers()
    ids = [a for a, _ in world.accounts()]
    now_expired = [
        r.id
        for r in await ledger.lookup_transfers([row["id"] for row in rows])
        if r.status is PendingStatus.EXPIRED
    ]
    for r in await reference.lookup_transfers(now_expired):
        if r.status is PendingStatus.PENDING:
            [voided] = await reference.create_transfers([Transfer.void(uuid.uuid4(), r.request.id)])
            assert voided is R.OK, msg
    pg_accounts = await ledger.lookup_accounts(ids)
    ref_accounts = await reference.lookup_accounts(ids)
    for mine, ref in zip(pg_accounts, ref_accounts, strict=True):
        assert (
            mine.debits_pending,
            mine.debits_posted,
            mine.credits_pending,
            mine.credits_posted,
        ) == (
            ref.debits_pending,
            ref.debits_posted,
            ref.credits_pending,
            ref.credits_posted,
        ), (msg, "replay balances", mine.id)


#: more seeds for a longer hunt: FINBANK_TEST_GROUP_COMMIT_SEEDS="1-200"
_SEEDS_ENV = os.environ.get("FINBANK_TEST_GROUP_COMMIT_SEEDS", "")
SEEDS = (
    list(range(int(_SEEDS_ENV.split("-")[0]), int(_SEEDS_ENV.split("-")[1]) + 1))
    if _SEEDS_ENV
    else [101, 202, 303, 404, 505]
)


@pytest.mark.parametrize("cap", [0, 1, 2])
@pytest.mark.parametrize("plain_only", [False, True], ids=["mixed", "plain"])
@pytest.mark.parametrize("seed", SEEDS)
async def test_randomized_callers_leave_a_consistent_ledger(
    pool: asyncpg.Pool, cap: int, plain_only: bool, seed: int
) -> None:
    """``cap`` 0 (no group commit) runs the same checks: a failure there is not group commit's."""
    clock = FakeClock()
    rng = random.Random(seed)
    world = World(
        seed,
        rng,
        clock,
        bank=uuid.uuid4(),
        hot=uuid.uuid4(),
        customers=[uuid.uuid4() for _ in range(5)],
        big=(uuid.uuid4(), uuid.uuid4()),
        plain_only=plain_only,
    )
    ledger = PostgresLedger(pool, clock, group_max_in_flight=cap, group_max_transfers=MAX_GROUP)
    created = await ledger.create_accounts(
        [NewAccount(id=a, code=1, flags=f) for a, f in world.accounts()]
    )
    assert created == [CreateAccountResult.OK] * len(created)
    world.funding_sent = world.funding()
    for t in world.funding_sent:
        assert await ledger.create_transfers([t]) == [R.OK]
    clock.advance(3600)  # imported transfers fall between the accounts and now
    # reservations that fall due during the run: a plain group then goes the batch way
    for n in range(4):
        debit, credit = world.two()
        due = world.plain(
            debit, credit, rng.randint(1, 20), flags=TransferFlags.PENDING, timeout_seconds=n + 1
        )
        if await ledger.create_transfers([due]) == [R.OK]:
            world.pendings.append(due)
            world.known.append(due)
            world.funding_sent.append(due)
    callers = [world.caller(i) for i in range(CALLERS)]
    await run_callers(ledger, world, callers)
    assert not cap or ledger.grouped_calls > 0, f"seed {seed}: no group formed"
    # every caller counted out came back, cancelled ones included (what the split counts)
    assert ledger.callers_in_flight == 0, f"seed {seed}: {ledger.callers_in_flight} still out"
    await check(ledger, pool, world, callers)
    if os.environ.get("FINBANK_TEST_GROUP_COMMIT_STATS"):
        cancelled = sum(c.cancelled for c in callers)
        print(
            f"STATS seed={seed} cap={cap} grouped={ledger.grouped_calls}"
            f" members={ledger.grouped_members} plain={ledger.grouped_plain_calls}"
            f" fallbacks={ledger.group_fallbacks} retries={ledger.retries} cancelled={cancelled}"
            f" results={Counter(r for c in callers for r in (c.results or []))}"
        )


async def _wait_until_true(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 - the ledger's own state
        await asyncio.sleep(0.002)


@pytest.mark.parametrize("cap", [1, 2])
async def test_one_group_at_the_edges_answers_in_arrival_order(
    pool: asyncpg.Pool, cap: int
) -> None:
    """Every slot held by calls waiting on a row lock; behind them one group (or more: 5
    transfers a call at most) of: the maximum amount then 1 and 1 more on the same accounts
    (the last overflows), 20 debits of 3 from a limited hot account holding 50, an empty
    call (answered at once) and an imported one (goes out beside the cap). With one group in
    flight the answers are exactly those of the arrival order; with two, those of the order
    the database ran the groups in."""
    clock = FakeClock()
    ledger = PostgresLedger(pool, clock, group_max_in_flight=cap, group_max_transfers=5)
    # the held calls touch accounts of their own: the imported call must not wait on them
    bank, hot, held, source, big0, big1 = (uuid.uuid4() for _ in range(6))
    ids = [bank, hot, held, source, big0, big1]
    assert (
        await ledger.create_accounts(
            [
                NewAccount(id=a, code=1, flags=CUSTOMER if a == hot else AccountFlags.NONE)
                for a in ids
            ]
        )
        == [CreateAccountResult.OK] * 6
    )

    def move(debit: uuid.UUID, credit: uuid.UUID, amount: int, **kw: object) -> Transfer:
        return Transfer(
            id=uuid.uuid4(),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            code=3,
            **kw,  # type: ignore[arg-type]
        )

    assert await ledger.create_transfers([move(bank, hot, 50)]) == [R.OK]
    clock.advance(60)
    blocker = await pool.acquire()
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("SELECT 1 FROM ledger_accounts WHERE id = $1 FOR UPDATE", held)
    try:
        holding = [
            asyncio.create_task(ledger.create_transfers([move(source, held, 1)]))
            for _ in range(cap)
        ]
        await _wait_until_true(lambda: ledger.in_flight == cap)
        calls: list[list[Transfer]] = [
            [move(big0, big1, MAX_AMOUNT - 1)],
            [move(big0, big1, 1)],
            [move(big0, big1, 1)],
            *([move(hot, bank, 3)] for _ in range(20)),
            [move(bank, hot, 1), move(hot, bank, 2)],  # two of one caller: 1 in, 2 out
        ]
        tasks = [asyncio.create_task(ledger.create_transfers(c)) for c in calls]
        await _wait_until_true(lambda: ledger.waiting == len(calls))
        assert await ledger.create_transfers([]) == []
        stamp = clock.now() - timedelta(seconds=30)
        imported = [move(bank, hot, 7, flags=TransferFlags.IMPORTED, timestamp=stamp)]
        assert await ledger.create_transfers(imported) == [R.OK]  # beside the cap
        assert ledger.waiting == len(calls)
    finally:
        await tx.rollback()
        await pool.release(blocker)
    for task in holding:
        assert await task == [R.OK]
    results = [await t for t in tasks]
    # the three on big0/big1 ride in the first group (5 transfers at most): arrival order
    assert results[:3] == [[R.OK], [R.OK], [R.OVERFLOWS]]
    assert ledger.grouped_calls >= 1
    assert ledger.grouped_members == len(calls)
    assert ledger.in_flight == ledger.waiting == 0
    big, hot_account = await ledger.lookup_accounts([big1, hot])
    assert big.credits_posted == MAX_AMOUNT
    if cap == 1:
        # one group in flight at a time: the answers are exactly the arrival order's.
        # hot holds 50 + 7 (imported, applied first): 19 debits of 3 fit, the 20th not
        assert results[3:22] == [[R.OK]] * 19
        assert results[22] == [R.EXCEEDS_CREDITS]
        assert results[23] == [R.OK, R.EXCEEDS_CREDITS]  # 0 + 1, then 2 out is too much
        assert hot_account.credits_posted == 50 + 7 + 1
        assert hot_account.debits_posted == 19 * 3
        return
    # Two groups in flight run side by side, as two calls would: which of them takes hot's
    # row lock first is the database's order, not the queue's (seen on a loaded host). The
    # answers are still those of one serial order: what was answered ok is what was
    # posted, hot never went below zero, and nothing refused would have fit at the end.
    debits_ok = sum(r == [R.OK] for r in results[3:23])
    in_ok, out_ok = (r == R.OK for r in results[23])
    assert in_ok  # a credit to hot fits in any order
    assert all(r in ([R.OK], [R.EXCEEDS_CREDITS]) for r in results[3:23])
    assert hot_account.credits_posted == 50 + 7 + 1
    assert hot_account.debits_posted == 3 * debits_ok + 2 * out_ok
    left = hot_account.credits_posted - hot_account.debits_posted
    assert left >= 0
    assert debits_ok == 20 or left < 3  # a refused debit of 3 did not fit at the end
    assert out_ok or left < 2
