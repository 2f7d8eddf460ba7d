"""Embed finbank's ledger without HTTP: open accounts, move money, read a statement.

Run: ``python examples/embed_ledger.py``. ``open_bank(profile="memory")`` runs
on the in-memory adapters; pass ``Settings`` (or set ``FINBANK_PROFILE=local``
and friends) to run the same code on PostgreSQL. ``clock=`` and ``ids=`` take
fakes for tests.
"""

from __future__ import annotations

import asyncio

from finbank import open_bank
from finbank_core.accounts.use_cases import (
    GetStatementQuery,
    InternalTransferCommand,
    ListAccountsQuery,
    MoveCashCommand,
    OpenAccountCommand,
)
from finbank_core.shared.money import Money


async def main() -> None:
    async with open_bank(profile="memory") as bank:
        carla = await bank.accounts.open(
            OpenAccountCommand(owner_id="carla", holder_name="Carla Dias")
        )
        davi = await bank.accounts.open(
            OpenAccountCommand(owner_id="davi", holder_name="Davi Reis")
        )

        await bank.accounts.deposit(
            MoveCashCommand(
                account_id=carla.id,
                amount=Money.from_bcb("250.00"),
                idempotency_key="till-7-0001",
                operator_id="teller-7",
            )
        )
        command = InternalTransferCommand(
            owner_id="carla",
            from_account_id=carla.id,
            to_account_id=davi.id,
            amount=Money.from_bcb("99.90"),
            idempotency_key="carla-2026-001",
            description="livros",
        )
        first = await bank.accounts.transfer(command)
        retry = await bank.accounts.transfer(command)  # a retry: recognised, nothing moves twice
        assert retry.replayed
        assert retry.transfer_id == first.transfer_id

        statement = await bank.accounts.statement(
            GetStatementQuery(owner_id="carla", account_id=carla.id)
        )
        for line in statement.lines:
            print(f"{line.amount.format_brl():>12}  saldo {line.balance_after.format_brl():>12}")
        assert [line.balance_after for line in statement.lines] == [Money(250_00), Money(150_10)]
        accounts = await bank.accounts.list(ListAccountsQuery(owner_id="carla"))
        print(f"carla has {len(accounts)} account(s)")


if __name__ == "__main__":
    asyncio.run(main())
