"""Who may use an account: the one place the ownership and status checks live.

An account that is not the caller's is reported as not found (no BOLA, no
leak of its existence); one that is not active refuses money movements with
``AccountNotActive``. Every context that acts on a customer's account (the
accounts use cases, PIX) checks it here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from finbank_core.accounts.ledger import SubmittedTransfer, Transfer
from finbank_core.accounts.model import AccountStatus, CustomerAccount
from finbank_core.accounts.ports import AccountRepository, Ledger
from finbank_core.shared.errors import AccountNotActive, AccountNotFound
from finbank_core.shared.events import EventEnvelope


async def owned_account(
    accounts: AccountRepository, owner_id: str, account_id: uuid.UUID
) -> CustomerAccount:
    """The caller's account; ``AccountNotFound`` for a missing one or anyone else's."""
    account = await accounts.get(account_id)
    if account.owner_id != owner_id:
        raise AccountNotFound()
    return account


def require_active(account: CustomerAccount) -> CustomerAccount:
    """``account`` if it is active, else ``AccountNotActive`` naming its status."""
    if account.status is not AccountStatus.ACTIVE:
        raise AccountNotActive(f"the account is {account.status.value}")
    return account


async def active_account(accounts: AccountRepository, account_id: uuid.UUID) -> CustomerAccount:
    """The account, active (whoever owns it: for operators and the payee side)."""
    return require_active(await accounts.get(account_id))


async def owned_active_account(
    accounts: AccountRepository, owner_id: str, account_id: uuid.UUID
) -> CustomerAccount:
    """The caller's account, active; ``AccountNotFound`` for anyone else's."""
    return require_active(await owned_account(accounts, owner_id, account_id))


class ComposedCheckedTransfers:
    """The ``CheckedTransfers`` port from an account repository and a ledger.

    Two steps (three when a check fails): both accounts in one read, the
    ledger asked whether the id exists only when an account would refuse,
    then the ledger's submission. The stores of the memory and DynamoDB
    profiles, and any mix of backends, use it; a store that holds both
    (PostgreSQL) runs the same checks in the ledger's own call instead.
    """

    def __init__(self, accounts: AccountRepository, ledger: Ledger) -> None:
        self._accounts = accounts
        self._ledger = ledger

    async def submit_internal(
        self, transfer: Transfer, *, owner_id: str, events: Sequence[EventEnvelope]
    ) -> SubmittedTransfer:
        source_id, target_id = transfer.debit_account_id, transfer.credit_account_id
        if source_id is None or target_id is None:  # not an internal transfer's
            raise AccountNotFound()
        # both accounts in one read; the source must be the caller's
        found = {a.id: a for a in await self._accounts.get_many([source_id, target_id])}
        source = found.get(source_id)
        if source is None or source.owner_id != owner_id:
            raise AccountNotFound()
        target = found.get(target_id)
        # A replay must answer as the first call did even if an account was
        # blocked since: a refusal is only given once the ledger (which knows
        # the id) says the transfer is not there.
        if (
            target is None
            or source.status is not AccountStatus.ACTIVE
            or target.status is not AccountStatus.ACTIVE
        ) and not await self._ledger.lookup_transfers([transfer.id]):
            require_active(source)
            if target is None:
                raise AccountNotFound()
            require_active(target)
        return await self._ledger.submit_transfer(transfer, events=events)
