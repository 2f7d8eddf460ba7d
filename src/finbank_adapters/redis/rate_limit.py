"""Litestar's ``RedisStore`` for the rate limiter, failing closed like the other Redis adapters.

Without this, a Redis outage would surface from the rate-limit middleware as
an unexpected error (500); here it is ``ServiceUnavailable`` (503).
Imported only when the HTTP extra is installed.
"""

from __future__ import annotations

from datetime import timedelta

from finbank_adapters._extras import require_extra

require_extra("finbank_adapters.redis.rate_limit", "http", ["litestar"])

from litestar.stores.redis import RedisStore  # noqa: E402

from finbank_adapters.redis.errors import redis_errors  # noqa: E402


class FailClosedRedisStore(RedisStore):
    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        with redis_errors("rate limit"):
            await super().set(key, value, expires_in)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        with redis_errors("rate limit"):
            return await super().get(key, renew_for)

    async def delete(self, key: str) -> None:
        with redis_errors("rate limit"):
            await super().delete(key)

    async def exists(self, key: str) -> bool:
        with redis_errors("rate limit"):
            return await super().exists(key)

    async def expires_in(self, key: str) -> int | None:
        with redis_errors("rate limit"):
            return await super().expires_in(key)
