"""Redis adapters: MFA challenges, lockout counters, token denylist, refresh families.

They receive an open ``redis.asyncio.Redis`` client and a key prefix; every
Redis failure becomes ``ServiceUnavailable`` (see :mod:`.errors`), so the
service fails closed when Redis is down. The one exception is
``RedisCachedTokenDenylist``, a cache in front of a durable source: without
Redis it asks the source.
"""

from finbank_adapters._extras import require_extra

require_extra("finbank_adapters.redis", "redis", ["redis"])

from finbank_adapters.redis.challenges import RedisChallengeStore  # noqa: E402
from finbank_adapters.redis.denylist import RedisCachedTokenDenylist, RedisTokenDenylist  # noqa: E402
from finbank_adapters.redis.refresh_tokens import RedisRefreshTokenStore  # noqa: E402
from finbank_adapters.redis.throttle import RedisLoginThrottle  # noqa: E402

__all__ = [
    "RedisCachedTokenDenylist",
    "RedisChallengeStore",
    "RedisLoginThrottle",
    "RedisRefreshTokenStore",
    "RedisTokenDenylist",
]
