"""``PostgresInbox``: exactly-once effects for at-least-once consumers.

A consumer records each event's ``event_id`` in the ``inbox`` table
(migration ``0005_inbox.sql``) *in the same transaction* as the event's
effect. If the event was recorded before, the effect is skipped; if the
transaction rolls back, the record goes with it and a redelivery applies the
effect then. Two deliveries of one event racing each other serialize on the
primary key: the second waits for the first to commit, then skips.

Use :meth:`PostgresInbox.process_once` when the effect is database work on
the connection it is given, or :meth:`PostgresInbox.record` inside a
transaction of your own.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from finbank_adapters.postgres.errors import translated
from finbank_core.shared.clock import Clock
from finbank_core.shared.events import EventEnvelope

#: a connection of the pool or a bare one; either way inside the caller's transaction
Connection = asyncpg.Connection | PoolConnectionProxy
Effect = Callable[[Connection], Awaitable[None]]

_RECORD = """
INSERT INTO inbox (consumer, event_id, processed_at) VALUES ($1, $2, $3)
ON CONFLICT (consumer, event_id) DO NOTHING
RETURNING true
"""


class InboxNeedsTransaction(RuntimeError):
    """``record`` was called outside a transaction, where it could not protect the effect."""


class PostgresInbox:
    """The processed-event log of one consumer (``consumer`` names it, e.g. its group id)."""

    def __init__(self, pool: asyncpg.Pool, consumer: str, clock: Clock) -> None:
        if not consumer:
            raise ValueError("an inbox needs a consumer name")
        self._pool = pool
        self.consumer = consumer
        self._clock = clock

    async def record(self, conn: Connection, event_id: uuid.UUID) -> bool:
        """Record ``event_id`` in ``conn``'s open transaction; False if it was processed before.

        Apply the effect only when this returns True, in the same transaction.
        """
        if not conn.is_in_transaction():
            raise InboxNeedsTransaction("inbox.record must run inside the effect's transaction")
        with translated():
            inserted: bool | None = await conn.fetchval(
                _RECORD, self.consumer, event_id, self._clock.now()
            )
        return inserted is not None

    async def process_once(self, event: EventEnvelope, effect: Effect) -> bool:
        """Run ``effect(conn)`` and record ``event`` in one transaction, unless already done.

        Returns True if the effect ran now, False for a redelivery. An error
        from ``effect`` rolls both back and propagates.
        """
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                if not await self.record(conn, event.event_id):
                    return False
                await effect(conn)
        return True

    async def was_processed(self, event_id: uuid.UUID) -> bool:
        with translated():
            found: bool = await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2)",
                self.consumer,
                event_id,
            )
        return found

    async def purge_processed_before(self, cutoff: datetime) -> int:
        """Forget events processed before ``cutoff`` (older than the topic's retention)."""
        with translated():
            status: str = await self._pool.execute(
                "DELETE FROM inbox WHERE consumer = $1 AND processed_at < $2",
                self.consumer,
                cutoff,
            )
        return int(status.rsplit(" ", 1)[-1])
