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
so it needs the caller to have re-authenticated: ``allow_raise`` (the
embedder checked it), or ``step_up`` (over HTTP, spending the request's
step-up token for ``pix_limit_raise``, as for the PIX limits); without
either ``StepUpRequired`` and nothing changes. A bearer token alone cannot
widen what automatic debits may take.

Order: every check that can refuse (the account is the caller's and open,
the figure is valid) comes before the step-up token is spent, so a refused
request leaves the token usable. The token, when one is given, is spent once,
right before the write. Spend-then-write is the safe order (write-then-spend
would let two requests replaying one token both apply): if the write then
fails (the store is unavailable), the token is spent and nothing changed, and
the caller steps up again — a re-authentication lost, never a change made
without one.

The write is atomic in the store (``RecurrenceStore.set_payer_limit``): a
change without a raise permission applies only if, when it is written, it
does not raise the limit in force, so a lowering committed meanwhile by
another request is never overwritten by a higher figure; concurrent changes
end at the last one that applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import msgspec

from finbank_core.accounts.access import owned_active_account
from finbank_core.accounts.ports import AccountRepository
from finbank_core.auth.errors import StepUpRequired
from finbank_core.auth.step_up import StepUpPurpose
from finbank_core.pix.automatic.errors import InvalidRecurrence
from finbank_core.pix.automatic.ports import RecurrenceStore
from finbank_core.shared.money import MAX_BCB_CENTS, Money

#: the name of the usage counter (what a failed attempt's reason refers to)
AUTOMATIC_DAILY_LIMIT = "pix_automatic_daily"


class SetAutomaticLimitCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Set the account's daily Pix Automático limit; ``daily_limit=None`` removes it."""

    owner_id: str
    account_id: uuid.UUID
    daily_limit: Money | None
    #: whether the caller re-authenticated (the embedder checked it); a raise or a
    #: removal is refused with ``StepUpRequired`` without it or ``step_up``. Off by
    #: default: an embedder says so explicitly.
    allow_raise: bool = False
    #: spends the request's step-up token for ``pix_limit_raise`` (raises
    #: ``StepUpRequired`` if it is not valid): called once, after the checks that can
    #: refuse and right before the write; a change made after it may raise the limit
    step_up: Callable[[], Awaitable[None]] | None = None


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
        if cmd.daily_limit is not None and not 0 < cmd.daily_limit.cents <= MAX_BCB_CENTS:
            raise InvalidRecurrence(
                "the limit must be positive and at most R$ 9,999,999,999.99", field="daily_limit"
            )
        allow_raise = cmd.allow_raise
        if cmd.step_up is not None:  # nothing left to refuse: the token is spent here, once
            await cmd.step_up()
            allow_raise = True
        if not await self._store.set_payer_limit(
            account.id, cmd.daily_limit, allow_raise=allow_raise
        ):
            raise StepUpRequired(
                "raising or removing the Pix Automático limit needs a step-up",
                purpose=StepUpPurpose.PIX_LIMIT_RAISE.value,
            )
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
