"""Driver errors become core errors; serialization failures and deadlocks are retried, boundedly.

Failures are real PostgreSQL errors: a statement trigger on ``ledger_transfers``
raises the SQLSTATE under test for the first N inserts (a sequence counts
attempts, since it survives the rollback of each failed one).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres import PostgresLedger
from finbank_adapters.postgres.errors import RetriesExhausted, RetryPolicy
from finbank_adapters.postgres.pool import create_pool
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateTransferResult,
    NewAccount,
    Transfer,
)
from finbank_core.shared.errors import ServiceUnavailable
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres

pytestmark = pytest.mark.services
FAST = RetryPolicy(attempts=5, base_delay_seconds=0.001, max_delay_seconds=0.005)


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    require_postgres()
    async with isolated_schema() as (pool, _):
        yield pool


async def fail_inserts(pool: asyncpg.Pool, sqlstate: str, times: int) -> None:
    await pool.execute(
        f"""
        CREATE SEQUENCE insert_attempts;
        CREATE FUNCTION fail_first_inserts() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('insert_attempts') <= {times} THEN
                RAISE EXCEPTION 'injected failure' USING ERRCODE = '{sqlstate}';
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER fail_first_inserts BEFORE INSERT ON ledger_transfers
            FOR EACH STATEMENT EXECUTE FUNCTION fail_first_inserts();
        """
    )


async def attempts(pool: asyncpg.Pool) -> int:
    value: int = await pool.fetchval("SELECT last_value FROM insert_attempts")
    return value


async def two_accounts(ledger: PostgresLedger) -> tuple[uuid.UUID, uuid.UUID]:
    bank, alice = uuid.uuid4(), uuid.uuid4()
    await ledger.create_accounts(
        [
            NewAccount(id=bank, code=100),
            NewAccount(id=alice, code=1, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS),
        ]
    )
    return bank, alice


def deposit(bank: uuid.UUID, alice: uuid.UUID) -> Transfer:
    return Transfer(
        id=uuid.uuid4(), debit_account_id=bank, credit_account_id=alice, amount=10_00, code=1
    )


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
async def test_a_conflict_abort_is_retried_and_the_transfer_applied_once(
    pool: asyncpg.Pool, sqlstate: str
) -> None:
    ledger = PostgresLedger(pool, FakeClock(), retry=FAST)
    bank, alice = await two_accounts(ledger)
    await fail_inserts(pool, sqlstate, times=2)
    transfer = deposit(bank, alice)
    assert await ledger.create_transfers([transfer]) == [CreateTransferResult.OK]
    assert ledger.retries == 2
    assert await attempts(pool) == 3
    [account] = await ledger.lookup_accounts([alice])
    assert account.credits_posted == 10_00
    assert len((await ledger.get_account_entries(alice)).entries) == 1


async def test_retries_are_bounded_and_leave_nothing_applied(pool: asyncpg.Pool) -> None:
    ledger = PostgresLedger(pool, FakeClock(), retry=FAST)
    bank, alice = await two_accounts(ledger)
    await fail_inserts(pool, "40P01", times=1_000)
    transfer = deposit(bank, alice)
    with pytest.raises(RetriesExhausted):
        await ledger.create_transfers([transfer])
    assert await attempts(pool) == FAST.attempts
    assert await ledger.lookup_transfers([transfer.id]) == []
    [account] = await ledger.lookup_accounts([alice])
    assert account.credits_posted == 0


async def test_other_database_errors_are_not_retried(pool: asyncpg.Pool) -> None:
    ledger = PostgresLedger(pool, FakeClock(), retry=FAST)
    bank, alice = await two_accounts(ledger)
    await fail_inserts(pool, "XX000", times=1_000)
    with pytest.raises(asyncpg.InternalServerError):
        await ledger.create_transfers([deposit(bank, alice)])
    assert await attempts(pool) == 1


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_unreachable_server_is_service_unavailable() -> None:
    with pytest.raises(ServiceUnavailable):
        await create_pool(f"postgresql://postgres@127.0.0.1:{closed_port()}/test", min_size=1)


async def test_a_schema_never_migrated_is_service_unavailable() -> None:
    require_postgres()
    pool = await create_pool(POSTGRES_DSN, server_settings={"search_path": "no_such_schema"})
    try:
        with pytest.raises(ServiceUnavailable, match="migrate"):
            await PostgresLedger(pool, FakeClock()).lookup_accounts([uuid.uuid4()])
    finally:
        await pool.close()
