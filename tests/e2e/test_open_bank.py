"""``open_bank()``: the typed facade over the containers, and the fakes it takes.

Each fake (clock, ids, payment network) replaces its provider for every use
case of that bank; the facade's replay answers hold under many concurrent
callers on the memory profile and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from finbank import Bank, Profile, Settings, SettingsError, open_bank
from finbank_adapters.containers import resolve
from finbank_adapters.memory import FakeClock, InMemoryLedger, SequentialIdGenerator
from finbank_adapters.sandbox import PEER_KEY_EMAIL, sandbox_peer
from finbank_adapters.sandbox.spi import SimulatedSpi
from finbank_core.accounts.use_cases import (
    BankAccounts,
    GetBalanceQuery,
    InternalTransferCommand,
    MoveCashCommand,
    OpenAccountCommand,
)
from finbank_core.pix.network import NetworkResult, PaymentOrder
from finbank_core.pix.payments import PaymentStatus
from finbank_core.pix.use_cases import SendPixCommand
from finbank_core.shared.money import Money
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres

CALLERS = 32
START = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


class RecordingNetwork(SimulatedSpi):
    """The sandbox network, remembering every payment order it was sent."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock, institutions=(sandbox_peer("88888888"),))
        self.orders: list[PaymentOrder] = []

    async def send_payment(self, order: PaymentOrder) -> NetworkResult:
        self.orders.append(order)
        return await super().send_payment(order)


async def test_a_fake_clock_is_the_time_of_every_use_case() -> None:
    clock = FakeClock(START)
    async with open_bank(profile=Profile.MEMORY, clock=clock) as bank:
        first = await bank.accounts.open(OpenAccountCommand(owner_id="ana", holder_name="Ana"))
        clock.advance(hours=2)
        second = await bank.accounts.open(OpenAccountCommand(owner_id="ana", holder_name="Ana"))
        receipt = await bank.accounts.deposit(
            MoveCashCommand(
                account_id=second.id, amount=Money(1_00), idempotency_key="d1", operator_id="t"
            )
        )
        assert bank.clock is clock
        assert first.created_at == START
        assert second.created_at == receipt.created_at == clock.now()


async def test_fake_ids_are_the_ids_of_every_use_case() -> None:
    async with open_bank(profile="memory", ids=SequentialIdGenerator()) as bank:
        ana = await bank.accounts.open(OpenAccountCommand(owner_id="ana", holder_name="Ana"))
        bia = await bank.accounts.open(OpenAccountCommand(owner_id="bia", holder_name="Bia"))
    expected = SequentialIdGenerator()
    sequence = [expected.new_id() for _ in range(10)]
    assert ana.id == sequence[0]
    assert bia.id in sequence[1:]  # opening an account also draws an event id


async def test_a_fake_payment_network_carries_the_pix_payments() -> None:
    clock = FakeClock(START)
    network = RecordingNetwork(clock)
    async with open_bank(profile="memory", clock=clock, payment_network=network) as bank:
        ana = await bank.accounts.open(OpenAccountCommand(owner_id="ana", holder_name="Ana"))
        await bank.accounts.deposit(
            MoveCashCommand(
                account_id=ana.id, amount=Money(100_00), idempotency_key="d", operator_id="t"
            )
        )
        command = SendPixCommand(
            owner_id="ana",
            account_id=ana.id,
            idempotency_key="pix-1",
            amount=Money(25_00),
            key=PEER_KEY_EMAIL,  # a key of the network's peer bank, seeded from the fake
        )
        sent = await bank.pix.send(command)
        again = await bank.pix.send(command)
        balance = await bank.accounts.balance(GetBalanceQuery(owner_id="ana", account_id=ana.id))
    assert sent.payment.status is PaymentStatus.SETTLED
    assert [o.end_to_end_id for o in network.orders] == [sent.payment.end_to_end_id]
    assert again.replayed
    assert again.payment.end_to_end_id == sent.payment.end_to_end_id
    assert balance.posted == Money(75_00)


async def test_settings_and_a_profile_together_are_refused() -> None:
    with pytest.raises(SettingsError, match="not both"):
        async with open_bank(Settings(), profile="memory"):
            pass  # pragma: no cover


async def test_the_bank_is_open_inside_and_its_container_reachable() -> None:
    async with open_bank(profile="memory") as bank:
        assert bank.settings.profile is Profile.MEMORY
        ledger = await resolve(bank.container.accounts.ledger())
        assert isinstance(ledger, InMemoryLedger)
        assert await ledger.lookup_accounts([BankAccounts.CASH])  # made on opening


@asynccontextmanager
async def bank_on(backend: str) -> AsyncIterator[Bank]:
    if backend == "memory":
        async with open_bank(profile="memory") as bank:
            yield bank
        return
    require_postgres()
    async with isolated_schema() as (_pool, schema):
        settings = Settings.from_env(
            {
                "FINBANK_LEDGER_BACKEND": "postgres",
                "FINBANK_ACCOUNTS_BACKEND": "postgres",
                "FINBANK_EVENTS_BACKEND": "postgres",
                "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
                "FINBANK_POSTGRES_POOL_MAX": str(CALLERS // 2),
            }
        )
        async with open_bank(settings) as bank:
            yield bank


@pytest.mark.parametrize(
    "backend", ["memory", pytest.param("postgres", marks=pytest.mark.services)]
)
async def test_concurrent_replays_of_a_transfer_move_money_once(backend: str) -> None:
    async with bank_on(backend) as bank:
        ana = await bank.accounts.open(OpenAccountCommand(owner_id="ana", holder_name="Ana"))
        bia = await bank.accounts.open(OpenAccountCommand(owner_id="bia", holder_name="Bia"))
        await bank.accounts.deposit(
            MoveCashCommand(
                account_id=ana.id, amount=Money(100_00), idempotency_key="d", operator_id="t"
            )
        )
        key = secrets.token_hex(8)
        command = InternalTransferCommand(
            owner_id="ana",
            from_account_id=ana.id,
            to_account_id=bia.id,
            amount=Money(60_00),
            idempotency_key=key,
        )
        receipts = await asyncio.gather(*(bank.accounts.transfer(command) for _ in range(CALLERS)))
        ana_balance = await bank.accounts.balance(
            GetBalanceQuery(owner_id="ana", account_id=ana.id)
        )
        bia_balance = await bank.accounts.balance(
            GetBalanceQuery(owner_id="bia", account_id=bia.id)
        )
    first = [r for r in receipts if not r.replayed]
    assert len(first) == 1  # exactly one caller moved the money
    assert {(r.transfer_id, r.amount, r.created_at) for r in receipts} == {
        (first[0].transfer_id, Money(60_00), first[0].created_at)
    }  # every replay answered like the first
    assert (ana_balance.posted, bia_balance.posted) == (Money(40_00), Money(60_00))
