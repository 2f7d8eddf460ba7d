"""``RedisLookupBuckets``: key look-up token buckets, refilled and taken by one Lua script.

Times come from the injected clock (passed to the script), so every app
server agrees whatever Redis's own clock says. The bucket key carries a
digest of the customer id, not the id. A bucket is forgotten once it would
be full again (``PEXPIRE``): a missing bucket is a full one.
"""

from __future__ import annotations

import math
from datetime import datetime

from redis.asyncio import Redis

from finbank_adapters.redis.errors import epoch_ms, hashed, redis_errors
from finbank_core.pix.claims.lookups import BucketPolicy, BucketTake

# KEYS[1] bucket. ARGV: now_ms, capacity, per_minute, cost. Mirrors lookups.take.
# Returns {allowed (0/1), tokens as a string}.
_TAKE = """
local now = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local per_minute = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'at_ms')
local tokens = tonumber(s[1])
local at = tonumber(s[2])
local current = capacity
if tokens ~= nil and at ~= nil then
  current = math.min(capacity, tokens + math.max(now - at, 0) * per_minute / 60000.0)
else
  at = now
end
if current < 1.0 then
  return {0, tostring(current)}
end
local left = math.max(current - cost, 0)
local stamp = math.max(now, at)
redis.call('HSET', KEYS[1], 'tokens', tostring(left), 'at_ms', stamp)
local full_in = math.ceil((capacity - left) * 60000.0 / per_minute) + 1000
redis.call('PEXPIRE', KEYS[1], full_in)
return {1, tostring(left)}
"""


class RedisLookupBuckets:
    """``LookupBuckets`` in Redis hashes (see the module docstring)."""

    def __init__(self, client: Redis, key_prefix: str = "finbank:") -> None:
        self._client = client
        self._prefix = key_prefix
        self._script = client.register_script(_TAKE)

    async def take(self, bucket: str, cost: int, policy: BucketPolicy, now: datetime) -> BucketTake:
        key = f"{self._prefix}pix:lookup:{hashed(bucket)}"
        with redis_errors("key look-up"):
            allowed, tokens_text = await self._script(
                keys=[key],
                args=[epoch_ms(now), policy.capacity, policy.refill_per_minute, cost],
            )
        tokens = float(tokens_text)
        if int(allowed):
            return BucketTake(allowed=True, tokens=tokens)
        retry = policy.retry_after(tokens) if math.isfinite(tokens) else 1
        return BucketTake(allowed=False, tokens=tokens, retry_after_seconds=retry)
