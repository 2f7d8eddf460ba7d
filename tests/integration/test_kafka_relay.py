"""The outbox relay on real parts: PostgreSQL outbox -> relays -> Tansu -> read back."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest

from finbank.runtime import run_relay
from finbank_adapters.kafka import KafkaSettings, OutboxRelay
from finbank_adapters.kafka.clients import open_producer
from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres import PostgresEventPublisher, PostgresOutbox
from finbank_adapters.settings import RelayOptions, Settings, SettingsError
from finbank_adapters.system import SystemClock
from finbank_core.shared.events import LEDGER_TOPIC, EventEnvelope, decode_event
from tests.integration.kafka_fixtures import (
    kafka_broker,
    kafka_settings,
    kafka_test_settings,
    read_topics,
    start_broker_or_skip,
)
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres

pytestmark = pytest.mark.services
__all__ = ["kafka_broker", "kafka_settings"]  # fixtures


@pytest.fixture
async def schema_pool() -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    require_postgres()
    async with isolated_schema(max_size=6) as (pool, schema):
        yield pool, schema


def event(aggregate: str, n: int) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        type="ledger.deposit_made",
        version=1,
        occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
        aggregate_id=aggregate,
        payload={"n": n},
    )


async def fill_outbox(
    pool: asyncpg.Pool, aggregates: int, per_aggregate: int
) -> list[EventEnvelope]:
    events = [event(f"acc-{a}", n) for n in range(per_aggregate) for a in range(aggregates)]
    publisher = PostgresEventPublisher(pool)
    for start in range(0, len(events), 50):
        await publisher.publish(events[start : start + 50])
    return events


async def test_two_relays_drain_the_outbox_losing_nothing_and_keeping_order_per_aggregate(
    schema_pool: tuple[asyncpg.Pool, str], kafka_settings: KafkaSettings
) -> None:
    pool, _ = schema_pool
    # More aggregates than one relay can hold leased (two batches in flight and one
    # claimed ahead, 25 heads each), so the other relay has work from the start.
    events = await fill_outbox(pool, aggregates=200, per_aggregate=8)
    stop = asyncio.Event()
    relays: list[OutboxRelay] = []
    async with open_producer(kafka_settings) as p1, open_producer(kafka_settings) as p2:
        for name, producer in (("r1", p1), ("r2", p2)):
            outbox = PostgresOutbox(pool, SystemClock(), relay_id=name, lease_seconds=30)
            relays.append(
                OutboxRelay(
                    outbox,
                    producer,
                    batch_size=25,
                    idle_seconds=0.05,
                    topic_prefix=kafka_settings.topic_prefix,
                )
            )
        tasks = [asyncio.create_task(relay.run(stop)) for relay in relays]
        watcher = PostgresOutbox(pool, SystemClock(), relay_id="watcher")
        remaining = len(events)

        async def poll() -> None:
            nonlocal remaining
            while remaining:
                remaining = await watcher.unpublished_count()
                await asyncio.sleep(0.05)

        await asyncio.wait_for(poll(), 30)
        stop.set()
        await asyncio.gather(*tasks)

    assert sum(relay.published for relay in relays) == len(events)
    assert all(relay.published > 0 for relay in relays), (
        f"both relays took part: {[r.published for r in relays]}"
    )
    records = await read_topics(kafka_settings, [kafka_settings.topic(LEDGER_TOPIC)])
    read = [decode_event(r.value) for r in records]
    assert {e.event_id for e in read} == {e.event_id for e in events}  # nothing lost
    assert len(read) == len(events)  # and, without faults, nothing duplicated
    by_aggregate: dict[str, list[int]] = defaultdict(list)
    for e in read:
        by_aggregate[e.aggregate_id].append(e.payload["n"])
    assert all(ns == list(range(8)) for ns in by_aggregate.values())
    for record in records:  # one aggregate, one partition
        assert record.key == decode_event(record.value).aggregate_id.encode()


async def test_two_relays_publish_each_event_once_in_order_while_writers_append(
    schema_pool: tuple[asyncpg.Pool, str], kafka_settings: KafkaSettings
) -> None:
    """Relays claim while events are still being written (the production case): every
    event reaches Kafka exactly once and each aggregate's events arrive in the order
    they were written, whichever relay took which batch."""
    pool, _ = schema_pool
    writers, aggregates_per_writer, per_aggregate = 4, 25, 6
    written: list[EventEnvelope] = []

    async def writer(w: int) -> None:
        publisher = PostgresEventPublisher(pool)
        for n in range(per_aggregate):  # an aggregate's events in order, writers side by side
            batch = [event(f"w{w}-acc-{a}", n) for a in range(aggregates_per_writer)]
            for start in range(0, len(batch), 5):
                await publisher.publish(batch[start : start + 5])
                written.extend(batch[start : start + 5])
                await asyncio.sleep(0)

    stop = asyncio.Event()
    relays: list[OutboxRelay] = []
    async with open_producer(kafka_settings) as p1, open_producer(kafka_settings) as p2:
        for name, producer in (("r1", p1), ("r2", p2)):
            outbox = PostgresOutbox(pool, SystemClock(), relay_id=name, lease_seconds=30)
            relays.append(
                OutboxRelay(
                    outbox,
                    producer,
                    batch_size=10,
                    idle_seconds=0.01,
                    lease_seconds=30,
                    topic_prefix=kafka_settings.topic_prefix,
                )
            )
        tasks = [asyncio.create_task(relay.run(stop)) for relay in relays]
        await asyncio.gather(*(writer(w) for w in range(writers)))
        watcher = PostgresOutbox(pool, SystemClock(), relay_id="watcher")

        async def drained() -> None:
            while await watcher.unpublished_count():  # noqa: ASYNC110 - polls the database
                await asyncio.sleep(0.05)

        await asyncio.wait_for(drained(), 60)
        stop.set()
        await asyncio.gather(*tasks)

    total = writers * aggregates_per_writer * per_aggregate
    assert len(written) == total
    assert sum(relay.published for relay in relays) == total
    assert all(relay.published > 0 for relay in relays), [r.published for r in relays]
    assert sum(relay.lapsed + relay.unacknowledged for relay in relays) == 0
    records = await read_topics(kafka_settings, [kafka_settings.topic(LEDGER_TOPIC)])
    read = [decode_event(r.value) for r in records]
    ids = [e.event_id for e in read]
    assert len(ids) == len(set(ids)) == total  # each event once
    assert set(ids) == {e.event_id for e in written}
    by_aggregate: dict[str, list[int]] = defaultdict(list)
    for e in read:  # records come back in partition order: an aggregate lives in one
        by_aggregate[e.aggregate_id].append(e.payload["n"])
    assert len(by_aggregate) == writers * aggregates_per_writer
    assert all(ns == list(range(per_aggregate)) for ns in by_aggregate.values())


async def test_a_batch_the_broker_did_not_acknowledge_stays_unpublished(
    schema_pool: tuple[asyncpg.Pool, str],
) -> None:
    pool, _ = schema_pool
    broker = start_broker_or_skip()
    try:
        settings = kafka_test_settings(broker.bootstrap, request_timeout_ms=1_000)
        await fill_outbox(pool, aggregates=3, per_aggregate=2)
        clock = FakeClock()
        outbox = PostgresOutbox(pool, clock, relay_id="r", lease_seconds=2)
        async with open_producer(settings) as producer:
            relay = OutboxRelay(
                outbox,
                producer,
                lease_seconds=2,
                retry_delay_seconds=0.2,
                topic_prefix=settings.topic_prefix,
            )
            broker.kill()
            assert await relay.relay_batch() == 6  # claimed, sent, never acknowledged
            assert relay.published == 0
            assert await outbox.unpublished_count() == 6
            assert await outbox.claim_batch() == []  # still leased to this relay
            clock.advance(seconds=3)  # the lease lapses: the items are claimable again
            assert len(await outbox.claim_batch()) == 6
    finally:
        broker.close()


async def test_finbank_relay_drains_the_outbox_and_stops_on_sigterm(
    schema_pool: tuple[asyncpg.Pool, str], kafka_settings: KafkaSettings
) -> None:
    pool, schema = schema_pool
    events = await fill_outbox(pool, aggregates=5, per_aggregate=10)
    env = {
        **os.environ,
        "FINBANK_PROFILE": "local",
        "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
        "FINBANK_KAFKA_BOOTSTRAP": kafka_settings.bootstrap_servers,
        "FINBANK_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "FINBANK_RELAY_BATCH_SIZE": "7",
        "FINBANK_RELAY_MAX_IN_FLIGHT": "3",
        # no FINBANK_JWT_SECRET: the relay never opens the auth secrets' cipher
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "finbank_cli",
        "relay",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        watcher = PostgresOutbox(pool, SystemClock(), relay_id="watcher")
        counts = [len(events)]

        async def drained() -> None:
            while counts[-1] and process.returncode is None:
                counts.append(await watcher.unpublished_count())
                await asyncio.sleep(0.05)

        await asyncio.wait_for(drained(), 30)
        assert process.returncode is None, "the relay exited early"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert counts[-1] == 0
    records = await read_topics(kafka_settings, [kafka_settings.topic(LEDGER_TOPIC)])
    assert {decode_event(r.value).event_id for r in records} == {e.event_id for e in events}


@pytest.mark.parametrize("variable", ["FINBANK_RELAY_BATCH_SIZE", "FINBANK_RELAY_MAX_IN_FLIGHT"])
async def test_finbank_relay_refuses_a_batch_size_or_depth_below_one(variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):  # from_env refuses it first
        Settings.from_env({"FINBANK_PROFILE": "local", variable: "0"})
    field = variable.removeprefix("FINBANK_RELAY_").lower()
    local = Settings.from_env({"FINBANK_PROFILE": "local"})
    settings = msgspec.structs.replace(local, relay=RelayOptions(**{field: 0}))
    with pytest.raises(SettingsError, match=variable):
        await run_relay(settings, asyncio.Event())
