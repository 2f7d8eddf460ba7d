"""``PostgresRequestClaims``: in-flight claims of idempotent requests (migration ``0012``).

One row per claim in ``pix_request_claims``: the holder's ``token`` and the
lease end ``lease_until``. Taking a claim is one upsert, ``INSERT ... ON
CONFLICT DO UPDATE ... WHERE lease_until <= now``: the row lock makes
concurrent callers queue, and each sees the lease the one before left, so
exactly one holds it. Releasing deletes the row if the token is still ours.
A claim left by a crashed holder frees itself when its lease ends (the
next ``acquire`` overwrites it); ``now`` is the caller's injected clock.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from finbank_adapters.postgres.errors import translated

_ACQUIRE = """
INSERT INTO pix_request_claims AS c (claim_id, token, lease_until) VALUES ($1, $2, $4)
ON CONFLICT (claim_id) DO UPDATE SET token = EXCLUDED.token, lease_until = EXCLUDED.lease_until
WHERE c.lease_until <= $3
RETURNING true
"""
_RELEASE = "DELETE FROM pix_request_claims WHERE claim_id = $1 AND token = $2"


class PostgresRequestClaims:
    """``RequestClaims`` on PostgreSQL (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def acquire(self, claim_id: str, token: str, *, now: datetime, until: datetime) -> bool:
        with translated():
            taken = await self._pool.fetchval(_ACQUIRE, claim_id, token, now, until)
        return taken is not None

    async def release(self, claim_id: str, token: str) -> None:
        with translated():
            await self._pool.execute(_RELEASE, claim_id, token)
