"""Payer side: the account's own daily limit for Pix Automático.

Distinct from a recurrence's maximum (``max_amount``, one recurrence's cap
per charge): this one is the payer's cap on everything Pix Automático
debits from the account in one Brasília day, whatever the recurrence. A
debit attempt that would pass it fails (``automatic_limit_exceeded``) and is
retried as the charge's policy allows, like one short of funds. The day's
usage is counted atomically in the PIX limits store (a counter per account
and day, a hold per attempt given back when the attempt fails), so debits
running at once on several schedulers never pass the limit together.

Lowering the limit (or setting one where there was none) applies at once.
Raising it or removing it lets automatic debits take more from the account,
so it needs the caller to have re-authenticated: ``allow_raise`` (over HTTP,
a spent step-up token for ``pix_limit_raise``, as for the PIX limits);
without it ``StepUpRequired`` and nothing changes. A bearer token alone
cannot widen what automatic debits may take.
"""

from __future__ import annotations

import uuid

import msgspec

from finbank_core.accounts.access import owned_active_account
from finbank_core.accounts.ports import AccountRepository
from finbank_core.auth.errors import StepUpRequired
from finbank_core.auth.step_up import StepUpPurpose
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
    #: whether the caller re-authenticated (HTTP: a spent step-up token for
    #: ``pix_limit_raise``); a raise or a removal is refused with ``StepUpRequired``
    #: without it. Off by default: an embedder says so explicitly.
    allow_raise: bool = False


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
        if not cmd.allow_raise and _raises(
            await self._store.get_payer_limit(account.id), cmd.daily_limit
        ):
            raise StepUpRequired(
                "raising or removing the Pix Automático limit needs a step-up",
                purpose=StepUpPurpose.PIX_LIMIT_RAISE.value,
            )
        await self._store.set_payer_limit(account.id, cmd.daily_limit)
        return AutomaticLimit(account_id=account.id, daily_limit=cmd.daily_limit)


def _raises(current: Money | None, requested: Money | None) -> bool:
    """Whether ``requested`` lets automatic debits take more than ``current`` (None: no limit)."""
    if current is None:
        return False  # from no limit, any limit (or none again) takes nothing more
    return requested is None or requested.cents > current.cents


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
