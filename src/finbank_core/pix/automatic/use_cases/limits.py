"""Payer side: the account's own daily limit for Pix Automático.

Distinct from a recurrence's maximum (``max_amount``, one recurrence's cap
per charge): this one is the payer's cap on everything Pix Automático
debits from the account in one Brasília day, whatever the recurrence. A
debit attempt that would pass it fails (``automatic_limit_exceeded``) and is
retried as the charge's policy allows, like one short of funds. The day's
usage is counted atomically in the PIX limits store (a counter per account
and day, a hold per attempt given back when the attempt fails), so debits
running at once on several schedulers never pass the limit together.
"""

from __future__ import annotations

import uuid

import msgspec

from finbank_core.accounts.access import owned_active_account
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.automatic.errors import InvalidRecurrence
from finbank_core.pix.automatic.ports import RecurrenceStore
from finbank_core.shared.money import Money

#: the name of the usage counter (what a failed attempt's reason refers to)
AUTOMATIC_DAILY_LIMIT = "pix_automatic_daily"


class SetAutomaticLimitCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Set the account's daily Pix Automático limit; ``daily_limit=None`` removes it."""

    owner_id: str
    account_id: uuid.UUID
    daily_limit: Money | None


class AutomaticLimitQuery(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    account_id: uuid.UUID


class AutomaticLimit(msgspec.Struct, frozen=True, kw_only=True):
    account_id: uuid.UUID
    #: None: no limit of its own (the balance is the limit)
    daily_limit: Money | None


class SetAutomaticLimit:
    """The payer sets (or removes) the account's own daily Pix Automático limit."""

    def __init__(self, *, store: RecurrenceStore, accounts: AccountRepository) -> None:
        self._store = store
        self._accounts = accounts

    async def __call__(self, cmd: SetAutomaticLimitCommand) -> AutomaticLimit:
        account = await owned_active_account(self._accounts, cmd.owner_id, cmd.account_id)
        if cmd.daily_limit is not None and cmd.daily_limit.cents <= 0:
            raise InvalidRecurrence("the limit must be positive", field="daily_limit")
        await self._store.set_payer_limit(account.id, cmd.daily_limit)
        return AutomaticLimit(account_id=account.id, daily_limit=cmd.daily_limit)


class GetAutomaticLimit:
    def __init__(self, *, store: RecurrenceStore, accounts: AccountRepository) -> None:
        self._store = store
        self._accounts = accounts

    async def __call__(self, query: AutomaticLimitQuery) -> AutomaticLimit:
        account = await owned_active_account(self._accounts, query.owner_id, query.account_id)
        return AutomaticLimit(
            account_id=account.id, daily_limit=await self._store.get_payer_limit(account.id)
        )


__all__ = [
    "AUTOMATIC_DAILY_LIMIT",
    "AutomaticLimit",
    "AutomaticLimitQuery",
    "GetAutomaticLimit",
    "SetAutomaticLimit",
    "SetAutomaticLimitCommand",
]
