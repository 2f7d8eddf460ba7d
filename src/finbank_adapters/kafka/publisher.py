"""``KafkaEventPublisher``: the ``EventPublisher`` port on an aiokafka producer.

Each event becomes one record: key = ``aggregate_id`` (so one aggregate's
events share a partition and keep their order), value = the msgspec JSON
envelope, headers = type, version, event id and correlation id (consumers
can route or filter without decoding), and the envelope's W3C trace context
(``traceparent``, ``tracestate``) when it carries one. ``publish`` returns only once the
broker acknowledged every record (``acks`` per :class:`KafkaSettings`).

Ordering: records are handed to the producer in the given order; aiokafka
keeps at most one batch in flight per partition, so retries inside the
producer do not reorder them. A batch that finally fails makes ``publish``
raise ``ServiceUnavailable``; some records of the call may have been written
(at least once: callers re-publish, consumers deduplicate on ``event_id``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import msgspec
from aiokafka import AIOKafkaProducer

from finbank_adapters import tracing
from finbank_adapters.kafka.errors import translated
from finbank_adapters.tracing import TRACE_HEADERS
from finbank_core.shared.events import EventEnvelope, encode_event

Headers = list[tuple[str, bytes]]

HEADER_EVENT_ID = "event_id"
HEADER_TYPE = "type"
HEADER_VERSION = "version"
HEADER_CORRELATION_ID = "correlation_id"


def event_key(event: EventEnvelope) -> bytes:
    return event.aggregate_id.encode()


def _headers(
    event_id: str,
    type: str,
    version: int,
    correlation_id: str | None,
    carried: Mapping[str, str] | None = None,
) -> Headers:
    headers: Headers = [
        (HEADER_EVENT_ID, event_id.encode()),
        (HEADER_TYPE, type.encode()),
        (HEADER_VERSION, str(version).encode()),
    ]
    if correlation_id is not None:
        headers.append((HEADER_CORRELATION_ID, correlation_id.encode()))
    if carried:
        # the envelope's W3C trace context, for tools that read record headers only
        headers.extend((name, carried[name].encode()) for name in TRACE_HEADERS if name in carried)
    return headers


def event_headers(event: EventEnvelope) -> Headers:
    """The record headers of ``event``; ``correlation_id`` only when it has one, the
    trace context (``traceparent``, ``tracestate``) only when the envelope carries it."""
    carried = None if event.headers is msgspec.UNSET else event.headers
    return _headers(str(event.event_id), event.type, event.version, event.correlation_id, carried)


class _HeaderFields(msgspec.Struct):
    """What the headers need of an encoded envelope (decoding skips the rest)."""

    event_id: str
    type: str
    version: int
    correlation_id: str | None = None
    headers: dict[str, str] | None = None


_header_fields = msgspec.json.Decoder(_HeaderFields)


def envelope_headers(envelope: bytes) -> Headers:
    """The record headers of an encoded envelope: the same as :func:`event_headers`.

    None for bytes that are not an envelope: such a record still goes out,
    and its consumers' runners park it in their DLQ, rather than blocking
    the outbox behind it.
    """
    try:
        fields = _header_fields.decode(envelope)
    except msgspec.DecodeError:  # ValidationError is a DecodeError
        return []
    return _headers(
        fields.event_id, fields.type, fields.version, fields.correlation_id, fields.headers
    )


async def send_event(
    producer: AIOKafkaProducer, topic: str, event: EventEnvelope
) -> asyncio.Future[object]:
    """Hand one event to the producer's buffer; returns its delivery future.

    Raises (untranslated) if the producer refuses it before buffering
    (metadata timeout, producer closed).
    """
    future: asyncio.Future[object] = await producer.send(
        topic, encode_event(event), key=event_key(event), headers=event_headers(event)
    )
    return future


async def send_envelope(
    producer: AIOKafkaProducer, topic: str, aggregate_id: str, envelope: bytes
) -> asyncio.Future[object]:
    """Like :func:`send_event` for an envelope already encoded (an outbox item's bytes)."""
    future: asyncio.Future[object] = await producer.send(
        topic, envelope, key=aggregate_id.encode(), headers=envelope_headers(envelope)
    )
    return future


class KafkaEventPublisher:
    """Publishes events to Kafka and waits for the broker's acknowledgement.

    Takes an already-started producer (see :func:`~finbank_adapters.kafka.clients.open_producer`);
    ``topic_prefix`` namespaces topics (``KafkaSettings.topic_prefix``).
    """

    def __init__(self, producer: AIOKafkaProducer, *, topic_prefix: str = "") -> None:
        self._producer = producer
        self._topic_prefix = topic_prefix

    async def publish(self, events: Sequence[EventEnvelope]) -> None:
        if not events:
            return
        events = tracing.stamp(events)  # tracing on: each event gets its creation context
        records = [(f"{self._topic_prefix}{event.topic()}", event) for event in events]
        with translated():
            futures = [await send_event(self._producer, topic, e) for topic, e in records]
            await asyncio.gather(*futures)
