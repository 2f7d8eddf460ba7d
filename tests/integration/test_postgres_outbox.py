"""The outbox: relays claim with SKIP LOCKED, never share an aggregate, and drain everything."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres import PostgresEventPublisher, PostgresOutbox
from finbank_core.shared.events import EventEnvelope
from tests.postgres_support import isolated_schema, require_postgres

pytestmark = pytest.mark.services
LEASE_SECONDS = 30


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    require_postgres()
    async with isolated_schema(max_size=6) as (pool, _):
        yield pool


def event(aggregate: str, n: int) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        type="ledger.test_event",
        version=1,
        occurred_at=datetime(2026, 1, 5, 12, tzinfo=UTC),
        aggregate_id=aggregate,
        payload={"n": n},
    )


async def publish_round_robin(
    pool: asyncpg.Pool, aggregates: int, per_aggregate: int
) -> list[EventEnvelope]:
    """Events n=0.. for each aggregate, interleaved across aggregates, a few per call."""
    publisher = PostgresEventPublisher(pool)
    events = [event(f"acc-{a}", n) for n in range(per_aggregate) for a in range(aggregates)]
    for start in range(0, len(events), 7):
        await publisher.publish(events[start : start + 7])
    return events


def relay(pool: asyncpg.Pool, clock: FakeClock, name: str) -> PostgresOutbox:
    return PostgresOutbox(pool, clock, relay_id=name, lease_seconds=LEASE_SECONDS)


async def test_publishing_the_same_event_twice_stores_it_once(pool: asyncpg.Pool) -> None:
    publisher = PostgresEventPublisher(pool)
    once = event("acc-1", 1)
    await publisher.publish([once])
    await publisher.publish([once])
    assert await relay(pool, FakeClock(), "r").unpublished_count() == 1


async def test_an_aggregate_waits_while_its_head_is_leased_by_another_relay(
    pool: asyncpg.Pool,
) -> None:
    clock = FakeClock()
    publisher = PostgresEventPublisher(pool)
    x1, y1, x2 = event("x", 1), event("y", 1), event("x", 2)
    await publisher.publish([x1, y1])
    first, second = relay(pool, clock, "first"), relay(pool, clock, "second")
    [head] = await first.claim_batch(limit=1)
    assert head.event == x1
    await publisher.publish([x2])  # arrives while x's head is leased to `first`
    assert [item.event for item in await second.claim_batch()] == [y1]
    assert await second.claim_batch() == []
    await first.mark_published([head.id])
    assert [item.event for item in await second.claim_batch()] == [x2]


async def test_a_crashed_relays_claims_return_after_the_lease_in_order(pool: asyncpg.Pool) -> None:
    clock = FakeClock()
    events = await publish_round_robin(pool, aggregates=2, per_aggregate=3)
    crashed, survivor = relay(pool, clock, "crashed"), relay(pool, clock, "survivor")
    claimed = await crashed.claim_batch(limit=100)
    assert [item.event for item in claimed] == events
    assert await survivor.claim_batch() == []
    clock.advance(LEASE_SECONDS - 1)
    assert await survivor.claim_batch() == []
    clock.advance(1)
    again = await survivor.claim_batch(limit=100)
    assert [item.event for item in again] == events
    assert await survivor.mark_published([item.id for item in again]) == len(events)
    assert await crashed.mark_published([item.id for item in claimed]) == 0
    assert await survivor.unpublished_count() == 0


async def test_concurrent_relays_never_share_an_item_and_drain_everything_in_order(
    pool: asyncpg.Pool,
) -> None:
    clock = FakeClock()
    events = await publish_round_robin(pool, aggregates=40, per_aggregate=5)
    claimed_by: dict[int, str] = {}
    shared: list[int] = []
    delivered: list[EventEnvelope] = []  # the order a bus would receive them in

    async def run(name: str) -> None:
        outbox = relay(pool, clock, name)
        while True:
            batch = await outbox.claim_batch(limit=7)
            if not batch:
                if await outbox.unpublished_count() == 0:
                    return
                await asyncio.sleep(0)  # others hold the rest; let them finish
                continue
            for item in batch:
                if item.id in claimed_by:
                    shared.append(item.id)
                claimed_by[item.id] = name
            delivered.extend(item.event for item in batch)
            await asyncio.sleep(0)  # interleave with the other relays
            await outbox.mark_published([item.id for item in batch])

    await asyncio.gather(*(run(f"relay-{n}") for n in range(4)))
    assert shared == []
    assert sorted(e.event_id.int for e in delivered) == sorted(e.event_id.int for e in events)
    per_aggregate: dict[str, list[int]] = defaultdict(list)
    for delivered_event in delivered:
        per_aggregate[delivered_event.aggregate_id].append(delivered_event.payload["n"])
    assert all(ns == sorted(ns) for ns in per_aggregate.values())
    assert len(set(claimed_by.values())) > 1  # the work really was shared


async def test_a_claim_looks_for_heads_in_a_bounded_window_and_the_rest_get_their_turn(
    pool: asyncpg.Pool,
) -> None:
    """A claim of ``limit`` items looks at the oldest ``4 * limit`` unleased items only.

    Items of other aggregates queued behind a long run of one aggregate whose
    head is leased are not reached by that claim (it stays cheap); they are
    as soon as the run drains. Nothing is skipped for good.
    """
    clock = FakeClock()
    publisher = PostgresEventPublisher(pool)
    run = [event("hot", n) for n in range(9)]
    late = event("cold", 0)
    await publisher.publish([*run, late])
    first, second = relay(pool, clock, "first"), relay(pool, clock, "second")
    [head] = await first.claim_batch(limit=1)
    assert head.event == run[0]
    # window = 4 x 2 = 8 oldest unleased: hot 1..8, all behind the leased head
    assert await second.claim_batch(limit=2) == []
    # a wider claim reaches past the run
    assert [item.event for item in await second.claim_batch(limit=3)] == [late]
    await first.mark_published([head.id])
    drained: list[EventEnvelope] = []
    while batch := await first.claim_batch(limit=2):
        drained.extend(item.event for item in batch)
        await first.mark_published([item.id for item in batch])
    assert drained == run[1:]
    assert await first.unpublished_count() == 1  # `late`, still leased to `second`


async def test_published_items_leave_the_outbox_and_marking_twice_counts_nothing(
    pool: asyncpg.Pool,
) -> None:
    events = await publish_round_robin(pool, aggregates=3, per_aggregate=2)
    outbox = relay(pool, FakeClock(), "r")
    claimed = await outbox.claim_batch(limit=100)
    assert [item.event for item in claimed] == events
    ids = [item.id for item in claimed]
    assert await outbox.mark_published(ids[:4]) == 4
    assert await outbox.mark_published(ids[:4]) == 0
    assert await outbox.unpublished_count() == len(events) - 4
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE id = ANY($1)", ids[:4]) == 0
