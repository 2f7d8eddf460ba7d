"""``SendPix`` with charges claimed and limits reserved: concurrency, period edges, releases.

The concurrent tests run the use case over the PIX stores of each backend
(memory behind :class:`~tests.pix_concurrency_support.Interleaved`, so the
callers take turns at every store call; DynamoDB on a moto server serving one
request at a time) with the in-memory ledger, and check the final state:
one payer per charge, a limit period never passed, money conserved, and
nothing left reserved (money, limit or charge) by a refused payment.

The period tests walk the injected clock over the edges in São Paulo time
with small figures: day 06:00-20:00, night 20:00-06:00 (one period across
midnight), 22:00 with ``late_night``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest
from tests.integration.dynamo_support import dynamodb_client, new_table, serial_moto_endpoint
from tests.pix_concurrency_support import interleaved, outcomes
from tests.pix_support import BASE_URL, OUR_ISPB, PixWorld, build_world
from tests.postgres_support import isolated_schema, require_postgres

from finbank_adapters.aws.dynamo import DynamoPixPaymentRepository
from finbank_adapters.aws.dynamo_pix_records import (
    DynamoAccountLimitsStore,
    DynamoChargeRepository,
)
from finbank_adapters.pix_charges import LocalChargeResolver
from finbank_adapters.postgres.pix_payments import PostgresPixPaymentRepository
from finbank_adapters.postgres.pix_records import (
    PostgresAccountLimitsStore,
    PostgresChargeRepository,
)
from finbank_adapters.sandbox import PEER_CLOSED_KEY, PEER_KEY_EMAIL
from finbank_core.accounts.errors import InsufficientFunds
from finbank_core.accounts.model import CustomerAccount, HolderType
from finbank_core.pix.charges import STALE_CLAIM_SECONDS, ChargeStatus
from finbank_core.pix.errors import ChargeNotPayable, PixLimitExceeded
from finbank_core.pix.limits import (
    LimitPolicy,
    LimitSettings,
    TierLimits,
    UsageCounter,
    UsageHold,
    window_period,
)
from finbank_core.pix.payments import PaymentStatus
from finbank_core.pix.ports import AccountLimitsStore, ChargeRepository, PixPaymentRepository
from finbank_core.pix.use_cases import SetPixLimitsCommand, SettlePixPaymentCommand
from finbank_core.pix.use_cases.charge import CreateCharge, CreateChargeCommand
from finbank_core.pix.use_cases.limits import STALE_HOLD_SECONDS, PixLimiter
from finbank_core.pix.use_cases.send import SendPix, SendPixCommand
from finbank_core.pix.use_cases.settle import SettlePixPayment
from finbank_core.shared.money import Money

__all__ = ["serial_moto_endpoint"]  # fixture
SP = ZoneInfo("America/Sao_Paulo")
#: small figures, so edges are reached with a few payments
SMALL = LimitSettings(
    individual=TierLimits(
        day_per_transaction=100_00,
        day_per_period=300_00,
        night_per_transaction=50_00,
        night_per_period=100_00,
    )
)
PAYERS = 8
CALLERS = 16


def sp(hour: int, minute: int = 0, second: int = 0, day: int = 5) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, tzinfo=SP)


@dataclass
class Shop:
    """A PIX world whose ``send`` runs over the charge, payment and limit stores under test."""

    world: PixWorld
    send: SendPix
    settle: SettlePixPayment
    create_charge: CreateCharge
    charges: ChargeRepository
    payments: PixPaymentRepository
    limits: AccountLimitsStore

    async def used(self, account: CustomerAccount) -> int:
        window = self.world.policy.window(self.world.clock.now())
        return await self.limits.used(account.id, window_period(window))

    async def charge(self, cents: int = 25_00) -> tuple[CustomerAccount, str, str]:
        """A charge into a new account: the account, the txid and the dynamic BR Code."""
        bia = await self.world.open("bia", "Bia Loja")
        view = await self.create_charge(
            CreateChargeCommand(
                owner_id="bia",
                account_id=bia.id,
                pix_key=await self.world.evp(bia),
                amount=Money(cents),
            )
        )
        return bia, view.charge.txid, view.dynamic_brcode


async def shop_over(
    world: PixWorld,
    charges: ChargeRepository,
    payments: PixPaymentRepository,
    limits: AccountLimitsStore,
    *,
    inline: bool = True,
) -> Shop:
    settle = SettlePixPayment(
        payments=payments,
        steps=world.steps,
        events=world.events,
        clock=world.clock,
        network=world.spi,
        charges=charges,
    )
    limiter = PixLimiter(world.policy, payments, limits, world.devices)
    send = SendPix(
        ispb=OUR_ISPB,
        accounts=world.accounts,
        payments=payments,
        steps=world.steps,
        events=world.events,
        clock=world.clock,
        ids=world.ids,
        directory=world.directory,
        resolver=LocalChargeResolver(charges, BASE_URL),
        charges=charges,
        limiter=limiter,
        settle_inline=settle if inline else None,
        rng=world.rng,
    )
    create = CreateCharge(
        accounts=world.accounts,
        charges=charges,
        directory=world.directory,
        events=world.events,
        clock=world.clock,
        ids=world.ids,
        location_base_url=BASE_URL,
        rng=world.rng,
    )
    return Shop(world, send, settle, create, charges, payments, limits)


@pytest.fixture(
    params=[
        "memory",
        pytest.param("dynamodb", marks=pytest.mark.services),
        pytest.param("postgres", marks=pytest.mark.services),
    ]
)
async def shop(request: pytest.FixtureRequest) -> AsyncIterator[Shop]:
    world = await build_world(limits=SMALL)
    if request.param == "memory":
        yield await shop_over(
            world,
            interleaved(world.charges),
            interleaved(world.payments),
            interleaved(world.limits_store),
        )
        return
    if request.param == "postgres":  # the stores in a schema of their own, the rest in memory
        async with isolated_schema(require_postgres(), max_size=16) as (pool, _):
            yield await shop_over(
                world,
                PostgresChargeRepository(pool),
                PostgresPixPaymentRepository(pool),
                PostgresAccountLimitsStore(pool),
            )
        return
    endpoint: str = request.getfixturevalue("serial_moto_endpoint")
    async with dynamodb_client(endpoint) as client, new_table(client) as table:
        yield await shop_over(
            world,
            DynamoChargeRepository(client, table),
            DynamoPixPaymentRepository(client, table),
            DynamoAccountLimitsStore(client, table),
        )


@pytest.fixture
async def memory_shop() -> Shop:
    world = await build_world(limits=SMALL, start=sp(9))
    return await shop_over(world, world.charges, world.payments, world.limits_store)


def pay(
    account: CustomerAccount, idem: str, *, key: str | None = None, cents: int | None = None
) -> SendPixCommand:
    return SendPixCommand(
        owner_id=account.owner_id,
        account_id=account.id,
        idempotency_key=idem,
        key=key,
        amount=None if cents is None else Money(cents),
    )


def by_code(account: CustomerAccount, idem: str, br_code: str) -> SendPixCommand:
    return SendPixCommand(
        owner_id=account.owner_id, account_id=account.id, idempotency_key=idem, br_code=br_code
    )


# -- many callers at once -------------------------------------------------------------------


async def test_concurrent_payers_of_one_charge_pay_it_once(shop: Shop) -> None:
    world = shop.world
    bia, txid, code = await shop.charge(25_00)
    payers = [
        await world.open(f"payer{i}", f"Payer {i}", deposit=Money(100_00)) for i in range(PAYERS)
    ]

    paid, errors = await outcomes(
        [lambda p=p: shop.send(by_code(p, "charge", code)) for p in payers]  # type: ignore[misc]
    )

    assert len(paid) == 1
    assert errors == {"ChargeNotPayable": PAYERS - 1}
    [winner] = paid
    assert winner.payment.status is PaymentStatus.SETTLED
    charge = await shop.charges.get(txid)
    assert (charge.status, charge.end_to_end_id, charge.claimed_by) == (
        ChargeStatus.CONCLUIDA,
        winner.payment.end_to_end_id,
        None,
    )
    assert await world.posted(bia.id) == 25_00
    total = 0
    for payer in payers:
        assert await world.available(payer.id) == await world.posted(payer.id)
        total += 100_00 - await world.posted(payer.id)
        expected_use = 25_00 if payer.id == winner.payment.payer.account_id else 0
        assert await shop.used(payer) == expected_use
    assert total == 25_00
    await world.assert_ledger_balanced()
    with pytest.raises(ChargeNotPayable):  # and later, as before
        await shop.send(by_code(payers[0], "late", code))


async def test_concurrent_payments_never_pass_the_period_limit(shop: Shop) -> None:
    world = shop.world
    ana = await world.open("ana", "Ana", deposit=Money(5_000_00))
    bia = await world.open("bia", "Bia")
    key = await world.evp(bia)

    paid, errors = await outcomes(
        [
            lambda n=n: shop.send(pay(ana, f"p{n}", key=key, cents=100_00))  # type: ignore[misc]
            for n in range(CALLERS)
        ]
    )

    assert len(paid) == 3  # R$ 300.00 a day
    assert errors == {"PixLimitExceeded": CALLERS - 3}
    assert await shop.used(ana) == 300_00
    assert await world.posted(ana.id) == await world.available(ana.id) == 4_700_00
    assert await world.posted(bia.id) == 300_00
    await world.assert_ledger_balanced()
    # replays answer as the first did; a refused request may be retried, and is refused
    for first in paid:
        idem = first.payment.idempotency_key or ""
        replay = await shop.send(pay(ana, idem, key=key, cents=100_00))
        assert (replay.replayed, replay.payment.end_to_end_id) == (
            True,
            first.payment.end_to_end_id,
        )
    refused = {f"p{n}" for n in range(CALLERS)} - {p.payment.idempotency_key for p in paid}
    with pytest.raises(PixLimitExceeded):
        await shop.send(pay(ana, min(refused), key=key, cents=100_00))
    assert await shop.used(ana) == 300_00


# -- period edges (memory, injected clock) --------------------------------------------------


async def test_the_day_period_ends_at_20h_and_the_night_has_its_own(memory_shop: Shop) -> None:
    shop, world = memory_shop, memory_shop.world
    ana = await world.open("ana", "Ana", deposit=Money(5_000_00))
    key = await world.evp(await world.open("bia", "Bia"))
    world.clock.set(sp(19, 59, 59))
    for n in range(3):
        await shop.send(pay(ana, f"d{n}", key=key, cents=100_00))
    with pytest.raises(PixLimitExceeded) as caught:
        await shop.send(pay(ana, "d3", key=key, cents=1))
    assert caught.value.details["limit"] == "day_per_period"
    world.clock.set(sp(20))
    with pytest.raises(PixLimitExceeded) as caught:
        await shop.send(pay(ana, "n0", key=key, cents=50_01))
    assert caught.value.details["limit"] == "night_per_transaction"
    await shop.send(pay(ana, "n1", key=key, cents=50_00))
    await shop.send(pay(ana, "n2", key=key, cents=50_00))
    with pytest.raises(PixLimitExceeded) as caught:
        await shop.send(pay(ana, "n3", key=key, cents=1))
    assert caught.value.details["limit"] == "night_per_period"


async def test_one_night_spans_midnight_and_the_day_starts_fresh_at_6h(memory_shop: Shop) -> None:
    shop, world = memory_shop, memory_shop.world
    ana = await world.open("ana", "Ana", deposit=Money(5_000_00))
    key = await world.evp(await world.open("bia", "Bia"))
    world.clock.set(sp(23, 59, 59))
    await shop.send(pay(ana, "a", key=key, cents=50_00))
    world.clock.set(sp(0, 0, 0, day=6))
    await shop.send(pay(ana, "b", key=key, cents=50_00))  # same night, next date
    world.clock.set(sp(5, 59, 59, day=6))
    with pytest.raises(PixLimitExceeded) as caught:
        await shop.send(pay(ana, "c", key=key, cents=1))
    assert caught.value.details["limit"] == "night_per_period"
    world.clock.set(sp(6, 0, 0, day=6))
    done = await shop.send(pay(ana, "d", key=key, cents=100_00))
    assert done.payment.status is PaymentStatus.SETTLED
    assert await shop.used(ana) == 100_00


async def test_late_night_keeps_the_days_usage_until_22h(memory_shop: Shop) -> None:
    shop, world = memory_shop, memory_shop.world
    ana = await world.open("ana", "Ana", deposit=Money(5_000_00))
    key = await world.evp(await world.open("bia", "Bia"))
    await world.set_limits(
        SetPixLimitsCommand(
            owner_id="ana", account_id=ana.id, requested=SMALL.individual, late_night=True
        )
    )
    world.clock.set(sp(10, day=6))  # a later night is a raise: in force 24 h after
    for n in range(3):
        await shop.send(pay(ana, f"d{n}", key=key, cents=100_00))
    world.clock.set(sp(21, 30, day=6))  # still day with late_night: the day's counter
    with pytest.raises(PixLimitExceeded) as caught:
        await shop.send(pay(ana, "x", key=key, cents=1))
    assert caught.value.details["limit"] == "day_per_period"
    world.clock.set(sp(22, day=6))
    await shop.send(pay(ana, "night", key=key, cents=50_00))


async def test_a_lowered_figure_applies_to_what_the_period_already_used(
    memory_shop: Shop,
) -> None:
    shop, world = memory_shop, memory_shop.world
    ana = await world.open("ana", "Ana", deposit=Money(5_000_00))
    key = await world.evp(await world.open("bia", "Bia"))
    await shop.send(pay(ana, "a", key=key, cents=100_00))
    await shop.send(pay(ana, "b", key=key, cents=100_00))
    lower = msgspec.structs.replace(SMALL.individual, day_per_period=250_00)
    await world.set_limits(SetPixLimitsCommand(owner_id="ana", account_id=ana.id, requested=lower))
    with pytest.raises(PixLimitExceeded):
        await shop.send(pay(ana, "c", key=key, cents=50_01))
    await shop.send(pay(ana, "d", key=key, cents=50_00))
    assert await shop.used(ana) == 250_00


# -- releases ---------------------------------------------------------------------------


async def test_a_payment_rejected_in_the_request_gives_its_limit_back(memory_shop: Shop) -> None:
    shop, world = memory_shop, memory_shop.world
    ana = await world.open("ana", "Ana", deposit=Money(5_000_00))
    rejected = await shop.send(pay(ana, "r", key=PEER_CLOSED_KEY, cents=100_00))
    assert rejected.payment.status is PaymentStatus.REJECTED
    assert await shop.used(ana) == 0


async def test_a_payment_a_worker_rejects_gives_its_limit_back_when_room_is_needed() -> None:
    world = await build_world(limits=SMALL, start=sp(9))
    shop = await shop_over(world, world.charges, world.payments, world.limits_store, inline=False)
    ana = await world.open("ana", "Ana", deposit=Money(5_000_00))
    first = await shop.send(pay(ana, "r", key=PEER_CLOSED_KEY, cents=100_00))
    for n in range(2):
        await shop.send(pay(ana, f"ok{n}", key=PEER_KEY_EMAIL, cents=100_00))
    with pytest.raises(PixLimitExceeded):  # still pending: it counts
        await shop.send(pay(ana, "full", key=PEER_KEY_EMAIL, cents=100_00))
    assert (
        await shop.settle(SettlePixPaymentCommand(end_to_end_id=first.payment.end_to_end_id))
    ).status is PaymentStatus.REJECTED
    assert await shop.used(ana) == 300_00  # not released by the worker...
    again = await shop.send(pay(ana, "again", key=PEER_KEY_EMAIL, cents=100_00))
    assert again.payment.status is PaymentStatus.PENDING  # ...but reclaimed when needed
    assert await shop.used(ana) == 300_00
    with pytest.raises(PixLimitExceeded):
        await shop.send(pay(ana, "over", key=PEER_KEY_EMAIL, cents=1))


async def test_a_payment_the_worker_rejects_gives_its_limit_back_at_once() -> None:
    """The settlement use case as the container builds it (with the limits store)."""
    world = await build_world(limits=SMALL, start=sp(9))
    shop = await shop_over(world, world.charges, world.payments, world.limits_store, inline=False)
    ana = await world.open("ana", "Ana", deposit=Money(5_000_00))
    first = await shop.send(pay(ana, "r", key=PEER_CLOSED_KEY, cents=100_00))
    assert await shop.used(ana) == 100_00
    e2e = first.payment.end_to_end_id
    assert (
        await world.settle(SettlePixPaymentCommand(end_to_end_id=e2e))
    ).status is PaymentStatus.REJECTED
    assert await shop.used(ana) == 0
    assert (
        await world.settle(SettlePixPaymentCommand(end_to_end_id=e2e))
    ).status is PaymentStatus.REJECTED  # a redelivered event
    assert await shop.used(ana) == 0
    for n in range(3):  # the whole 300.00 is free again
        await shop.send(pay(ana, f"ok{n}", key=PEER_KEY_EMAIL, cents=100_00))
    with pytest.raises(PixLimitExceeded):
        await shop.send(pay(ana, "over", key=PEER_KEY_EMAIL, cents=1))


async def test_a_refused_payment_leaves_no_limit_and_no_claim(memory_shop: Shop) -> None:
    shop, world = memory_shop, memory_shop.world
    _, txid, code = await shop.charge(90_00)
    poor = await world.open("ana", "Ana", deposit=Money(10_00))
    with pytest.raises(InsufficientFunds):
        await shop.send(by_code(poor, "poor", code))
    assert await shop.used(poor) == 0
    assert (await shop.charges.get(txid)).claimed_by is None
    rich = await world.open("cris", "Cris", deposit=Money(100_00))
    done = await shop.send(by_code(rich, "rich", code))
    assert done.payment.status is PaymentStatus.SETTLED


async def test_a_charge_over_the_limit_stays_payable(memory_shop: Shop) -> None:
    shop, world = memory_shop, memory_shop.world
    _, txid, code = await shop.charge(100_01)  # above the day's per-transaction figure
    ana = await world.open("ana", "Ana", deposit=Money(500_00))
    with pytest.raises(PixLimitExceeded):
        await shop.send(by_code(ana, "big", code))
    assert (await shop.charges.get(txid)).claimed_by is None


async def test_a_claim_left_by_a_crashed_request_is_taken_over_once_stale(
    memory_shop: Shop,
) -> None:
    shop, world = memory_shop, memory_shop.world
    _, txid, code = await shop.charge(25_00)
    charge = await shop.charges.get(txid)
    await shop.charges.update(charge.claim("E-never-recorded", world.clock.now()), charge.version)
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    with pytest.raises(ChargeNotPayable) as caught:
        await shop.send(by_code(ana, "early", code))
    assert caught.value.details["state"] == "CLAIMED"
    world.clock.advance(STALE_CLAIM_SECONDS)
    done = await shop.send(by_code(ana, "late", code))
    concluded = await shop.charges.get(txid)
    assert (concluded.status, concluded.end_to_end_id) == (
        ChargeStatus.CONCLUIDA,
        done.payment.end_to_end_id,
    )


async def test_a_hold_left_by_a_crashed_request_is_reclaimed_once_stale(
    memory_shop: Shop,
) -> None:
    shop, world = memory_shop, memory_shop.world
    ana = await world.open("ana", "Ana", deposit=Money(5_000_00))
    key = await world.evp(await world.open("bia", "Bia"))
    window = world.policy.window(world.clock.now())
    ghost = UsageHold(
        account_id=ana.id,
        hold_id="E-never-recorded",
        amount=300_00,
        counters=(
            UsageCounter(
                limit="day_per_period",
                period=window_period(window),
                cap=300_00,
                ends_at=window.ends_at,
            ),
        ),
        created_at=world.clock.now(),
    )
    await shop.limits.reserve_usage(ghost)
    with pytest.raises(PixLimitExceeded):
        await shop.send(pay(ana, "early", key=key, cents=100_00))
    world.clock.advance(STALE_HOLD_SECONDS)
    await shop.send(pay(ana, "late", key=key, cents=100_00))
    assert await shop.used(ana) == 100_00


async def test_the_same_payment_id_reserves_once(memory_shop: Shop) -> None:
    """A reservation replayed under one id (a retried request) is not counted twice."""
    shop, world = memory_shop, memory_shop.world
    ana = await world.open("ana", "Ana")
    limiter = PixLimiter(world.policy, shop.payments, shop.limits, world.devices)
    now = world.clock.now()
    e2e = f"E{uuid.uuid4().hex}"
    assert await limiter.reserve(ana, Money(100_00), now, None, e2e)
    assert not await limiter.reserve(ana, Money(100_00), now, None, e2e)
    assert await shop.used(ana) == 100_00
    await limiter.release(ana.id, e2e)
    await limiter.release(ana.id, e2e)
    assert await shop.used(ana) == 0


# -- the counters' periods (pure) -------------------------------------------------------------


def test_a_night_is_one_period_across_midnight_and_a_day_one_from_6h_to_20h() -> None:
    policy = build_policy()

    def period(at: datetime, *, late_night: bool = False) -> str:
        return window_period(policy.window(at, late_night=late_night))

    assert period(sp(6)) == period(sp(19, 59, 59)) != period(sp(20))
    assert period(sp(20)) == period(sp(23, 59, 59)) == period(sp(0, day=6))
    assert period(sp(0, day=6)) == period(sp(5, 59, 59, day=6)) != period(sp(6, day=6))
    assert period(sp(6, day=6)) != period(sp(6))  # each day its own
    # late night: the day runs on to 22:00 on the same counter; the night starts at 22:00
    assert period(sp(21, 30), late_night=True) == period(sp(10))
    assert period(sp(22), late_night=True) == period(sp(21), late_night=False)


def test_a_new_devices_day_is_the_local_calendar_day() -> None:
    policy = build_policy()

    def device_period(at: datetime) -> str:
        counters = policy.usage_counters(
            amount=Money(1_00),
            holder_type=HolderType.INDIVIDUAL,
            account=None,
            now=at,
            device_id="phone",
            new_device=True,
        )
        assert counters[1].limit == "new_device_per_day"
        return counters[1].period

    assert device_period(sp(0)) == device_period(sp(23, 59, 59)) != device_period(sp(0, day=6))


def test_per_transaction_figures_refuse_before_any_counter() -> None:
    policy = build_policy()
    with pytest.raises(PixLimitExceeded) as caught:
        policy.usage_counters(
            amount=Money(50_01), holder_type=HolderType.INDIVIDUAL, account=None, now=sp(20)
        )
    assert caught.value.details["limit"] == "night_per_transaction"
    with pytest.raises(PixLimitExceeded) as caught:
        policy.usage_counters(
            amount=Money(200_01),
            holder_type=HolderType.INDIVIDUAL,
            account=None,
            now=sp(10),
            device_id="phone",
            new_device=True,
        )
    assert caught.value.details["limit"] == "new_device_per_transaction"


def build_policy() -> LimitPolicy:
    return LimitPolicy(
        msgspec.structs.replace(
            SMALL,
            individual=msgspec.structs.replace(SMALL.individual, day_per_transaction=1_000_00),
        )
    )


async def test_a_new_devices_daily_cap_starts_again_at_local_midnight() -> None:
    world = await build_world(start=sp(19))  # the bank's default figures
    shop = await shop_over(world, world.charges, world.payments, world.limits_store)
    ana = await world.open("ana", "Ana", deposit=Money(5_000_00))
    key = await world.evp(await world.open("bia", "Bia"))

    def from_phone(idem: str) -> SendPixCommand:
        return msgspec.structs.replace(pay(ana, idem, key=key, cents=200_00), device_id="phone")

    for n in range(5):
        await shop.send(from_phone(f"a{n}"))
    world.clock.set(sp(23, 59, 59))
    with pytest.raises(PixLimitExceeded) as caught:
        await shop.send(from_phone("late"))
    assert caught.value.details["limit"] == "new_device_per_day"
    world.clock.set(sp(0, 0, 0, day=6))  # a new local day, the device still new
    done = await shop.send(from_phone("after-midnight"))
    assert done.payment.status is PaymentStatus.SETTLED
