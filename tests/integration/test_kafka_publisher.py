"""KafkaEventPublisher on a real broker: what is published is what a consumer reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from finbank_adapters.kafka import KafkaEventPublisher, KafkaSettings
from finbank_adapters.kafka.clients import open_producer
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.events import PIX_TOPIC, EventEnvelope, decode_event, encode_event
from tests.integration.kafka_fixtures import (
    free_port,
    kafka_broker,
    kafka_settings,
    kafka_test_settings,
    read_topics,
    start_broker_or_skip,
)

pytestmark = pytest.mark.services
__all__ = ["kafka_broker", "kafka_settings"]  # fixtures


def event(aggregate: str, n: int, *, type: str = "pix.payment_requested") -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        type=type,
        version=2,
        occurred_at=datetime(2026, 3, 1, 9, 30, n, tzinfo=UTC),
        aggregate_id=aggregate,
        correlation_id=f"req-{n}",
        payload={"n": n, "amount_cents": 1050, "e2e_id": "E9999999920260301093000000000001"},
    )


async def test_a_published_event_arrives_with_its_key_headers_and_envelope(
    kafka_settings: KafkaSettings,
) -> None:
    published = event("E2E-1", 1)
    async with open_producer(kafka_settings) as producer:
        await KafkaEventPublisher(producer, topic_prefix=kafka_settings.topic_prefix).publish(
            [published]
        )
    [record] = await read_topics(kafka_settings, [kafka_settings.topic(PIX_TOPIC)])
    assert record.topic == kafka_settings.topic("finbank.pix.v1")
    assert record.key == b"E2E-1"
    assert record.value == encode_event(published)
    assert decode_event(record.value) == published
    assert dict(record.headers) == {
        "event_id": str(published.event_id).encode(),
        "type": b"pix.payment_requested",
        "version": b"2",
        "correlation_id": b"req-1",
    }


async def test_an_event_without_correlation_has_no_correlation_header(
    kafka_settings: KafkaSettings,
) -> None:
    uncorrelated = EventEnvelope(
        event_id=uuid.uuid4(),
        type="ledger.deposit_made",
        version=1,
        occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
        aggregate_id="acc-1",
    )
    async with open_producer(kafka_settings) as producer:
        await KafkaEventPublisher(producer, topic_prefix=kafka_settings.topic_prefix).publish(
            [uncorrelated]
        )
    [record] = await read_topics(kafka_settings, [kafka_settings.topic("finbank.ledger.v1")])
    assert "correlation_id" not in dict(record.headers)
    assert decode_event(record.value) == uncorrelated


async def test_events_go_to_their_context_topic_and_keep_order_per_aggregate(
    kafka_settings: KafkaSettings,
) -> None:
    events = [
        event(f"acc-{n % 4}", n, type="ledger.deposit_made" if n % 3 else "auth.login_succeeded")
        for n in range(60)
    ]
    async with open_producer(kafka_settings) as producer:
        publisher = KafkaEventPublisher(producer, topic_prefix=kafka_settings.topic_prefix)
        await publisher.publish(events[:25])
        await publisher.publish(events[25:])
    ledger, auth = (kafka_settings.topic(t) for t in ("finbank.ledger.v1", "finbank.auth.v1"))
    records = await read_topics(kafka_settings, [ledger, auth])
    assert len(records) == len(events)
    assert {r.topic for r in records if decode_event(r.value).type.startswith("auth.")} == {auth}
    for aggregate in {e.aggregate_id for e in events}:
        for topic in (ledger, auth):
            read = [
                decode_event(r.value)
                for r in records
                if r.key == aggregate.encode() and r.topic == topic
            ]
            sent = [
                e
                for e in events
                if e.aggregate_id == aggregate and kafka_settings.topic(e.topic()) == topic
            ]
            assert read == sent


async def test_a_producer_that_cannot_reach_the_broker_raises_service_unavailable() -> None:
    settings = kafka_test_settings(f"127.0.0.1:{free_port()}", request_timeout_ms=1_000)
    with pytest.raises(ServiceUnavailable):
        async with open_producer(settings):
            pass


async def test_publishing_to_a_dead_broker_raises_service_unavailable() -> None:
    broker = start_broker_or_skip()
    try:
        settings = kafka_test_settings(broker.bootstrap, request_timeout_ms=1_000)
        async with open_producer(settings) as producer:
            publisher = KafkaEventPublisher(producer, topic_prefix=settings.topic_prefix)
            await publisher.publish([event("acc-1", 1)])
            broker.kill()
            with pytest.raises(ServiceUnavailable):
                await publisher.publish([event("acc-1", 2)])
    finally:
        broker.close()
