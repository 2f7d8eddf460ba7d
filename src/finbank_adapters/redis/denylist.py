"""Token denylists on Redis: one key per denied id, holding its expiry, with a matching TTL.

``RedisTokenDenylist`` keeps revocations in Redis alone (a flush forgets
them). ``RedisCachedTokenDenylist`` is the same cache in front of a durable
source (``PostgresTokenDenylist``): revocations are written to the source
first, and the cache answers "not revoked" only while it is known to be
complete.

How the cache knows it is complete: two keys, read with the ids' keys in one
``MGET`` on every check.

* ``loaded`` (no TTL) is written when the cache was loaded from the source;
  it holds the time that load started (the watermark). A flush, or a
  failover to an empty replica, removes it.
* ``fresh`` (TTL ``resync_seconds``) says the last catch-up is recent.

A denied id answers "revoked" from Redis alone; no denied id with both keys
present answers "not revoked" from Redis alone. Otherwise the source answers
that check, and one caller (a ``SET NX`` lock) reloads: every active
revocation when ``loaded`` is missing, else only those revoked since the
watermark minus ``overlap_seconds`` (clock skew between replicas). The
catch-up repairs writes Redis lost without losing ``loaded`` (a failover with
asynchronous replication, a revoke whose Redis half failed) within
``resync_seconds``. When Redis cannot be reached, the source answers.

The check (one ``MGET``, on every authenticated request) goes through the
client's :mod:`~finbank_adapters.redis.pipe` when it has one: a connection of
its own with the checks of concurrent requests in flight together, about 10
instead of 45 µs of CPU a check. Revocations and reloads use the client. Both
reach the same server, and a check sent after a revocation returned reads it.

Redis must not evict these keys (``maxmemory-policy noeviction``, or a Redis
of their own): an evicted entry next to a surviving ``loaded`` key would
read as "not revoked" until the id's revocation is caught up, which only
happens if it is recent.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from redis.asyncio import Redis

from finbank_adapters.redis.errors import epoch_ms, hashed, redis_errors
from finbank_adapters.redis.pipe import RedisPipe, pipe_for
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import ServiceUnavailable

logger = logging.getLogger("finbank.redis")

# KEYS[1]; ARGV expires_at_ms, ttl_ms. Keeps the later expiry if the id is denied twice.
_REVOKE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS entry keys; ARGV[i] the expiry (ms) of KEYS[i], ARGV[#KEYS + 1] now (ms).
_LOAD = """
local now = tonumber(ARGV[#KEYS + 1])
for i, key in ipairs(KEYS) do
  local until_ms = tonumber(ARGV[i])
  local current = tonumber(redis.call('GET', key) or '0')
  if until_ms > now and until_ms > current then
    redis.call('SET', key, ARGV[i], 'PX', until_ms - now)
  end
end
return 0
"""

# KEYS lock, loaded, fresh; ARGV owner, watermark_ms, fresh_ttl_ms. Marks the cache loaded,
# only if the lock is still this caller's: a flush during the load took the lock away too.
_MARK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
return 1
"""

# KEYS[1] lock; ARGV[1] owner token. Releases the lock only for its owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_LOAD_BATCH = 500


async def _mget(client: Redis, pipe: RedisPipe | None, keys: list[str]) -> list[Any]:
    """``MGET`` on the pipe of the client's server when it has one (every request's check:
    see :mod:`.pipe`), else through the client."""
    if pipe is None:
        values: list[Any] = await client.mget(keys)
        return values
    replies: list[Any] = await pipe.execute("MGET", *keys)
    return replies


class RedisTokenDenylist:
    def __init__(self, client: Redis, clock: Clock, *, key_prefix: str = "finbank:") -> None:
        self._client = client
        self._clock = clock
        self._prefix = f"{key_prefix}denied:"
        self._revoke = client.register_script(_REVOKE)
        self._pipe = pipe_for(client)

    async def revoke(self, token_id: str, expires_at: datetime) -> None:
        until_ms = epoch_ms(expires_at)
        ttl_ms = until_ms - epoch_ms(self._clock.now())
        if ttl_ms <= 0:
            return
        with redis_errors("token denylist"):
            await self._revoke(keys=[self._prefix + hashed(token_id)], args=[until_ms, ttl_ms])

    async def is_revoked(self, *token_ids: str) -> bool:
        if not token_ids:
            return False
        with redis_errors("token denylist"):
            values = await _mget(
                self._client, self._pipe, [self._prefix + hashed(t) for t in token_ids]
            )
        now_ms = epoch_ms(self._clock.now())
        return any(value is not None and int(value) > now_ms for value in values)


class RevocationSource(Protocol):
    """The durable side of a cached denylist (``PostgresTokenDenylist``)."""

    async def revoke(self, token_id: str, expires_at: datetime) -> None: ...

    async def is_revoked(self, *token_ids: str) -> bool: ...

    async def active(self, revoked_since: datetime | None = None) -> list[tuple[str, datetime]]:
        """``(sha256 hex of the id, expires_at)`` of the revocations still in force.

        All of them, or only those revoked at or after ``revoked_since``.
        """
        ...


class RedisCachedTokenDenylist:
    """A ``TokenDenylist`` whose truth is ``source``; Redis answers when it safely can."""

    def __init__(
        self,
        client: Redis,
        clock: Clock,
        source: RevocationSource,
        *,
        key_prefix: str = "finbank:",
        resync_seconds: int = 60,
        overlap_seconds: int = 300,
        reload_lock_seconds: int = 30,
    ) -> None:
        if min(resync_seconds, reload_lock_seconds) < 1 or overlap_seconds < 0:
            raise ValueError("resync and lock periods must be positive, the overlap not negative")
        self._client = client
        self._clock = clock
        self._source = source
        self._cache = RedisTokenDenylist(client, clock, key_prefix=key_prefix)
        self._prefix = f"{key_prefix}denied:"
        self._loaded = f"{key_prefix}denylist:loaded"
        self._fresh = f"{key_prefix}denylist:fresh"
        self._lock = f"{key_prefix}denylist:reloading"
        self._resync_ms = resync_seconds * 1000
        self._overlap = timedelta(seconds=overlap_seconds)
        self._lock_ms = reload_lock_seconds * 1000
        self._load = client.register_script(_LOAD)
        self._pipe = pipe_for(client)
        self._mark = client.register_script(_MARK)
        self._release = client.register_script(_RELEASE)

    async def revoke(self, token_id: str, expires_at: datetime) -> None:
        if expires_at <= self._clock.now():
            return
        # Durable first: once this returns, no Redis loss can bring the token back.
        await self._source.revoke(token_id, expires_at)
        await self._cache.revoke(token_id, expires_at)

    async def is_revoked(self, *token_ids: str) -> bool:
        if not token_ids:
            return False
        keys = [self._prefix + hashed(t) for t in token_ids]
        try:
            with redis_errors("token denylist"):
                loaded, fresh, *values = await _mget(
                    self._client, self._pipe, [self._loaded, self._fresh, *keys]
                )
        except ServiceUnavailable:
            return await self._source.is_revoked(*token_ids)  # Redis down: ask the truth
        now_ms = epoch_ms(self._clock.now())
        if any(value is not None and int(value) > now_ms for value in values):
            return True
        if loaded is not None and fresh is not None:
            return False
        # A cold or stale cache cannot say "not revoked": the source answers, one caller reloads.
        revoked = await self._source.is_revoked(*token_ids)
        with contextlib.suppress(ServiceUnavailable):  # the answer stands; the next check retries
            await self.reload()
        return revoked

    async def reload(self) -> bool:
        """Bring the cache up to date with the source; ``True`` if this call did.

        Everything when the cache was never loaded (or was flushed), else the
        revocations since the last load (minus the overlap). One caller at a
        time (a ``SET NX`` lock); ``False`` when another caller holds the lock
        or the cache is complete and fresh.
        """
        owner = secrets.token_hex(8)
        with redis_errors("token denylist"):
            if not await self._client.set(self._lock, owner, nx=True, px=self._lock_ms):
                return False
            try:
                loaded, fresh = await self._client.mget([self._loaded, self._fresh])
                if loaded is not None and fresh is not None:
                    return False
                started = self._clock.now()
                since = None
                if loaded is not None:
                    since = datetime.fromtimestamp(int(loaded) / 1000, UTC) - self._overlap
                entries = await self._source.active(since)
                now_ms = epoch_ms(self._clock.now())
                for start in range(0, len(entries), _LOAD_BATCH):
                    batch = entries[start : start + _LOAD_BATCH]
                    await self._load(
                        keys=[self._prefix + digest for digest, _ in batch],
                        args=[*(epoch_ms(until) for _, until in batch), now_ms],
                    )
                marked = await self._mark(
                    keys=[self._lock, self._loaded, self._fresh],
                    args=[owner, epoch_ms(started), self._resync_ms],
                )
                logger.info(
                    "token denylist cache %s: %d revocations",
                    "caught up" if since is not None else "reloaded",
                    len(entries),
                )
                return bool(marked)
            finally:
                await self._release(keys=[self._lock], args=[owner])
