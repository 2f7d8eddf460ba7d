"""``PendingHoldsSource`` on PostgreSQL: two-phase transfers of an account and their fate.

``timeout_seconds`` is a u32 kept with its bit pattern in an integer column
(migration 0010): the query reads it back unsigned.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg

from finbank_adapters.postgres.errors import translated
from finbank_core.reconciliation.model import Direction, PendingHold

_PENDING_FLAG = 2
_QUERY = """
SELECT t.id, t.amount, t.credit_account_id = $1 AS outgoing, t.created_at,
       t.timeout_seconds::bigint & 4294967295 AS timeout_seconds, t.status,
       r.id AS resolved_by
FROM ledger_transfers t
LEFT JOIN ledger_transfers r ON r.pending_id = t.id
WHERE t.flags & $4 = $4
  AND (t.credit_account_id = $1 OR t.debit_account_id = $1)
  AND t.created_at >= $2 AND t.created_at < $3
ORDER BY t.created_at, t.id
"""


class PostgresPendingHolds:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def pending_holds(
        self, account_id: uuid.UUID, start: datetime, end: datetime
    ) -> AsyncIterator[PendingHold]:
        with translated():
            rows = await self._pool.fetch(_QUERY, account_id, start, end, _PENDING_FLAG)
        for row in rows:
            yield PendingHold(
                transfer_id=row["id"],
                amount_cents=row["amount"],
                direction=Direction.OUT if row["outgoing"] else Direction.IN,
                created_at=row["created_at"],
                timeout_seconds=row["timeout_seconds"],
                status=row["status"],
                resolved_by=row["resolved_by"],
            )
