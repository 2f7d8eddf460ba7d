"""The outbox port: events stored with the change they describe, drained by relays.

A relay claims a batch, publishes it (e.g. to Kafka), then marks it
published. Claims are leases: a relay that crashes leaves its claims to
expire, and another relay takes them over, so delivery is at least once and
consumers deduplicate on ``event_id``. Within one aggregate, items are handed
out in order and never to two relays at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from finbank_core.shared.events import EventEnvelope, decode_event, encode_event


class OutboxItem(msgspec.Struct, frozen=True, kw_only=True):
    """One stored event; ``id`` orders the outbox (it is what ``mark_published`` takes).

    ``envelope`` is the event's msgspec JSON as stored, byte for byte: a relay
    sends it as it is, without decoding and re-encoding it.
    """

    id: int
    topic: str
    aggregate_id: str
    envelope: bytes

    @classmethod
    def of(cls, id: int, event: EventEnvelope, topic: str | None = None) -> OutboxItem:
        return cls(
            id=id,
            topic=topic or event.topic(),
            aggregate_id=event.aggregate_id,
            envelope=encode_event(event),
        )

    @property
    def event(self) -> EventEnvelope:
        """The envelope decoded (on every access)."""
        return decode_event(self.envelope)


class Outbox(Protocol):
    async def claim_batch(self, limit: int = 100) -> list[OutboxItem]:
        """Lease up to ``limit`` unpublished items, oldest first, in order per aggregate.

        Never returns an item while an earlier item of the same aggregate is
        unpublished and leased to another relay. Raises ``ServiceUnavailable``.
        """
        ...

    async def mark_published(self, ids: Sequence[int]) -> int:
        """Record that these items reached the bus (they leave the outbox).

        Returns how many were still unpublished (0 for items another relay
        already marked after their lease lapsed).
        """
        ...
