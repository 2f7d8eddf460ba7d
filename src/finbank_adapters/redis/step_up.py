"""``RedisStepUpStore``: one string per step-up token, taken with ``GETDEL``.

The key is a digest of the token (no bearer secret in ``KEYS *``). Expiry is
the injected clock's: ``take`` compares the stored ``expires_at`` with it,
and the key's Redis TTL of the same length only cleans up. ``GETDEL`` reads
and removes in one command, so of concurrent takers on any number of
processes exactly one gets the grant.
"""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

from finbank_adapters.redis.errors import epoch_ms, hashed, redis_errors
from finbank_core.auth.step_up import StepUpGrant
from finbank_core.shared.clock import Clock


class RedisStepUpStore:
    def __init__(self, client: Redis, clock: Clock, *, key_prefix: str = "finbank:") -> None:
        self._client = client
        self._clock = clock
        self._prefix = f"{key_prefix}stepup:"

    def _key(self, token: str) -> str:
        return self._prefix + hashed(token)

    async def put(self, token: str, grant: StepUpGrant) -> None:
        ttl_ms = epoch_ms(grant.expires_at) - epoch_ms(self._clock.now())
        if ttl_ms <= 0:
            return
        with redis_errors("step-up"):
            await self._client.set(self._key(token), msgspec.json.encode(grant), px=ttl_ms)

    async def take(self, token: str) -> StepUpGrant | None:
        with redis_errors("step-up"):
            body = await self._client.getdel(self._key(token))
        if body is None:
            return None
        grant = msgspec.json.decode(body, type=StepUpGrant)
        if grant.is_expired(self._clock.now()):
            return None
        return grant
