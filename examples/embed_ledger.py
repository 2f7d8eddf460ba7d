"""Embed finbank's ledger without HTTP: open accounts, move money, read a statement.

Run: ``python examples/embed_ledger.py``. It uses the in-memory adapters; swap
them for the PostgreSQL ones (same ports) to run against a database.
"""

from __future__ import annotations

import asyncio

from finbank_adapters.memory import (
    InMemoryAccountRepository,
    InMemoryEventPublisher,
    InMemoryLedger,
    SystemClock,
    UUIDv7Generator,
)
from finbank_core.accounts.use_cases import (
    Deposit,
    EnsureBankAccounts,
    GetStatement,
    InternalTransfer,
    InternalTransferCommand,
    MoveCashCommand,
    OpenAccount,
    OpenAccountCommand,
    StatementQuery,
)
from finbank_core.shared.money import Money


async def main() -> None:
    clock = SystemClock()
    ids = UUIDv7Generator(clock)
    events = InMemoryEventPublisher()
    ledger = InMemoryLedger(clock, events)
    accounts = InMemoryAccountRepository()
    await EnsureBankAccounts(ledger)()

    open_account = OpenAccount(ledger, accounts, events, clock, ids)
    carla = await open_account(OpenAccountCommand(owner_id="carla", holder_name="Carla Dias"))
    davi = await open_account(OpenAccountCommand(owner_id="davi", holder_name="Davi Reis"))

    await Deposit(ledger, accounts, clock, ids)(
        MoveCashCommand(
            account_id=carla.id,
            amount=Money.from_bcb("250.00"),
            idempotency_key="till-7-0001",
            operator_id="teller-7",
        )
    )
    transfer = InternalTransfer(ledger, accounts, clock, ids)
    command = InternalTransferCommand(
        owner_id="carla",
        from_account_id=carla.id,
        to_account_id=davi.id,
        amount=Money.from_bcb("99.90"),
        idempotency_key="carla-2026-001",
        description="livros",
    )
    first = await transfer(command)
    retry = await transfer(command)  # a retry: recognised, nothing moves twice
    assert retry.replayed
    assert retry.transfer_id == first.transfer_id

    statement = await GetStatement(ledger, accounts)(
        StatementQuery(owner_id="carla", account_id=carla.id)
    )
    for line in statement.lines:
        print(f"{line.amount.format_brl():>12}  saldo {line.balance_after.format_brl():>12}")
    assert [line.balance_after for line in statement.lines] == [Money(250_00), Money(150_10)]
    print(f"{len(events.published)} events published")


if __name__ == "__main__":
    asyncio.run(main())
