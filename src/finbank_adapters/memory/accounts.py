"""In-memory customer account repository."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from finbank_core.accounts.model import AccountStatus, CustomerAccount
from finbank_core.shared.errors import AccountNotFound, DuplicateAccount


class InMemoryAccountRepository:
    def __init__(self, first_number: int = 100_000) -> None:
        self._accounts: dict[uuid.UUID, CustomerAccount] = {}
        self._by_number: dict[tuple[str, str], uuid.UUID] = {}
        self._next_number = first_number

    async def next_account_number(self) -> int:
        number = self._next_number
        self._next_number += 1
        return number

    async def add(self, account: CustomerAccount) -> None:
        key = (account.branch, account.number)
        if account.id in self._accounts or key in self._by_number:
            raise DuplicateAccount("an account with this id or number already exists")
        self._accounts[account.id] = account
        self._by_number[key] = account.id

    async def get(self, account_id: uuid.UUID) -> CustomerAccount:
        try:
            return self._accounts[account_id]
        except KeyError:
            raise AccountNotFound() from None

    async def get_many(self, account_ids: Sequence[uuid.UUID]) -> list[CustomerAccount]:
        return [self._accounts[i] for i in account_ids if i in self._accounts]

    async def get_by_number(self, branch: str, number: str) -> CustomerAccount:
        account_id = self._by_number.get((branch, number))
        if account_id is None:
            raise AccountNotFound()
        return self._accounts[account_id]

    async def list_by_owner(self, owner_id: str) -> list[CustomerAccount]:
        owned = [a for a in self._accounts.values() if a.owner_id == owner_id]
        return sorted(owned, key=lambda a: (a.created_at, a.number))

    async def set_status(self, account_id: uuid.UUID, status: AccountStatus) -> CustomerAccount:
        account = await self.get(account_id)
        updated = CustomerAccount(
            **{f: getattr(account, f) for f in account.__struct_fields__ if f != "status"},
            status=status,
        )
        self._accounts[account_id] = updated
        return updated
