"""Reading an account's PIX limits and withdrawing a raise still waiting for its delay.

Changing them is :class:`~finbank_core.pix.use_cases.limits.SetPixLimits`
(a lowering at once, a raise after ``raise_delay_seconds``: Resolução BCB
nº 142/2021 asks for at least 24 h and at most 48 h).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import msgspec

from finbank_core.accounts.access import owned_active_account
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.limits import AccountLimits, LimitPolicy
from finbank_core.pix.ports import AccountLimitsStore
from finbank_core.pix.use_cases.limits import PixLimitsResult, view_limits
from finbank_core.shared.clock import Clock


class GetPixLimitsQuery(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    account_id: uuid.UUID


class CancelPixLimitRaiseCommand(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    account_id: uuid.UUID


class GetPixLimits:
    """The figures in force at ``now`` and the raise still pending, with when it applies."""

    def __init__(
        self,
        *,
        accounts: AccountRepository,
        clock: Clock,
        policy: LimitPolicy,
        store: AccountLimitsStore,
    ) -> None:
        self._accounts = accounts
        self._clock = clock
        self._policy = policy
        self._store = store

    async def __call__(self, query: GetPixLimitsQuery) -> PixLimitsResult:
        account = await owned_active_account(self._accounts, query.owner_id, query.account_id)
        choices = await self._store.get(account.id)
        return view_limits(self._policy, account, choices, self._clock.now())


class CancelPixLimitRaise:
    """Withdraw the pending raise before it applies; the figures in force stay.

    A raise whose delay has passed is in force, not pending: nothing is
    withdrawn then (lower the figures instead). Repeating is harmless.
    """

    def __init__(
        self,
        *,
        accounts: AccountRepository,
        clock: Clock,
        policy: LimitPolicy,
        store: AccountLimitsStore,
    ) -> None:
        self._accounts = accounts
        self._clock = clock
        self._policy = policy
        self._store = store

    async def __call__(self, cmd: CancelPixLimitRaiseCommand) -> PixLimitsResult:
        account = await owned_active_account(self._accounts, cmd.owner_id, cmd.account_id)
        now = self._clock.now()
        delay = timedelta(seconds=self._policy.settings.raise_delay_seconds)

        def withdraw(choices: AccountLimits | None) -> AccountLimits | None:
            # on the choices as stored when written: a lowering made meanwhile is kept
            pending = choices.pending_raise if choices else None
            if choices is not None and pending is not None and now < pending.requested_at + delay:
                return msgspec.structs.replace(choices, pending_raise=None)
            return None  # nothing pending: nothing written

        choices = await self._store.update(account.id, withdraw)
        return view_limits(self._policy, account, choices, now)
