"""The container wires the PostgreSQL adapters, opens the pool in the lifespan and closes it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from finbank_adapters.containers import build_container, close_container, open_container, resolve
from finbank_adapters.postgres import (
    PostgresAccountRepository,
    PostgresEventPublisher,
    PostgresLedger,
    PostgresUserStore,
)
from finbank_adapters.settings import Backends, DatabaseBackend, PostgresOptions, Settings
from finbank_core.accounts.use_cases import (
    BankAccounts,
    Deposit,
    GetBalance,
    GetBalanceQuery,
    MoveCashCommand,
    OpenAccount,
    OpenAccountCommand,
)
from finbank_core.shared.events import EventEnvelope
from finbank_core.shared.money import Money
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres

pytestmark = pytest.mark.services


async def test_postgres_backends_run_the_use_cases_end_to_end() -> None:
    require_postgres()
    async with isolated_schema() as (pool, schema):
        settings = Settings(
            backends=Backends(
                ledger=DatabaseBackend.POSTGRES,
                accounts=DatabaseBackend.POSTGRES,
                users=DatabaseBackend.POSTGRES,
                events=DatabaseBackend.POSTGRES,
            ),
            # asyncpg passes unknown DSN query parameters on as server settings
            postgres=PostgresOptions(dsn=f"{POSTGRES_DSN}?{urlencode({'search_path': schema})}"),
        )
        container = build_container(settings)
        await open_container(container)
        try:
            assert isinstance(await resolve(container.accounts.ledger()), PostgresLedger)
            assert isinstance(
                await resolve(container.accounts.account_repository()), PostgresAccountRepository
            )
            assert isinstance(await resolve(container.auth.user_store()), PostgresUserStore)
            assert isinstance(await resolve(container.events.publisher()), PostgresEventPublisher)
            open_account: OpenAccount = await resolve(container.accounts.open_account())
            account = await open_account(
                OpenAccountCommand(owner_id="maria", holder_name="Maria da Silva")
            )
            deposit: Deposit = await resolve(container.accounts.deposit())
            await deposit(
                MoveCashCommand(
                    account_id=account.id,
                    amount=Money(150_00),
                    idempotency_key="k1",
                    operator_id="op",
                )
            )
            get_balance: GetBalance = await resolve(container.accounts.get_balance())
            balance = await get_balance(GetBalanceQuery(owner_id="maria", account_id=account.id))
            assert balance.posted == Money(150_00)
        finally:
            await close_container(container)
        # the bank's own accounts were created at startup, the events went to the outbox
        assert await pool.fetchval(
            "SELECT count(*) FROM ledger_accounts WHERE id = $1", BankAccounts.CASH
        )
        types = [r["type"] for r in await pool.fetch("SELECT type FROM outbox ORDER BY id")]
        assert types == ["ledger.account_opened", "ledger.deposit_made"]


def test_the_memory_profile_opens_no_pool() -> None:
    container = build_container(Settings())
    assert not isinstance(container.accounts.ledger(), PostgresLedger)


async def test_inbox_transactions_never_starve_the_effects_they_wait_for() -> None:
    # An inbox holds a connection in an open transaction while the effect runs, and the
    # effect (a use case) takes its own connections. On one shared pool, as many
    # partitions at once as the pool has connections held every connection in inbox
    # transactions, and each effect waited for one for good (the settlement worker
    # stopped on 12 partitions with the default pool of 10).
    require_postgres()
    async with isolated_schema() as (_pool, schema):
        settings = Settings(
            backends=Backends(events=DatabaseBackend.POSTGRES),
            postgres=PostgresOptions(
                dsn=f"{POSTGRES_DSN}?{urlencode({'search_path': schema})}",
                pool_min=1,
                pool_max=2,
            ),
        )
        container = build_container(settings)
        await open_container(container)
        try:
            shared = await resolve(container.infra.postgres_pool())
            inbox = await resolve(container.events.inbox(consumer="starvation-test"))
            in_effect = 0
            all_in = asyncio.Event()
            done: list[uuid.UUID] = []

            async def handle(event: EventEnvelope) -> None:
                async def effect(_conn: object) -> None:
                    nonlocal in_effect
                    in_effect += 1
                    if in_effect == 2:  # as many open inbox transactions as the pool's size
                        all_in.set()
                    await all_in.wait()
                    assert await shared.fetchval("SELECT 1") == 1  # the use case's own query
                    done.append(event.event_id)

                assert await inbox.process_once(event, effect)

            events = [
                EventEnvelope(
                    event_id=uuid.uuid4(),
                    type="test.starvation",
                    version=1,
                    occurred_at=datetime.now(UTC),
                    aggregate_id=f"agg-{n}",
                    payload={},
                )
                for n in range(4)
            ]
            await asyncio.wait_for(asyncio.gather(*(handle(e) for e in events)), 30)
            assert sorted(done) == sorted(e.event_id for e in events)
            assert all([await inbox.was_processed(e.event_id) for e in events])
        finally:
            await close_container(container)
