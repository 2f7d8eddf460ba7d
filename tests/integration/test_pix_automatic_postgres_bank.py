"""Pix Automático through the whole wiring on PostgreSQL, with two scheduler instances at once.

The bank runs on PostgreSQL (ledger, accounts, outbox, PIX stores:
``FINBANK_PIX_BACKEND=postgres``) in a schema of its own. Customers
authorise recurrences through ``bank.pix.automatic``; then two scheduler
instances, each with its own container and pool as two processes would
have, run their loops at once on a fake clock set to the due date. Every
charge is debited once, the money is conserved, and each conclusion is in
the outbox once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime

import pytest

from finbank import Bank, open_bank
from finbank.bank import configure
from finbank_adapters.containers import build_container, close_container, open_container, resolve
from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres.pix_automatic import PostgresRecurrenceStore
from finbank_adapters.settings import Settings
from finbank_adapters.workers.pix_automatic import PixAutomaticWorker
from finbank_core.accounts.model import CustomerAccount
from finbank_core.accounts.use_cases import GetBalanceQuery, MoveCashCommand, OpenAccountCommand
from finbank_core.pix.automatic import (
    BRASILIA,
    AuthoriseRecurrenceCommand,
    ChargeStatus,
    CreateRecurrenceCommand,
    GetRecurringChargeQuery,
    Periodicity,
    RecurrenceCodeQuery,
    RetryPolicy,
    RunDueDebits,
    ScheduleChargeCommand,
)
from finbank_core.pix.automatic import events as automatic_events
from finbank_core.shared.money import Money
from tests.postgres_support import (
    all_postgres_settings,
    isolated_schema,
    require_postgres,
)

pytestmark = pytest.mark.services

MEMBERS = 10
START = datetime(2026, 3, 2, 9, 0, tzinfo=BRASILIA)
DUE = date(2026, 3, 5)


@pytest.fixture
async def settings() -> AsyncIterator[tuple[Settings, str]]:
    require_postgres()
    async with isolated_schema() as (_, schema):
        yield all_postgres_settings(schema), schema


async def _open(bank: Bank, owner: str, cents: int = 0) -> CustomerAccount:
    account = await bank.accounts.open(
        OpenAccountCommand(owner_id=owner, holder_name=owner.title())
    )
    if cents:
        await bank.accounts.deposit(
            MoveCashCommand(
                account_id=account.id,
                amount=Money(cents),
                idempotency_key=f"in-{owner}",
                operator_id="teller",
            )
        )
    return account


async def _available(bank: Bank, account: CustomerAccount) -> int:
    balance = await bank.accounts.balance(
        GetBalanceQuery(owner_id=account.owner_id, account_id=account.id)
    )
    return balance.available.cents


async def test_two_scheduler_instances_on_the_wired_bank_debit_each_charge_once(
    settings: tuple[Settings, str],
) -> None:
    config, _ = settings
    clock = FakeClock(START)
    async with open_bank(config, clock=clock) as bank:
        automatic = bank.pix.automatic
        store = await resolve(bank.container.pix_automatic().recurrence_store())
        assert isinstance(store, PostgresRecurrenceStore)
        gym = await _open(bank, "gym")
        members = [await _open(bank, f"member{n}", 100_00) for n in range(MEMBERS)]
        txids = []
        for member in members:
            plan = await automatic.create(
                CreateRecurrenceCommand(
                    owner_id="gym",
                    account_id=gym.id,
                    contract=f"PLANO-{member.owner_id}",
                    debtor_name=member.holder_name,
                    debtor_document="52998224725",
                    periodicity=Periodicity.MENSAL,
                    start=DUE,
                    retry_policy=RetryPolicy.PERMITE_3R_7D,
                    fixed_amount=Money(30_00),
                )
            )
            code = await automatic.code(
                RecurrenceCodeQuery(owner_id="gym", recurrence_id=plan.recurrence_id)
            )
            await automatic.authorise(
                AuthoriseRecurrenceCommand(
                    owner_id=member.owner_id, account_id=member.id, br_code=code.br_code
                )
            )
            scheduled = await automatic.schedule(
                ScheduleChargeCommand(
                    owner_id="gym",
                    recurrence_id=plan.recurrence_id,
                    amount=Money(30_00),
                    due_date=DUE,
                )
            )
            txids.append(scheduled.charge.txid)
        clock.set(datetime(2026, 3, 5, 0, 1, tzinfo=BRASILIA))

        # two instances: each its own container, pool and use cases, on the same clock
        instances = []
        for name in ("instance-1", "instance-2"):
            container = build_container(config)
            configure(container, clock=clock)
            await open_container(container)
            run_due: RunDueDebits = await resolve(container.pix_automatic().run_due_debits())
            instances.append(
                (
                    container,
                    PixAutomaticWorker(
                        run_due=run_due, holder=name, limit=3, interval_seconds=0.01
                    ),
                )
            )
        stop = asyncio.Event()

        async def until_all_final() -> None:
            while True:
                charges = [
                    await automatic.charge(GetRecurringChargeQuery(owner_id="gym", txid=t))
                    for t in txids
                ]
                if all(c.is_final for c in charges):
                    stop.set()
                    return
                await asyncio.sleep(0.01)

        try:
            await asyncio.wait_for(
                asyncio.gather(*(w.run(stop) for _, w in instances), until_all_final()),
                timeout=120,
            )
        finally:
            for container, _ in instances:
                await close_container(container)

        for txid in txids:
            charge = await automatic.charge(GetRecurringChargeQuery(owner_id="gym", txid=txid))
            assert charge.status is ChargeStatus.CONCLUIDA
            assert len(charge.attempts) == 1
        assert await _available(bank, gym) == MEMBERS * 30_00
        for member in members:
            assert await _available(bank, member) == 70_00

        pool = await resolve(bank.container.infra().postgres_pool())
        concluded = await pool.fetch(
            "SELECT event_id FROM outbox WHERE type = $1", automatic_events.CHARGE_CONCLUDED
        )
        assert len(concluded) == MEMBERS  # once each, however many runs announced it
        debits = await pool.fetchval(
            "SELECT count(*) FROM ledger_transfers WHERE code = 10 AND flags & 2 = 2"
        )
        assert debits == MEMBERS  # one reservation (pending PIX_OUT) per charge
