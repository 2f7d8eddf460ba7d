"""``PostgresTokenDenylist``: revoked token ids and sessions in ``auth_revocations``.

The durable source of truth of the denylist. On its own it answers every
check with one indexed lookup; in the local and aws profiles Redis sits in
front of it (:class:`finbank_adapters.redis.denylist.RedisCachedTokenDenylist`)
and comes back here only when its cache is cold or Redis is down.

Ids are stored as their sha256 digest (the same digest the Redis keys carry),
so the table holds no bearer ids. Time is the injected clock's.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import asyncpg

from finbank_adapters.postgres.errors import translated
from finbank_core.shared.clock import Clock

_REVOKE = (
    "INSERT INTO auth_revocations (token_hash, expires_at, revoked_at) VALUES ($1, $2, $3)"
    " ON CONFLICT (token_hash) DO UPDATE"
    " SET expires_at = GREATEST(auth_revocations.expires_at, EXCLUDED.expires_at),"
    " revoked_at = GREATEST(auth_revocations.revoked_at, EXCLUDED.revoked_at)"
)
_IS_REVOKED = (
    "SELECT EXISTS (SELECT 1 FROM auth_revocations"
    " WHERE token_hash = ANY($1::text[]) AND expires_at > $2)"
)
_PRUNE = "DELETE FROM auth_revocations WHERE expires_at <= $1"
_ACTIVE = "SELECT token_hash, expires_at FROM auth_revocations WHERE expires_at > $1"
_SINCE = _ACTIVE + " AND revoked_at >= $2"


def token_digest(token_id: str) -> str:
    """The stored form of an id: its sha256, hex (the Redis keys use the same)."""
    return hashlib.sha256(token_id.encode()).hexdigest()


class PostgresTokenDenylist:
    def __init__(self, pool: asyncpg.Pool, clock: Clock) -> None:
        self._pool = pool
        self._clock = clock

    async def revoke(self, token_id: str, expires_at: datetime) -> None:
        if expires_at <= self._clock.now():
            return
        with translated():
            # ON CONFLICT keeps the later expiry when an id is revoked twice, even
            # when both revocations race (the row lock orders them).
            await self._pool.execute(_REVOKE, token_digest(token_id), expires_at, self._clock.now())

    async def is_revoked(self, *token_ids: str) -> bool:
        if not token_ids:
            return False
        with translated():
            revoked: bool = await self._pool.fetchval(
                _IS_REVOKED, [token_digest(t) for t in token_ids], self._clock.now()
            )
        return revoked

    async def active(self, revoked_since: datetime | None = None) -> list[tuple[str, datetime]]:
        """``(digest, expires_at)`` of the revocations still in force; forgets the expired.

        All of them, or only those revoked at or after ``revoked_since``.
        """
        now = self._clock.now()
        with translated():
            await self._pool.execute(_PRUNE, now)
            if revoked_since is None:
                rows = await self._pool.fetch(_ACTIVE, now)
            else:
                rows = await self._pool.fetch(_SINCE, now, revoked_since)
        return [(row["token_hash"], row["expires_at"]) for row in rows]
