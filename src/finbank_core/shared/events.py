"""The event envelope every context publishes, and the publisher port."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import msgspec

LEDGER_TOPIC = "finbank.ledger.v1"
PIX_TOPIC = "finbank.pix.v1"
AUTH_TOPIC = "finbank.auth.v1"


class EventEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """One domain event, as published on the bus and stored in the outbox.

    ``aggregate_id`` is the partition key, so events of one aggregate keep
    their order; ``event_id`` (UUIDv7) is what consumers deduplicate on.
    ``payload`` holds only JSON-compatible values and never secrets.

    ``headers`` is metadata that travels with the event but is not part of
    it: opaque string pairs that the core never reads. Adapters set and read
    them; today the W3C trace context (``traceparent``, ``tracestate``) when
    tracing is on. Left unset it is not encoded at all, so an envelope
    without headers is byte for byte what it was before they existed.
    """

    event_id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    aggregate_id: str
    correlation_id: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    headers: dict[str, str] | msgspec.UnsetType = msgspec.UNSET

    def header(self, name: str) -> str | None:
        """The value of header ``name``, or ``None`` (no such header, or none at all)."""
        if self.headers is msgspec.UNSET:
            return None
        return self.headers.get(name)

    def with_headers(self, headers: Mapping[str, str]) -> EventEnvelope:
        """A copy carrying ``headers`` over its own (same id: the same event)."""
        current = {} if self.headers is msgspec.UNSET else self.headers
        return msgspec.structs.replace(self, headers={**current, **headers})

    def topic(self) -> str:
        """The topic this event belongs on, by the prefix of its type."""
        prefix = self.type.split(".", 1)[0]
        return {"pix": PIX_TOPIC, "auth": AUTH_TOPIC}.get(prefix, LEDGER_TOPIC)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(EventEnvelope)


def encode_event(event: EventEnvelope) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes) -> EventEnvelope:
    """Decode an envelope; raises ``msgspec.ValidationError``/``DecodeError`` if malformed."""
    return _decoder.decode(data)


class EventPublisher(Protocol):
    """Publishes domain events, at least once, in the order given per aggregate."""

    async def publish(self, events: Sequence[EventEnvelope]) -> None:
        """Publish ``events``; raises ``ServiceUnavailable`` if they could not be accepted."""
        ...
