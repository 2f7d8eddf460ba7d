"""Ports of the accounts context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from finbank_core.accounts.ledger import (
    AccountBalance,
    AccountFilter,
    CreateAccountResult,
    CreateTransferResult,
    EntryPage,
    LedgerAccount,
    NewAccount,
    QueryFilter,
    SubmittedTransfer,
    Transfer,
    TransferRecord,
)
from finbank_core.accounts.model import AccountStatus, CustomerAccount
from finbank_core.shared.events import EventEnvelope


class Ledger(Protocol):
    """A double-entry ledger with TigerBeetle semantics (see ``ledger`` module).

    Batches are atomic per transfer (or per linked chain), never partially
    applied within one transfer; results come back in input order. The rules
    and the order in which they are checked are those of
    ``finbank_core.accounts.ledger_rules`` on every adapter. Adapters raise
    ``ServiceUnavailable`` when their store cannot be reached; nothing is
    applied in that case, and resubmitting the same batch is safe.

    Every call that reads or changes balances or transfers first voids the
    pending transfers whose timeout has passed on the ledger's clock (exactly
    once, whichever call notices first), so what it reads or checks is the
    state at the clock's "now". A statement (posted entries only) need not.
    """

    async def create_accounts(self, accounts: Sequence[NewAccount]) -> list[CreateAccountResult]:
        """Create accounts, one result each, in order.

        An existing id with the same fields gives ``EXISTS``; ``LINKED``
        accounts form all-or-nothing chains as transfers do.
        """
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

    async def submit_transfer(
        self, transfer: Transfer, *, events: Sequence[EventEnvelope] = ()
    ) -> SubmittedTransfer:
        """:meth:`create_transfers` of one transfer, answered with its stored timestamp
        when ``OK``: a caller can describe what it created without looking it up."""
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

    async def query_transfers(self, filter: QueryFilter) -> list[TransferRecord]:
        """Transfers matching every non-zero field of ``filter``, by timestamp.

        Oldest first (ties in creation order), newest first if
        ``filter.reversed``; at most ``filter.limit``. Raises
        ``InvalidLedgerFilter`` for a filter with a value out of range.
        """
        ...

    async def get_account_transfers(self, filter: AccountFilter) -> list[TransferRecord]:
        """Transfers where ``filter.account_id`` is the debit and/or credit side.

        Ordered and limited as :meth:`query_transfers`; an unknown account
        has none. Raises ``InvalidLedgerFilter`` for an invalid filter.
        """
        ...

    async def get_account_balances(self, filter: AccountFilter) -> list[AccountBalance]:
        """The account's balances after each transfer matching ``filter``.

        Only accounts created with ``AccountFlags.HISTORY`` keep them; any
        other (or unknown) account gives an empty list. Ordered and limited
        as :meth:`get_account_transfers`.
        """
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

    async def get_many(self, account_ids: Sequence[uuid.UUID]) -> list[CustomerAccount]:
        """The accounts that exist among ``account_ids``, in the order asked (one read)."""
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


class CheckedTransfers(Protocol):
    """One internal transfer submitted together with the checks on its two accounts.

    What :class:`~finbank_core.accounts.use_cases.InternalTransfer` needs
    from its stores, as one operation so that an adapter holding both the
    accounts and the ledger can run it in one round trip and one
    transaction (PostgreSQL: ``PostgresCheckedTransfers``). The default,
    :class:`~finbank_core.accounts.access.ComposedCheckedTransfers`, composes
    an :class:`AccountRepository` and a :class:`Ledger`; every implementation
    answers exactly as it does.
    """

    async def submit_internal(
        self, transfer: Transfer, *, owner_id: str, events: Sequence[EventEnvelope]
    ) -> SubmittedTransfer:
        """Submit ``transfer`` (debit: the source) for ``owner_id``, with ``events``.

        Raises ``AccountNotFound`` when the source is missing or not
        ``owner_id``'s, always. When the target is missing, or either account
        is not active, and the ledger holds no transfer with ``transfer.id``:
        ``AccountNotActive`` naming the source's status if it is not active,
        else ``AccountNotFound`` for a missing target, else
        ``AccountNotActive`` naming the target's. A refused transfer writes
        nothing. Otherwise the ledger's answer to
        :meth:`Ledger.submit_transfer`, as it is (``EXISTS`` for a replay even
        after an account was blocked).
        """
        ...
