"""The EventPublisher contract: what is published can be read back, in order, intact.

Each backend provides a publisher and a way to read what reached its sink.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from finbank_adapters.memory import InMemoryEventPublisher
from finbank_adapters.postgres import PostgresEventPublisher
from finbank_core.shared.events import EventEnvelope, EventPublisher, decode_event, encode_event
from tests.contract.conftest import EVENT_PUBLISHER_BACKENDS
from tests.integration.kafka_fixtures import kafka_broker, kafka_settings, read_events
from tests.postgres_support import isolated_schema

__all__ = ["kafka_broker", "kafka_settings"]  # fixtures of the kafka harness


@dataclass
class PublisherHarness:
    publisher: EventPublisher
    delivered: Callable[[], Awaitable[list[EventEnvelope]]]


@pytest.fixture(params=[*EVENT_PUBLISHER_BACKENDS, "kafka"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[PublisherHarness]:
    if request.param == "memory":
        publisher = InMemoryEventPublisher()

        async def delivered() -> list[EventEnvelope]:
            return list(publisher.published)

        yield PublisherHarness(publisher, delivered)
    elif request.param == "postgres":
        async with isolated_schema(request.getfixturevalue("postgres_dsn")) as (pool, _):

            async def from_outbox() -> list[EventEnvelope]:
                rows = await pool.fetch("SELECT envelope FROM outbox ORDER BY id")
                return [decode_event(row["envelope"]) for row in rows]

            yield PublisherHarness(PostgresEventPublisher(pool), from_outbox)
    elif request.param == "kafka":
        from finbank_adapters.kafka import KafkaEventPublisher
        from finbank_adapters.kafka.clients import open_producer

        settings = request.getfixturevalue("kafka_settings")
        async with open_producer(settings) as producer:

            async def from_topic() -> list[EventEnvelope]:
                return await read_events(settings, "finbank.ledger.v1")

            kafka = KafkaEventPublisher(producer, topic_prefix=settings.topic_prefix)
            yield PublisherHarness(kafka, from_topic)
    else:  # pragma: no cover
        raise AssertionError(request.param)


def event(aggregate: str, n: int) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        type="ledger.test_event",
        version=1,
        occurred_at=datetime(2026, 1, 5, 12, n, tzinfo=UTC),
        aggregate_id=aggregate,
        correlation_id=f"corr-{n}",
        payload={"n": n, "nested": {"list": [1, 2]}},
    )


async def test_published_events_arrive_intact_and_in_order_per_aggregate(
    harness: PublisherHarness,
) -> None:
    events = [event("acc-1", 1), event("acc-2", 2), event("acc-1", 3)]
    await harness.publisher.publish(events[:2])
    await harness.publisher.publish(events[2:])
    delivered = await harness.delivered()
    assert [e for e in delivered if e.aggregate_id == "acc-1"] == [events[0], events[2]]
    assert events[1] in delivered


async def test_publishing_nothing_is_a_no_op(harness: PublisherHarness) -> None:
    await harness.publisher.publish([])
    assert await harness.delivered() == []


def test_envelope_round_trips_through_json() -> None:
    original = event("acc-9", 9)
    assert decode_event(encode_event(original)) == original
    assert original.topic() == "finbank.ledger.v1"
