"""The pool's inactivity timer, armed once by the short release and left armed while the
connection is used again (``Pool._idle_timeout``): an idle connection is still closed
``max_inactive_connection_lifetime`` after its last release, never while it is in use,
and asyncpg's own acquire and release still work beside it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from finbank_adapters.postgres.pool import Pool, create_pool
from tests.postgres_support import require_postgres

pytestmark = pytest.mark.services


@pytest.fixture
async def pool() -> AsyncIterator[Any]:
    # no floor: asyncpg's deactivation keeps connections up to min_size
    opened = await create_pool(require_postgres(), min_size=0, max_size=1)
    try:
        assert isinstance(opened, Pool)
        yield opened
    finally:
        await opened.close()


def holder(pool: Any) -> Any:
    [only] = pool._holders
    return only


async def test_the_short_release_arms_one_timer_that_stays_while_the_connection_is_reused(
    pool: Any,
) -> None:
    assert await pool.fetchval("SELECT 1") == 1
    ch = holder(pool)
    timer = ch._inactive_callback
    assert timer is not None
    assert pool._idle_timers[ch] is timer
    for _ in range(3):
        assert await pool.fetchval("SELECT 1") == 1
        assert ch._inactive_callback is timer  # not cancelled and armed again
    assert ch._max_inactive_time == 300.0  # asyncpg's default, kept


async def test_a_timer_that_fires_early_arms_itself_for_the_rest_of_the_time(pool: Any) -> None:
    assert await pool.fetchval("SELECT 1") == 1
    ch = holder(pool)
    first = ch._inactive_callback
    pool._released_at[ch] -= 100  # released 100 s ago, of 300
    first.cancel()
    pool._idle_timeout(ch)  # as if it fired
    again = ch._inactive_callback
    assert again is not None
    assert again is not first
    assert pool._idle_timers[ch] is again
    remaining = again.when() - asyncio.get_running_loop().time()
    assert 150 < remaining <= 200
    assert ch.is_connected()
    assert pool.get_size() == 1


async def test_an_idle_connection_is_closed_once_its_time_is_up(pool: Any) -> None:
    assert await pool.fetchval("SELECT 1") == 1
    ch = holder(pool)
    ch._inactive_callback.cancel()
    pool._released_at[ch] -= 301
    pool._idle_timeout(ch)
    assert ch._inactive_callback is None
    assert not ch.is_connected()  # terminated: above the pool's floor of 0
    assert await pool.fetchval("SELECT 2") == 2  # a new connection when needed
    assert ch.is_connected()


async def test_a_timer_firing_while_the_connection_is_in_use_leaves_it_alone(pool: Any) -> None:
    assert await pool.fetchval("SELECT 1") == 1
    ch = holder(pool)
    async with pool.acquire() as conn:
        ch._inactive_callback.cancel()
        pool._released_at[ch] -= 301
        pool._idle_timeout(ch)  # fires while in use: no error, nothing closed
        assert ch._inactive_callback is None
        assert await conn.fetchval("SELECT 3") == 3
    assert ch.is_connected()
    assert ch._inactive_callback is not None  # armed again by the release
    assert pool._idle_timers[ch] is ch._inactive_callback


async def test_asyncpg_s_own_release_and_acquire_work_beside_the_timer(pool: Any) -> None:
    assert await pool.fetchval("SELECT 1") == 1
    ch = holder(pool)
    ours = ch._inactive_callback
    assert pool._idle_timers[ch] is ours
    # taken by the short acquire (our timer stays), released inside a transaction:
    # asyncpg's release rolls back and arms its own timer (it refuses when one is armed)
    async with pool.acquire() as conn:
        await conn.execute("BEGIN")
        await conn.execute("CREATE TEMPORARY TABLE t_timer (n int)")
    assert ours.cancelled()
    theirs = ch._inactive_callback
    assert theirs is not None
    assert pool._idle_timers.get(ch) is not theirs
    # asyncpg's acquire (with a timeout) cancels whichever timer is armed
    async with pool.acquire(timeout=5) as conn:
        assert ch._inactive_callback is None
        assert await conn.fetchval("SELECT to_regclass('t_timer') IS NULL")
    # then the short release arms ours again; the short acquire cancels asyncpg's
    assert pool._idle_timers[ch] is ch._inactive_callback
    assert await pool.fetchval("SELECT 4") == 4


async def test_closing_the_pool_cancels_the_timer() -> None:
    pool: Any = await create_pool(require_postgres(), min_size=0, max_size=1)
    assert await pool.fetchval("SELECT 1") == 1
    timer = holder(pool)._inactive_callback
    await pool.close()
    assert timer.cancelled()
