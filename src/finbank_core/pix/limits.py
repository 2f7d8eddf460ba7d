"""PIX transaction limits on the injected clock, in São Paulo time.

* The night runs from 20:00 (22:00 if the customer chose so) to 06:00 local
  time; ``19:59:59`` is day, ``20:00:00`` night, ``05:59:59`` night,
  ``06:00:00`` day. Day and night each have a per-transaction and a
  per-period figure; the period is the current window (today's day, or
  tonight from its start to 06:00). Whether the regulatory R$ 1,000.00
  night figure is per transaction or per period is left open here: both are
  figures, both R$ 1,000.00 by default.
* Individuals and companies have their own figures; companies are not
  covered by the night rule, so their night figures default to the day ones.
* A customer may lower a figure at once; a raise takes effect only
  ``raise_delay_seconds`` (24 h) after it was requested. Moving the night's
  start from 20:00 to 22:00 is a raise (a shorter night); back is a lowering.
* A device never used for PIX by its owner (or first used less than
  ``new_device_trust_seconds`` ago) is capped at R$ 200.00 per transaction
  and R$ 1,000.00 per local calendar day, across all the owner's accounts.

* Per-period figures are exact: a payment reserves its amount on a usage
  counter per period it counts in (:class:`UsageCounter`: the account's window,
  and the owner's device day for a new device) with one conditional update in the limits
  store, all counters or none, so concurrent payments in any number of
  processes never pass a figure together. The reservation (:class:`UsageHold`,
  keyed by the payment's EndToEndId) is given back when the payment fails or
  is rejected. Counters are keyed by period, not by the figure in force, so a
  figure lowered mid-period applies to what was already used.

Every figure lives in :class:`LimitSettings`; amounts are centavos.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec

from finbank_core.accounts.model import HolderType
from finbank_core.pix.errors import PixLimitExceeded
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.money import MAX_BCB_CENTS, Money


class TierLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Four figures in centavos: per transaction and per period, day and night."""

    day_per_transaction: int
    day_per_period: int
    night_per_transaction: int
    night_per_period: int

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 <= value <= MAX_BCB_CENTS
            ):
                raise InvalidInput(
                    "limits are amounts in centavos from 0 to 999999999999 (R$ 9,999,999,999.99)",
                    field=name,
                )

    def pairs(self) -> list[tuple[str, int]]:
        return [(name, getattr(self, name)) for name in self.__struct_fields__]


class LimitSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Every figure of the policy; decoded from ``FINBANK_PIX_LIMITS_JSON`` if set."""

    timezone: str = "America/Sao_Paulo"
    night_start_hour: int = 20
    late_night_start_hour: int = 22
    night_end_hour: int = 6
    individual: TierLimits = TierLimits(
        day_per_transaction=5_000_00,
        day_per_period=20_000_00,
        night_per_transaction=1_000_00,
        night_per_period=1_000_00,
    )
    company: TierLimits = TierLimits(
        day_per_transaction=50_000_00,
        day_per_period=200_000_00,
        night_per_transaction=50_000_00,
        night_per_period=200_000_00,
    )
    new_device_per_transaction: int = 200_00
    new_device_per_day: int = 1_000_00
    #: how long a device counts as new after its first PIX (unconfirmed: configurable)
    new_device_trust_seconds: int = 24 * 3600
    #: a payment that names no device is held to the new-device figures, always
    #: (a device no one names never grows trusted); off, it is capped by the
    #: window only: for callers that pay on no one's device (batch jobs, tests)
    unnamed_device_is_new: bool = False
    raise_delay_seconds: int = 24 * 3600


class WindowKind(enum.StrEnum):
    DAY = "day"
    NIGHT = "night"


class LimitWindow(msgspec.Struct, frozen=True, kw_only=True):
    """A day or night period: ``starts_at <= t < ends_at`` (aware datetimes)."""

    kind: WindowKind
    starts_at: datetime
    ends_at: datetime


class PendingRaise(msgspec.Struct, frozen=True, kw_only=True):
    """A request that raises: it applies ``raise_delay_seconds`` after ``requested_at``."""

    limits: TierLimits
    requested_at: datetime
    #: ``True``: the request also moves the night's start to 22:00, which shortens the
    #: night (two more hours under the day's figures) and so is a raise too; ``None``:
    #: the request leaves the night's start as it is (every raise stored before this field)
    late_night: bool | None = None


class AccountLimits(msgspec.Struct, frozen=True, kw_only=True):
    """A customer's choices for one account; ``limits=None`` means the bank's defaults."""

    account_id: uuid.UUID
    late_night: bool = False
    limits: TierLimits | None = None
    pending_raise: PendingRaise | None = None


class UsageCounter(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One period's usage figure: a reservation fits while ``used <= cap``.

    A counter is kept under ``(scope, period)``: ``scope`` None (the windows)
    means the account of the hold, so the figure is the account's; a new
    devices' day is kept under its owner's :func:`owner_usage_scope`, so it
    is shared by all the owner's accounts and all their new devices.
    """

    #: the figure's name, as in ``PixLimitExceeded.details["limit"]``
    limit: str
    #: which period: ``day:<06:00 UTC>``, ``night:<06:00 UTC>``, ``new-devices:<local date>``
    #: (``device:<id>:<local date>`` in holds taken before it was one for all new devices)
    period: str
    #: the figure in force, centavos
    cap: int
    #: when the period ends; a store may forget the counter some time after
    ends_at: datetime
    #: the id the counter is kept under; None: the hold's account (left out of the JSON,
    #: so holds recorded before scopes existed decode the same)
    scope: uuid.UUID | None = None


class UsageHold(msgspec.Struct, frozen=True, kw_only=True):
    """A payment's reservation of ``amount`` centavos on each of its counters.

    The hold is the account's (keyed by ``(account_id, hold_id)``); each of
    its counters is kept under :meth:`kept_under`.
    """

    account_id: uuid.UUID
    #: the payment's EndToEndId
    hold_id: str
    amount: int
    counters: tuple[UsageCounter, ...]
    created_at: datetime

    def kept_under(self, counter: UsageCounter) -> uuid.UUID:
        """The id ``counter`` is kept under: its scope, or this hold's account."""
        return self.account_id if counter.scope is None else counter.scope

    def counter_keys(self) -> list[tuple[uuid.UUID, str]]:
        """The distinct ``(kept under, period)`` of the counters, sorted (the lock order)."""
        return sorted({(self.kept_under(c), c.period) for c in self.counters})


class ReserveOutcome(enum.StrEnum):
    RESERVED = "reserved"
    #: a hold with this id is already counted (a replay): nothing was added
    ALREADY_HELD = "already_held"
    #: a counter would pass its cap: nothing was added
    EXCEEDED = "exceeded"


class UsageReservation(msgspec.Struct, frozen=True, kw_only=True):
    outcome: ReserveOutcome
    #: with ``EXCEEDED``, the ``limit`` of the first counter that would pass its cap
    limit: str | None = None


_PERIOD_WHAT = {
    "day_per_period": "the daytime period limit",
    "night_per_period": "the nighttime period limit",
    "new_device_per_day": "the daily limit of a new device",
}


def counter_exceeded(counter: UsageCounter) -> PixLimitExceeded:
    """The ``PixLimitExceeded`` for a counter the payment does not fit in."""
    what = _PERIOD_WHAT.get(counter.limit, "a period limit")
    return PixLimitExceeded(
        f"the payment exceeds {what} ({Money(counter.cap)})",
        limit=counter.limit,
        limit_cents=counter.cap,
    )


def window_period(window: LimitWindow) -> str:
    """The counter key of a window, anchored at its 06:00 end (night) or start (day).

    A day window starts at 06:00 whatever the night's start, and a night
    ends at 06:00, so switching ``late_night`` keeps the counter of the
    period in progress.
    """
    anchor = window.starts_at if window.kind is WindowKind.DAY else window.ends_at
    return f"{window.kind.value}:{anchor.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


class LimitPolicy:
    """Pure limit rules over :class:`LimitSettings`; the caller supplies usage figures."""

    def __init__(self, settings: LimitSettings | None = None) -> None:
        self.settings = settings or LimitSettings()
        self._zone = ZoneInfo(self.settings.timezone)

    # -- windows ------------------------------------------------------------------

    def window(self, now: datetime, *, late_night: bool = False) -> LimitWindow:
        """The day or night window ``now`` falls in, in local time."""
        s = self.settings
        local = now.astimezone(self._zone)
        start_hour = s.late_night_start_hour if late_night else s.night_start_hour
        today = local.date()

        def at(day_offset: int, hour: int) -> datetime:
            day = today + timedelta(days=day_offset)
            return datetime.combine(day, time(hour), tzinfo=self._zone)

        if local.time() >= time(start_hour):
            return LimitWindow(
                kind=WindowKind.NIGHT, starts_at=at(0, start_hour), ends_at=at(1, s.night_end_hour)
            )
        if local.time() < time(s.night_end_hour):
            return LimitWindow(
                kind=WindowKind.NIGHT, starts_at=at(-1, start_hour), ends_at=at(0, s.night_end_hour)
            )
        return LimitWindow(
            kind=WindowKind.DAY, starts_at=at(0, s.night_end_hour), ends_at=at(0, start_hour)
        )

    def local_day(self, now: datetime) -> tuple[datetime, datetime]:
        """The local calendar day of ``now``: ``[midnight, next midnight)``."""
        start = datetime.combine(now.astimezone(self._zone).date(), time(0), tzinfo=self._zone)
        return start, datetime.combine(start.date() + timedelta(days=1), time(0), tzinfo=self._zone)

    def is_new_device(self, first_seen: datetime | None, now: datetime) -> bool:
        """Never seen, or first seen less than ``new_device_trust_seconds`` ago."""
        trust = timedelta(seconds=self.settings.new_device_trust_seconds)
        return first_seen is None or now < first_seen + trust

    # -- figures ------------------------------------------------------------------------

    def defaults(self, holder_type: HolderType) -> TierLimits:
        s = self.settings
        return s.company if holder_type is HolderType.COMPANY else s.individual

    def effective(
        self, holder_type: HolderType, account: AccountLimits | None, now: datetime
    ) -> TierLimits:
        """The figures in force at ``now``: a pending raise counts once its delay has passed."""
        if account is None:
            return self.defaults(holder_type)
        pending = self._due_raise(account, now)
        if pending is not None:
            return pending.limits
        return account.limits or self.defaults(holder_type)

    def late_night_in_force(self, account: AccountLimits | None, now: datetime) -> bool:
        """Whether the night starts at 22:00 at ``now``: a pending move to 22:00 counts
        once its delay has passed, like any raise."""
        if account is None:
            return False
        pending = self._due_raise(account, now)
        if pending is not None and pending.late_night is not None:
            return pending.late_night
        return account.late_night

    def _due_raise(self, account: AccountLimits, now: datetime) -> PendingRaise | None:
        pending = account.pending_raise
        delay = timedelta(seconds=self.settings.raise_delay_seconds)
        if pending is not None and now >= pending.requested_at + delay:
            return pending
        return None

    def request_change(
        self,
        holder_type: HolderType,
        current: AccountLimits | None,
        account_id: uuid.UUID,
        requested: TierLimits,
        now: datetime,
        *,
        late_night: bool | None = None,
    ) -> AccountLimits:
        """Apply a customer's request: lower figures at once, raises after the delay.

        Every figure at or below the one in force applies now; if any figure
        goes up, the whole request becomes a pending raise recorded with
        ``requested_at=now`` (a newer request replaces an older pending one).
        ``late_night`` (``None``: as in force) is a figure like the others:
        moving the night's start from 20:00 to 22:00 puts two hours of every
        night under the day's figures, so it is a raise and waits with the
        request's raise; moving it back to 20:00 is a lowering and applies now.
        """
        in_force = self.effective(holder_type, current, now)
        late_in_force = self.late_night_in_force(current, now)
        wanted_late = late_in_force if late_night is None else late_night
        later_night = wanted_late and not late_in_force
        lowered = TierLimits(
            **{name: min(value, getattr(requested, name)) for name, value in in_force.pairs()}
        )
        raises = later_night or any(
            getattr(requested, name) > value for name, value in in_force.pairs()
        )
        pending = None
        if raises:
            pending = PendingRaise(
                limits=requested, requested_at=now, late_night=True if later_night else None
            )
        return AccountLimits(
            account_id=account_id,
            late_night=late_in_force if later_night else wanted_late,
            limits=lowered,
            pending_raise=pending,
        )

    # -- the check ------------------------------------------------------------------------

    def usage_counters(
        self,
        *,
        amount: Money,
        holder_type: HolderType,
        account: AccountLimits | None,
        now: datetime,
        device_id: str | None = None,
        new_device: bool = False,
        owner_id: str | None = None,
    ) -> list[UsageCounter]:
        """Check the per-transaction figures; return the period counters ``amount`` must fit.

        Raises ``PixLimitExceeded`` for a per-transaction figure. The window's
        counter comes first (the account's), then (``new_device``) the local day
        of the owner's new devices, one counter for all of them (``device_id``,
        named or None, does not choose it), kept under ``owner_id``'s
        :func:`owner_usage_scope` so that it caps them across all the owner's
        accounts (without ``owner_id``, under the account: only for callers that
        have no owner).
        """
        window = self.window(now, late_night=self.late_night_in_force(account, now))
        per_tx, per_period = self._figures(window, holder_type, account, now)
        kind = window.kind.value
        if amount.cents > per_tx:
            _refuse(f"{kind}_per_transaction", per_tx, f"the {kind}time per-transaction limit")
        counters = [
            UsageCounter(
                limit=f"{kind}_per_period",
                period=window_period(window),
                cap=per_period,
                ends_at=window.ends_at,
            )
        ]
        if new_device:
            s = self.settings
            if amount.cents > s.new_device_per_transaction:
                _refuse(
                    "new_device_per_transaction",
                    s.new_device_per_transaction,
                    "the per-transaction limit of a new device",
                )
            day_start, day_end = self.local_day(now)
            # One counter a day for all the owner's devices still new, named or not:
            # a counter per device let a stolen token name a new device per payment
            # and get R$ 1,000 a day for each. (Holds taken before keep the
            # ``device:<id>:<date>`` counters they name, and release them.)
            counters.append(
                UsageCounter(
                    limit="new_device_per_day",
                    period=f"new-devices:{day_start.date().isoformat()}",
                    cap=s.new_device_per_day,
                    ends_at=day_end,
                    scope=None if owner_id is None else owner_usage_scope(owner_id),
                )
            )
        return counters

    def _figures(
        self,
        window: LimitWindow,
        holder_type: HolderType,
        account: AccountLimits | None,
        now: datetime,
    ) -> tuple[int, int]:
        figures = self.effective(holder_type, account, now)
        if window.kind is WindowKind.NIGHT:
            return figures.night_per_transaction, figures.night_per_period
        return figures.day_per_transaction, figures.day_per_period

    def check(
        self,
        *,
        amount: Money,
        holder_type: HolderType,
        account: AccountLimits | None,
        now: datetime,
        used_in_window: Money,
        new_device: bool = False,
        used_by_device_today: Money | None = None,
    ) -> LimitWindow:
        """Raise ``PixLimitExceeded`` (``details["limit"]`` names it) or return the window.

        ``used_in_window`` is what the account already sent, not rejected, in
        the current window; ``used_by_device_today`` what the device sent
        today (local day). Figures are inclusive: exactly the limit passes.
        """
        window = self.window(now, late_night=self.late_night_in_force(account, now))
        per_tx, per_period = self._figures(window, holder_type, account, now)
        kind = window.kind.value
        if amount.cents > per_tx:
            _refuse(f"{kind}_per_transaction", per_tx, f"the {kind}time per-transaction limit")
        if used_in_window.cents + amount.cents > per_period:
            _refuse(f"{kind}_per_period", per_period, f"the {kind}time period limit")
        if new_device:
            s = self.settings
            if amount.cents > s.new_device_per_transaction:
                _refuse(
                    "new_device_per_transaction",
                    s.new_device_per_transaction,
                    "the per-transaction limit of a new device",
                )
            device_used = used_by_device_today.cents if used_by_device_today else 0
            if device_used + amount.cents > s.new_device_per_day:
                _refuse(
                    "new_device_per_day", s.new_device_per_day, "the daily limit of a new device"
                )
        return window


def _refuse(limit: str, figure: int, what: str) -> None:
    raise PixLimitExceeded(
        f"the payment exceeds {what} ({Money(figure)})", limit=limit, limit_cents=figure
    )


#: the namespace of :func:`owner_usage_scope` (fixed: the ids are stored)
_OWNER_USAGE_NAMESPACE = uuid.UUID("5b0c1f4e-3d1a-5a57-9b1e-6f1a2c4d8e01")


def owner_usage_scope(owner_id: str) -> uuid.UUID:
    """The id an owner's shared usage counters are kept under (a new device's day).

    A version-5 UUID of the owner id: the same in every process and release,
    and never an account's id (not a v5 UUID), with which it shares the
    stores' keys.
    """
    return uuid.uuid5(_OWNER_USAGE_NAMESPACE, f"owner:{owner_id}")
