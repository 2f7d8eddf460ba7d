"""The consumer runner on a real broker: manual commits, rebalances, retries, DLQ, shutdown."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from finbank_adapters.kafka import (
    KafkaConsumerRunner,
    KafkaEventPublisher,
    KafkaSettings,
    RetryPolicy,
    dead_letter_topic,
)
from finbank_adapters.kafka.clients import create_topics, open_producer
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.events import EventEnvelope, encode_event
from tests.integration.kafka_fixtures import kafka_broker, kafka_settings, read_topics, wait_until

pytestmark = pytest.mark.services
__all__ = ["kafka_broker", "kafka_settings"]  # fixtures

TOPIC = "finbank.pix.v1"
FAST_RETRY = RetryPolicy(attempts=3, base_delay_seconds=0.01, max_delay_seconds=0.05)


def event(aggregate: str, n: int, **payload: object) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        type="pix.payment_requested",
        version=1,
        occurred_at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        aggregate_id=aggregate,
        payload={"n": n, **payload},
    )


async def publish(settings: KafkaSettings, events: list[EventEnvelope]) -> None:
    async with open_producer(settings) as producer:
        await KafkaEventPublisher(producer, topic_prefix=settings.topic_prefix).publish(events)


class Recorder:
    """A handler that records what it finished, can hold an event at a gate, can fail."""

    def __init__(self) -> None:
        self.finished: list[EventEnvelope] = []
        self.calls: dict[uuid.UUID, int] = {}
        self.hold: uuid.UUID | None = None
        self.hold_first = False
        self.hold_all = False
        self.holding = asyncio.Event()
        self.gate = asyncio.Event()
        self.failure: Callable[[EventEnvelope, int], Exception | None] = lambda _e, _n: None

    async def __call__(self, event: EventEnvelope) -> None:
        self.calls[event.event_id] = self.calls.get(event.event_id, 0) + 1
        failure = self.failure(event, self.calls[event.event_id])
        if failure is not None:
            raise failure
        self.finished.append(event)  # the effect happens here...
        if (
            self.hold_all
            or event.event_id == self.hold
            or (self.hold_first and len(self.finished) == 1)
        ):
            self.holding.set()
            await self.gate.wait()  # ...and the handler is still in flight

    def ids(self) -> list[uuid.UUID]:
        return [e.event_id for e in self.finished]


@asynccontextmanager
async def running(runner: KafkaConsumerRunner) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(runner.run())
    try:
        yield task
    finally:
        if not task.done():
            await runner.stop()
        await task


def runner_for(
    settings: KafkaSettings, group: str, handler: Callable[[EventEnvelope], Awaitable[None]]
) -> KafkaConsumerRunner:
    # groups live broker-wide: namespace them like the topics
    return KafkaConsumerRunner(
        settings,
        group_id=f"{settings.topic_prefix}{group}",
        topics=[TOPIC],
        handler=handler,
        retry=FAST_RETRY,
    )


async def test_committed_events_are_not_delivered_again_to_the_group(
    kafka_settings: KafkaSettings,
) -> None:
    first = [event("acc-1", n) for n in range(5)]
    await publish(kafka_settings, first)
    recorder = Recorder()
    runner = runner_for(kafka_settings, "g", recorder)
    async with running(runner):
        await wait_until(lambda: len(recorder.finished) == 5, what="5 events handled")
    assert recorder.finished == first
    assert runner.stats.commits >= 1

    later = event("acc-1", 99)
    await publish(kafka_settings, [later])
    again = Recorder()
    async with running(runner_for(kafka_settings, "g", again)):
        await wait_until(lambda: len(again.finished) >= 1, what="the next event")
    assert again.finished == [later]


async def test_an_event_handled_but_not_committed_before_a_crash_is_delivered_again(
    kafka_settings: KafkaSettings,
) -> None:
    events = [event("acc-1", n) for n in range(3)]
    await publish(kafka_settings, events)
    crashed = Recorder()
    crashed.hold = events[0].event_id
    runner = runner_for(kafka_settings, "g", crashed)
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(crashed.holding.wait(), 20)
    task.cancel()  # the process dies after the effect, before the commit
    with pytest.raises(asyncio.CancelledError):
        await task
    assert crashed.finished == [events[0]]

    successor = Recorder()
    async with running(runner_for(kafka_settings, "g", successor)):
        await wait_until(lambda: len(successor.finished) == 3, what="all 3 events")
    assert successor.finished == events  # events[0] again: at least once


async def test_partitions_are_handled_side_by_side_each_in_its_own_order(
    kafka_settings: KafkaSettings,
) -> None:
    await create_topics(kafka_settings, [TOPIC], partitions=3)
    events = [event(f"acc-{a}", n) for n in range(4) for a in range(12)]
    await publish(kafka_settings, events)
    recorder = Recorder()
    recorder.hold_first = True
    runner = runner_for(kafka_settings, "g", recorder)
    async with running(runner):
        await recorder.holding.wait()
        try:
            # the first event's handler is still in flight; only another partition can move
            await wait_until(
                lambda: len(recorder.finished) > 1,
                deadline_seconds=10,
                what="another partition handled while one is busy",
            )
        finally:
            recorder.gate.set()  # let the held handler finish, or stopping would wait for it
        held = recorder.finished[0]
        assert all(e.aggregate_id != held.aggregate_id for e in recorder.finished[1:2])
        await wait_until(lambda: len(recorder.finished) == len(events), what="every event")
    for a in range(12):
        mine = [e.payload["n"] for e in recorder.finished if e.aggregate_id == f"acc-{a}"]
        assert mine == [0, 1, 2, 3]


async def test_a_revoked_partition_commits_what_was_handled_before_it_moves(
    kafka_settings: KafkaSettings,
) -> None:
    events = [event(f"acc-{n}", n) for n in range(40)]  # spread over the partitions
    await publish(kafka_settings, events)
    first, second = Recorder(), Recorder()
    # A's first event of each partition stays in flight, handled but uncommitted (A
    # handles partitions side by side: holding only one would let A finish the rest)
    first.hold_all = True
    runner_a = runner_for(kafka_settings, "g", first)
    async with running(runner_a):
        await asyncio.wait_for(first.holding.wait(), 20)
        async with running(runner_for(kafka_settings, "g", second)):
            await wait_until(lambda: runner_a.stats.revocations >= 1, what="B's join")
            first.gate.set()  # the revocation waited for the in-flight event; now it commits it
            await wait_until(
                lambda: len(first.finished) + len(second.finished) >= len(events),
                what="every event handled",
            )
        assert second.finished, "B got partitions"
    handled = first.ids() + second.ids()
    assert sorted(handled) == sorted(e.event_id for e in events)  # each exactly once


async def test_a_failing_event_is_retried_then_dead_lettered_without_blocking_the_rest(
    kafka_settings: KafkaSettings,
) -> None:
    good_before, poison, good_after = event("acc-1", 1), event("acc-1", 2), event("acc-1", 3)
    await publish(kafka_settings, [good_before, poison, good_after])
    recorder = Recorder()
    recorder.failure = lambda e, _n: ValueError("cannot settle") if e == poison else None
    runner = runner_for(kafka_settings, "g", recorder)
    async with running(runner):
        await wait_until(lambda: len(recorder.finished) == 2, what="the good events")
        await wait_until(lambda: runner.stats.dead_lettered == 1, what="the DLQ")
    assert recorder.finished == [good_before, good_after]
    assert recorder.calls[poison.event_id] == FAST_RETRY.attempts

    [parked] = await read_topics(kafka_settings, [dead_letter_topic(kafka_settings.topic(TOPIC))])
    headers = dict(parked.headers)
    assert parked.value == encode_event(poison)
    assert parked.key == b"acc-1"
    assert headers["dlq.reason"] == b"handler_failed"
    assert headers["dlq.error"] == b"ValueError: cannot settle"
    assert headers["dlq.attempts"] == b"3"
    assert headers["dlq.consumer"] == f"{kafka_settings.topic_prefix}g".encode()
    assert headers["dlq.source"].startswith(kafka_settings.topic(TOPIC).encode() + b":")
    assert headers["event_id"] == str(poison.event_id).encode()  # original headers kept


class Unhandleable(ValueError):
    """What a handler raises for an event it can never handle."""


async def test_a_permanent_error_parks_the_event_at_once_without_retries(
    kafka_settings: KafkaSettings,
) -> None:
    good_before, poison, good_after = event("acc-1", 1), event("acc-1", 2), event("acc-1", 3)
    await publish(kafka_settings, [good_before, poison, good_after])
    recorder = Recorder()
    recorder.failure = lambda e, _n: Unhandleable("no amount") if e == poison else None
    runner = KafkaConsumerRunner(
        kafka_settings,
        group_id=f"{kafka_settings.topic_prefix}g",
        topics=[TOPIC],
        handler=recorder,
        retry=FAST_RETRY,
        permanent=(Unhandleable,),
    )
    async with running(runner):
        await wait_until(lambda: len(recorder.finished) == 2, what="the good events")
        await wait_until(lambda: runner.stats.dead_lettered == 1, what="the DLQ")
    assert recorder.finished == [good_before, good_after]
    assert recorder.calls[poison.event_id] == 1
    assert runner.stats.retries == 0
    [parked] = await read_topics(kafka_settings, [dead_letter_topic(kafka_settings.topic(TOPIC))])
    headers = dict(parked.headers)
    assert parked.value == encode_event(poison)
    assert headers["dlq.reason"] == b"rejected"
    assert headers["dlq.error"] == b"Unhandleable: no amount"
    assert headers["dlq.attempts"] == b"1"


async def test_a_malformed_record_goes_straight_to_the_dlq(
    kafka_settings: KafkaSettings,
) -> None:
    after = event("acc-1", 2)
    async with open_producer(kafka_settings) as producer:
        topic = kafka_settings.topic(TOPIC)
        await producer.send_and_wait(topic, b'{"not": "an envelope"}', key=b"acc-1")
        await producer.send_and_wait(topic, b"\xff\x00 garbage", key=b"acc-1")
    await publish(kafka_settings, [after])
    recorder = Recorder()
    runner = runner_for(kafka_settings, "g", recorder)
    async with running(runner):
        await wait_until(lambda: recorder.finished == [after], what="the valid event")
        await wait_until(lambda: runner.stats.dead_lettered == 2, what="the DLQ")
    assert recorder.calls == {after.event_id: 1}  # the handler never saw the malformed ones
    parked = await read_topics(kafka_settings, [dead_letter_topic(kafka_settings.topic(TOPIC))])
    assert [p.value for p in parked] == [b'{"not": "an envelope"}', b"\xff\x00 garbage"]
    assert {dict(p.headers)["dlq.reason"] for p in parked} == {b"malformed"}
    assert {dict(p.headers)["dlq.attempts"] for p in parked} == {b"0"}


async def test_an_unavailable_dependency_is_retried_past_the_bound_not_dead_lettered(
    kafka_settings: KafkaSettings,
) -> None:
    only = event("acc-1", 1)
    await publish(kafka_settings, [only])
    recorder = Recorder()
    recorder.failure = lambda _e, n: ServiceUnavailable("db down") if n <= 6 else None
    runner = runner_for(kafka_settings, "g", recorder)
    async with running(runner):
        await wait_until(lambda: recorder.finished == [only], what="the event")
    assert recorder.calls[only.event_id] == 7 > FAST_RETRY.attempts
    assert runner.stats.dead_lettered == 0


async def test_stop_finishes_the_in_flight_event_commits_it_and_handles_no_more(
    kafka_settings: KafkaSettings,
) -> None:
    events = [event("acc-1", n) for n in range(3)]
    await publish(kafka_settings, events)
    recorder = Recorder()
    recorder.hold = events[0].event_id
    runner = runner_for(kafka_settings, "g", recorder)
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(recorder.holding.wait(), 20)
    stopping = asyncio.create_task(runner.stop())
    await asyncio.sleep(0)
    assert not stopping.done()  # it waits for the in-flight event
    recorder.gate.set()
    await asyncio.wait_for(stopping, 20)
    await task
    assert recorder.finished == [events[0]]

    successor = Recorder()
    async with running(runner_for(kafka_settings, "g", successor)):
        await wait_until(lambda: len(successor.finished) == 2, what="the rest")
    assert successor.finished == events[1:]
