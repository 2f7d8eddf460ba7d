"""``RedisTokenDenylist``: one key per denied id, holding its expiry, with a matching TTL."""

from __future__ import annotations

from datetime import datetime

from redis.asyncio import Redis

from finbank_adapters.redis.errors import epoch_ms, hashed, redis_errors
from finbank_core.shared.clock import Clock

# KEYS[1]; ARGV expires_at_ms, ttl_ms. Keeps the later expiry if the id is denied twice.
_REVOKE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class RedisTokenDenylist:
    def __init__(self, client: Redis, clock: Clock, *, key_prefix: str = "finbank:") -> None:
        self._client = client
        self._clock = clock
        self._prefix = f"{key_prefix}denied:"
        self._revoke = client.register_script(_REVOKE)

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
            values = await self._client.mget([self._prefix + hashed(t) for t in token_ids])
        now_ms = epoch_ms(self._clock.now())
        return any(value is not None and int(value) > now_ms for value in values)
