"""The inbox: an effect and its inbox row commit together; redeliveries change nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres.inbox import Connection, InboxNeedsTransaction, PostgresInbox
from finbank_core.shared.events import EventEnvelope
from tests.postgres_support import isolated_schema, require_postgres

pytestmark = pytest.mark.services


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    require_postgres()
    async with isolated_schema(max_size=8) as (pool, _):
        await pool.execute("CREATE TABLE balances (account text PRIMARY KEY, cents bigint)")
        await pool.execute("INSERT INTO balances VALUES ('acc-1', 0)")
        yield pool


def deposit(cents: int) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        type="ledger.deposit_made",
        version=1,
        occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
        aggregate_id="acc-1",
        payload={"amount_cents": cents},
    )


async def credit(conn: Connection, event: EventEnvelope) -> None:
    await conn.execute(
        "UPDATE balances SET cents = cents + $1 WHERE account = 'acc-1'",
        event.payload["amount_cents"],
    )


async def balance(pool: asyncpg.Pool) -> int:
    cents: int = await pool.fetchval("SELECT cents FROM balances WHERE account = 'acc-1'")
    return cents


async def test_a_redelivered_event_changes_nothing(pool: asyncpg.Pool) -> None:
    inbox = PostgresInbox(pool, "statements", FakeClock())
    event = deposit(1050)
    assert await inbox.process_once(event, lambda conn: credit(conn, event)) is True
    assert await inbox.process_once(event, lambda conn: credit(conn, event)) is False
    assert await balance(pool) == 1050
    assert await inbox.was_processed(event.event_id)


async def test_a_failed_effect_leaves_no_inbox_row_so_the_redelivery_applies_it(
    pool: asyncpg.Pool,
) -> None:
    inbox = PostgresInbox(pool, "statements", FakeClock())
    event = deposit(700)

    async def credit_then_fail(conn: Connection) -> None:
        await credit(conn, event)
        raise RuntimeError("crash after the effect, before the commit")

    with pytest.raises(RuntimeError):
        await inbox.process_once(event, credit_then_fail)
    assert await balance(pool) == 0
    assert not await inbox.was_processed(event.event_id)
    assert await inbox.process_once(event, lambda conn: credit(conn, event)) is True
    assert await balance(pool) == 700


async def test_concurrent_deliveries_of_one_event_apply_it_once(pool: asyncpg.Pool) -> None:
    inbox = PostgresInbox(pool, "statements", FakeClock())
    event = deposit(100)
    outcomes = await asyncio.gather(
        *(inbox.process_once(event, lambda conn: credit(conn, event)) for _ in range(6))
    )
    assert sorted(outcomes) == [False] * 5 + [True]
    assert await balance(pool) == 100


async def test_each_consumer_has_its_own_inbox(pool: asyncpg.Pool) -> None:
    clock = FakeClock()
    event = deposit(5)
    statements, notifications = (PostgresInbox(pool, c, clock) for c in ("stm", "notify"))
    assert await statements.process_once(event, lambda conn: credit(conn, event))
    assert await notifications.process_once(event, lambda conn: credit(conn, event))
    assert not await statements.process_once(event, lambda conn: credit(conn, event))
    assert await balance(pool) == 10


async def test_recording_outside_a_transaction_is_refused(pool: asyncpg.Pool) -> None:
    inbox = PostgresInbox(pool, "statements", FakeClock())
    async with pool.acquire() as conn:
        with pytest.raises(InboxNeedsTransaction):
            await inbox.record(conn, uuid.uuid4())


async def test_old_rows_are_purged_by_processing_time(pool: asyncpg.Pool) -> None:
    clock = FakeClock()
    inbox = PostgresInbox(pool, "statements", clock)
    old, recent = deposit(1), deposit(2)
    await inbox.process_once(old, lambda conn: credit(conn, old))
    clock.advance(days=8)
    await inbox.process_once(recent, lambda conn: credit(conn, recent))
    assert await inbox.purge_processed_before(clock.now() - timedelta(days=7)) == 1
    assert not await inbox.was_processed(old.event_id)
    assert await inbox.was_processed(recent.event_id)
