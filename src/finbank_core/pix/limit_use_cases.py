"""Applying the limit policy: usage from the payment records, customers' choices."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import msgspec

from finbank_core.accounts.model import CustomerAccount
from finbank_core.pix.context import PixDeps
from finbank_core.pix.limits import AccountLimits, LimitPolicy, LimitWindow, TierLimits
from finbank_core.pix.payments import PaymentStatus
from finbank_core.pix.ports import AccountLimitsStore, DeviceRegistry, PixPaymentRepository
from finbank_core.shared.money import Money


async def outgoing_usage(
    payments: PixPaymentRepository,
    account_id: uuid.UUID,
    since: datetime,
    until: datetime,
    *,
    device_id: str | None = None,
) -> Money:
    """What the account sent (not rejected) with ``since <= created_at < until``.

    With ``device_id``, only what that device initiated.
    """
    total, cursor = 0, None
    while True:
        page = await payments.list_by_account(
            account_id, since=since, until=until, cursor=cursor, limit=100
        )
        for payment in page.items:
            if (
                payment.payer.account_id == account_id
                and payment.status is not PaymentStatus.REJECTED
                and (device_id is None or payment.device_id == device_id)
            ):
                total += payment.amount.cents
        if page.next_cursor is None:
            return Money(total)
        cursor = page.next_cursor


class PixLimiter:
    """Checks a payment against the policy, the customer's choices and the usage so far.

    Usage is read from the payment records, so two payments racing in the
    same instant may both pass; the per-transaction figures still hold.
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

    async def enforce(
        self, account: CustomerAccount, amount: Money, now: datetime, device_id: str | None
    ) -> LimitWindow:
        """Raise ``PixLimitExceeded`` if ``amount`` may not leave ``account`` now."""
        choices = await self._limits.get(account.id)
        window = self.policy.window(now, late_night=choices is not None and choices.late_night)
        used = await outgoing_usage(self._payments, account.id, window.starts_at, window.ends_at)
        new_device, used_by_device = False, Money(0)
        if device_id is not None:
            first_seen = await self._devices.first_seen(account.owner_id, device_id)
            new_device = self.policy.is_new_device(first_seen, now)
            if new_device:
                day_start, day_end = self.policy.local_day(now)
                used_by_device = await outgoing_usage(
                    self._payments, account.id, day_start, day_end, device_id=device_id
                )
        return self.policy.check(
            amount=amount,
            holder_type=account.holder_type,
            account=choices,
            now=now,
            used_in_window=used,
            new_device=new_device,
            used_by_device_today=used_by_device,
        )

    async def record_device(self, owner_id: str, device_id: str | None, now: datetime) -> None:
        if device_id is not None:
            await self._devices.record_use(owner_id, device_id, now)


class LimitsView(msgspec.Struct, frozen=True, kw_only=True):
    account_id: uuid.UUID
    late_night: bool
    in_force: TierLimits
    pending_raise: TierLimits | None
    pending_effective_at: datetime | None


class SetPixLimits:
    """A customer changes an account's limits: lower at once, higher after 24 h."""

    def __init__(self, deps: PixDeps, policy: LimitPolicy, store: AccountLimitsStore) -> None:
        self._deps = deps
        self._policy = policy
        self._store = store

    async def __call__(
        self,
        owner_id: str,
        account_id: uuid.UUID,
        requested: TierLimits,
        *,
        late_night: bool | None = None,
    ) -> LimitsView:
        account = await self._deps.owned_active_account(owner_id, account_id)
        now = self._deps.clock.now()
        current = await self._store.get(account_id)
        changed = self._policy.request_change(
            account.holder_type, current, account_id, requested, now, late_night=late_night
        )
        await self._store.put(changed)
        return view_limits(self._policy, account, changed, now)


def view_limits(
    policy: LimitPolicy, account: CustomerAccount, choices: AccountLimits | None, now: datetime
) -> LimitsView:
    pending = choices.pending_raise if choices else None
    delay = policy.settings.raise_delay_seconds
    effective_at = None
    if pending is not None:
        effective_at = pending.requested_at + timedelta(seconds=delay)
        if now >= effective_at:
            pending, effective_at = None, None
    return LimitsView(
        account_id=account.id,
        late_night=bool(choices and choices.late_night),
        in_force=policy.effective(account.holder_type, choices, now),
        pending_raise=pending.limits if pending else None,
        pending_effective_at=effective_at,
    )
