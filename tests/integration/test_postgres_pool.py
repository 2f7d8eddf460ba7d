"""The adapters' pool: session settings every finbank connection gets, and its short
acquire and release behaving as asyncpg's (rollback, cancellation, turns, expiry, close)."""

from __future__ import annotations

import asyncio
import pickle
import uuid
from typing import Any

import asyncpg
import pytest
from asyncpg.exceptions import InternalClientError
from asyncpg.pgproto.pgproto import UUID as AsyncpgUUID

from finbank_adapters.postgres.pool import Pool, create_pool
from tests.postgres_support import require_postgres

pytestmark = pytest.mark.services


async def test_jit_is_off_unless_the_caller_turns_it_back_on() -> None:
    dsn = require_postgres()
    pool = await create_pool(dsn, max_size=1)
    try:
        assert await pool.fetchval("SHOW jit") == "off"
    finally:
        await pool.close()
    pool = await create_pool(dsn, max_size=1, server_settings={"jit": "on"})
    try:
        assert await pool.fetchval("SHOW jit") == "on"
    finally:
        await pool.close()


async def test_uuids_come_back_as_uuid_uuid_itself_everywhere_in_a_row() -> None:
    """asyncpg reads ``uuid`` as its own subclass, which ``orjson`` refuses and
    ``type(x) is uuid.UUID`` tells apart: memory answers with ``uuid.UUID``, so must
    PostgreSQL (scalars, arrays, records); parameters take a UUID, its subclass or text."""
    dsn = require_postgres()
    pool = await create_pool(dsn, max_size=1)
    try:
        value = uuid.uuid4()
        row = await pool.fetchrow(
            "SELECT $1::uuid AS one, ARRAY[$1::uuid, gen_random_uuid()] AS many,"
            " ROW($1::uuid, 7) AS pair, NULL::uuid AS nothing",
            value,
        )
        assert row is not None
        assert type(row["one"]) is uuid.UUID
        assert row["one"] == value
        assert [type(v) for v in row["many"]] == [uuid.UUID, uuid.UUID]
        assert row["many"][0] == value
        assert type(row["pair"][0]) is uuid.UUID
        assert row["pair"][0] == value
        assert row["nothing"] is None
        read = row["one"]
        assert (str(read), read.int, read.version, hash(read)) == (
            str(value),
            value.int,
            4,
            hash(value),
        )
        for given in (value, str(value), str(value).upper(), AsyncpgUUID(str(value))):
            assert await pool.fetchval("SELECT $1::uuid = $2::uuid", given, value) is True
        # the ends of the range, each back as itself, and what is made pickles as uuid's own
        for edge in (uuid.UUID(int=0), uuid.UUID(int=(1 << 128) - 1)):
            back = await pool.fetchval("SELECT $1::uuid", edge)
            assert type(back) is uuid.UUID
            assert back == edge
            assert back.int == edge.int
            assert pickle.loads(pickle.dumps(back)) == edge  # noqa: S301 - our own bytes
        with pytest.raises(asyncpg.DataError):
            await pool.fetchval("SELECT $1::uuid", "not-a-uuid")
        with pytest.raises(asyncpg.DataError):
            await pool.fetchval("SELECT $1::uuid", 12345)
    finally:
        await pool.close()
    # asyncpg's own pool, as before: the subclass (what plain_uuids exists for)
    raw = await asyncpg.connect(dsn)
    try:
        assert type(await raw.fetchval("SELECT gen_random_uuid()")) is AsyncpgUUID
    finally:
        await raw.close()


async def test_read_committed_even_where_the_database_defaults_to_serializable() -> None:
    """The ledger's functions are written for READ COMMITTED; a database whose default is
    another level (ALTER DATABASE ... SET) must not change what they see."""
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    from finbank_adapters.postgres.migrations import quote_ident

    dsn = require_postgres()
    database = f"t_iso_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE DATABASE {quote_ident(database)}")
        await admin.execute(
            f"ALTER DATABASE {quote_ident(database)}"
            " SET default_transaction_isolation = 'serializable'"
        )
        there = urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))
        plain = await asyncpg.connect(there)
        try:  # the database's default, as any other client gets it
            assert await plain.fetchval("SHOW transaction_isolation") == "serializable"
        finally:
            await plain.close()
        pool = await create_pool(there, max_size=1)
        try:
            assert await pool.fetchval("SHOW transaction_isolation") == "read committed"
        finally:
            await pool.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(database)}")
        await admin.close()


# -- the short acquire and release (finbank_adapters.postgres.pool.Pool) ------------------


async def test_the_pool_is_ours_and_an_idle_connection_goes_back_for_the_next_caller() -> None:
    pool = await create_pool(require_postgres(), min_size=1, max_size=1)
    try:
        assert isinstance(pool, Pool)
        async with pool.acquire() as conn:
            first = conn.get_server_pid()
            assert await conn.fetchval("SELECT 1") == 1
        with pytest.raises(asyncpg.InterfaceError, match="released back to the pool"):
            await conn.fetchval("SELECT 1")  # the proxy is detached on release
        async with pool.acquire() as again:
            assert again.get_server_pid() == first
        assert await pool.fetchval("SELECT pg_backend_pid()") == first
    finally:
        await pool.close()


async def test_a_connection_released_inside_a_transaction_is_rolled_back() -> None:
    pool = await create_pool(require_postgres(), min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TEMPORARY TABLE left_open (n int)")
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO left_open VALUES (1)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM left_open") == 0
    finally:
        await pool.close()


async def test_a_query_cancelled_half_way_leaves_a_usable_connection() -> None:
    pool = await create_pool(require_postgres(), min_size=1, max_size=1)
    try:
        task = asyncio.create_task(pool.fetchval("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.wait_for(pool.fetchval("SELECT 2"), 5) == 2
    finally:
        await pool.close()


async def test_more_callers_than_connections_take_turns() -> None:
    pool = await create_pool(require_postgres(), min_size=2, max_size=2)
    held = 0
    most = 0
    pids: set[int] = set()

    async def caller(n: int) -> int:
        nonlocal held, most
        async with pool.acquire() as conn:
            held += 1
            most = max(most, held)
            pids.add(conn.get_server_pid())
            value: int = await conn.fetchval("SELECT $1::int + 0 FROM pg_sleep(0.01)", n)
            held -= 1
            return value

    try:
        assert await asyncio.gather(*(caller(n) for n in range(20))) == list(range(20))
        assert most == 2
        assert len(pids) == 2
    finally:
        await pool.close()


async def test_expired_and_terminated_connections_are_replaced() -> None:
    dsn = require_postgres()
    pool = await create_pool(dsn, min_size=1, max_size=1)
    admin = await asyncpg.connect(dsn)
    try:
        first = await pool.fetchval("SELECT pg_backend_pid()")
        await pool.expire_connections()
        second = await pool.fetchval("SELECT pg_backend_pid()")
        assert second != first
        await admin.execute("SELECT pg_terminate_backend($1)", second)
        third = second
        # The first calls may still meet the dying connection and fail (as with asyncpg's
        # own pool: ConnectionDoesNotExistError, or InternalClientError "cannot switch to
        # state" when the server's farewell arrived before its EOF); then a new one answers.
        for _ in range(100):
            try:
                third = await pool.fetchval("SELECT pg_backend_pid()")
            except (asyncpg.PostgresError, asyncpg.InterfaceError, InternalClientError, OSError):
                continue
            if third != second:
                break
            await asyncio.sleep(0.02)
        assert third not in (first, second)
    finally:
        await admin.close()
        await pool.close()


async def test_closing_waits_for_a_connection_in_use() -> None:
    pool = await create_pool(require_postgres(), min_size=1, max_size=1)
    conn = await pool.acquire()
    closing = asyncio.create_task(pool.close())
    await asyncio.sleep(0.1)
    assert not closing.done()
    assert await conn.fetchval("SELECT 3") == 3
    await pool.release(conn)
    await asyncio.wait_for(closing, 5)


async def test_the_short_release_puts_the_holder_back_as_the_queue_would() -> None:
    """``asyncio.Queue.put_nowait``'s bookkeeping: one more unfinished task and the
    ``finished`` event cleared, also when it was set (the short release reads the event
    and clears it only then), so a ``join`` waits again as it would."""
    pool: Any = await create_pool(require_postgres(), min_size=1, max_size=1)
    try:
        assert await pool.fetchval("SELECT 1") == 1
        queue = pool._queue
        finished = queue._finished
        for was_set in (True, False, True):
            if was_set:
                finished.set()
            before = queue._unfinished_tasks
            proxy = pool._take_idle()
            assert proxy is not None
            assert pool._release_idle(proxy)
            assert queue._unfinished_tasks == before + 1
            assert not finished.is_set()
            assert list(queue._queue) == list(pool._holders)
        assert await pool.fetchval("SELECT 2") == 2
    finally:
        await pool.close()


async def test_an_in_use_future_nothing_awaited_serves_the_next_acquire_and_close_waits() -> None:
    """The short release leaves the holder's in-use future pending when nothing awaits
    it and the next short acquire takes it again; close() started while the connection
    is in use again (on that same future) still waits for its release."""
    pool: Any = await create_pool(require_postgres(), min_size=1, max_size=1)
    closed = False
    try:
        assert await pool.fetchval("SELECT 1") == 1
        [ch] = pool._holders
        spare = pool._spare_in_use[ch]
        assert not spare.done()
        assert ch._in_use is None  # released, as asyncpg's release leaves it
        conn = await pool.acquire()
        taken: Any = ch._in_use
        assert taken is spare
        closing = asyncio.create_task(pool.close())
        await asyncio.sleep(0.1)
        assert not closing.done()
        assert await conn.fetchval("SELECT 3") == 3
        await pool.release(conn)
        assert spare.done()  # close() awaited it: woken, not kept
        assert ch not in pool._spare_in_use
        await asyncio.wait_for(closing, 5)
        closed = True
    finally:
        if not closed:
            await pool.close()


async def test_close_during_queries_on_reused_futures_waits_for_each() -> None:
    """Many callers on two connections, each call's future possibly a reused one; close()
    called in the middle waits for the calls in flight, which answer their own values."""
    pool: Any = await create_pool(require_postgres(), min_size=2, max_size=2)
    for n in range(4):  # every holder has a spare
        assert await pool.fetchval("SELECT $1::int", n) == n
    assert len(pool._spare_in_use) >= 1
    started = asyncio.Event()

    async def caller(n: int) -> int:
        started.set()
        value: int = await pool.fetchval("SELECT $1::int + 0 FROM pg_sleep(0.05)", n)
        return value

    calls = [asyncio.create_task(caller(n)) for n in range(2)]
    await started.wait()
    await asyncio.sleep(0.01)  # both in flight
    closing = asyncio.create_task(pool.close())
    await asyncio.sleep(0)
    assert not closing.done()
    assert await asyncio.gather(*calls) == [0, 1]
    await asyncio.wait_for(closing, 5)
    assert all(ch._in_use is None for ch in pool._holders)


async def test_a_waiter_cancelled_before_the_release_leaves_no_future_to_reuse() -> None:
    """A wait for the release cancelled before it cancels the in-use future too (a task
    cancels what it awaits): it is not kept, the next acquire has a fresh one, and a
    later wait is woken by the release."""
    pool: Any = await create_pool(require_postgres(), min_size=1, max_size=1)
    try:
        assert await pool.fetchval("SELECT 1") == 1
        [ch] = pool._holders
        conn = await pool.acquire()
        future = ch._in_use
        waiter = asyncio.create_task(ch.wait_until_released())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert future.cancelled()
        await pool.release(conn)
        assert ch not in pool._spare_in_use
        conn = await pool.acquire()
        fresh = ch._in_use
        assert fresh is not future
        assert not fresh.done()
        waiter = asyncio.create_task(ch.wait_until_released())
        await asyncio.sleep(0)
        assert not waiter.done()
        await pool.release(conn)
        await asyncio.wait_for(waiter, 5)
        assert fresh.done()
        assert await pool.fetchval("SELECT 4") == 4
    finally:
        await pool.close()
