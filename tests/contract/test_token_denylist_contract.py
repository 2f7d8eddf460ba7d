"""The TokenDenylist contract, run against every adapter, and its concurrency layer.

Adapters: memory, Redis alone, PostgreSQL alone, and Redis cached in front of
PostgreSQL (the local and aws profiles). Many concurrent callers revoke and
check the same ids; the durable ones must also survive a flushed Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from redis.asyncio import Redis

from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.auth import InMemoryTokenDenylist
from finbank_adapters.postgres import PostgresTokenDenylist
from finbank_adapters.postgres.revocations import token_digest
from finbank_adapters.redis import RedisCachedTokenDenylist, RedisTokenDenylist
from finbank_core.auth.ports import TokenDenylist
from finbank_core.shared.errors import ServiceUnavailable
from tests.postgres_support import isolated_schema, require_postgres
from tests.support_redis import open_test_redis, own_redis_server

CALLERS = 32


@dataclass
class Harness:
    denylist: TokenDenylist
    clock: FakeClock
    #: forget everything Redis holds for this test (None: the adapter has no Redis)
    flush: Callable[[], Awaitable[None]] | None = None


async def delete_prefix(client: Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await client.delete(*keys)


class CountingSource(PostgresTokenDenylist):
    """The PostgreSQL denylist, counting the cache's full reloads and catch-ups from it."""

    reloads = 0
    catch_ups = 0

    async def active(self, revoked_since: datetime | None = None) -> list[tuple[str, datetime]]:
        if revoked_since is None:
            self.reloads += 1
        else:
            self.catch_ups += 1
        return await super().active(revoked_since)


@asynccontextmanager
async def open_harness(kind: str) -> AsyncIterator[Harness]:
    clock = FakeClock()
    if kind == "memory":
        yield Harness(InMemoryTokenDenylist(clock), clock)
    elif kind == "redis":
        async with open_test_redis() as (client, prefix):
            yield Harness(RedisTokenDenylist(client, clock, key_prefix=prefix), clock)
    elif kind == "postgres":
        async with isolated_schema(require_postgres(), max_size=8) as (pool, _):
            yield Harness(PostgresTokenDenylist(pool, clock), clock)
    else:
        async with (
            isolated_schema(require_postgres(), max_size=8) as (pool, _),
            open_test_redis() as (client, prefix),
        ):
            cached = RedisCachedTokenDenylist(
                client, clock, CountingSource(pool, clock), key_prefix=prefix
            )
            yield Harness(cached, clock, lambda: delete_prefix(client, prefix))


@pytest.fixture(params=["memory", "redis", "postgres", "redis_postgres"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with open_harness(request.param) as opened:
        yield opened


@pytest.fixture
async def cached() -> AsyncIterator[Harness]:
    """Redis in front of PostgreSQL, with a way to lose what Redis holds."""
    async with open_harness("redis_postgres") as opened:
        yield opened


async def test_a_revoked_id_is_denied_until_it_expires(harness: Harness) -> None:
    await harness.denylist.revoke("jti-1", harness.clock.now() + timedelta(minutes=15))
    assert await harness.denylist.is_revoked("jti-1")
    harness.clock.advance(minutes=15)
    assert not await harness.denylist.is_revoked("jti-1")


async def test_an_id_never_revoked_is_not_denied(harness: Harness) -> None:
    await harness.denylist.revoke("jti-1", harness.clock.now() + timedelta(minutes=15))
    assert not await harness.denylist.is_revoked("jti-2")
    assert not await harness.denylist.is_revoked()


async def test_any_revoked_id_among_several_denies(harness: Harness) -> None:
    await harness.denylist.revoke("session-9", harness.clock.now() + timedelta(hours=1))
    assert await harness.denylist.is_revoked("jti-1", "session-9")


async def test_an_expired_revocation_among_several_does_not_hide_a_live_one(
    harness: Harness,
) -> None:
    now = harness.clock.now()
    await harness.denylist.revoke("jti-1", now + timedelta(minutes=5))
    await harness.denylist.revoke("session-9", now + timedelta(hours=1))
    harness.clock.advance(minutes=10)
    assert await harness.denylist.is_revoked("jti-1", "session-9")
    assert not await harness.denylist.is_revoked("jti-1", "session-8")
    harness.clock.advance(hours=1)
    assert not await harness.denylist.is_revoked("jti-1", "session-9")


async def test_revoking_an_already_expired_token_keeps_nothing(harness: Harness) -> None:
    await harness.denylist.revoke("jti-old", harness.clock.now() - timedelta(seconds=1))
    assert not await harness.denylist.is_revoked("jti-old")


async def test_revoking_twice_keeps_the_later_expiry(harness: Harness) -> None:
    now = harness.clock.now()
    await harness.denylist.revoke("session-1", now + timedelta(hours=2))
    await harness.denylist.revoke("session-1", now + timedelta(minutes=5))
    harness.clock.advance(hours=1)
    assert await harness.denylist.is_revoked("session-1")


# -- concurrency: many callers on the same ids ---------------------------------------------


async def test_concurrent_revocations_of_one_id_keep_the_latest_expiry(harness: Harness) -> None:
    now = harness.clock.now()
    expiries = [now + timedelta(minutes=m) for m in range(1, CALLERS + 1)]
    await asyncio.gather(*(harness.denylist.revoke("session-1", e) for e in reversed(expiries)))
    harness.clock.advance(minutes=CALLERS - 1)
    assert await harness.denylist.is_revoked("session-1")
    harness.clock.advance(minutes=1)
    assert not await harness.denylist.is_revoked("session-1")


async def test_concurrent_checks_racing_revocations_all_see_every_finished_revocation(
    harness: Harness,
) -> None:
    until = harness.clock.now() + timedelta(minutes=15)
    ids = [f"jti-{i}" for i in range(CALLERS)]
    await asyncio.gather(
        *(harness.denylist.revoke(i, until) for i in ids),
        *(harness.denylist.is_revoked(i) for i in ids),
    )
    checks = await asyncio.gather(*(harness.denylist.is_revoked(i) for i in ids))
    assert all(checks)
    assert not await harness.denylist.is_revoked("jti-never")


# -- durability: Redis is a cache, not the truth ----------------------------------------------


def flusher(cached: Harness) -> Callable[[], Awaitable[None]]:
    assert cached.flush is not None
    return cached.flush


async def test_a_flushed_cache_never_brings_a_revoked_token_back(cached: Harness) -> None:
    flush = flusher(cached)
    until = cached.clock.now() + timedelta(minutes=15)
    await cached.denylist.revoke("jti-1", until)
    await cached.denylist.revoke("session-1", until + timedelta(hours=1))
    await flush()
    assert await cached.denylist.is_revoked("jti-1")
    assert await cached.denylist.is_revoked("other", "session-1")
    assert not await cached.denylist.is_revoked("jti-2")
    await flush()
    cached.clock.advance(minutes=15)
    assert not await cached.denylist.is_revoked("jti-1")  # expired in the source too
    assert await cached.denylist.is_revoked("session-1")


async def test_concurrent_checks_on_a_cold_cache_all_deny_and_reload_it_once(
    cached: Harness,
) -> None:
    flush = flusher(cached)
    assert isinstance(cached.denylist, RedisCachedTokenDenylist)
    until = cached.clock.now() + timedelta(minutes=15)
    await cached.denylist.revoke("jti-1", until)
    await flush()
    source = cached.denylist._source
    assert isinstance(source, CountingSource)
    before = source.reloads
    checks = await asyncio.gather(
        *(cached.denylist.is_revoked("jti-1") for _ in range(CALLERS)),
        *(cached.denylist.is_revoked("jti-2") for _ in range(CALLERS)),
    )
    assert checks == [True] * CALLERS + [False] * CALLERS
    assert source.reloads - before == 1
    # warm again: answered from Redis, no further reload
    assert await cached.denylist.is_revoked("jti-1")
    assert source.reloads - before == 1


async def test_a_revocation_redis_lost_is_repaired_by_the_next_catch_up(cached: Harness) -> None:
    denylist = cached.denylist
    assert isinstance(denylist, RedisCachedTokenDenylist)
    source = denylist._source
    assert isinstance(source, CountingSource)
    until = cached.clock.now() + timedelta(minutes=15)
    await denylist.revoke("jti-old", until)
    await denylist.is_revoked("warm-up")  # the first check loads everything
    assert (source.reloads, source.catch_ups) == (1, 0)
    cached.clock.advance(minutes=10)
    await denylist.revoke("jti-1", until)
    client = denylist._client
    entry = denylist._prefix + token_digest("jti-1")
    # a failover to a replica that missed the write: the entry is gone, "loaded" is not
    await client.delete(entry)
    # "fresh" expires (resync_seconds) as it does on every replica in time
    await client.delete(denylist._fresh)
    assert await denylist.is_revoked("jti-1")
    # repaired in Redis by a catch-up of the recent revocations, not a full reload
    assert (source.reloads, source.catch_ups) == (1, 1)
    assert await client.get(entry) is not None
    assert await denylist.is_revoked("jti-old")


class FlushDuringReload(CountingSource):
    """A source whose full reload is interrupted by a Redis flush, after it read PostgreSQL."""

    flush: Callable[[], Awaitable[None]] | None = None

    async def active(self, revoked_since: datetime | None = None) -> list[tuple[str, datetime]]:
        entries = await super().active(revoked_since)
        if self.flush is not None:
            flush, self.flush = self.flush, None
            await flush()
        return entries


async def test_a_flush_during_a_reload_leaves_the_cache_cold_not_wrong(cached: Harness) -> None:
    denylist = cached.denylist
    assert isinstance(denylist, RedisCachedTokenDenylist)
    assert cached.flush is not None
    original = denylist._source
    assert isinstance(original, PostgresTokenDenylist)
    source = FlushDuringReload(original._pool, cached.clock)
    racing = RedisCachedTokenDenylist(
        denylist._client, cached.clock, source, key_prefix=denylist._prefix.removesuffix("denied:")
    )
    until = cached.clock.now() + timedelta(minutes=15)
    await racing.revoke("jti-1", until)
    source.flush = cached.flush
    assert await racing.reload() is False  # the lock went with the flush: nothing is marked
    assert await denylist._client.get(racing._loaded) is None
    assert await racing.is_revoked("jti-1")
    # still cold, so "not revoked" comes from PostgreSQL, and the reload then completes
    assert not await racing.is_revoked("jti-2")
    assert await denylist._client.get(racing._loaded) is not None
    assert await racing.is_revoked("jti-1")


async def test_without_redis_the_cached_denylist_asks_postgresql() -> None:
    clock = FakeClock()
    async with isolated_schema(require_postgres()) as (pool, _):
        with own_redis_server() as (server, port):
            client = Redis(host="127.0.0.1", port=port, socket_timeout=0.5)
            try:
                denylist = RedisCachedTokenDenylist(
                    client, clock, PostgresTokenDenylist(pool, clock)
                )
                until = clock.now() + timedelta(minutes=15)
                await denylist.revoke("jti-1", until)
                server.kill()
                server.wait(timeout=10)
                assert await denylist.is_revoked("jti-1")
                assert not await denylist.is_revoked("jti-2")
                # the durable half of a revoke lands even though the Redis half fails
                with pytest.raises(ServiceUnavailable):
                    await denylist.revoke("jti-3", until)
                assert await denylist.is_revoked("jti-3")
            finally:
                await client.aclose()


async def test_postgresql_forgets_expired_revocations_when_it_reloads_a_cache() -> None:
    clock = FakeClock()
    async with isolated_schema(require_postgres()) as (pool, _):
        denylist = PostgresTokenDenylist(pool, clock)
        await denylist.revoke("short", clock.now() + timedelta(minutes=1))
        await denylist.revoke("long", clock.now() + timedelta(hours=1))
        clock.advance(minutes=1)
        active = await denylist.active()
        assert [digest for digest, _ in active] == [token_digest("long")]
        assert await pool.fetchval("SELECT count(*) FROM auth_revocations") == 1


async def test_postgresql_lists_the_revocations_since_a_time_for_a_catch_up() -> None:
    clock = FakeClock()
    async with isolated_schema(require_postgres()) as (pool, _):
        denylist = PostgresTokenDenylist(pool, clock)
        await denylist.revoke("early", clock.now() + timedelta(hours=1))
        clock.advance(minutes=5)
        since = clock.now()
        await denylist.revoke("late", clock.now() + timedelta(hours=1))
        await denylist.revoke("early", clock.now() + timedelta(hours=2))  # revoked again: recent
        recent = await denylist.active(since)
        assert sorted(d for d, _ in recent) == sorted([token_digest("late"), token_digest("early")])
        assert dict(recent)[token_digest("early")] == since + timedelta(hours=2)
