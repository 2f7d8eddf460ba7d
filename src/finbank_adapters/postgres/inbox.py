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

``process_once`` opens the transaction and records the event in one round
trip (``BEGIN; INSERT ...`` as one simple-protocol query, the values as
literals: a consumer name of plain characters, a UUID and an ISO timestamp,
nothing a caller could inject), then runs the effect and commits: two round
trips around the effect rather than three. A consumer name with other
characters takes the parameterized path (``BEGIN``, the row, ``COMMIT``).
"""

from __future__ import annotations

import contextlib
import re
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


#: consumer names written as a literal by the one-round-trip BEGIN + record
_PLAIN_NAME = re.compile(r"[A-Za-z0-9._:-]{1,200}")


_BEGIN_AND_RECORD = """
BEGIN;
INSERT INTO inbox (consumer, event_id, processed_at) VALUES ($values)
ON CONFLICT (consumer, event_id) DO NOTHING
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
        #: the consumer as an SQL literal, when its characters allow one
        self._literal = f"'{consumer}'" if _PLAIN_NAME.fullmatch(consumer) else None

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
        begin_and_record = self._begin_and_record(event.event_id)
        with translated():
            async with self._pool.acquire() as conn:
                if begin_and_record is None:
                    async with conn.transaction():
                        if not await self.record(conn, event.event_id):
                            return False
                        await effect(conn)
                    return True
                try:
                    # one round trip: the transaction opens with the event's row in it
                    recorded = (await conn.execute(begin_and_record)) == "INSERT 0 1"
                    if recorded:
                        await effect(conn)
                except BaseException:
                    if conn.is_in_transaction():
                        with contextlib.suppress(Exception):  # the pool's reset rolls back too
                            await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")
        return recorded

    def _begin_and_record(self, event_id: uuid.UUID) -> str | None:
        """``BEGIN`` and the event's row as one simple query; None if it cannot be a literal."""
        now = self._clock.now()
        if self._literal is None or now.tzinfo is None:
            return None
        # uuid.UUID and datetime.isoformat() print hex digits, dashes, digits, T, :, . and +
        values = f"{self._literal}, '{uuid.UUID(str(event_id))}', '{now.isoformat()}'"
        return _BEGIN_AND_RECORD.replace("$values", values)

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
