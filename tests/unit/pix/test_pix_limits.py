"""The limit policy at its boundaries, in São Paulo time (UTC-3, no DST since 2019)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from finbank_core.accounts.model import HolderType
from finbank_core.pix.errors import PixLimitExceeded
from finbank_core.pix.limits import (
    AccountLimits,
    LimitPolicy,
    LimitSettings,
    TierLimits,
    WindowKind,
)
from finbank_core.shared.money import Money

SP = ZoneInfo("America/Sao_Paulo")
POLICY = LimitPolicy()
ACCOUNT = uuid.uuid4()


def sp(hour: int, minute: int = 0, second: int = 0, day: int = 5) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, tzinfo=SP)


def check(
    amount: int,
    now: datetime,
    *,
    used: int = 0,
    holder: HolderType = HolderType.INDIVIDUAL,
    account: AccountLimits | None = None,
    new_device: bool = False,
    device_used: int = 0,
    policy: LimitPolicy = POLICY,
) -> WindowKind:
    window = policy.check(
        amount=Money(amount),
        holder_type=holder,
        account=account,
        now=now,
        used_in_window=Money(used),
        new_device=new_device,
        used_by_device_today=Money(device_used),
    )
    return window.kind


@pytest.mark.parametrize(
    ("moment", "kind"),
    [
        (sp(19, 59, 59), WindowKind.DAY),
        (sp(20, 0, 0), WindowKind.NIGHT),
        (sp(5, 59, 59), WindowKind.NIGHT),
        (sp(6, 0, 0), WindowKind.DAY),
        (sp(0, 0, 0), WindowKind.NIGHT),
        (sp(12, 0, 0), WindowKind.DAY),
    ],
)
def test_window_boundaries(moment: datetime, kind: WindowKind) -> None:
    assert POLICY.window(moment).kind is kind
    # the same instant written in UTC lands in the same window
    assert POLICY.window(moment.astimezone(ZoneInfo("UTC"))).kind is kind


def test_night_window_spans_midnight_in_local_time() -> None:
    evening = POLICY.window(sp(23, 0))
    morning = POLICY.window(sp(5, 0, day=6))
    assert evening == morning
    assert (evening.starts_at, evening.ends_at) == (sp(20, 0), sp(6, 0, day=6))


@pytest.mark.parametrize(
    ("moment", "kind"),
    [(sp(21, 59, 59), WindowKind.DAY), (sp(22, 0, 0), WindowKind.NIGHT)],
)
def test_customer_may_start_the_night_at_22h(moment: datetime, kind: WindowKind) -> None:
    assert POLICY.window(moment, late_night=True).kind is kind
    late = AccountLimits(account_id=ACCOUNT, late_night=True)
    if kind is WindowKind.DAY:
        assert check(1_500_00, moment, account=late) is WindowKind.DAY
    else:
        with pytest.raises(PixLimitExceeded):
            check(1_500_00, moment, account=late)


@pytest.mark.parametrize(
    ("moment", "allowed"),
    [(sp(19, 59, 59), True), (sp(20, 0, 0), False), (sp(5, 59, 59), False), (sp(6, 0, 0), True)],
)
def test_night_per_transaction_limit_holds_at_the_boundaries(
    moment: datetime, allowed: bool
) -> None:
    check(1_000_00, moment)  # exactly the figure passes day and night
    if allowed:
        check(1_000_01, moment)
    else:
        with pytest.raises(PixLimitExceeded) as caught:
            check(1_000_01, moment)
        assert caught.value.details["limit"] == "night_per_transaction"


def test_night_period_limit_counts_what_was_already_sent_tonight() -> None:
    check(400_00, sp(21, 0), used=600_00)
    with pytest.raises(PixLimitExceeded) as caught:
        check(400_01, sp(21, 0), used=600_00)
    assert caught.value.details["limit"] == "night_per_period"


def test_day_limits_per_transaction_and_per_period() -> None:
    check(5_000_00, sp(10))
    with pytest.raises(PixLimitExceeded, match="per-transaction"):
        check(5_000_01, sp(10))
    with pytest.raises(PixLimitExceeded) as caught:
        check(1_000_00, sp(10), used=19_000_01)
    assert caught.value.details["limit"] == "day_per_period"


def test_companies_are_not_held_to_the_individual_night_figure() -> None:
    assert check(10_000_00, sp(23), holder=HolderType.COMPANY) is WindowKind.NIGHT
    with pytest.raises(PixLimitExceeded):
        check(10_000_00, sp(23))


def test_a_raise_takes_effect_only_24_hours_after_it_was_requested() -> None:
    requested_at = sp(21)
    higher = TierLimits(
        day_per_transaction=5_000_00,
        day_per_period=20_000_00,
        night_per_transaction=3_000_00,
        night_per_period=3_000_00,
    )
    choices = POLICY.request_change(HolderType.INDIVIDUAL, None, ACCOUNT, higher, requested_at)
    assert choices.pending_raise is not None
    assert choices.pending_raise.requested_at == requested_at
    with pytest.raises(PixLimitExceeded):
        check(2_000_00, requested_at, account=choices)
    with pytest.raises(PixLimitExceeded):
        check(2_000_00, sp(20, 59, 59, day=6), account=choices)
    assert check(2_000_00, sp(21, 0, 0, day=6), account=choices) is WindowKind.NIGHT


def test_a_decrease_applies_at_once() -> None:
    lower = TierLimits(
        day_per_transaction=100_00,
        day_per_period=20_000_00,
        night_per_transaction=1_000_00,
        night_per_period=1_000_00,
    )
    choices = POLICY.request_change(HolderType.INDIVIDUAL, None, ACCOUNT, lower, sp(10))
    assert choices.pending_raise is None
    with pytest.raises(PixLimitExceeded):
        check(100_01, sp(10), account=choices)


def test_new_device_is_capped_per_transaction_and_per_day() -> None:
    check(200_00, sp(10), new_device=True)
    with pytest.raises(PixLimitExceeded) as caught:
        check(200_01, sp(10), new_device=True)
    assert caught.value.details["limit"] == "new_device_per_transaction"
    with pytest.raises(PixLimitExceeded) as caught:
        check(200_00, sp(10), new_device=True, device_used=800_01)
    assert caught.value.details["limit"] == "new_device_per_day"
    check(200_00, sp(10), new_device=False, device_used=5_000_00)


def test_device_stays_new_for_the_trust_period() -> None:
    first = sp(10)
    assert POLICY.is_new_device(None, first)
    assert POLICY.is_new_device(first, first + timedelta(hours=23, minutes=59))
    assert not POLICY.is_new_device(first, first + timedelta(hours=24))


def test_every_figure_is_configurable() -> None:
    strict = LimitPolicy(
        LimitSettings(
            night_start_hour=18,
            individual=TierLimits(
                day_per_transaction=10_00,
                day_per_period=10_00,
                night_per_transaction=5_00,
                night_per_period=5_00,
            ),
        )
    )
    assert strict.window(sp(18)).kind is WindowKind.NIGHT
    with pytest.raises(PixLimitExceeded):
        check(5_01, sp(18), policy=strict)


def test_a_later_night_start_is_a_raise_that_applies_24_hours_later() -> None:
    """20:00 -> 22:00 puts 20:00-22:00 under the day's figures: a raise."""
    same = POLICY.defaults(HolderType.INDIVIDUAL)
    choices = POLICY.request_change(
        HolderType.INDIVIDUAL, None, ACCOUNT, same, sp(10), late_night=True
    )
    assert choices.pending_raise is not None
    assert choices.pending_raise.late_night is True
    assert not choices.late_night
    assert not POLICY.late_night_in_force(choices, sp(9, 59, 59, day=6))
    with pytest.raises(PixLimitExceeded):  # 21:00 is still night, its figure holds
        check(1_500_00, sp(21), account=choices)
    assert POLICY.late_night_in_force(choices, sp(10, day=6))
    assert check(1_500_00, sp(21, day=6), account=choices) is WindowKind.DAY
    # the next request starts from the move in force: it is not a raise any more
    again = POLICY.request_change(HolderType.INDIVIDUAL, choices, ACCOUNT, same, sp(11, day=6))
    assert again.pending_raise is None
    assert again.late_night


def test_an_earlier_night_start_applies_at_once_and_lowers_with_the_figures() -> None:
    same = POLICY.defaults(HolderType.INDIVIDUAL)
    late = AccountLimits(account_id=ACCOUNT, late_night=True)
    choices = POLICY.request_change(
        HolderType.INDIVIDUAL, late, ACCOUNT, same, sp(10), late_night=False
    )
    assert choices.pending_raise is None
    assert not choices.late_night
    with pytest.raises(PixLimitExceeded):
        check(1_500_00, sp(21), account=choices)


def test_a_later_night_with_lower_figures_lowers_now_and_moves_the_night_later() -> None:
    lower = TierLimits(
        day_per_transaction=100_00,
        day_per_period=1_000_00,
        night_per_transaction=50_00,
        night_per_period=50_00,
    )
    choices = POLICY.request_change(
        HolderType.INDIVIDUAL, None, ACCOUNT, lower, sp(10), late_night=True
    )
    assert choices.limits == lower
    assert choices.pending_raise is not None
    assert choices.pending_raise.late_night is True
    with pytest.raises(PixLimitExceeded):  # the lower figure holds at once
        check(100_01, sp(11), account=choices)
    assert check(100_00, sp(21, day=6), account=choices) is WindowKind.DAY
