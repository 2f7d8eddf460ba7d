"""``RedisRefreshTokenStore``: a hash per refresh family, rotated by a Lua script.

A revoked family is kept (marked) until it would have expired, so a stolen
token of it stays refused. Expiry follows the injected clock; the key's TTL
only cleans up.
"""

from __future__ import annotations

from datetime import datetime

from redis.asyncio import Redis

from finbank_adapters.redis.errors import epoch_ms, hashed, redis_errors
from finbank_core.auth.refresh_tokens import RotationOutcome
from finbank_core.shared.clock import Clock

# KEYS[1] family hash; ARGV presented, next, now_ms -> outcome
_ROTATE = """
local f = redis.call('HMGET', KEYS[1], 'current', 'expires_at_ms', 'revoked')
if not f[1] or tonumber(f[2]) <= tonumber(ARGV[3]) then return 'unknown' end
if f[3] == '1' then return 'revoked' end
if f[1] ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return 'reused'
end
redis.call('HSET', KEYS[1], 'current', ARGV[2])
return 'rotated'
"""

# KEYS[1] family hash -> 1 if the family exists (and is now revoked), else 0
_REVOKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return 1
end
return 0
"""


class RedisRefreshTokenStore:
    def __init__(self, client: Redis, clock: Clock, *, key_prefix: str = "finbank:") -> None:
        self._client = client
        self._clock = clock
        self._prefix = f"{key_prefix}refresh:"
        self._rotate = client.register_script(_ROTATE)
        self._revoke = client.register_script(_REVOKE)

    def _family_key(self, family_id: str) -> str:
        return f"{self._prefix}family:{hashed(family_id)}"

    def _subject_key(self, subject: str) -> str:
        return f"{self._prefix}subject:{hashed(subject)}"

    async def start_family(
        self, family_id: str, subject: str, token_id: str, expires_at: datetime
    ) -> None:
        ttl_ms = epoch_ms(expires_at) - epoch_ms(self._clock.now())
        if ttl_ms <= 0:
            return
        family_key = self._family_key(family_id)
        subject_key = self._subject_key(subject)
        with redis_errors("refresh token"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hset(
                    family_key,
                    mapping={
                        "current": token_id,
                        "expires_at_ms": epoch_ms(expires_at),
                        "revoked": "0",
                    },
                )
                pipe.pexpire(family_key, ttl_ms)
                pipe.sadd(subject_key, family_id)
                pipe.pexpire(subject_key, ttl_ms, gt=True)
                pipe.pexpire(subject_key, ttl_ms, nx=True)
                await pipe.execute()

    async def rotate(
        self, family_id: str, presented_token_id: str, next_token_id: str
    ) -> RotationOutcome:
        with redis_errors("refresh token"):
            outcome = await self._rotate(
                keys=[self._family_key(family_id)],
                args=[presented_token_id, next_token_id, epoch_ms(self._clock.now())],
            )
        text = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
        return RotationOutcome(text)

    async def revoke_family(self, family_id: str) -> None:
        with redis_errors("refresh token"):
            await self._revoke(keys=[self._family_key(family_id)], args=[])

    async def revoke_subject(self, subject: str) -> tuple[str, ...]:
        revoked = []
        with redis_errors("refresh token"):
            family_ids = await self._client.smembers(self._subject_key(subject))
            for family_id in family_ids:
                name = family_id.decode() if isinstance(family_id, bytes) else str(family_id)
                if await self._revoke(keys=[self._family_key(name)], args=[]):
                    revoked.append(name)
        return tuple(revoked)
