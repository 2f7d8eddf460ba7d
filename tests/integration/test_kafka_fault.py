"""Fault test (issue 6, item 8): outbox -> relays -> Kafka -> consumer with inbox, under kills.

10,000 events go through the outbox while two relays publish them and one
consumer applies them (inbox + effect in one transaction). Meanwhile the
broker is SIGKILLed and restarted 3 times and the consumer is crashed
(cancelled mid-batch, nothing committed) and replaced once. 1% of the outbox
events are poison (the handler refuses them) and 1% more are undecodable
records written straight to the topic: all of them must reach the DLQ
without holding up the rest.

Tansu keeps topics in memory by default, so a killed broker would lose every
acknowledged record not yet consumed: "lost = 0" could not hold for reasons
that have nothing to do with our code. Here Tansu stores its log in S3 (its
``s3://`` storage engine) served by a moto server process, which outlives
the broker: a restarted broker finds its topics and committed offsets again,
as a real cluster would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import asyncpg
import pytest

from finbank_adapters.kafka import (
    KafkaConsumerRunner,
    KafkaSettings,
    OutboxRelay,
    RetryPolicy,
    dead_letter_topic,
)
from finbank_adapters.kafka.clients import create_topics, open_producer
from finbank_adapters.postgres import PostgresEventPublisher, PostgresOutbox
from finbank_adapters.postgres.inbox import Connection, PostgresInbox
from finbank_adapters.system import SystemClock
from finbank_core.shared.errors import InvalidInput, ServiceUnavailable
from finbank_core.shared.events import PIX_TOPIC, EventEnvelope
from tests.integration.kafka_fixtures import (
    BrokerUnavailable,
    MotoS3,
    TansuBroker,
    kafka_test_settings,
    read_topics,
    start_broker_or_skip,
    unavailable,
)
from tests.postgres_support import isolated_schema, require_postgres

pytestmark = [pytest.mark.services, pytest.mark.slow]

EVENTS = 10_000
AGGREGATES = 200
POISON_EVERY = 100  # 1% of the outbox events
MALFORMED = EVENTS // 100  # and 1% more, undecodable, straight onto the topic
KILL_AT = (0.15, 0.45, 0.75)  # broker kills, by share of effects applied
#: the second outage outlasts the producers' request timeout (3 s)
DOWNTIME_SECONDS = (0.5, 4.0, 0.5)
CONSUMER_CRASH_AT = 0.6
DEADLINE_SECONDS = 100


@pytest.fixture
def persistent_broker() -> Iterator[TansuBroker]:
    moto = MotoS3()
    try:
        moto.start()
    except BrokerUnavailable as exc:
        unavailable(f"moto server (Tansu's S3 storage) is unavailable: {exc}")
    try:
        broker = start_broker_or_skip(moto.storage_url(), moto.tansu_env())
        try:
            yield broker
        finally:
            broker.close()
    finally:
        moto.close()


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    require_postgres()
    async with isolated_schema(max_size=8) as (pool, _):
        # no unique key on event_id: an effect applied twice would show as two rows
        await pool.execute(
            "CREATE TABLE effects (seq bigserial PRIMARY KEY, event_id uuid NOT NULL,"
            " aggregate_id text NOT NULL, n integer NOT NULL)"
        )
        yield pool


def make_events() -> list[EventEnvelope]:
    return [
        EventEnvelope(
            event_id=uuid.uuid4(),
            type="pix.payment_requested",
            version=1,
            occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
            aggregate_id=f"E2E-{i % AGGREGATES}",
            payload={"n": i // AGGREGATES, "poison": i % POISON_EVERY == POISON_EVERY - 1},
        )
        for i in range(EVENTS)
    ]


class World:
    """The moving parts, and what the test watches."""

    def __init__(self, pool: asyncpg.Pool, broker: TansuBroker, settings: KafkaSettings) -> None:
        self.pool = pool
        self.broker = broker
        self.settings = settings
        self.group = f"{settings.topic_prefix}settlement"
        self.inbox = PostgresInbox(pool, self.group, SystemClock())
        self.applied = 0  # effects committed (as seen by the handler)
        self.redeliveries = 0  # deliveries the inbox recognised and skipped
        self.stop = asyncio.Event()
        self.runners: list[KafkaConsumerRunner] = []
        self.consumer_task: asyncio.Task[None] | None = None
        self._advanced = asyncio.Condition()
        self.broker_down = False

    async def handle(self, event: EventEnvelope) -> None:
        if event.payload["poison"]:
            raise InvalidInput("this payment order cannot be settled")

        async def apply(conn: Connection) -> None:
            await conn.execute(
                "INSERT INTO effects (event_id, aggregate_id, n) VALUES ($1, $2, $3)",
                event.event_id,
                event.aggregate_id,
                event.payload["n"],
            )

        if await self.inbox.process_once(event, apply):
            self.applied += 1
            async with self._advanced:
                self._advanced.notify_all()
        else:
            self.redeliveries += 1

    def new_runner(self) -> KafkaConsumerRunner:
        runner = KafkaConsumerRunner(
            self.settings,
            group_id=self.group,
            topics=[PIX_TOPIC],
            handler=self.handle,
            retry=RetryPolicy(attempts=3, base_delay_seconds=0.01, max_delay_seconds=0.5),
        )
        self.runners.append(runner)
        return runner

    async def progress(self, share: float) -> None:
        await self.applied_at_least(share * (EVENTS - EVENTS // POISON_EVERY))

    async def applied_at_least(self, count: float, *, or_broker_down: bool = False) -> None:
        async with self._advanced:
            await self._advanced.wait_for(
                lambda: self.applied >= count or (or_broker_down and self.broker_down)
            )

    async def set_broker_down(self, down: bool) -> None:
        async with self._advanced:
            self.broker_down = down
            self._advanced.notify_all()


async def write_outbox(world: World, events: list[EventEnvelope]) -> None:
    """Keep the outbox about 1,000 events ahead of the consumer, so relays work all along.

    While the broker is down, writing goes on (the application does not wait
    for Kafka), so the relays have events to send into the outage.
    """
    publisher = PostgresEventPublisher(world.pool)
    for start in range(0, len(events), 250):
        await world.applied_at_least(0.98 * (start - 1_000), or_broker_down=True)
        await publisher.publish(events[start : start + 250])


async def write_malformed(world: World) -> list[bytes]:
    """Undecodable records straight onto the topic, spread over the run; retried across kills."""
    values = [f"malformed-{i}-{uuid.uuid4()}".encode() for i in range(MALFORMED)]
    topic = world.settings.topic(PIX_TOPIC)
    async with open_producer(world.settings) as producer:
        for i, value in enumerate(values):
            await world.progress(0.9 * i / MALFORMED)
            while True:
                try:
                    await producer.send_and_wait(topic, value, key=f"E2E-{i}".encode())
                    break
                except Exception:  # the broker is down: keep trying, like any producer
                    await asyncio.sleep(0.1)
    return values


async def run_relays(world: World, pool: asyncpg.Pool) -> list[OutboxRelay]:
    relays: list[OutboxRelay] = []
    async with contextlib.AsyncExitStack() as stack:
        for name in ("relay-a", "relay-b"):
            producer = await stack.enter_async_context(open_producer(world.settings))
            outbox = PostgresOutbox(pool, SystemClock(), relay_id=name, lease_seconds=10)
            relays.append(
                OutboxRelay(
                    outbox,
                    producer,
                    batch_size=200,
                    lease_seconds=10,
                    idle_seconds=0.05,
                    retry_delay_seconds=0.2,
                    topic_prefix=world.settings.topic_prefix,
                )
            )
        await asyncio.gather(*(relay.run(world.stop) for relay in relays))
    return relays


async def chaos(world: World) -> list[str]:
    """Kill the broker three times and crash the consumer once, at set points of progress."""
    log: list[str] = []
    plan = sorted([(share, "broker") for share in KILL_AT] + [(CONSUMER_CRASH_AT, "consumer")])
    downtimes = iter(DOWNTIME_SECONDS)
    for share, victim in plan:
        await world.progress(share)
        if victim == "broker":
            world.broker.kill()
            await world.set_broker_down(True)
            downtime = next(downtimes)
            log.append(f"broker killed at {world.applied} effects for {downtime} s")
            await asyncio.sleep(downtime)  # the outage itself, not synchronisation
            world.broker.start()
            await world.set_broker_down(False)
        else:
            crashed = world.consumer_task
            assert crashed is not None
            crashed.cancel()  # mid-batch: handled records of the batch stay uncommitted
            with contextlib.suppress(asyncio.CancelledError):
                await crashed
            log.append(f"consumer crashed at {world.applied} effects")
            world.consumer_task = asyncio.create_task(world.new_runner().run())
    return log


async def test_ten_thousand_events_survive_broker_kills_and_a_consumer_crash(
    persistent_broker: TansuBroker, pool: asyncpg.Pool
) -> None:
    settings = kafka_test_settings(
        persistent_broker.bootstrap, request_timeout_ms=3_000, max_poll_records=100
    )
    topic = settings.topic(PIX_TOPIC)
    await create_topics(settings, [PIX_TOPIC, dead_letter_topic(PIX_TOPIC)], partitions=4)
    world = World(pool, persistent_broker, settings)
    events = make_events()
    started = time.monotonic()

    world.consumer_task = asyncio.create_task(world.new_runner().run())
    relays_task = asyncio.create_task(run_relays(world, pool))
    writer = asyncio.create_task(write_outbox(world, events))
    malformed_task = asyncio.create_task(write_malformed(world))
    chaos_log = await asyncio.wait_for(chaos(world), DEADLINE_SECONDS)

    poison_ids = {e.event_id for e in events if e.payload["poison"]}
    good_ids = {e.event_id for e in events} - poison_ids
    watcher = PostgresOutbox(pool, SystemClock(), relay_id="watcher")

    async def dead_lettered() -> int:
        return sum(runner.stats.dead_lettered for runner in world.runners)

    async def dlq_complete() -> bool:
        # The runners' DLQ counters include re-sends after the consumer crash, so
        # only the topic itself tells that every distinct record has landed.
        if not malformed_task.done():
            return False
        parked = await read_topics(settings, [dead_letter_topic(topic)], deadline_seconds=30)
        values = {r.value for r in parked}
        poison = {
            uuid.UUID(dict(r.headers)["event_id"].decode()) for r in parked if r.value[:1] == b"{"
        }
        return poison == poison_ids and set(malformed_task.result()) <= values

    async def settled() -> None:
        while True:
            applied = await pool.fetchval("SELECT count(DISTINCT event_id) FROM effects")
            if (
                applied == len(good_ids)
                and await dead_lettered() >= len(poison_ids) + MALFORMED
                and await watcher.unpublished_count() == 0
                and await dlq_complete()
            ):
                return
            await asyncio.sleep(0.1)

    remaining = DEADLINE_SECONDS - (time.monotonic() - started)
    try:
        await asyncio.wait_for(settled(), max(remaining, 5))
    finally:
        world.stop.set()
        for runner in world.runners:
            runner.request_stop()
        await asyncio.gather(writer, malformed_task, relays_task, return_exceptions=True)
        with contextlib.suppress(asyncio.CancelledError, ServiceUnavailable):
            if world.consumer_task is not None:
                await world.consumer_task
    malformed = malformed_task.result()
    relays = relays_task.result()
    elapsed = time.monotonic() - started

    rows = await pool.fetch("SELECT event_id, aggregate_id, n FROM effects ORDER BY seq")
    applied_ids = [row["event_id"] for row in rows]
    lost = good_ids - set(applied_ids)
    applied_twice = len(applied_ids) - len(set(applied_ids))
    out_of_order = 0
    last_n: dict[str, int] = {}
    for row in rows:
        if row["n"] < last_n.get(row["aggregate_id"], -1):
            out_of_order += 1
        last_n[row["aggregate_id"]] = row["n"]

    parked = await read_topics(settings, [dead_letter_topic(topic)], deadline_seconds=30)
    parked_poison = {
        uuid.UUID(dict(r.headers)["event_id"].decode()) for r in parked if r.value[:1] == b"{"
    }
    parked_malformed = {r.value for r in parked if r.value.startswith(b"malformed-")}

    print(
        f"\nfault test: {EVENTS} events + {MALFORMED} malformed in {elapsed:.1f} s;"
        f" {'; '.join(chaos_log)};"
        f" effects {len(applied_ids)}, lost {len(lost)}, applied twice {applied_twice},"
        f" redeliveries skipped by the inbox {world.redeliveries},"
        f" DLQ {len(parked)} records"
        f" ({len(parked_poison)} poison, {len(parked_malformed)} malformed),"
        f" published by relays {[r.published for r in relays]}"
        f" (unacknowledged sends retried {sum(r.unacknowledged for r in relays)}),"
        f" per-aggregate order inversions {out_of_order}"
    )
    assert len(chaos_log) == 4
    assert not lost
    assert applied_twice == 0
    assert await watcher.unpublished_count() == 0
    assert sum(r.published for r in relays) == EVENTS
    # Whether a relay had sends in flight when the broker died depends on timing
    # (it is printed above); the re-send path itself is pinned down by
    # test_kafka_relay.py::test_a_batch_the_broker_did_not_acknowledge_stays_unpublished.
    assert parked_poison == poison_ids
    assert parked_malformed == set(malformed)
