"""The runbook commands on real parts: ``finbank outbox status`` on PostgreSQL, and
``finbank dlq list`` / ``finbank dlq replay`` with the lag and dead-letter gauges on a
Tansu broker, records dead-lettered by the real consumer runner.

Tansu answers ListOffsets with the end of a partition's last *batch* (see
``read_topics``); every record here is produced on its own (``send_and_wait``), as
the DLQ and the replay produce them, so the ends are exact.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from finbank_adapters import metrics
from finbank_adapters.kafka import KafkaConsumerRunner, KafkaSettings, RetryPolicy
from finbank_adapters.kafka.clients import create_topics, open_producer
from finbank_adapters.kafka.consumer import dead_letter_topic
from finbank_adapters.kafka.lag import (
    HEADER_REPLAYED,
    REPLAY_GROUP,
    LagProbe,
    list_dead_letters,
    replay_dead_letters,
    report_consumer_metrics,
)
from finbank_adapters.kafka.publisher import send_envelope
from finbank_adapters.kafka.relay import outbox_status, report_outbox_metrics
from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres import PostgresEventPublisher
from finbank_cli.main import main
from finbank_core.shared.events import PIX_TOPIC, EventEnvelope, decode_event, encode_event
from tests.integration.kafka_fixtures import kafka_broker, kafka_settings, read_topics
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres

pytestmark = pytest.mark.services
__all__ = ["kafka_broker", "kafka_settings"]  # fixtures

T0 = datetime(2026, 3, 10, 12, tzinfo=UTC)


def event(aggregate: str, n: int, at: datetime = T0) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        type="pix.payment_requested",
        version=1,
        occurred_at=at,
        aggregate_id=aggregate,
        payload={"n": n},
    )


@pytest.fixture
def recorder() -> Iterator[metrics.MetricsRecorder]:
    recorder = metrics.reset_for_tests(metrics.MetricsRecorder())
    yield recorder
    metrics.reset_for_tests()


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 20) -> None:
    """Wait until ``check`` holds (a bounded wait for a background loop, not a timing)."""
    async with asyncio.timeout(seconds):
        while not await check():  # noqa: ASYNC110 - polls state another task changes
            await asyncio.sleep(0.05)


# -- the outbox -------------------------------------------------------------------------


@pytest.fixture
async def schema_pool() -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    require_postgres()
    async with isolated_schema() as (pool, schema):
        yield pool, schema


async def test_outbox_status_measures_the_backlog_and_the_oldest_event_on_the_clock(
    schema_pool: tuple[asyncpg.Pool, str],
) -> None:
    pool, _ = schema_pool
    clock = FakeClock(T0)
    assert await outbox_status(pool, clock) == (0, 0.0, 0, 0)

    publisher = PostgresEventPublisher(pool)
    await publisher.publish([event("a", 1, T0 - timedelta(seconds=120)), event("b", 1)])
    status = await outbox_status(pool, clock)
    assert (status.backlog, status.oldest_age_seconds) == (2, 120.0)  # exactly at two minutes
    clock.advance(seconds=0.5)
    assert (await outbox_status(pool, clock)).oldest_age_seconds == 120.5


async def test_the_relays_metric_loop_sets_the_outbox_gauges(
    schema_pool: tuple[asyncpg.Pool, str], recorder: metrics.MetricsRecorder
) -> None:
    pool, _ = schema_pool
    await PostgresEventPublisher(pool).publish([event("a", n, T0) for n in range(3)])
    clock = FakeClock(T0 + timedelta(seconds=300))
    stop = asyncio.Event()
    loop = asyncio.create_task(report_outbox_metrics(pool, clock, stop, interval_seconds=0.05))

    async def measured() -> bool:
        return recorder.value(metrics.OUTBOX_BACKLOG) == 3

    try:
        await eventually(measured)
    finally:
        stop.set()
        await loop
    assert recorder.value(metrics.OUTBOX_OLDEST_AGE) == 300.0


async def test_the_outbox_status_command_exits_1_past_its_max_age(
    schema_pool: tuple[asyncpg.Pool, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pool, schema = schema_pool
    ten_minutes_ago = datetime.now(UTC) - timedelta(minutes=10)
    await PostgresEventPublisher(pool).publish([event("a", 1, ten_minutes_ago)])
    monkeypatch.setenv("FINBANK_PROFILE", "local")
    monkeypatch.setenv("FINBANK_POSTGRES_DSN", f"{POSTGRES_DSN}?search_path={schema}")
    monkeypatch.setenv("FINBANK_JWT_SECRET", "x" * 32)

    assert await asyncio.to_thread(main, ["outbox", "status", "--max-age", "3600"]) == 0
    assert "outbox: 1 waiting, oldest 6" in capsys.readouterr().out  # 600.x s
    assert await asyncio.to_thread(main, ["outbox", "status", "--max-age", "60"]) == 1
    assert "older than 60 s" in capsys.readouterr().out


# -- the dead-letter topic -------------------------------------------------------------------


async def dead_letter(
    kafka: KafkaSettings, good: int, bad: list[str], group: str | None = None
) -> list[EventEnvelope]:
    """Publish ``good`` events and one per ``bad`` key; a runner dead-letters the bad ones.

    The runner is a settlement worker's stand-in, in consumer group ``group`` (one of
    its own by default, never the deployment's ``finbank-pix-settlement`` that other
    tests' workers on the same broker would share).
    """
    await create_topics(kafka, [PIX_TOPIC], partitions=2)
    events = [event(f"ok-{n}", n) for n in range(good)] + [event(k, 0) for k in bad]
    async with open_producer(kafka) as producer:
        for e in events:
            await (
                await send_envelope(
                    producer, kafka.topic(PIX_TOPIC), e.aggregate_id, encode_event(e)
                )
            )

    seen: list[str] = []

    async def handler(e: EventEnvelope) -> None:
        seen.append(e.aggregate_id)
        if e.aggregate_id.startswith("bad"):
            raise ValueError("this payment cannot be settled")

    runner = KafkaConsumerRunner(
        kafka,
        group_id=group or f"pix-settlement-{uuid.uuid4().hex[:8]}",
        topics=[PIX_TOPIC],
        handler=handler,
        retry=RetryPolicy(attempts=1),
        permanent=(ValueError,),
    )
    task = asyncio.create_task(runner.run())

    async def all_seen() -> bool:
        return len(seen) >= len(events)

    try:
        await eventually(all_seen, 30)
    finally:
        await runner.stop()
        await task
    assert runner.stats.dead_lettered == len(bad)
    return events


async def test_dlq_list_shows_what_waits_and_replay_sends_it_back_once(
    kafka_settings: KafkaSettings, recorder: metrics.MetricsRecorder
) -> None:
    kafka = kafka_settings
    bad = ["bad-1", "bad-2", "bad-3"]
    group = f"pix-settlement-{uuid.uuid4().hex[:8]}"
    events = await dead_letter(kafka, good=4, bad=bad, group=group)
    dlq = dead_letter_topic(kafka.topic(PIX_TOPIC))

    letters = await list_dead_letters(kafka, PIX_TOPIC)
    assert sorted(letter.key for letter in letters) == bad
    assert {(letter.reason, letter.error) for letter in letters} == {("rejected", "ValueError")}
    async with LagProbe(kafka, REPLAY_GROUP) as probe:
        assert await probe.lag(dlq) == 3
    assert len(await list_dead_letters(kafka, PIX_TOPIC)) == 3  # listing replays nothing

    # the worker's gauges: nothing left for its group, three waiting in the DLQ
    stop = asyncio.Event()
    loop = asyncio.create_task(
        report_consumer_metrics(
            kafka, group_id=group, topics=[PIX_TOPIC], stop=stop,
            interval_seconds=0.1,
        )
    )  # fmt: skip

    async def dlq_measured() -> bool:
        return recorder.value(metrics.DLQ_DEPTH, Topic=dead_letter_topic(PIX_TOPIC)) == 3

    try:
        await eventually(dlq_measured)
        lag = recorder.value(metrics.CONSUMER_LAG, ConsumerGroup=group, Topic=PIX_TOPIC)
        assert lag == 0

        result = await replay_dead_letters(kafka, PIX_TOPIC)
        assert (result.replayed, result.remaining) == (3, 0)

        async def replay_measured() -> bool:
            depth = recorder.value(metrics.DLQ_DEPTH, Topic=dead_letter_topic(PIX_TOPIC))
            behind = recorder.value(metrics.CONSUMER_LAG, ConsumerGroup=group, Topic=PIX_TOPIC)
            return depth == 0 and behind == 3  # the copies wait for the worker

        await eventually(replay_measured)
    finally:
        stop.set()
        await loop

    assert (await replay_dead_letters(kafka, PIX_TOPIC)).replayed == 0  # replayed once
    records = await read_topics(kafka, [kafka.topic(PIX_TOPIC)])
    replayed = [r for r in records if (HEADER_REPLAYED, b"1") in r.headers]
    assert sorted(decode_event(r.value).aggregate_id for r in replayed) == bad
    originals = {e.event_id for e in events if e.aggregate_id in bad}
    assert {decode_event(r.value).event_id for r in replayed} == originals  # same ids: dedup
    for r in replayed:
        assert ("dlq.reason", b"rejected") in r.headers  # the investigation's headers kept


async def test_the_dlq_commands_print_and_replay(
    kafka_settings: KafkaSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kafka = kafka_settings
    await dead_letter(kafka, good=1, bad=["bad-x"])
    monkeypatch.setenv("FINBANK_KAFKA_BOOTSTRAP", kafka.bootstrap_servers)
    monkeypatch.setenv("FINBANK_KAFKA_TOPIC_PREFIX", kafka.topic_prefix)

    assert await asyncio.to_thread(main, ["dlq", "list"]) == 0
    out = capsys.readouterr().out
    assert "key=bad-x  reason=rejected  error=ValueError" in out
    assert "1 record(s) waiting in finbank.pix.v1.dlq" in out
    assert await asyncio.to_thread(main, ["dlq", "replay"]) == 0
    assert "replayed 1 record(s) to finbank.pix.v1; 0 left" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["dlq", "list"]) == 0
    assert "0 record(s) waiting" in capsys.readouterr().out
