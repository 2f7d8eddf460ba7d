"""The EventPublisher contract: what is published can be read back, in order, intact.

Each backend provides a publisher and a way to read what reached its sink.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from finbank_adapters.memory import FakeClock, InMemoryEventPublisher
from finbank_adapters.postgres import PostgresEventPublisher, PostgresOutbox
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


# -- many concurrent callers on the same aggregates and event ids -----------------------

CALLERS = 30


def distinct(delivered: list[EventEnvelope]) -> list[EventEnvelope]:
    """What a consumer that drops repeated event ids applies, in delivery order."""
    seen: set[uuid.UUID] = set()
    applied = []
    for e in delivered:
        if e.event_id not in seen:
            seen.add(e.event_id)
            applied.append(e)
    return applied


async def test_concurrent_batches_on_one_aggregate_all_arrive_each_in_its_order(
    harness: PublisherHarness,
) -> None:
    batches = [
        [event("acc-hot", n), event("acc-hot", n), event("acc-hot", n)] for n in range(CALLERS)
    ]

    await asyncio.gather(*(harness.publisher.publish(batch) for batch in batches))

    applied = distinct(await harness.delivered())
    assert sorted(e.event_id for e in applied) == sorted(e.event_id for b in batches for e in b)
    position = {e.event_id: i for i, e in enumerate(applied)}
    for batch in batches:
        assert [position[e.event_id] for e in batch] == sorted(position[e.event_id] for e in batch)
    originals = {e.event_id: e for b in batches for e in b}
    assert all(e == originals[e.event_id] for e in applied)  # intact


async def test_the_same_batch_published_by_many_callers_at_once_is_applied_once_in_order(
    harness: PublisherHarness,
) -> None:
    batch = [event("acc-1", 1), event("acc-2", 2), event("acc-1", 3), event("acc-1", 4)]

    await asyncio.gather(*(harness.publisher.publish(batch) for _ in range(CALLERS)))

    delivered = await harness.delivered()
    assert {e.event_id for e in delivered} == {e.event_id for e in batch}
    assert all(e in batch for e in delivered)  # copies are byte-for-byte the same event
    applied = distinct(delivered)
    assert [e for e in applied if e.aggregate_id == "acc-1"] == [batch[0], batch[2], batch[3]]


async def test_the_outbox_keeps_an_event_published_concurrently_exactly_once(
    postgres_dsn: str,
) -> None:
    async with isolated_schema(postgres_dsn, max_size=10) as (pool, _):
        publisher = PostgresEventPublisher(pool)
        batch = [event("acc-1", n) for n in range(5)]
        await asyncio.gather(*(publisher.publish(batch) for _ in range(CALLERS)))
        rows = await pool.fetch("SELECT event_id FROM outbox ORDER BY id")
        assert [row["event_id"] for row in rows] == [e.event_id for e in batch]


async def test_concurrent_relays_claim_each_outbox_item_once_in_order_per_aggregate(
    postgres_dsn: str,
) -> None:
    """8 relays drain one outbox at once: no item twice, no aggregate held by two relays,
    an aggregate's items claimed in their order."""
    async with isolated_schema(postgres_dsn, max_size=10) as (pool, _):
        publisher = PostgresEventPublisher(pool)
        aggregates = [f"acc-{a}" for a in range(6)]
        published = [event(aggregates[n % len(aggregates)], n % 60) for n in range(240)]
        for start in range(0, len(published), 20):
            await publisher.publish(published[start : start + 20])
        clock = FakeClock()  # leases never lapse: a claim is released only by its relay
        claimed: list[tuple[str, int, str]] = []  # (relay, outbox id, aggregate), claim order
        in_flight: dict[str, str] = {}  # aggregate -> the relay holding unmarked items of it

        async def relay(n: int) -> None:
            outbox = PostgresOutbox(pool, clock, relay_id=f"relay-{n}", lease_seconds=30)
            while True:
                items = await outbox.claim_batch(limit=7)
                if not items:
                    if await outbox.unpublished_count() == 0:
                        return
                    await asyncio.sleep(0)  # others hold what is left; let them finish
                    continue
                for item in items:
                    holder = in_flight.setdefault(item.aggregate_id, outbox.relay_id)
                    assert holder == outbox.relay_id, f"{item.aggregate_id} held by two relays"
                    claimed.append((outbox.relay_id, item.id, item.aggregate_id))
                for item in items:  # released before the mark: a stricter check
                    in_flight.pop(item.aggregate_id, None)
                await outbox.mark_published([item.id for item in items])

        await asyncio.gather(*(relay(n) for n in range(8)))

        ids = [outbox_id for _, outbox_id, _ in claimed]
        assert len(ids) == len(published) == len(set(ids))
        for aggregate in aggregates:
            mine = [outbox_id for _, outbox_id, agg in claimed if agg == aggregate]
            assert mine == sorted(mine)
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
