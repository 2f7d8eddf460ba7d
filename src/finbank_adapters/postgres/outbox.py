"""The transactional outbox on PostgreSQL: ``PostgresOutbox`` (relays) and
``PostgresEventPublisher`` (the ``EventPublisher`` port, writing to the outbox).

Writers (the ledger inside its transaction, the publisher in its own) append
through ``outbox_append`` (migration ``0001_outbox.sql``), which takes a
transaction-scoped advisory lock per aggregate before inserting: two
transactions writing events of one aggregate commit in the order they drew
outbox ids, so id order *is* the aggregate's order.

Relays claim with ``FOR UPDATE SKIP LOCKED``, by aggregate: a claim starts at
an aggregate's *head* (its earliest unpublished item) only when the head is
not leased, and takes the head and the items after it. An aggregate's other
items are never heads while the head is unpublished, so two relays never hold
items of one aggregate at once, and each relay publishes its items in id
order. A lease (``claimed_until`` on the injected clock) that runs out makes
the head claimable again: a crashed relay's items are re-delivered, in order,
by another. A lease must outlast publishing a batch, or two relays may
deliver the same items (consumers deduplicate on ``event_id`` anyway).

``mark_published`` deletes (migration ``0008``): the outbox is the queue of
what is still to be published, so a published event costs one dead tuple and
no index entry, and the lease update (no indexed column) is HOT. A claim of
``limit`` looks for heads among the oldest ``4 * limit`` unleased items
only: when a backlog waits behind leased heads the claim comes back short
(cheaply) instead of scanning all of it, and the items behind get their turn
as the leased ones are published.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta

import asyncpg

from finbank_adapters import tracing
from finbank_adapters.postgres.errors import translated
from finbank_adapters.postgres.ledger import event_columns
from finbank_core.shared.clock import Clock
from finbank_core.shared.events import EventEnvelope
from finbank_core.shared.outbox import OutboxItem

#: a claim looks for heads among this many times ``limit`` of the oldest unleased items
_WINDOW = 4

_CLAIM = """
WITH heads AS (
    -- heads among the oldest $5 unleased items only: a claim's cost stays bounded
    -- when most of the backlog waits behind leased heads (it then comes back short
    -- or empty, and the items behind get their turn as the leased ones are published)
    SELECT o.id, o.aggregate_id
      FROM outbox o
     WHERE o.id <= (SELECT max(w.id) FROM (SELECT c.id FROM outbox c
                                            WHERE c.claimed_until IS NULL
                                               OR c.claimed_until <= $1
                                            ORDER BY c.id
                                            LIMIT $5) w)
       AND (o.claimed_until IS NULL OR o.claimed_until <= $1)  -- re-checked on lock
       AND NOT EXISTS (SELECT 1 FROM outbox p
                        WHERE p.aggregate_id = o.aggregate_id AND p.id < o.id)
     ORDER BY o.id
     LIMIT $2
       FOR UPDATE SKIP LOCKED
), batch AS (
    -- per head, an index scan of its aggregate's unpublished items (never the whole
    -- outbox), a fair share of the batch each: what is left waits for the next claim
    SELECT b.id
      FROM heads h
     CROSS JOIN LATERAL (
            SELECT o.id
              FROM outbox o
             WHERE o.aggregate_id = h.aggregate_id
             ORDER BY o.id
             LIMIT greatest(1, $2 / nullif((SELECT count(*) FROM heads), 0))
           ) b
     ORDER BY b.id
     LIMIT $2
)
UPDATE outbox o
   SET claimed_by = $3, claimed_until = $4, attempts = o.attempts + 1
 WHERE o.id = ANY (ARRAY(SELECT id FROM batch))
RETURNING o.id, o.topic, o.aggregate_id, o.envelope
"""


class PostgresOutbox:
    """Claim / mark-published access to the outbox for relays (the ``Outbox`` port)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        *,
        relay_id: str | None = None,
        lease_seconds: float = 30.0,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self.relay_id = relay_id or f"relay-{secrets.token_hex(4)}"
        self._lease = timedelta(seconds=lease_seconds)

    async def claim_batch(self, limit: int = 100) -> list[OutboxItem]:
        if limit <= 0:
            return []
        now = self._clock.now()
        with translated():
            rows = await self._pool.fetch(
                _CLAIM, now, limit, self.relay_id, now + self._lease, limit * _WINDOW
            )
        items = [
            OutboxItem(
                id=row["id"],
                topic=row["topic"],
                aggregate_id=row["aggregate_id"],
                envelope=row["envelope"],
            )
            for row in rows
        ]
        items.sort(key=lambda item: item.id)
        return items

    async def mark_published(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        with translated():
            status: str = await self._pool.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])", list(ids)
            )
        return int(status.rsplit(" ", 1)[-1])

    async def unpublished_count(self) -> int:
        """How many items wait to be published (for readiness checks and tests)."""
        with translated():
            count: int = await self._pool.fetchval("SELECT count(*) FROM outbox")
        return count


class PostgresEventPublisher:
    """The ``EventPublisher`` port: events go to the outbox, in their own transaction.

    A relay then publishes them. Re-publishing an event with the same
    ``event_id`` stores it once. With tracing on, each event is stored with
    its creation context in ``headers`` (``finbank_adapters.tracing``).
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def publish(self, events: Sequence[EventEnvelope]) -> None:
        if not events:
            return
        # tracing on: a create span per event around the append, its context in the headers
        events, creation = tracing.start_creation(events)
        try:
            with translated():
                await self._pool.fetchval(
                    "SELECT outbox_append($1, $2, $3, $4, $5, $6)", *event_columns(events)
                )
        except BaseException as exc:
            if creation is not None:
                creation.end(exc)
            raise
        if creation is not None:
            creation.end()
