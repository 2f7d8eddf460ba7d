"""The pool's short path for statements already prepared on the connection
(``finbank_adapters.postgres.pool._run_cached``): the same answers as asyncpg's own
``fetchval``/``fetch``/``fetchrow``, the same handling of stale caches, and a
cancelled caller leaves a usable connection and no transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from finbank_adapters.postgres import pool as pool_module
from finbank_adapters.postgres.pool import Pool, create_pool
from tests.postgres_support import require_postgres

pytestmark = pytest.mark.services


#: the pg_sleep statement of the cancellation test, while it runs
RUNNING = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE query = 'SELECT pg_sleep($1::float8)' AND state = 'active'"
)


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    opened = await create_pool(require_postgres(), min_size=1, max_size=1)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def cached_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The queries that went through the short path."""
    runs: list[str] = []
    real = pool_module._run_cached

    async def counted(con: Any, stmt: Any, query: str, args: tuple[Any, ...], limit: int) -> Any:
        runs.append(query)
        return await real(con, stmt, query, args, limit)

    monkeypatch.setattr(pool_module, "_run_cached", counted)
    return runs


def test_this_asyncpg_has_what_the_short_paths_use() -> None:
    # Without them create_pool falls back to asyncpg's pool and none of this is used:
    # this test says so when an upgrade changes them.
    assert pool_module._has_internals()
    assert pool_module._FAST


async def test_a_cached_statement_answers_as_asyncpg_does(
    pool: asyncpg.Pool, cached_runs: list[str]
) -> None:
    assert isinstance(pool, Pool)
    query = "SELECT n, n * 2 AS twice FROM generate_series(1, $1) AS n"
    first = await pool.fetch(query, 3)  # prepared and cached by asyncpg
    assert cached_runs == []
    again = await pool.fetch(query, 3)
    assert cached_runs == [query]
    assert [tuple(r) for r in again] == [tuple(r) for r in first] == [(1, 2), (2, 4), (3, 6)]
    assert await pool.fetch(query, 0) == []
    assert [tuple(r) for r in await pool.fetch(query, 1)] == [(1, 2)]

    one = "SELECT $1::int + 1 AS plus, $1::int - 1 AS minus WHERE $1::int > 0"
    assert await pool.fetchval(one, 5) == 6
    assert await pool.fetchval(one, 5) == 6
    assert await pool.fetchval(one, 5, column=1) == 4
    assert await pool.fetchval(one, 5, column="minus") == 4
    assert await pool.fetchval(one, -5) is None  # no row
    row = await pool.fetchrow(one, 5)
    assert row is not None
    assert dict(row) == {"plus": 6, "minus": 4}
    assert await pool.fetchrow(one, -5) is None
    assert cached_runs.count(one) == 6
    # what asyncpg itself answers on the same connection
    async with pool.acquire() as conn:
        assert await conn.fetchval(one, 5, column=1) == 4
        assert await conn.fetchrow(one, -5) is None


async def test_a_timeout_or_a_record_class_takes_asyncpg_s_own_path(
    pool: asyncpg.Pool, cached_runs: list[str]
) -> None:
    class Row(asyncpg.Record):
        pass

    query = "SELECT 41 + $1::int AS n"
    assert await pool.fetchval(query, 1) == 42
    assert await pool.fetchval(query, 1, timeout=5) == 42
    rows = await pool.fetch(query, 1, record_class=Row)
    assert type(rows[0]) is Row
    row = await pool.fetchrow(query, 1, record_class=Row)
    assert type(row) is Row
    assert cached_runs == []


async def test_a_changed_result_type_is_prepared_again_as_asyncpg_does(
    pool: asyncpg.Pool, cached_runs: list[str]
) -> None:
    await pool.execute("CREATE TEMPORARY TABLE shape (a int)")
    await pool.execute("INSERT INTO shape VALUES (1)")
    query = "SELECT * FROM shape"
    assert [tuple(r) for r in await pool.fetch(query)] == [(1,)]
    assert [tuple(r) for r in await pool.fetch(query)] == [(1,)]
    await pool.execute("ALTER TABLE shape ADD COLUMN b text DEFAULT 'x'")
    # the server refuses the cached plan (InvalidCachedStatementError): the caches are
    # dropped and, out of a transaction, the statement is prepared and run once more
    assert [tuple(r) for r in await pool.fetch(query)] == [(1, "x")]
    assert cached_runs == [query, query]
    assert [tuple(r) for r in await pool.fetch(query)] == [(1, "x")]


async def test_a_cancelled_cached_statement_leaves_a_usable_idle_connection(
    pool: asyncpg.Pool, cached_runs: list[str]
) -> None:
    query = "SELECT pg_sleep($1::float8)"
    await pool.fetchval(query, 0)  # now cached
    watcher = await asyncpg.connect(require_postgres())
    try:
        task = asyncio.create_task(pool.fetchval(query, 30))
        # until the statement runs on the server (no time limit: the suite's timeout)
        while not await watcher.fetchval(RUNNING):  # noqa: ASYNC110 - the server's state
            await asyncio.sleep(0.01)
    finally:
        await watcher.close()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with pool.acquire() as conn:
        assert not conn.is_in_transaction()
        raw: Any = conn
        assert raw._con._stmt_exclusive_section._acquired == 0
        assert await conn.fetchval("SELECT 2") == 2
    assert (
        await asyncio.wait_for(
            pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE query LIKE 'SELECT pg_sleep%' "
                "AND state = 'active'"
            ),
            10,
        )
        == 0
    )


async def test_an_operation_already_in_progress_is_refused() -> None:
    pool = await create_pool(require_postgres(), min_size=1, max_size=1)
    try:
        query = "SELECT 1"
        assert await pool.fetchval(query) == 1
        async with pool.acquire() as conn:
            raw: Any = conn
            con = raw._con
            stmt = con._stmt_cache.get((query, con._protocol.get_record_class(), False))
            assert stmt is not None
            con._stmt_exclusive_section._acquired = 1
            try:
                with pytest.raises(asyncpg.InterfaceError, match="another operation"):
                    await pool_module._run_cached(con, stmt, query, (), 1)
            finally:
                con._stmt_exclusive_section._acquired = 0
            assert await conn.fetchval(query) == 1
    finally:
        await pool.close()


async def test_many_callers_share_few_connections_through_the_short_path(
    cached_runs: list[str],
) -> None:
    pool = await create_pool(require_postgres(), min_size=2, max_size=2)
    try:
        query = "SELECT $1::int * 10"
        results = await asyncio.gather(*(pool.fetchval(query, n) for n in range(200)))
        assert results == [n * 10 for n in range(200)]
        assert len(cached_runs) >= 190  # all but the first on each connection
    finally:
        await pool.close()


# -- the short release: what asyncpg's Connection._on_release does ---------------------


async def test_a_statement_prepared_on_a_released_connection_refuses_to_run(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        stmt = await conn.prepare("SELECT 1")
        assert await stmt.fetchval() == 1
    # released by the short path: the release counter moved, so the statement is stale
    with pytest.raises(asyncpg.InterfaceError, match="released back to the pool"):
        await stmt.fetchval()


async def test_a_listener_left_on_release_is_warned_about_and_dropped(
    pool: asyncpg.Pool,
) -> None:
    def callback(*_: object) -> None:
        pass

    async with pool.acquire() as conn:
        await conn.add_listener("finbank_test_channel", callback)
        with pytest.warns(asyncpg.InterfaceWarning, match="notification"):
            await pool.release(conn)
    async with pool.acquire() as again:
        raw: Any = again
        assert not raw._con._listeners
        assert not raw._con._log_listeners


async def test_a_caller_waiting_for_the_only_connection_gets_it_from_the_short_release(
    pool: asyncpg.Pool,
) -> None:
    raw: Any = pool
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.fetchval("SELECT 5"))
    while not raw._queue._getters:  # noqa: ASYNC110 - until it waits in asyncpg's queue
        await asyncio.sleep(0)
    assert raw._release_idle(held)  # the short release, which must wake it
    assert await asyncio.wait_for(waiter, 10) == 5
    assert len(raw._queue._queue) == 1  # the one holder, back once
    with pytest.raises(asyncpg.InterfaceError, match="released back to the pool"):
        await held.fetchval("SELECT 1")
