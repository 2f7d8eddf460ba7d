"""The inbox opens its transaction with the event's row in one round trip, same guarantees.

``PostgresInbox.process_once`` sends ``BEGIN`` and the row as one query when
the consumer's name can be written as a literal, and the parameterized
statements otherwise; both ways an effect and its row commit together, a
failed effect leaves neither, and concurrent deliveries apply it once. The
row's values are the event's own (its id, the clock's time), whichever way.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres.inbox import Connection, Effect, PostgresInbox
from finbank_core.shared.events import EventEnvelope
from tests.postgres_support import isolated_schema, require_postgres

pytestmark = pytest.mark.services

#: a plain name (one round trip), and names that take the parameterized path
CONSUMERS = ["finbank-pix-settlement", "it's; DROP TABLE inbox; --", "vírgula,espaço"]


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    require_postgres()
    async with isolated_schema(max_size=8) as (pool, _):
        await pool.execute("CREATE TABLE effects (event_id uuid, consumer text)")
        yield pool


def event() -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        type="pix.payment_requested",
        version=1,
        occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
        aggregate_id="E1",
        payload={},
    )


def effect_of(consumer: str, e: EventEnvelope) -> Effect:
    async def effect(conn: Connection) -> None:
        assert conn.is_in_transaction()
        await conn.execute("INSERT INTO effects VALUES ($1, $2)", e.event_id, consumer)

    return effect


async def rows(pool: asyncpg.Pool) -> list[tuple[str, uuid.UUID, datetime]]:
    found = await pool.fetch("SELECT consumer, event_id, processed_at FROM inbox ORDER BY 1")
    return [(r["consumer"], r["event_id"], r["processed_at"]) for r in found]


@pytest.mark.parametrize("consumer", CONSUMERS)
async def test_the_row_holds_the_events_id_and_the_clocks_time(
    pool: asyncpg.Pool, consumer: str
) -> None:
    at = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-3)))
    inbox = PostgresInbox(pool, consumer, FakeClock(at))
    e = event()
    assert await inbox.process_once(e, effect_of(consumer, e)) is True
    assert await inbox.process_once(e, effect_of(consumer, e)) is False
    assert await rows(pool) == [(consumer, e.event_id, at)]
    assert await pool.fetchval("SELECT count(*) FROM effects") == 1
    async with pool.acquire() as conn:  # the connection went back with no transaction open
        assert not conn.is_in_transaction()


@pytest.mark.parametrize("consumer", CONSUMERS)
async def test_a_failed_effect_leaves_neither_row_nor_effect(
    pool: asyncpg.Pool, consumer: str
) -> None:
    inbox = PostgresInbox(pool, consumer, FakeClock())
    e = event()

    async def fail_after_the_effect(conn: Connection) -> None:
        await conn.execute("INSERT INTO effects VALUES ($1, $2)", e.event_id, consumer)
        raise RuntimeError("crash before the commit")

    with pytest.raises(RuntimeError):
        await inbox.process_once(e, fail_after_the_effect)
    assert await rows(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM effects") == 0
    assert await inbox.process_once(e, effect_of(consumer, e)) is True
    assert await pool.fetchval("SELECT count(*) FROM effects") == 1


@pytest.mark.parametrize("consumer", CONSUMERS)
async def test_concurrent_deliveries_apply_the_effect_once(
    pool: asyncpg.Pool, consumer: str
) -> None:
    inbox = PostgresInbox(pool, consumer, FakeClock())
    e = event()
    outcomes = await asyncio.gather(
        *(inbox.process_once(e, effect_of(consumer, e)) for _ in range(6))
    )
    assert sorted(outcomes) == [False] * 5 + [True]
    assert await pool.fetchval("SELECT count(*) FROM effects") == 1


async def test_a_cancelled_effect_leaves_nothing_and_the_connection_usable(
    pool: asyncpg.Pool,
) -> None:
    inbox = PostgresInbox(pool, "finbank-pix-settlement", FakeClock())
    e = event()
    started = asyncio.Event()

    async def stuck(conn: Connection) -> None:
        await conn.execute("INSERT INTO effects VALUES ($1, 'x')", e.event_id)
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(inbox.process_once(e, stuck))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await rows(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM effects") == 0
    assert await inbox.process_once(e, effect_of("x", e)) is True
