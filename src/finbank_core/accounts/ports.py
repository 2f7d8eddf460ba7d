"""Ports of the accounts context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from finbank_core.accounts.ledger import (
    CreateAccountResult,
    CreateTransferResult,
    EntryPage,
    LedgerAccount,
    NewAccount,
    Transfer,
    TransferRecord,
)
from finbank_core.accounts.model import AccountStatus, CustomerAccount
from finbank_core.shared.events import EventEnvelope


class Ledger(Protocol):
    """A double-entry ledger with TigerBeetle semantics (see ``ledger`` module).

    Batches are atomic per transfer (or per linked chain), never partially
    applied within one transfer; results come back in input order. Adapters
    raise ``ServiceUnavailable`` when their store cannot be reached; nothing
    is applied in that case, and resubmitting the same batch is safe.
    """

    async def create_accounts(self, accounts: Sequence[NewAccount]) -> list[CreateAccountResult]:
        """Create accounts; an existing id with the same fields gives ``EXISTS``."""
        ...

    async def create_transfers(
        self,
        transfers: Sequence[Transfer],
        *,
        events: Sequence[EventEnvelope] = (),
    ) -> list[CreateTransferResult]:
        """Apply a batch; one result per transfer, in order.

        ``events`` are recorded (outbox / publisher) atomically with the
        batch, and only if at least one transfer of it returned ``OK``: a
        replayed batch publishes nothing twice.
        """
        ...

    async def lookup_accounts(self, ids: Sequence[uuid.UUID]) -> list[LedgerAccount]:
        """The accounts that exist among ``ids``, in the order asked."""
        ...

    async def lookup_transfers(self, ids: Sequence[uuid.UUID]) -> list[TransferRecord]:
        """The transfers that exist among ``ids``, in the order asked."""
        ...

    async def get_account_entries(
        self,
        account_id: uuid.UUID,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        after_sequence: int | None = None,
        limit: int = 100,
    ) -> EntryPage:
        """Posted entries of an account, oldest first, ``since <= timestamp < until``."""
        ...

    async def expire_pending_transfers(self) -> int:
        """Void every pending transfer whose timeout has passed on the ledger's clock.

        Returns how many were voided. Expired transfers are also voided lazily
        when touched, so calling this is about releasing reservations early.
        """
        ...


class AccountRepository(Protocol):
    """Customer accounts (the bank's product), one per ledger account."""

    async def next_account_number(self) -> int:
        """A fresh account number (without check digit), never handed out before."""
        ...

    async def add(self, account: CustomerAccount) -> None:
        """Store a new account; raises ``DuplicateAccount`` for a taken id or number."""
        ...

    async def get(self, account_id: uuid.UUID) -> CustomerAccount:
        """Raises ``AccountNotFound``."""
        ...

    async def get_by_number(self, branch: str, number: str) -> CustomerAccount:
        """Look up by branch and number with check digit; raises ``AccountNotFound``."""
        ...

    async def list_by_owner(self, owner_id: str) -> list[CustomerAccount]:
        """The owner's accounts, oldest first."""
        ...

    async def set_status(self, account_id: uuid.UUID, status: AccountStatus) -> CustomerAccount:
        """Change an account's status; raises ``AccountNotFound``."""
        ...
