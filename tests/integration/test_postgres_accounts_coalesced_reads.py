"""Coalesced account reads on a real PostgreSQL (``PostgresAccountRepository.get_many``).

With ``read_max_in_flight=1``, one read is in flight and the callers that
arrive meanwhile wait, then go together as ONE statement
(``finbank_adapters.postgres.coalesced_reads``). Each scene is built without
timing: the pool is the real one behind a pass-through that can hold the
reply of one read whose statement has already run on the server
(``HoldingPool``), so the callers that come next find a read in flight and
queue (``repository.reads.waiting``); a coalesced statement is stopped inside
the server by a table lock of the test when a scene needs it there.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import pytest

from finbank_adapters.postgres import PostgresAccountRepository
from finbank_adapters.postgres.migrations import quote_ident
from finbank_core.accounts.model import (
    AccountKind,
    AccountStatus,
    CustomerAccount,
    HolderType,
    format_account_number,
)
from finbank_core.shared.errors import ServiceUnavailable
from tests.postgres_support import POSTGRES_DSN, GatedPool, isolated_schema, require_postgres

pytestmark = pytest.mark.services

#: the longest any wait of the test may take before it fails instead of hanging
SAFETY_SECONDS = 60.0
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


class HoldingPool:
    """The real pool; the reply of the next ``fetch`` can be held after its statement ran.

    It also counts the ``fetch`` statements sent, and can fail them (a bug's error).
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.fetches = 0
        self._hold_next = False
        self.holding = asyncio.Event()
        self._release = asyncio.Event()
        #: while set: every fetch raises a new RuntimeError instead of running
        self.fail_with_bug = False
        #: the next fetch only raises a RuntimeError
        self.fail_next_with_bug = False

    def hold_next_reply(self) -> None:
        self._hold_next = True
        self.holding.clear()
        self._release.clear()

    def release_reply(self) -> None:
        self._release.set()

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        self.fetches += 1
        if self.fail_with_bug or self.fail_next_with_bug:
            self.fail_next_with_bug = False
            raise RuntimeError(f"a bug in fetch {self.fetches}")
        rows: list[asyncpg.Record] = await self._pool.fetch(query, *args)
        if self._hold_next:
            self._hold_next = False
            self.holding.set()
            await self._release.wait()
        return rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


class Scene:
    def __init__(
        self, pool: asyncpg.Pool, schema: str, holding: HoldingPool, max_in_flight: int
    ) -> None:
        self.pool = pool
        self.schema = schema
        self.holding = holding
        self.repository = PostgresAccountRepository(
            cast(asyncpg.Pool, holding), read_max_in_flight=max_in_flight
        )

    async def new_account(self, owner: str = "owner-1") -> CustomerAccount:
        account = CustomerAccount(
            id=uuid.uuid4(),
            owner_id=owner,
            holder_name="Maria da Silva",
            holder_type=HolderType.INDIVIDUAL,
            holder_document="52998224725",
            branch="0001",
            number=format_account_number(await self.repository.next_account_number()),
            kind=AccountKind.PAYMENT,
            status=AccountStatus.ACTIVE,
            created_at=T0,
        )
        await self.repository.add(account)
        return account

    async def read_in_flight(self, ids: Sequence[uuid.UUID]) -> asyncio.Task[Any]:
        """A read whose statement has run and whose reply is held (a read in flight)."""
        self.holding.hold_next_reply()
        task = asyncio.create_task(self.repository.get_many(ids))
        await asyncio.wait_for(self.holding.holding.wait(), SAFETY_SECONDS)
        return task

    async def queued(self, ids: Sequence[uuid.UUID]) -> asyncio.Task[list[CustomerAccount]]:
        """A caller that arrives while a read is in flight: it waits in the queue."""
        waiting = self.repository.reads.waiting
        task = asyncio.create_task(self.repository.get_many(ids))
        await until(lambda: self.repository.reads.waiting == waiting + 1, "the caller queued")
        return task


@pytest.fixture
async def scene(request: pytest.FixtureRequest) -> AsyncIterator[Scene]:
    require_postgres()
    max_in_flight = getattr(request, "param", 1)
    async with isolated_schema(POSTGRES_DSN, max_size=4) as (pool, schema):
        yield Scene(pool, schema, HoldingPool(pool), max_in_flight)


async def until(condition: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Poll ``condition`` until it holds (readiness polling; fails after SAFETY_SECONDS)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SAFETY_SECONDS
    while True:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        assert loop.time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.01)


def expected(accounts: dict[uuid.UUID, CustomerAccount], ids: Sequence[uuid.UUID]) -> list[Any]:
    """What ``get_many`` answers alone: the known ids' accounts, in the caller's order."""
    return [accounts[i] for i in ids if i in accounts]


async def test_waiting_callers_on_same_and_different_accounts_each_get_exactly_their_own(
    scene: Scene,
) -> None:
    accounts = {a.id: a for a in [await scene.new_account(f"o{n % 3}") for n in range(12)]}
    ids = list(accounts)
    unknown = [uuid.uuid4() for _ in range(3)]
    first = await scene.read_in_flight(ids[:2])
    # pairs sharing accounts, ones to unknown ids, single ids, longer lists, a repeat
    requests: list[list[uuid.UUID]] = [[ids[n % 12], ids[(n * 5 + 1) % 12]] for n in range(24)]
    requests += [[ids[0], unknown[0]], [unknown[1], unknown[2]], [ids[3]], [unknown[0]]]
    requests += [ids[2:9], [ids[4], ids[4], ids[7]], list(reversed(ids)) + unknown]
    callers = [await scene.queued(r) for r in requests]
    statements_before = scene.holding.fetches
    scene.holding.release_reply()
    answers = await asyncio.gather(first, *callers)
    assert answers[0] == expected(accounts, ids[:2])
    for request, answer in zip(requests, answers[1:], strict=True):
        assert answer == expected(accounts, request)
    # they went as one statement, which carried every one of them
    assert scene.holding.fetches == statements_before + 1
    assert scene.repository.reads.coalesced_reads == 1
    assert scene.repository.reads.coalesced_callers == len(requests)
    assert (scene.repository.reads.in_flight, scene.repository.reads.waiting) == (0, 0)


@pytest.mark.parametrize("scene", [1, 2], indirect=True)
async def test_many_concurrent_callers_each_get_exactly_their_own_accounts(
    scene: Scene,
) -> None:
    accounts = {a.id: a for a in [await scene.new_account() for _ in range(16)]}
    ids = list(accounts)
    unknown = uuid.uuid4()
    requests = [
        [ids[n % 16], ids[(n * 7 + 3) % 16]] if n % 10 else [ids[n % 16], unknown]
        for n in range(400)
    ]
    for _ in range(3):
        answers = await asyncio.gather(*(scene.repository.get_many(r) for r in requests))
        for request, answer in zip(requests, answers, strict=True):
            assert answer == expected(accounts, request)
    assert scene.repository.reads.coalesced_reads > 0  # some did go together
    assert (scene.repository.reads.in_flight, scene.repository.reads.waiting) == (0, 0)


async def test_a_status_change_committed_before_a_caller_arrives_is_seen(scene: Scene) -> None:
    source, target, other = [await scene.new_account() for _ in range(3)]
    assert await scene.repository.get_many([source.id, target.id]) == [source, target]
    first = await scene.read_in_flight([source.id, target.id])  # read: source active
    blocked = await scene.repository.set_status(source.id, AccountStatus.BLOCKED)  # committed
    same_ids = await scene.queued([source.id, target.id])
    other_ids = await scene.queued([other.id, source.id])
    scene.holding.release_reply()
    # the read in flight began before the change: it may answer active, and does here
    assert await first == [source, target]
    # those that came after it are answered by a statement sent after they came
    assert await same_ids == [blocked, target]
    assert await other_ids == [other, blocked]
    assert blocked.status is AccountStatus.BLOCKED


async def test_with_coalescing_off_nobody_waits_for_a_read_in_flight(scene: Scene) -> None:
    off = PostgresAccountRepository(cast(asyncpg.Pool, scene.holding), read_max_in_flight=0)
    source, target = await scene.new_account(), await scene.new_account()
    scene.holding.hold_next_reply()
    first = asyncio.create_task(off.get_many([source.id, target.id]))
    await asyncio.wait_for(scene.holding.holding.wait(), SAFETY_SECONDS)
    # answered while the other read's reply is still held
    assert await asyncio.wait_for(off.get_many([target.id]), SAFETY_SECONDS) == [target]
    assert off.reads.waiting == 0
    scene.holding.release_reply()
    assert await first == [source, target]


async def test_a_caller_with_more_ids_than_a_statement_carries_reads_alone(scene: Scene) -> None:
    account = await scene.new_account()
    first = await scene.read_in_flight([account.id])
    many = [uuid.uuid4() for _ in range(300)] + [account.id]
    assert await asyncio.wait_for(scene.repository.get_many(many), SAFETY_SECONDS) == [account]
    scene.holding.release_reply()
    assert await first == [account]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 9, 17, 33, 64, 65, 100])
async def test_any_number_of_ids_reads_exactly_those_accounts(scene: Scene, count: int) -> None:
    accounts = {a.id: a for a in [await scene.new_account() for _ in range(count)]}
    others = [await scene.new_account() for _ in range(2)]  # stored, never asked for
    ids = list(accounts)
    asked = [*ids[::2], uuid.uuid4(), *ids[1::2]]
    answer = await scene.repository.get_many(asked)
    assert answer == expected(accounts, asked)
    assert not set(others) & set(answer)


async def _blocked_statement(admin: asyncpg.Connection) -> int:
    """The backend of a statement waiting on the admin connection's table lock."""

    async def found() -> bool:
        pid: int | None = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity"
            " WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid)) LIMIT 1"
        )
        blocked.append(pid) if pid is not None else None
        return pid is not None

    blocked: list[int] = []
    await until(found, "the coalesced statement waits on the table lock")
    return blocked[0]


async def _lock_accounts_table(scene: Scene) -> asyncpg.Connection:
    admin = await asyncpg.connect(POSTGRES_DSN)
    await admin.execute("BEGIN")
    await admin.execute(
        f"LOCK TABLE {quote_ident(scene.schema)}.customer_accounts IN ACCESS EXCLUSIVE MODE"
    )
    return admin


async def test_a_lost_connection_reaches_every_waiting_caller_as_its_own_error(
    scene: Scene,
) -> None:
    source, target = await scene.new_account(), await scene.new_account()
    first = await scene.read_in_flight([source.id])
    callers = [await scene.queued([source.id, target.id]) for _ in range(4)]
    admin = await _lock_accounts_table(scene)
    try:
        scene.holding.release_reply()
        assert await first == [source]
        pid = await _blocked_statement(admin)  # the callers' one statement, in the server
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.execute("ROLLBACK")
        await admin.close()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(o, ServiceUnavailable) for o in outcomes), outcomes
    errors = cast(list[ServiceUnavailable], outcomes)
    assert len({id(e) for e in errors}) == len(errors)  # each its own instance
    for error in errors:  # chained to the driver's error, as a caller alone gets it
        assert isinstance(error.__cause__, asyncpg.PostgresError | asyncpg.InterfaceError | OSError)
    assert (scene.repository.reads.in_flight, scene.repository.reads.waiting) == (0, 0)
    # the pool recovered: the next reads are answered
    assert await scene.repository.get_many([source.id, target.id]) == [source, target]


async def test_a_bug_in_a_coalesced_read_sends_each_caller_again_alone(scene: Scene) -> None:
    accounts = [await scene.new_account() for _ in range(3)]
    first = await scene.read_in_flight([accounts[0].id])
    requests = [[accounts[n].id, accounts[(n + 1) % 3].id] for n in range(3)]
    callers = [await scene.queued(r) for r in requests]
    scene.holding.fail_next_with_bug = True  # the coalesced statement only
    scene.holding.release_reply()
    assert await first == [accounts[0]]
    for request, caller in zip(requests, callers, strict=True):
        by_id = {a.id: a for a in accounts}
        assert await caller == expected(by_id, request)
    assert scene.repository.reads.fallbacks == 1

    # when every read raises, each caller gets the error of its own read
    first = await scene.read_in_flight([accounts[0].id])
    callers = [await scene.queued(r) for r in requests]
    scene.holding.fail_with_bug = True
    scene.holding.release_reply()
    await first
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes), outcomes
    assert len({id(o) for o in outcomes}) == len(outcomes)
    assert (scene.repository.reads.in_flight, scene.repository.reads.waiting) == (0, 0)


async def test_a_caller_cancelled_while_waiting_leaves_the_others_answered(scene: Scene) -> None:
    accounts = {a.id: a for a in [await scene.new_account() for _ in range(4)]}
    ids = list(accounts)
    first = await scene.read_in_flight(ids[:2])
    requests = [[ids[0], ids[1]], [ids[1], ids[2]], [ids[2], ids[3]]]
    callers = [await scene.queued(r) for r in requests]
    callers[1].cancel()
    scene.holding.release_reply()
    assert await first == expected(accounts, ids[:2])
    assert await callers[0] == expected(accounts, requests[0])
    assert await callers[2] == expected(accounts, requests[2])
    with pytest.raises(asyncio.CancelledError):
        await callers[1]
    assert (scene.repository.reads.in_flight, scene.repository.reads.waiting) == (0, 0)


async def test_a_caller_cancelled_after_its_statement_went_leaves_the_others_answered(
    scene: Scene,
) -> None:
    accounts = {a.id: a for a in [await scene.new_account() for _ in range(4)]}
    ids = list(accounts)
    first = await scene.read_in_flight(ids[:1])
    requests = [[ids[0], ids[1]], [ids[1], ids[2]], [ids[2], ids[3]]]
    callers = [await scene.queued(r) for r in requests]
    admin = await _lock_accounts_table(scene)
    try:
        scene.holding.release_reply()
        assert await first == expected(accounts, ids[:1])
        await _blocked_statement(admin)  # the statement of all three went out
        callers[1].cancel()
        with pytest.raises(asyncio.CancelledError):
            await callers[1]
    finally:
        await admin.execute("ROLLBACK")
        await admin.close()
    assert await callers[0] == expected(accounts, requests[0])
    assert await callers[2] == expected(accounts, requests[2])
    await until(lambda: scene.repository.reads.in_flight == 0, "the statement ended")
    assert scene.repository.reads.waiting == 0


async def test_the_next_statement_is_sent_before_the_answered_callers_resume(
    scene: Scene,
) -> None:
    """A coalesced statement frees its slot once it has returned, before its callers are
    answered: the next statement is on the wire while they run (it used to be sent only
    after all of them had)."""
    accounts = [await scene.new_account() for _ in range(5)]
    log: list[tuple[str, object]] = []
    pool = GatedPool(scene.pool, log)
    repository = PostgresAccountRepository(cast(asyncpg.Pool, pool), read_max_in_flight=1)

    async def caller(name: str, account: CustomerAccount) -> None:
        [got] = await repository.get_many([account.id])
        log.append(("resumed", name))
        assert got == account, name

    a_answered, let_a_go = pool.gate(1)
    b_answered, let_b_go = pool.gate(2)
    tasks = [asyncio.create_task(caller("A", accounts[0]))]
    await asyncio.wait_for(a_answered.wait(), SAFETY_SECONDS)
    tasks += [asyncio.create_task(caller(f"B{i}", accounts[1 + i])) for i in range(2)]
    await until(lambda: repository.reads.waiting == 2, "B0 and B1 queued")
    let_a_go.set()
    await asyncio.wait_for(b_answered.wait(), SAFETY_SECONDS)
    tasks += [asyncio.create_task(caller(f"C{i}", accounts[3 + i])) for i in range(2)]
    await until(lambda: repository.reads.waiting == 2, "C0 and C1 queued")
    let_b_go.set()
    await asyncio.wait_for(asyncio.gather(*tasks), SAFETY_SECONDS)

    assert repository.reads.coalesced_reads == 2  # B0+B1 in one statement, C0+C1 in another
    b_resumed = min(log.index(("resumed", f"B{i}")) for i in range(2))
    assert log.index(("returned", 2)) < log.index(("sent", 3)) < b_resumed, log
