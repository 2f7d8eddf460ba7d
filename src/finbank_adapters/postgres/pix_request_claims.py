"""``PostgresRequestClaims``: in-flight claims of idempotent requests (migration ``0012``).

One row per claim in ``pix_request_claims``: the holder's ``token`` and the
lease end ``lease_until``. Taking a claim is one upsert, ``INSERT ... ON
CONFLICT DO UPDATE ... WHERE lease_until <= now``: the row lock makes
concurrent callers queue, and each sees the lease the one before left, so
exactly one holds it. Releasing deletes the row if the token is still ours.
A claim left by a crashed holder frees itself when its lease ends (the
next ``acquire`` overwrites it); ``now`` is the caller's injected clock.

``claim_unless_recorded`` is a PIX payment request's idempotency lookup and
its claim in one round trip (migration ``0023``, ``pix_claim_request``): the
``ClaimingLookup`` of :mod:`finbank_core.pix.use_cases.send`. It reads
``pix_payments``, so the claims and the payment records share a database, as
the container wires them (both follow ``FINBANK_PIX_BACKEND``).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from finbank_adapters.postgres.errors import translated
from finbank_core.pix.payments import PixPayment

_ACQUIRE = """
INSERT INTO pix_request_claims AS c (claim_id, token, lease_until) VALUES ($1, $2, $4)
ON CONFLICT (claim_id) DO UPDATE SET token = EXCLUDED.token, lease_until = EXCLUDED.lease_until
WHERE c.lease_until <= $3
RETURNING true
"""
_RELEASE = "DELETE FROM pix_request_claims WHERE claim_id = $1 AND token = $2"
_CLAIM_UNLESS_RECORDED = "SELECT body, taken FROM pix_claim_request($1, $2, $3, $4, $5, $6)"

_decoder = msgspec.json.Decoder(PixPayment)


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

    async def claim_unless_recorded(
        self,
        owner_id: str,
        idempotency_key: str,
        claim_id: str,
        token: str,
        *,
        now: datetime,
        until: datetime,
    ) -> tuple[PixPayment | None, bool]:
        """The payment recorded under ``(owner_id, idempotency_key)``, else the claim.

        ``(payment, False)``: recorded, no claim taken; ``(None, False)``: not
        recorded and another holder has the claim; ``(None, True)``: claim taken
        and still not recorded; ``(payment, True)``: claim taken, and the record
        committed meanwhile (its request answered): the caller replays it and
        releases the claim.
        """
        with translated():
            row = await self._pool.fetchrow(
                _CLAIM_UNLESS_RECORDED, owner_id, idempotency_key, claim_id, token, now, until
            )
        assert row is not None  # the function returns one row, always
        body: str | None = row["body"]
        return (None if body is None else _decoder.decode(body)), bool(row["taken"])
