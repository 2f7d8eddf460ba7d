"""The relay's loop on a scripted outbox and producer: pipelined claims and marks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer

from finbank_adapters.kafka import OutboxRelay
from finbank_core.shared.events import EventEnvelope
from finbank_core.shared.outbox import OutboxItem


def item(n: int, aggregate: str = "x") -> OutboxItem:
    event = EventEnvelope(
        event_id=uuid.uuid4(),
        type="ledger.test_event",
        version=1,
        occurred_at=datetime(2026, 1, 5, tzinfo=UTC),
        aggregate_id=aggregate,
        payload={"n": n},
    )
    return OutboxItem.of(n, event)


class ScriptedOutbox:
    """Answers claims from a script; records marks and the claim that was in flight."""

    def __init__(self, claims: list[list[OutboxItem]]) -> None:
        self._claims = claims
        self.claims = 0
        self.marked: list[list[int]] = []

    async def claim_batch(self, limit: int = 100) -> list[OutboxItem]:
        self.claims += 1
        return self._claims.pop(0) if self._claims else []

    async def mark_published(self, ids: Sequence[int]) -> int:
        await asyncio.sleep(0)
        self.marked.append(list(ids))
        return len(ids)


class AcknowledgingProducer:
    """The part of ``AIOKafkaProducer`` the relay uses; every record is acknowledged."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> asyncio.Future[object]:
        self.sent.append((topic, kwargs.get("key")))
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


async def run_until_published(relay: OutboxRelay, count: int) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        async with asyncio.timeout(5):
            while relay.published < count:  # noqa: ASYNC110 - polls a plain counter
                await asyncio.sleep(0.001)
    finally:
        stop.set()
        await task


async def test_an_empty_pipelined_claim_is_followed_at_once_by_a_fresh_one() -> None:
    # The claim made while batch 1 was in flight could not take its aggregate and
    # came back empty; batch 2 (same aggregate) must be claimed right after, not
    # after the idle wait (an hour here: the test would time out).
    outbox = ScriptedOutbox([[item(1)], [], [item(2)]])
    producer = AcknowledgingProducer()
    relay = OutboxRelay(outbox, cast(AIOKafkaProducer, producer), idle_seconds=3600)
    await run_until_published(relay, 2)
    assert outbox.marked == [[1], [2]]
    assert [key for _, key in producer.sent] == [b"x", b"x"]


async def test_an_empty_fresh_claim_waits_before_claiming_again() -> None:
    outbox = ScriptedOutbox([])
    relay = OutboxRelay(outbox, cast(AIOKafkaProducer, AcknowledgingProducer()), idle_seconds=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    for _ in range(50):
        await asyncio.sleep(0)
    stop.set()
    await task
    assert outbox.claims == 1  # then it waited (no busy loop) until stopped


async def test_every_acknowledged_batch_is_marked_before_run_returns() -> None:
    batches = [[item(n, f"a{n}")] for n in range(1, 6)]
    outbox = ScriptedOutbox(batches)
    relay = OutboxRelay(outbox, cast(AIOKafkaProducer, AcknowledgingProducer()), idle_seconds=0.01)
    await run_until_published(relay, 5)
    assert sorted(i for ids in outbox.marked for i in ids) == [1, 2, 3, 4, 5]
    assert relay.published == 5


class HeldAcksProducer:
    """Buffers every record; acknowledgements come only when the test releases them."""

    def __init__(self) -> None:
        self.sent: list[bytes | None] = []
        self.acks: list[asyncio.Future[object]] = []

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> asyncio.Future[object]:
        self.sent.append(kwargs.get("key"))
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.acks.append(future)
        return future

    def acknowledge_all(self) -> None:
        for future in self.acks:
            if not future.done():
                future.set_result(None)


async def settle(rounds: int = 50) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def test_a_second_batch_is_produced_while_the_first_awaits_its_acks() -> None:
    outbox = ScriptedOutbox([[item(1, "a"), item(2, "a")], [item(3, "b")]])
    producer = HeldAcksProducer()
    relay = OutboxRelay(
        outbox, cast(AIOKafkaProducer, producer), idle_seconds=3600, max_in_flight=2
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await settle()
    assert producer.sent == [b"a", b"a", b"b"]  # batch 2 sent, batch 1 not acknowledged yet
    assert outbox.marked == []
    producer.acknowledge_all()
    await settle()
    stop.set()
    await task
    assert sorted(outbox.marked) == [[1, 2], [3]]
    assert relay.published == 3  # concurrent marks do not lose counts


async def test_with_one_batch_in_flight_the_next_waits_for_the_acks() -> None:
    outbox = ScriptedOutbox([[item(1, "a")], [item(2, "b")]])
    producer = HeldAcksProducer()
    relay = OutboxRelay(
        outbox, cast(AIOKafkaProducer, producer), idle_seconds=3600, max_in_flight=1
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await settle()
    assert producer.sent == [b"a"]
    producer.acknowledge_all()
    await settle()
    assert producer.sent == [b"a", b"b"]
    producer.acknowledge_all()
    await settle()
    stop.set()
    await task
    assert outbox.marked == [[1], [2]]
    assert relay.published == 2


# -- linger (relay.linger_seconds): fewer, fuller claims under a trickle ----------------


async def test_after_a_batch_that_was_not_full_the_next_claim_lingers() -> None:
    # batch_size 2, the first claim finds 1 item: the next claim waits its linger (an
    # hour here) instead of running at once and finding the 1 item appended since
    outbox = ScriptedOutbox([[item(1)], [item(2, "y")]])
    relay = OutboxRelay(
        outbox,
        cast(AIOKafkaProducer, AcknowledgingProducer()),
        batch_size=2,
        idle_seconds=3600,
        linger_seconds=3600,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    async with asyncio.timeout(5):
        while relay.published < 1:  # noqa: ASYNC110 - polls a plain counter
            await asyncio.sleep(0.001)
    for _ in range(50):
        await asyncio.sleep(0)
    assert outbox.claims == 1  # the second claim is still lingering
    # stopping cuts the linger short: the claim runs and its batch is published
    stop.set()
    async with asyncio.timeout(5):
        await task
    # the cut-short claim found item 2; the one started beside its publish, also cut
    # short by the stop, found nothing
    assert outbox.claims == 3
    assert outbox.marked == [[1], [2]]
    assert relay.published == 2


async def test_full_batches_are_claimed_without_lingering() -> None:
    # a backlog: every claim comes back full (batch_size 1), so no claim waits
    # (with an hour's linger between them this would time out)
    outbox = ScriptedOutbox([[item(n, f"a{n}")] for n in range(1, 6)])
    relay = OutboxRelay(
        outbox,
        cast(AIOKafkaProducer, AcknowledgingProducer()),
        batch_size=1,
        idle_seconds=3600,
        linger_seconds=3600,
    )
    await run_until_published(relay, 5)
    assert sorted(i for ids in outbox.marked for i in ids) == [1, 2, 3, 4, 5]


def test_a_negative_linger_is_refused() -> None:
    with pytest.raises(ValueError, match="linger_seconds"):
        OutboxRelay(
            ScriptedOutbox([]),
            cast(AIOKafkaProducer, AcknowledgingProducer()),
            linger_seconds=-0.001,
        )


def test_the_linger_setting_reaches_the_relay() -> None:
    from finbank_adapters.containers.events import outbox_relay
    from finbank_adapters.kafka.config import KafkaSettings
    from finbank_adapters.settings import Settings, SettingsError

    settings = Settings.from_env({"FINBANK_RELAY_LINGER_SECONDS": "0.015"})
    relay = outbox_relay(
        ScriptedOutbox([]),
        AcknowledgingProducer(),
        settings,
        KafkaSettings.from_settings(settings),
    )
    assert relay._linger_seconds == 0.015
    assert Settings.from_env({}).relay.linger_seconds == 0.0  # off unless asked for
    with pytest.raises(SettingsError, match="FINBANK_RELAY_LINGER_SECONDS"):
        Settings.from_env({"FINBANK_RELAY_LINGER_SECONDS": "-1"})
