"""Group commit on a real PostgreSQL: a grouped call whose connection is lost.

``PostgresLedger`` with ``group_max_in_flight=1``: one transfer call in flight,
the callers behind it queue and then go as ONE call (``docs/postgres.md``, "Group
commit"; the ledger here does not split groups, ``group_split=False``, so that
every caller rides the call whose connection is lost). When that call's
connection is lost, its outcome is unknown, and the documented answer is
``ServiceUnavailable`` for every caller it carried (no fallback caller by
caller); a replay of the same transfers then resolves it (``ok`` if the call did
not commit, ``exists`` if it did).

Each test builds the scene deterministically, with no sleep-based timing:

1. a row lock, held by a connection of the test, on account ``X`` stops the one
   call in flight (a transfer ``X -> X2``) inside the server;
2. ``CALLERS`` callers on account ``Y`` and accounts of their own then queue in the
   process (``ledger.waiting``);
3. the lock on ``X`` goes: the call in flight ends and the queue goes as one
   grouped call, of ``ledger_create_transfer_group`` (every caller one plain
   transfer) or of ``ledger_create_transfers_grouped`` (batches, pending transfers);
4. that call is stopped on ``Y`` and its backend found in ``pg_stat_activity``
   (its statement names the grouped function), and the connection is lost in one
   of three places:

   * ``waiting``: ``pg_terminate_backend`` while the call waits on a row lock on
     ``Y`` (mid-call: the transaction rolls back, nothing is stored);
   * ``committing``: ``pg_terminate_backend`` while its COMMIT runs a deferred
     constraint trigger on ``ledger_transfers`` that waits on an advisory lock of
     the test (the function has returned, the commit has begun and not ended:
     nothing is stored);
   * ``reply_lost``: the pool reaches PostgreSQL through a TCP relay of the test,
     which throws away the server's reply to the grouped call and closes both
     sockets (the server has committed: every transfer is stored, and no caller
     heard of it). The server sends its reply to the grouped statement only
     after the commit at ``Sync``, so this is deterministic.

Afterwards: every grouped caller got ``ServiceUnavailable`` (none hung: every
wait is bounded by ``SAFETY_SECONDS``, a safety net, not a speed assertion), the
ledger has nothing in flight or waiting, no pool connection is stranded (all of
them can be held at once), the stored state is consistent (each id stored once
or not at all, two entries per posted transfer, balances equal the sums of the
stored transfers, debits equal credits, each caller's event in the outbox iff its
transfers were stored), a replay of every caller's call answers as a first
attempt would (``ok`` if not stored, ``exists`` if stored), and new transfers go
through, grouped again.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres import PostgresLedger
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    NewAccount,
    Transfer,
    TransferFlags,
)
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.events import EventEnvelope
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres

pytestmark = pytest.mark.services

R = CreateTransferResult
Mode = Literal["waiting", "committing", "reply_lost"]
Path = Literal["plain", "batch"]
MODES: tuple[Mode, ...] = ("waiting", "committing", "reply_lost")
PATHS: tuple[Path, ...] = ("plain", "batch")
#: the grouped function each path must reach (its name is in the backend's statement)
GROUP_FUNCTION: dict[Path, str] = {
    "plain": "ledger_create_transfer_group(",
    "batch": "ledger_create_transfers_grouped(",
}
CALLERS = 6
POOL_SIZE = 4
#: the longest any wait of the test may take before it fails instead of hanging
SAFETY_SECONDS = 60.0


# -- a TCP relay that can lose one reply ------------------------------------------------


class _Link:
    """One relayed connection: the pool's socket and the relay's socket to PostgreSQL."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        #: the next bytes from the server are thrown away and both sockets closed
        self.lose_reply = False
        self.reply_lost = asyncio.Event()

    def close(self) -> None:
        for writer in (self.client, self.server):
            if not writer.is_closing():
                writer.close()


class ReplyLosingRelay:
    """Relays the pool's connections to PostgreSQL, byte for byte, and can lose a reply.

    :meth:`lose_next_reply` arms the connection whose socket to PostgreSQL has
    the local port ``client_port`` (``pg_stat_activity.client_port`` of its
    backend): the next bytes the server sends on it never reach the client, and
    both of its sockets are closed, as a network cut right after the server
    answered would do. The client sees its connection closed mid-operation.
    """

    def __init__(self, dsn: str) -> None:
        self._upstream = urlsplit(dsn)
        self._links: dict[int, _Link] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ReplyLosingRelay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for link in self._links.values():
            link.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for link in self._links.values():
            for writer in (link.client, link.server):
                with suppress(OSError):
                    await writer.wait_closed()
        await self._server.wait_closed()

    @property
    def dsn(self) -> str:
        """The upstream DSN, pointed at the relay (no TLS: the relay reads no bytes)."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        userinfo, _, _ = self._upstream.netloc.rpartition("@")
        netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
        query = "&".join(q for q in (self._upstream.query, "sslmode=disable") if q)
        return urlunsplit((self._upstream.scheme, netloc, self._upstream.path, query, ""))

    def lose_next_reply(self, client_port: int) -> asyncio.Event:
        """Arm the connection of ``client_port``; the event is set once its reply is lost."""
        link = self._links[client_port]
        link.lose_reply = True
        return link.reply_lost

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = self._upstream.hostname or "127.0.0.1"
        up_reader, up_writer = await asyncio.open_connection(host, self._upstream.port or 5432)
        link = _Link(writer, up_writer)
        self._links[up_writer.get_extra_info("sockname")[1]] = link
        for task in (
            asyncio.create_task(self._pump(reader, up_writer, link, from_server=False)),
            asyncio.create_task(self._pump(up_reader, writer, link, from_server=True)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: _Link,
        *,
        from_server: bool,
    ) -> None:
        try:
            while data := await reader.read(65536):
                if from_server and link.lose_reply:
                    link.reply_lost.set()
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            link.close()


# -- the scene --------------------------------------------------------------------------


@dataclass
class Caller:
    """One caller: its call (``create_transfers`` or ``submit_transfer``) and its event."""

    transfers: list[Transfer]
    via_submit: bool
    event: EventEnvelope | None


@dataclass
class Scene:
    ledger: PostgresLedger
    pool: asyncpg.Pool
    relay: ReplyLosingRelay
    schema: str
    application_name: str
    admin: asyncpg.Connection
    #: X and X2: the call in flight; Y: every grouped caller's; then one account per caller
    x: uuid.UUID
    x2: uuid.UUID
    y: uuid.UUID
    own: list[uuid.UUID]
    #: every transfer any call sent, by id (what the stored state is checked against)
    sent: dict[uuid.UUID, Transfer] = field(default_factory=dict)

    @property
    def accounts(self) -> list[uuid.UUID]:
        return [self.x, self.x2, self.y, *self.own]


@pytest.fixture
async def scene() -> AsyncIterator[Scene]:
    """A grouping ledger (one call in flight) whose pool reaches PostgreSQL through a relay."""
    require_postgres()
    application_name = f"finbank-gc-loss-{secrets.token_hex(4)}"
    async with (
        ReplyLosingRelay(POSTGRES_DSN) as relay,
        isolated_schema(
            relay.dsn,
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
            server_settings={"application_name": application_name},
        ) as (pool, schema),
    ):
        admin = await asyncpg.connect(POSTGRES_DSN, server_settings={"search_path": schema})
        try:
            ledger = PostgresLedger(
                pool,
                FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),
                group_max_in_flight=1,
                group_split=False,
            )
            accounts = [uuid.uuid4() for _ in range(3 + CALLERS)]
            results = await ledger.create_accounts(
                [NewAccount(id=a, code=1, flags=AccountFlags.NONE) for a in accounts]
            )
            assert results == [CreateAccountResult.OK] * len(accounts)
            yield Scene(
                ledger,
                pool,
                relay,
                schema,
                application_name,
                admin,
                accounts[0],
                accounts[1],
                accounts[2],
                accounts[3:],
            )
        finally:
            await admin.close()


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``condition`` until it holds (readiness polling; fails after SAFETY_SECONDS)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SAFETY_SECONDS
    while not await condition():
        assert loop.time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.01)


class RowLock:
    """A connection of the test holding ``FOR UPDATE`` on one account's row until released."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self._released = False

    async def release(self) -> None:
        if not self._released:
            self._released = True
            await self._connection.execute("ROLLBACK")


@asynccontextmanager
async def row_locked(scene: Scene, account: uuid.UUID) -> AsyncIterator[RowLock]:
    connection = await asyncpg.connect(POSTGRES_DSN, server_settings={"search_path": scene.schema})
    try:
        await connection.execute("BEGIN")
        await connection.execute("SELECT 1 FROM ledger_accounts WHERE id = $1 FOR UPDATE", account)
        lock = RowLock(connection)
        try:
            yield lock
        finally:
            await lock.release()
    finally:
        await connection.close()


async def install_commit_gate(scene: Scene, key: int) -> None:
    """At COMMIT, a transaction that inserted a transfer on ``Y`` waits for ``key``.

    A deferred constraint trigger runs at commit only: a backend waiting in it
    has run its whole statement and not committed yet.
    """
    await scene.admin.execute(
        f"""
        CREATE FUNCTION commit_gate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.debit_account_id = '{scene.y}' OR NEW.credit_account_id = '{scene.y}' THEN
                PERFORM pg_advisory_xact_lock_shared({key});
            END IF;
            RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER commit_gate AFTER INSERT ON ledger_transfers
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION commit_gate();
        """
    )


def make_callers(scene: Scene, path: Path) -> list[Caller]:
    """``CALLERS`` callers on Y; each caller's transfers on Y and its own account."""
    callers: list[Caller] = []
    for i, own in enumerate(scene.own):
        event = (
            EventEnvelope(
                event_id=uuid.uuid4(),
                type="ledger.group_commit_connection_loss",
                version=1,
                occurred_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
                aggregate_id=str(own),
                payload={"caller": i},
            )
            if i % 2 == 0
            else None
        )
        plain = transfer(scene.y, own, 100 + i)
        if path == "plain":  # one plain transfer each: ledger_create_transfer_group
            callers.append(Caller([plain], via_submit=i % 3 == 0, event=event))
        elif i % 3 == 0:  # a pending transfer alone, through submit_transfer
            pending = transfer(scene.y, own, 10 + i, flags=TransferFlags.PENDING, timeout=3600)
            callers.append(Caller([pending], via_submit=True, event=event))
        else:  # a batch: a plain transfer and a pending one back
            back = transfer(own, scene.y, 1 + i, flags=TransferFlags.PENDING)
            callers.append(Caller([plain, back], via_submit=False, event=event))
    for caller in callers:
        for t in caller.transfers:
            scene.sent[t.id] = t
    return callers


def transfer(
    debit: uuid.UUID,
    credit: uuid.UUID,
    amount: int,
    *,
    flags: TransferFlags = TransferFlags.NONE,
    timeout: int = 0,
) -> Transfer:
    return Transfer(
        id=uuid.uuid4(),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        code=7,
        flags=flags,
        timeout_seconds=timeout,
    )


async def call(scene: Scene, caller: Caller) -> list[CreateTransferResult]:
    """The caller's call, as its caller makes it; its results, one per transfer."""
    events = [caller.event] if caller.event is not None else []
    if caller.via_submit:
        [t] = caller.transfers
        submitted = await scene.ledger.submit_transfer(t, events=events)
        return [submitted.result]
    return await scene.ledger.create_transfers(caller.transfers, events=events)


async def calls(scene: Scene, callers: list[Caller]) -> list[list[CreateTransferResult]]:
    """Every caller's call at once (they group behind the one in flight), bounded."""
    return list(
        await asyncio.wait_for(asyncio.gather(*(call(scene, c) for c in callers)), SAFETY_SECONDS)
    )


async def grouped_backend(
    scene: Scene, path: Path, *, on_advisory_lock: bool
) -> asyncpg.Record | None:
    """The backend running the grouped call, once it waits on the lock the test holds."""
    row: asyncpg.Record | None = await scene.admin.fetchrow(
        "SELECT pid, client_port, wait_event FROM pg_stat_activity"
        " WHERE application_name = $1 AND wait_event_type = 'Lock'"
        "   AND strpos(query, $2) > 0 AND (wait_event = 'advisory') = $3",
        scene.application_name,
        GROUP_FUNCTION[path],
        on_advisory_lock,
    )
    return row


async def lose_a_grouped_call(
    scene: Scene, path: Path, mode: Mode
) -> tuple[list[Caller], list[BaseException | list[CreateTransferResult]]]:
    """Steps 1-4 of the module's docstring; the callers and what each got."""
    ledger = scene.ledger
    gate_key = secrets.randbelow(2**31)
    if mode == "committing":
        await install_commit_gate(scene, gate_key)
        await scene.admin.execute("SELECT pg_advisory_lock($1)", gate_key)
    first = Caller([transfer(scene.x, scene.x2, 5)], via_submit=False, event=None)
    scene.sent[first.transfers[0].id] = first.transfers[0]
    callers = make_callers(scene, path)
    async with row_locked(scene, scene.x) as lock_x, row_locked(scene, scene.y) as lock_y:
        first_call = asyncio.create_task(call(scene, first))

        async def first_waits() -> bool:
            waiting: int = await scene.admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = $1 AND wait_event_type = 'Lock'",
                scene.application_name,
            )
            return ledger.in_flight == 1 and waiting == 1

        await until(first_waits, "the call in flight waits on X")
        tasks = [asyncio.create_task(call(scene, c)) for c in callers]

        async def all_queued() -> bool:
            return ledger.waiting == CALLERS

        await until(all_queued, "every caller waits in the queue")
        assert ledger.in_flight == 1
        if mode == "committing":
            await lock_y.release()  # the gate at commit stops the grouped call instead
        await lock_x.release()
        assert await asyncio.wait_for(first_call, SAFETY_SECONDS) == [R.OK]

        backend: asyncpg.Record | None = None

        async def group_stopped() -> bool:
            nonlocal backend
            backend = await grouped_backend(scene, path, on_advisory_lock=mode == "committing")
            return backend is not None

        await until(group_stopped, f"the grouped call ({path}) is stopped on Y ({mode})")
        assert backend is not None
        assert ledger.grouped_calls == 1
        assert ledger.grouped_members == CALLERS
        if mode == "reply_lost":
            reply_lost = scene.relay.lose_next_reply(backend["client_port"])
            await lock_y.release()
            await asyncio.wait_for(reply_lost.wait(), SAFETY_SECONDS)
        else:
            terminated = await scene.admin.fetchval(
                "SELECT pg_terminate_backend($1)", backend["pid"]
            )
            assert terminated is True

            async def gone() -> bool:
                alive: bool = await scene.admin.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
                    backend["pid"],
                )
                return not alive

            await until(gone, "the grouped call's backend has ended")
            # what the grouped call waited for goes too: a caller resent alone would not wait
            await lock_y.release()
            if mode == "committing":
                await scene.admin.execute("SELECT pg_advisory_unlock($1)", gate_key)
        outcomes = list(
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), SAFETY_SECONDS)
        )
    return callers, outcomes


async def stored_ids(scene: Scene) -> Counter[uuid.UUID]:
    rows = await scene.admin.fetch(
        "SELECT id FROM ledger_transfers WHERE id = ANY($1::uuid[])", list(scene.sent)
    )
    return Counter(row["id"] for row in rows)


async def check_stored_state(scene: Scene) -> set[uuid.UUID]:
    """Each id stored once or not at all, its entries, the balances; the stored ids."""
    stored = await stored_ids(scene)
    assert all(count == 1 for count in stored.values()), stored
    entries = Counter(
        row["transfer_id"]
        for row in await scene.admin.fetch(
            "SELECT transfer_id FROM ledger_entries WHERE transfer_id = ANY($1::uuid[])",
            list(scene.sent),
        )
    )
    for tid, t in scene.sent.items():
        if tid not in stored:
            assert entries[tid] == 0, (tid, entries[tid])
        elif not t.flags & TransferFlags.PENDING:
            assert entries[tid] == 2, (tid, entries[tid])
    expected = {a: [0, 0, 0, 0] for a in scene.accounts}  # debits/credits pending/posted
    for tid in stored:
        t = scene.sent[tid]
        assert t.debit_account_id is not None
        assert t.credit_account_id is not None
        posted = 0 if t.flags & TransferFlags.PENDING else 1
        expected[t.debit_account_id][posted] += t.amount
        expected[t.credit_account_id][2 + posted] += t.amount
    found = {
        a.id: [a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted]
        for a in await scene.ledger.lookup_accounts(scene.accounts)
    }
    assert found == expected
    assert sum(v[1] for v in found.values()) == sum(v[3] for v in found.values())
    assert sum(v[0] for v in found.values()) == sum(v[2] for v in found.values())
    return set(stored)


async def outbox_counts(scene: Scene, callers: list[Caller]) -> list[int]:
    ids = [c.event.event_id for c in callers if c.event is not None]
    found = Counter(
        row["event_id"]
        for row in await scene.admin.fetch(
            "SELECT event_id FROM outbox WHERE event_id = ANY($1::uuid[])", ids
        )
    )
    return [found[c.event.event_id] if c.event is not None else 0 for c in callers]


async def check_no_connection_stranded(scene: Scene) -> None:
    """The ledger holds no slot and no queue, and every pool connection can be held at once."""
    assert scene.ledger.in_flight == 0
    assert scene.ledger.waiting == 0
    assert scene.pool.get_idle_size() == scene.pool.get_size()

    async def hold_all() -> None:
        held = [await scene.pool.acquire() for _ in range(POOL_SIZE)]
        try:
            for connection in held:
                assert await connection.fetchval("SELECT 1") == 1
        finally:
            for connection in held:
                await scene.pool.release(connection)

    await asyncio.wait_for(hold_all(), SAFETY_SECONDS)
    assert scene.pool.get_size() == POOL_SIZE
    assert scene.pool.get_idle_size() == POOL_SIZE


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mode", MODES)
async def test_a_grouped_call_whose_connection_is_lost_answers_every_caller_service_unavailable(
    scene: Scene, path: Path, mode: Mode
) -> None:
    callers, outcomes = await lose_a_grouped_call(scene, path, mode)

    # every caller the grouped call carried: ServiceUnavailable, none resent alone
    assert [type(o) for o in outcomes] == [ServiceUnavailable] * CALLERS, outcomes
    assert scene.ledger.group_fallbacks == 0
    assert scene.ledger.grouped_plain_calls == 0  # the plain group never answered
    await check_no_connection_stranded(scene)

    # one transaction: all of the group's transfers were stored, or none
    stored = await check_stored_state(scene)
    grouped = {t.id for c in callers for t in c.transfers}
    committed = mode == "reply_lost"
    assert grouped <= stored if committed else grouped.isdisjoint(stored), (mode, stored)
    assert await outbox_counts(scene, callers) == [
        int(committed and c.event is not None) for c in callers
    ]

    # a replay of each call (same ids, same fields) answers as a first attempt would
    replays = await calls(scene, callers)
    assert replays == [[R.EXISTS if committed else R.OK] * len(c.transfers) for c in callers]
    stored = await check_stored_state(scene)
    assert grouped <= stored
    assert await outbox_counts(scene, callers) == [int(c.event is not None) for c in callers]
    assert scene.ledger.group_fallbacks == 0

    # and the ledger works on: new callers group again and are applied once
    grouped_before = scene.ledger.grouped_calls
    fresh = make_callers(scene, path)
    assert await calls(scene, fresh) == [[R.OK] * len(c.transfers) for c in fresh]
    assert await calls(scene, fresh) == [[R.EXISTS] * len(c.transfers) for c in fresh]
    assert scene.ledger.grouped_calls > grouped_before
    assert {t.id for c in fresh for t in c.transfers} <= await check_stored_state(scene)
    assert await outbox_counts(scene, fresh) == [int(c.event is not None) for c in fresh]
    await check_no_connection_stranded(scene)


@pytest.mark.parametrize("mode", MODES)
async def test_each_grouped_caller_gets_its_own_service_unavailable_chained_to_the_driver_error(
    scene: Scene, mode: Mode
) -> None:
    _callers, outcomes = await lose_a_grouped_call(scene, "plain", mode)
    assert [type(o) for o in outcomes] == [ServiceUnavailable] * CALLERS
    # one exception object per caller: callers in other tasks must not share (and mutate:
    # add_note, __traceback__, __context__) one instance
    assert len({id(o) for o in outcomes}) == CALLERS
    for outcome in outcomes:
        assert isinstance(outcome, BaseException)
        # what a caller alone keeps for the logs: the driver's error as the cause
        assert isinstance(
            outcome.__cause__, asyncpg.PostgresError | asyncpg.InterfaceError | OSError
        )
