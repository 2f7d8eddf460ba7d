"""The PIX limits under concurrent changes, on every ``AccountLimitsStore`` backend.

``AccountLimitsStore.update`` is a compare-and-set (memory: read, change and
write with no await between; PostgreSQL: ``UPDATE ... WHERE body = <the body
read>``; DynamoDB: a put conditional on the body read), the change computed
again over a newer value when another write came first. So:

* concurrent changes of one account never lose one another: each caller
  lowering one figure, the limits end at the lowest asked of every figure;
* a change that raises leaves nothing, and one that returns None writes nothing;
* through ``SetPixLimits``: concurrent lowerings without a step-up end at the
  lowest asked of each figure, and a raise without a step-up is refused
  (``StepUpRequired``) whatever the order, the figures in force never above a
  lowering that applied.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from finbank_adapters.memory import FakeClock, InMemoryAccountRepository
from finbank_core.accounts.model import AccountKind, AccountStatus, CustomerAccount, HolderType
from finbank_core.auth.errors import StepUpRequired
from finbank_core.pix.limits import AccountLimits, LimitPolicy, TierLimits
from finbank_core.pix.use_cases.limits import SetPixLimits, SetPixLimitsCommand
from tests.contract.test_limits_and_devices_contract import (  # noqa: F401 (fixtures)
    Stores,
    aws_endpoint,
    stores,
)

CALLERS = 24
ROUNDS = 5
FIGURES = ("day_per_transaction", "day_per_period", "night_per_transaction", "night_per_period")
START = TierLimits(
    day_per_transaction=5_000_00,
    day_per_period=20_000_00,
    night_per_transaction=1_000_00,
    night_per_period=1_000_00,
)


def lowering(
    account: uuid.UUID, figure: str, cents: int
) -> Callable[[AccountLimits | None], AccountLimits]:
    """A change that lowers one figure to ``cents`` (at most), the others as they are."""

    def change(current: AccountLimits | None) -> AccountLimits:
        base = current or AccountLimits(account_id=account, limits=START)
        tier = base.limits or START
        value = min(getattr(tier, figure), cents)
        return msgspec.structs.replace(
            base, limits=msgspec.structs.replace(tier, **{figure: value})
        )

    return change


async def test_concurrent_updates_never_lose_one_another(stores: Stores) -> None:  # noqa: F811
    account = uuid.uuid4()
    rng = random.Random(11)
    asked = [(FIGURES[n % len(FIGURES)], rng.randrange(1_00, 900_00, 1_00)) for n in range(CALLERS)]

    results = await asyncio.gather(
        *(
            stores.limits.update(account, lowering(account, figure, cents))
            for figure, cents in asked
        )
    )

    final = await stores.limits.get(account)
    assert final is not None
    assert final.limits is not None
    for figure in FIGURES:
        assert getattr(final.limits, figure) == min(v for f, v in asked if f == figure), figure
    assert final in results  # the last change applied is what is stored


async def test_a_change_that_raises_or_returns_none_writes_nothing(stores: Stores) -> None:  # noqa: F811
    account = uuid.uuid4()
    first = AccountLimits(account_id=account, limits=START)

    def refuse(_: AccountLimits | None) -> AccountLimits:
        raise StepUpRequired(purpose="pix_limit_raise")

    with pytest.raises(StepUpRequired):
        await stores.limits.update(account, refuse)
    assert await stores.limits.get(account) is None
    assert await stores.limits.update(account, lambda _: None) is None
    assert await stores.limits.get(account) is None
    assert await stores.limits.update(account, lambda _: first) == first
    assert await stores.limits.update(account, lambda _: None) == first
    with pytest.raises(StepUpRequired):
        await stores.limits.update(account, refuse)
    assert await stores.limits.get(account) == first


async def _ana(accounts: InMemoryAccountRepository) -> CustomerAccount:
    """Ana's open checking account, added to ``accounts``."""
    ana = CustomerAccount(
        id=uuid.uuid4(),
        owner_id="ana",
        holder_name="Ana Souza",
        holder_type=HolderType.INDIVIDUAL,
        branch="0001",
        number="1234567-8",
        kind=AccountKind.CHECKING,
        status=AccountStatus.ACTIVE,
        created_at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    await accounts.add(ana)
    return ana


async def test_concurrent_set_pix_limits_lowerings_end_at_the_lowest_and_raises_need_a_step_up(
    stores: Stores,  # noqa: F811
) -> None:
    accounts = InMemoryAccountRepository()
    clock = FakeClock()
    ana = await _ana(accounts)
    set_limits = SetPixLimits(
        accounts=accounts, clock=clock, policy=LimitPolicy(), store=stores.limits
    )

    async def attempt(requested: TierLimits) -> bool:
        try:
            await set_limits(
                SetPixLimitsCommand(
                    owner_id="ana", account_id=ana.id, requested=requested, allow_raise=False
                )
            )
        except StepUpRequired:
            return False
        return True

    rng = random.Random(5)
    for _ in range(ROUNDS):
        await stores.limits.put(AccountLimits(account_id=ana.id, limits=START))
        # every figure scaled by one factor: the lowerings are ordered, so one that lands
        # after a lower one would raise and is refused; the lowest always applies
        scales = rng.sample(range(1, 1000), CALLERS)
        lowerings = [
            TierLimits(**{f: getattr(START, f) * k // 1000 for f in FIGURES}) for k in scales
        ]
        raises = [
            msgspec.structs.replace(START, day_per_transaction=START.day_per_transaction + n)
            for n in range(1, CALLERS // 3)
        ]
        requests = [*lowerings, *raises]
        rng.shuffle(requests)

        applied = dict(
            zip(map(id, requests), await asyncio.gather(*map(attempt, requests)), strict=True)
        )

        lowest = lowerings[scales.index(min(scales))]
        assert applied[id(lowest)]
        assert not any(applied[id(r)] for r in raises)
        final = await stores.limits.get(ana.id)
        assert final is not None
        assert (final.limits, final.pending_raise) == (lowest, None)


async def test_a_later_night_is_a_raise_on_every_store(stores: Stores) -> None:  # noqa: F811
    """Moving the night's start to 22:00 needs a step-up and waits 24 h like a raise (the
    pending move is stored and read back by the store); moving it back applies at once,
    and concurrent requests without a step-up never move it later."""
    accounts = InMemoryAccountRepository()
    clock = FakeClock(datetime(2026, 1, 5, 13, 0, tzinfo=UTC))  # 10:00 in São Paulo
    ana = await _ana(accounts)
    policy = LimitPolicy()
    set_limits = SetPixLimits(accounts=accounts, clock=clock, policy=policy, store=stores.limits)
    same = policy.defaults(HolderType.INDIVIDUAL)

    def command(late_night: bool, *, allow_raise: bool) -> SetPixLimitsCommand:
        return SetPixLimitsCommand(
            owner_id="ana",
            account_id=ana.id,
            requested=same,
            late_night=late_night,
            allow_raise=allow_raise,
        )

    async def without_step_up(late_night: bool) -> bool:
        try:
            await set_limits(command(late_night, allow_raise=False))
        except StepUpRequired:
            return False
        return True

    outcomes = await asyncio.gather(*(without_step_up(n % 2 == 0) for n in range(CALLERS)))
    assert not any(outcomes[0::2])  # every move to 22:00 refused
    assert all(outcomes[1::2])  # every move (back) to 20:00 applied
    stored = await stores.limits.get(ana.id)
    assert stored is not None
    assert not policy.late_night_in_force(stored, clock.now() + timedelta(days=2))

    result = await set_limits(command(True, allow_raise=True))
    assert (result.late_night, result.pending_late_night) == (False, True)
    stored = await stores.limits.get(ana.id)
    assert stored is not None
    assert stored.pending_raise is not None
    assert stored.pending_raise.late_night is True  # kept by the store
    delay = timedelta(seconds=policy.settings.raise_delay_seconds)
    assert not policy.late_night_in_force(stored, clock.now() + delay - timedelta(microseconds=1))
    assert policy.late_night_in_force(stored, clock.now() + delay)

    back = await set_limits(command(False, allow_raise=False))
    assert (back.late_night, back.pending_late_night, back.pending_raise) == (False, None, None)
    stored = await stores.limits.get(ana.id)
    assert stored is not None
    assert not policy.late_night_in_force(stored, clock.now() + 2 * delay)
