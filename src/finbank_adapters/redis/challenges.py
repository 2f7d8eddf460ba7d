"""``RedisChallengeStore``: one hash per challenge, attempts counted by a Lua script.

Expiry is checked twice: the scripts compare the stored ``expires_at`` with
the injected clock's time (so a fake clock governs it in tests, and clock
skew between app servers and Redis does not matter), and the key carries a
Redis TTL of the same length so abandoned challenges are cleaned up.

With a ``cipher`` (the container always gives one) the challenge record,
which holds the provider's session and the username, is sealed (envelope
encryption bound to the key): Redis, its snapshots and its replicas hold no
usable session. The attempt counter and the expiry stay in clear for the
scripts.
"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis

from finbank_adapters.crypto.envelope import EnvelopeCipher, SecretUnreadable, is_sealed
from finbank_adapters.redis.errors import epoch_ms, hashed, redis_errors
from finbank_core.auth.model import MfaChallenge
from finbank_core.shared.clock import Clock

# KEYS[1] challenge hash; ARGV now_ms, max_attempts -> {challenge_json, attempts} | nil
_BEGIN_ATTEMPT = """
local fields = redis.call('HMGET', KEYS[1], 'challenge', 'expires_at_ms')
if not fields[1] then return false end
if tonumber(fields[2]) <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return false
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if attempts > tonumber(ARGV[2]) then
  -- spent, not deleted: an answer begun within the cap may still win it (its delete)
  redis.call('HSET', KEYS[1], 'exhausted', 1)
  return false
end
return {fields[1], attempts}
"""

# KEYS[1] challenge hash; ARGV now_ms -> 1 if this call removed a live challenge
_DELETE = """
local expires_at = redis.call('HGET', KEYS[1], 'expires_at_ms')
if not expires_at then return 0 end
redis.call('DEL', KEYS[1])
if tonumber(expires_at) <= tonumber(ARGV[1]) then return 0 end
return 1
"""


class RedisChallengeStore:
    def __init__(
        self,
        client: Redis,
        clock: Clock,
        *,
        key_prefix: str = "finbank:",
        cipher: EnvelopeCipher | None = None,
    ) -> None:
        self._client = client
        self._clock = clock
        self._cipher = cipher
        self._prefix = f"{key_prefix}mfa:"
        self._begin_attempt = client.register_script(_BEGIN_ATTEMPT)
        self._delete = client.register_script(_DELETE)

    def _key(self, challenge_id: str) -> str:
        return self._prefix + hashed(challenge_id)

    async def put(self, challenge: MfaChallenge) -> None:
        ttl_ms = epoch_ms(challenge.expires_at) - epoch_ms(self._clock.now())
        if ttl_ms <= 0:
            return
        key = self._key(challenge.id)
        body = await self._seal(
            key, msgspec.json.encode(msgspec.structs.replace(challenge, attempts=0))
        )
        with redis_errors("MFA challenge"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(
                    key,
                    mapping={
                        "challenge": body,
                        "attempts": challenge.attempts,
                        "expires_at_ms": epoch_ms(challenge.expires_at),
                    },
                )
                pipe.pexpire(key, ttl_ms)
                await pipe.execute()

    async def get(self, challenge_id: str) -> MfaChallenge | None:
        with redis_errors("MFA challenge"):
            body, attempts, expires_at_ms, exhausted = await self._client.hmget(
                self._key(challenge_id), ["challenge", "attempts", "expires_at_ms", "exhausted"]
            )
        if body is None or expires_at_ms is None or exhausted is not None:
            return None
        if int(expires_at_ms) <= epoch_ms(self._clock.now()):
            return None
        return await self._decode(challenge_id, body, int(attempts or 0))

    async def begin_attempt(self, challenge_id: str, max_attempts: int) -> MfaChallenge | None:
        with redis_errors("MFA challenge"):
            found: Any = await self._begin_attempt(
                keys=[self._key(challenge_id)],
                args=[epoch_ms(self._clock.now()), max_attempts],
            )
        if not found:
            return None
        body, attempts = found
        return await self._decode(challenge_id, body, int(attempts))

    async def delete(self, challenge_id: str) -> bool:
        with redis_errors("MFA challenge"):
            removed = await self._delete(
                keys=[self._key(challenge_id)], args=[epoch_ms(self._clock.now())]
            )
        return bool(removed)

    async def _seal(self, key: str, body: bytes) -> bytes | str:
        if self._cipher is None:
            return body
        return await self._cipher.seal(body.decode(), _context(key))

    async def _decode(self, challenge_id: str, body: bytes | str, attempts: int) -> MfaChallenge:
        text = body.decode() if isinstance(body, bytes) else body
        if is_sealed(text):
            if self._cipher is None:
                raise SecretUnreadable("a sealed challenge needs the store's cipher")
            text = await self._cipher.open(text, _context(self._key(challenge_id)))
        challenge = msgspec.json.decode(text, type=MfaChallenge)
        return msgspec.structs.replace(challenge, attempts=attempts)


def _context(key: str) -> str:
    return f"mfa_challenge/{key}"
