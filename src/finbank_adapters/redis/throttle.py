"""``RedisLoginThrottle``: failure counters and locks per account, updated by one Lua script.

Times come from the injected clock (passed to the script), so every app
server agrees on the policy whatever Redis's own clock says.
"""

from __future__ import annotations

import math
import secrets

from redis.asyncio import Redis

from finbank_adapters.redis.errors import epoch_ms, hashed, redis_errors
from finbank_core.auth.errors import AccountLocked
from finbank_core.auth.lockout import LockoutPolicy
from finbank_core.auth.ports import ATTEMPT_LEASE_SECONDS
from finbank_core.shared.clock import Clock

# KEYS[1] account hash. ARGV: now_ms, max_failures, window_ms, lock_ms, exponential (0/1),
# max_lock_ms, history_ms. Mirrors InMemoryLoginThrottle.record_failure.
_RECORD_FAILURE = """
local now = tonumber(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'failures', 'window_ends_ms', 'locked_until_ms', 'locks',
                     'forget_at_ms')
local failures = tonumber(s[1]) or 0
local window_ends = tonumber(s[2]) or 0
local locked_until = tonumber(s[3]) or 0
local locks = tonumber(s[4]) or 0
local forget_at = tonumber(s[5]) or 0
if forget_at > 0 and now >= forget_at and now >= locked_until then
  failures = 0; window_ends = 0; locked_until = 0; locks = 0
end
if now >= window_ends then
  failures = 0
  window_ends = now + tonumber(ARGV[3])
end
failures = failures + 1
if failures >= tonumber(ARGV[2]) then
  local lock = tonumber(ARGV[4])
  if ARGV[5] == '1' then
    lock = math.min(lock * math.pow(2, math.min(locks, 32)), tonumber(ARGV[6]))
  end
  locked_until = now + lock
  locks = locks + 1
  failures = 0
  window_ends = 0
end
forget_at = now + tonumber(ARGV[7])
redis.call('HSET', KEYS[1], 'failures', failures, 'window_ends_ms', window_ends,
           'locked_until_ms', locked_until, 'locks', locks, 'forget_at_ms', forget_at)
redis.call('PEXPIRE', KEYS[1], math.max(forget_at, locked_until) - now)
return locked_until
"""


# KEYS[1] account hash, KEYS[2] its tries (a sorted set: token -> when it stops
# counting). ARGV: now_ms, max_failures, lease_ms, token. Mirrors
# InMemoryLoginThrottle.begin_attempt: the lock's end (ms) if locked, -1 if the tries
# held and the failures counted reach max_failures, else 0 (the try ``token`` held).
_BEGIN_ATTEMPT = """
local now = tonumber(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'failures', 'window_ends_ms', 'locked_until_ms')
local locked_until = tonumber(s[3]) or 0
if locked_until > now then return locked_until end
local failures = tonumber(s[1]) or 0
if now >= (tonumber(s[2]) or 0) then failures = 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if failures + redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return -1 end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], now + lease, ARGV[4])
redis.call('PEXPIRE', KEYS[2], lease)
return 0
"""

# KEYS[1] account hash, KEYS[2] its tries. ARGV: as _RECORD_FAILURE's, then the token,
# then 1 to count a failure. The failure is counted and the try given back in one step.
_END_ATTEMPT = (
    "if ARGV[9] == '1' then\n"
    + _RECORD_FAILURE.strip().removesuffix("return locked_until").rstrip()
    + "\nend\nredis.call('ZREM', KEYS[2], ARGV[8])\nreturn 0\n"
)


class RedisLoginThrottle:
    def __init__(
        self,
        client: Redis,
        clock: Clock,
        policy: LockoutPolicy | None = None,
        *,
        key_prefix: str = "finbank:",
    ) -> None:
        self._client = client
        self._clock = clock
        self._policy = policy or LockoutPolicy()
        self._prefix = f"{key_prefix}lockout:"
        self._record_failure = client.register_script(_RECORD_FAILURE)
        self._begin_attempt = client.register_script(_BEGIN_ATTEMPT)
        self._end_attempt = client.register_script(_END_ATTEMPT)

    def _key(self, account: str) -> str:
        return self._prefix + hashed(account)

    async def ensure_not_locked(self, account: str) -> None:
        with redis_errors("login throttle"):
            locked_until = await self._client.hget(self._key(account), "locked_until_ms")
        now_ms = epoch_ms(self._clock.now())
        if locked_until is not None and int(locked_until) > now_ms:
            retry_after = math.ceil((int(locked_until) - now_ms) / 1000)
            raise AccountLocked(retry_after_seconds=max(1, retry_after))

    async def record_failure(self, account: str) -> None:
        with redis_errors("login throttle"):
            await self._record_failure(keys=[self._key(account)], args=self._failure_args())

    def _failure_args(self) -> list[int]:
        p = self._policy
        return [
            epoch_ms(self._clock.now()),
            p.max_failures,
            p.failure_window_seconds * 1000,
            p.lock_seconds * 1000,
            1 if p.exponential else 0,
            p.max_lock_seconds * 1000,
            p.history_seconds * 1000,
        ]

    async def record_success(self, account: str) -> None:
        with redis_errors("login throttle"):
            await self._client.delete(self._key(account))

    async def begin_attempt(self, account: str) -> str:
        now_ms = epoch_ms(self._clock.now())
        token = secrets.token_hex(8)
        key = self._key(account)
        with redis_errors("login throttle"):
            answer = await self._begin_attempt(
                keys=[key, key + ":tries"],
                args=[now_ms, self._policy.max_failures, ATTEMPT_LEASE_SECONDS * 1000, token],
            )
        locked_until = int(answer)
        if locked_until == -1:  # the tries left are all being checked
            raise AccountLocked(retry_after_seconds=1)
        if locked_until > 0:
            raise AccountLocked(
                retry_after_seconds=max(1, math.ceil((locked_until - now_ms) / 1000))
            )
        return token

    async def end_attempt(self, account: str, token: str, *, failed: bool) -> None:
        key = self._key(account)
        with redis_errors("login throttle"):
            await self._end_attempt(
                keys=[key, key + ":tries"], args=[*self._failure_args(), token, int(failed)]
            )
