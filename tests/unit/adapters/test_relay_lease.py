"""A relay never sends a batch whose lease may have lapsed: the budget (80 % of the lease)
runs from the claim, so a batch claimed ahead that waited behind others is left to the
next claim, not sent alongside the relay that may have taken it over."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from aiokafka import AIOKafkaProducer
from tests.unit.adapters.test_relay_loop import AcknowledgingProducer, ScriptedOutbox, item

from finbank_adapters.kafka import OutboxRelay
from finbank_core.shared.outbox import OutboxItem


class Ticks:
    """The relay's lease clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ClockMovingOutbox(ScriptedOutbox):
    """Each claim takes ``seconds`` on the lease clock (a slow database)."""

    def __init__(self, claims: list[list[OutboxItem]], ticks: Ticks, seconds: float) -> None:
        super().__init__(claims)
        self._ticks = ticks
        self._seconds = seconds

    async def claim_batch(self, limit: int = 100) -> list[OutboxItem]:
        claimed = await super().claim_batch(limit)
        self._ticks.now += self._seconds
        return claimed


@pytest.mark.parametrize(
    ("claim_seconds", "sent"),
    [
        (7.999, True),  # just inside the budget: 80 % of a 10 s lease
        (8.0, False),  # exactly at it: the lease may lapse while sending, so nothing is sent
        (8.001, False),  # just after it
    ],
)
async def test_a_batch_is_sent_only_within_its_lease_budget_counted_from_the_claim(
    claim_seconds: float, sent: bool
) -> None:
    ticks = Ticks()
    outbox = ClockMovingOutbox([[item(1)]], ticks, claim_seconds)
    producer = AcknowledgingProducer()
    relay = OutboxRelay(
        outbox,
        cast(AIOKafkaProducer, producer),
        lease_seconds=10,
        lease_clock=ticks,
    )

    assert await relay.relay_batch() == 1

    assert (len(producer.sent) == 1) is sent
    assert (outbox.marked == [[1]]) is sent
    assert relay.lapsed == (0 if sent else 1)


async def test_the_batch_claimed_ahead_is_not_sent_once_it_waited_past_its_budget() -> None:
    ticks = Ticks()
    outbox = ScriptedOutbox([[item(1, "a")], [item(2, "b")]])
    held: list[asyncio.Future[object]] = []

    class SlowFirstBatch(AcknowledgingProducer):
        async def send(self, topic: str, value: bytes, **kwargs: object) -> asyncio.Future[object]:
            future = await super().send(topic, value, **kwargs)
            if kwargs.get("key") == b"a":  # the first batch's ack is held
                future = asyncio.get_running_loop().create_future()
                held.append(future)
            return future

    producer = SlowFirstBatch()
    relay = OutboxRelay(
        outbox,
        cast(AIOKafkaProducer, producer),
        lease_seconds=10,
        lease_clock=ticks,
        max_in_flight=1,
        idle_seconds=3600,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    async with asyncio.timeout(5):
        while not held or outbox.claims < 2:  # noqa: ASYNC110 - polls the scripted parts
            await asyncio.sleep(0)
    ticks.now += 8.0  # batch "b" was claimed ahead; its budget is spent while "a" waits
    held[0].set_result(None)
    async with asyncio.timeout(5):
        while relay.lapsed == 0:  # noqa: ASYNC110
            await asyncio.sleep(0)
    stop.set()
    await task

    assert [key for _, key in producer.sent] == [b"a"]  # "b" never reached the producer
    assert outbox.marked == [[1]]
    assert relay.lapsed == 1
