"""Who may use an account: the one place the ownership and status checks live.

An account that is not the caller's is reported as not found (no BOLA, no
leak of its existence); one that is not active refuses money movements with
``AccountNotActive``. Every context that acts on a customer's account (the
accounts use cases, PIX) checks it here.
"""

from __future__ import annotations

import uuid

from finbank_core.accounts.model import AccountStatus, CustomerAccount
from finbank_core.accounts.ports import AccountRepository
from finbank_core.shared.errors import AccountNotActive, AccountNotFound


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
