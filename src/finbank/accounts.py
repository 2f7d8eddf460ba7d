"""``bank.accounts``: customer accounts on the double-entry ledger."""

from __future__ import annotations

from finbank._provided import UseCases
from finbank_adapters.containers import BankContainer
from finbank_core.accounts import use_cases as uc
from finbank_core.accounts.model import CustomerAccount
from finbank_core.shared.inputs import checked_types

__all__ = ["AccountsFacade"]


class AccountsFacade:
    """Customer accounts on the double-entry ledger: ``bank.accounts``."""

    def __init__(self, container: BankContainer) -> None:
        self._c = container.accounts()
        self._built = UseCases()  # each use case built once, again after an override

    async def open(self, command: uc.OpenAccountCommand) -> CustomerAccount:
        """Open a customer account (and its ledger account)."""
        return await (await self._built(self._c.open_account))(checked_types(command))

    async def get(self, query: uc.GetAccountQuery) -> CustomerAccount:
        """One of the caller's accounts (``AccountNotFound`` for anyone else's)."""
        return await (await self._built(self._c.get_account))(checked_types(query))

    async def list(self, query: uc.ListAccountsQuery) -> list[CustomerAccount]:
        """Every account of the caller."""
        return await (await self._built(self._c.list_accounts))(checked_types(query))

    async def balance(self, query: uc.GetBalanceQuery) -> uc.BalanceResult:
        """Posted, available and pending balances of one of the caller's accounts."""
        return await (await self._built(self._c.get_balance))(checked_types(query))

    async def statement(self, query: uc.GetStatementQuery) -> uc.Statement:
        """A page of an account's statement."""
        return await (await self._built(self._c.get_statement))(checked_types(query))

    async def deposit(self, command: uc.MoveCashCommand) -> uc.TransferReceipt:
        """Cash in: credit the account from the bank's cash account."""
        return await (await self._built(self._c.deposit))(checked_types(command))

    async def withdraw(self, command: uc.MoveCashCommand) -> uc.TransferReceipt:
        """Cash out: debit the account (``InsufficientFunds`` if it would go negative)."""
        return await (await self._built(self._c.withdraw))(checked_types(command))

    async def transfer(self, command: uc.InternalTransferCommand) -> uc.TransferReceipt:
        """Move money between two accounts of this bank."""
        return await (await self._built(self._c.internal_transfer))(checked_types(command))
