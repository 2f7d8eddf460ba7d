"""Applying the limit policy: usage reserved per period, customers' choices."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import msgspec

from finbank_core.accounts.access import owned_active_account
from finbank_core.accounts.model import CustomerAccount
from finbank_core.accounts.ports import AccountRepository
from finbank_core.auth.errors import StepUpRequired
from finbank_core.auth.step_up import StepUpPurpose
from finbank_core.pix.errors import PixPaymentNotFound
from finbank_core.pix.limits import (
    AccountLimits,
    LimitPolicy,
    ReserveOutcome,
    TierLimits,
    UsageHold,
    counter_exceeded,
)
from finbank_core.pix.payments import PaymentStatus
from finbank_core.pix.ports import AccountLimitsStore, DeviceRegistry, PixPaymentRepository
from finbank_core.shared.clock import Clock
from finbank_core.shared.money import Money

#: how long a hold whose payment was never recorded (its request crashed) keeps its room
STALE_HOLD_SECONDS = 120
#: how many reservations of a full period are checked for a dead payment, per attempt
RECLAIM_CHECKS = 50
_RECLAIM_ROUNDS = 3


class PixLimiter:
    """Reserves a payment's share of the limits before any money moves.

    Per-transaction figures are checked here; per-period ones by the limits
    store's conditional update over the payment's usage counters (all or
    none, see :class:`~finbank_core.pix.ports.AccountLimitsStore`), so
    concurrent payments, in one process or many, never pass a figure
    together. The reservation is keyed by the payment's EndToEndId:
    :meth:`release` gives it back when the payment fails before it is
    recorded or is rejected in the request. A payment a worker rejects later
    keeps its reservation until room is needed: then the reservations of
    rejected payments (and of payments never recorded after
    ``STALE_HOLD_SECONDS``, whose request crashed) are released, once, and
    the reservation is tried again.
    """

    def __init__(
        self,
        policy: LimitPolicy,
        payments: PixPaymentRepository,
        limits: AccountLimitsStore,
        devices: DeviceRegistry,
    ) -> None:
        self.policy = policy
        self._payments = payments
        self._limits = limits
        self._devices = devices

    async def reserve(
        self,
        account: CustomerAccount,
        amount: Money,
        now: datetime,
        device_id: str | None,
        hold_id: str,
    ) -> bool:
        """Reserve ``amount`` for payment ``hold_id`` or raise ``PixLimitExceeded``.

        True if this call made the reservation (so it releases it if the
        payment fails); False if ``hold_id`` was already reserved.
        """
        choices = await self._limits.get(account.id)
        new_device = False
        if device_id is not None:
            first_seen = await self._devices.first_seen(account.owner_id, device_id)
            new_device = self.policy.is_new_device(first_seen, now)
        else:
            new_device = self.policy.settings.unnamed_device_is_new
        counters = self.policy.usage_counters(
            amount=amount,
            holder_type=account.holder_type,
            account=choices,
            now=now,
            device_id=device_id,
            new_device=new_device,
            owner_id=account.owner_id,
        )
        hold = UsageHold(
            account_id=account.id,
            hold_id=hold_id,
            amount=amount.cents,
            counters=tuple(counters),
            created_at=now,
        )
        for _ in range(_RECLAIM_ROUNDS):
            result = await self._limits.reserve_usage(hold)
            if result.outcome is ReserveOutcome.RESERVED:
                return True
            if result.outcome is ReserveOutcome.ALREADY_HELD:
                return False
            full = next((c for c in counters if c.limit == result.limit), counters[0])
            if not await self._reclaim(hold.kept_under(full), full.period, hold_id, now):
                break
        raise counter_exceeded(full)

    async def release(self, account_id: uuid.UUID, hold_id: str) -> None:
        """Give a payment's reservation back (nothing if it was never made or is gone)."""
        await self._limits.release_usage(account_id, hold_id)

    async def _reclaim(self, kept_under: uuid.UUID, period: str, own: str, now: datetime) -> bool:
        """Release the holds of dead payments on one counter; True if any was released.

        The counter is the one kept under ``kept_under`` (the account, or for a
        new device's day the owner's scope, whose holds are of any of the
        owner's accounts: each is released on its own account). Newest first
        (a worker rejects within seconds) and at most ``RECLAIM_CHECKS`` of
        them, so a full period of a busy account costs a refused payment a
        bounded number of reads.
        """
        freed = False
        holds = await self._limits.usage_holds(kept_under, period)
        holds.sort(key=lambda h: (h.created_at, h.hold_id), reverse=True)
        for hold in holds[:RECLAIM_CHECKS]:
            if hold.hold_id != own and await self._is_dead(hold, now):
                freed = await self._limits.release_usage(hold.account_id, hold.hold_id) or freed
        return freed

    async def _is_dead(self, hold: UsageHold, now: datetime) -> bool:
        try:
            payment = await self._payments.get(hold.hold_id)
        except PixPaymentNotFound:
            return now >= hold.created_at + timedelta(seconds=STALE_HOLD_SECONDS)
        return payment.status is PaymentStatus.REJECTED

    async def record_device(self, owner_id: str, device_id: str | None, now: datetime) -> None:
        if device_id is not None:
            await self._devices.record_use(owner_id, device_id, now)


class PixLimitsResult(msgspec.Struct, frozen=True, kw_only=True):
    """An account's PIX limits in force and the raise waiting for its delay, if any."""

    account_id: uuid.UUID
    #: whether the night starts at 22:00 now (else at 20:00)
    late_night: bool
    in_force: TierLimits
    pending_raise: TierLimits | None
    pending_effective_at: datetime | None
    #: ``True`` when the pending raise also moves the night's start to 22:00
    pending_late_night: bool | None = None


class SetPixLimitsCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Change one of the caller's accounts' limits to ``requested``.

    ``late_night``: move the night window (``None`` keeps it as it is). Moving its
    start to 22:00 shortens the night, so it is a raise: it needs ``allow_raise``
    or ``step_up`` and applies after the delay; back to 20:00 applies at once.
    """

    owner_id: str
    account_id: uuid.UUID
    requested: TierLimits
    late_night: bool | None = None
    #: whether the caller re-authenticated for a raise (the embedder checked it); a
    #: request that would raise a figure is refused with ``StepUpRequired`` without it
    #: or ``step_up``
    allow_raise: bool = True
    #: spends the request's step-up token for ``pix_limit_raise`` (raises
    #: ``StepUpRequired`` if it is not valid): called once, after every check that can
    #: refuse the request and right before the write (HTTP passes it, not ``allow_raise``)
    step_up: Callable[[], Awaitable[None]] | None = None


class SetPixLimits:
    """A customer changes an account's limits: lower at once, higher after 24 h.

    The checks that can refuse (the account is the caller's and open, the
    figures are valid for its tier) come before ``step_up`` spends the
    request's token, so a refused request leaves the token usable. A token is
    spent right before the write; if the write then fails (the store is
    unavailable) the token is spent and nothing changed, and the caller steps
    up again: a re-authentication lost, never a change made without one
    (write-then-spend would let two requests replaying one token both apply).

    The change is computed from the choices as stored and written only over
    them (``AccountLimitsStore.update``, a compare-and-set), so concurrent
    changes of one account never undo one another's lowering.
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

    async def __call__(self, cmd: SetPixLimitsCommand) -> PixLimitsResult:
        account = await owned_active_account(self._accounts, cmd.owner_id, cmd.account_id)
        now = self._clock.now()
        allow_raise = cmd.allow_raise
        if cmd.step_up is not None:  # nothing left to refuse: the token is spent here, once
            await cmd.step_up()
            allow_raise = True

        def change(current: AccountLimits | None) -> AccountLimits:
            # against the choices as stored when written (the store's compare-and-set):
            # a lowering committed meanwhile is kept, and whether this raises is decided
            # on it, so a request without a step-up never lifts a figure over it
            changed = self._policy.request_change(
                account.holder_type,
                current,
                account.id,
                cmd.requested,
                now,
                late_night=cmd.late_night,
            )
            if changed.pending_raise is not None and not allow_raise:
                raise StepUpRequired(
                    "raising a PIX limit needs a step-up",
                    purpose=StepUpPurpose.PIX_LIMIT_RAISE.value,
                )
            return changed

        stored = await self._store.update(account.id, change)
        return view_limits(self._policy, account, stored, now)


def view_limits(
    policy: LimitPolicy, account: CustomerAccount, choices: AccountLimits | None, now: datetime
) -> PixLimitsResult:
    pending = choices.pending_raise if choices else None
    delay = policy.settings.raise_delay_seconds
    effective_at = None
    if pending is not None:
        effective_at = pending.requested_at + timedelta(seconds=delay)
        if now >= effective_at:
            pending, effective_at = None, None
    return PixLimitsResult(
        account_id=account.id,
        late_night=policy.late_night_in_force(choices, now),
        in_force=policy.effective(account.holder_type, choices, now),
        pending_raise=pending.limits if pending else None,
        pending_effective_at=effective_at,
        pending_late_night=pending.late_night if pending else None,
    )
