"""The new-device daily cap is per owner, across all the owner's accounts and new devices.

A device never used for PIX by its owner sends at most R$ 1,000.00 per local
day (America/Sao_Paulo). The device registry is per owner, so is the cap: one
day counter for all the owner's new devices is kept under the owner's scope
(:func:`~finbank_core.pix.limits.owner_usage_scope`), shared by every account
of the owner, while the window counters stay per account. Before, it was kept
under the paying account, and an owner with three accounts sent R$ 3,000.00
from one new device in a day; then it was one counter per device, and a
stolen token that named a new device for each payment got R$ 1,000.00 a day
for each.

Run against every backend of the usage store (memory behind
:class:`~tests.pix_concurrency_support.Interleaved`, PostgreSQL in a schema
of its own, DynamoDB on a moto server that serves one request at a time),
through ``SendPix`` (the rule as customers meet it, one payment after another
and many at once) and on the store itself (the shared counter, its release,
other owners, holds recorded before counters had scopes).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from finbank_adapters.aws.dynamo import DynamoPixPaymentRepository
from finbank_adapters.aws.dynamo_pix_records import DynamoAccountLimitsStore
from finbank_adapters.memory.pix import InMemoryAccountLimitsStore, InMemoryPixPaymentRepository
from finbank_adapters.pix_charges import LocalChargeResolver
from finbank_adapters.postgres.pix_payments import PostgresPixPaymentRepository
from finbank_adapters.postgres.pix_records import PostgresAccountLimitsStore
from finbank_core.accounts.model import CustomerAccount, HolderType
from finbank_core.pix.errors import PixLimitExceeded
from finbank_core.pix.limits import (
    LimitSettings,
    ReserveOutcome,
    UsageCounter,
    UsageHold,
    owner_usage_scope,
    window_period,
)
from finbank_core.pix.ports import AccountLimitsStore, PixPaymentRepository
from finbank_core.pix.use_cases.limits import STALE_HOLD_SECONDS, PixLimiter
from finbank_core.pix.use_cases.send import SendPix, SendPixCommand
from finbank_core.pix.use_cases.settle import SettlePixPayment
from finbank_core.shared.money import Money
from tests.integration.dynamo_support import dynamodb_client, new_table, serial_moto_endpoint
from tests.pix_concurrency_support import interleaved, outcomes
from tests.pix_support import BASE_URL, OUR_ISPB, PixWorld, build_world
from tests.postgres_support import isolated_schema

__all__ = ["serial_moto_endpoint"]  # fixture
BACKENDS = [
    "memory",
    pytest.param("dynamodb", marks=pytest.mark.services),
    pytest.param("postgres", marks=pytest.mark.services),
]
#: 09:00 in São Paulo: daytime, the local day 2026-01-05
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)
DEVICE = "new-phone"
#: the one day counter of all the owner's new devices
DEVICE_DAY = "new-devices:2026-01-05"
WINDOW = "day:2026-01-05T09:00Z"
DAY_CAP = 1_000_00
PER_TX = 200_00


@dataclass
class Backend:
    limits: AccountLimitsStore
    payments: PixPaymentRepository
    #: records a hold as the code before counters had scopes did
    legacy_reserve: Callable[[UsageHold], Awaitable[object]]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        memory = InMemoryAccountLimitsStore()
        # an unscoped hold is kept exactly as before (its JSON has no scope)
        yield Backend(
            interleaved(memory), interleaved(InMemoryPixPaymentRepository()), memory.reserve_usage
        )
    elif request.param == "dynamodb":  # serial moto, a table of its own per test
        endpoint: str = request.getfixturevalue("serial_moto_endpoint")
        async with dynamodb_client(endpoint) as client, new_table(client) as table:
            dynamo = DynamoAccountLimitsStore(client, table)
            # an unscoped hold writes the items it wrote before: the hold and the
            # account's counters, no copy
            yield Backend(dynamo, DynamoPixPaymentRepository(client, table), dynamo.reserve_usage)
    elif request.param == "postgres":  # a migrated schema of its own, a connection per caller
        async with isolated_schema(request.getfixturevalue("postgres_dsn"), max_size=24) as (
            pool,
            _,
        ):

            async def legacy(hold: UsageHold) -> object:
                # the reservation as it was before migration 0033 (pix_reserve_usage, 0021)
                periods = sorted({c.period for c in hold.counters})
                ends = {c.period: c.ends_at for c in hold.counters}
                return await pool.fetchval(
                    "SELECT pix_reserve_usage($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    hold.account_id,
                    hold.hold_id,
                    periods,
                    msgspec.json.encode(hold).decode(),
                    [ends[p] for p in periods],
                    hold.amount,
                    [c.period for c in hold.counters],
                    [c.cap for c in hold.counters],
                    [c.limit for c in hold.counters],
                )

            yield Backend(
                PostgresAccountLimitsStore(pool), PostgresPixPaymentRepository(pool), legacy
            )
    else:  # pragma: no cover - each backend adds its branch
        raise AssertionError(request.param)


# -- through SendPix -------------------------------------------------------------------------


@dataclass
class Bank:
    world: PixWorld
    send: SendPix
    limiter: PixLimiter
    limits: AccountLimitsStore
    payee_key: str
    #: ``(limit, limit_cents)`` of each payment refused
    refusals: list[tuple[object, object]] = field(default_factory=list)

    async def pay(
        self, account: CustomerAccount, idem: str, cents: int, device: str | None = DEVICE
    ) -> int:
        """Send ``cents`` from ``account`` on ``device`` (the new one unless told); the
        amount sent, 0 if refused by a limit (which ``refusals`` records)."""
        try:
            await self.send(
                SendPixCommand(
                    owner_id=account.owner_id,
                    account_id=account.id,
                    idempotency_key=idem,
                    key=self.payee_key,
                    amount=Money(cents),
                    device_id=device,
                )
            )
        except PixLimitExceeded as refused:
            self.refusals.append((refused.details["limit"], refused.details["limit_cents"]))
            return 0
        return cents

    async def device_used(self, owner_id: str) -> int:
        return await self.limits.used(owner_usage_scope(owner_id), DEVICE_DAY)

    async def sent_from(self, account: CustomerAccount) -> int:
        return await self.limits.used(account.id, WINDOW)


@pytest.fixture
async def bank(backend: Backend) -> Bank:
    return await make_bank(backend)


async def make_bank(backend: Backend, limits: LimitSettings | None = None) -> Bank:
    world = await build_world(start=T0, limits=limits)
    assert window_period(world.policy.window(T0)) == WINDOW
    limiter = PixLimiter(world.policy, backend.payments, backend.limits, world.devices)
    settle = SettlePixPayment(
        payments=backend.payments,
        steps=world.steps,
        events=world.events,
        clock=world.clock,
        network=world.spi,
        charges=world.charges,
        limits=backend.limits,
    )
    send = SendPix(
        ispb=OUR_ISPB,
        accounts=world.accounts,
        payments=backend.payments,
        steps=world.steps,
        events=world.events,
        clock=world.clock,
        ids=world.ids,
        directory=world.directory,
        resolver=LocalChargeResolver(world.charges, BASE_URL),
        charges=world.charges,
        limiter=limiter,
        settle_inline=settle,
        rng=world.rng,
    )
    payee = await world.evp(await world.open("rui", "Rui Recebedor"))
    return Bank(world, send, limiter, backend.limits, payee)


async def open_accounts(bank: Bank, owner_id: str, count: int) -> list[CustomerAccount]:
    return [
        await bank.world.open(owner_id, f"{owner_id} {n}", deposit=Money(10_000_00))
        for n in range(count)
    ]


async def test_one_owner_sends_the_day_cap_once_across_their_accounts(bank: Bank) -> None:
    accounts = await open_accounts(bank, "ana", 3)

    sent = [
        await bank.pay(account, f"pay-{a}-{n}", PER_TX)
        for n in range(6)
        for a, account in enumerate(accounts)
    ]

    # R$ 1,000.00 in all (5 of 18 payments of R$ 200.00), not R$ 1,000.00 per account
    assert sum(sent) == DAY_CAP
    assert sent.count(0) == 13
    assert bank.refusals == [("new_device_per_day", DAY_CAP)] * 13
    assert await bank.device_used("ana") == DAY_CAP
    # the window counters stay per account, and add up to what was sent
    per_account = [await bank.sent_from(a) for a in accounts]
    assert sum(per_account) == DAY_CAP
    assert all(0 < used < DAY_CAP for used in per_account)
    for account, used in zip(accounts, per_account, strict=True):
        assert await bank.world.available(account.id) == 10_000_00 - used
        assert await bank.limits.used(account.id, DEVICE_DAY) == 0  # not the account's
    # another owner's device of the same id has a day of its own
    [bia] = await open_accounts(bank, "bia", 1)
    assert await bank.pay(bia, "bia-1", PER_TX) == PER_TX
    assert await bank.device_used("bia") == PER_TX
    assert await bank.device_used("ana") == DAY_CAP
    # the next local day (00:00 in São Paulo), the device (still new) has its cap again
    bank.world.clock.set(datetime(2026, 1, 6, 3, tzinfo=UTC))
    assert await bank.pay(accounts[0], "next-day", PER_TX) == PER_TX
    await bank.world.assert_ledger_balanced()


async def test_concurrent_payments_from_the_owners_accounts_never_pass_the_cap(
    bank: Bank,
) -> None:
    accounts = await open_accounts(bank, "ana", 4)
    [bia] = await open_accounts(bank, "bia", 1)

    def paying(account: CustomerAccount, idem: str) -> Callable[[], Awaitable[int]]:
        return lambda: bank.pay(account, idem, 100_00)

    # idempotency keys are the owner's: one per payment
    calls = [paying(a, f"at-once-{i}-{n}") for n in range(6) for i, a in enumerate(accounts)]
    calls += [paying(bia, f"bia-{n}") for n in range(3)]

    sent, errors = await outcomes(calls)

    assert not errors
    ana_sent = sent[: 6 * len(accounts)]
    assert sum(ana_sent) == DAY_CAP  # 10 of 24 at once, from 4 accounts
    assert bank.refusals == [("new_device_per_day", DAY_CAP)] * 14
    assert sum(sent[6 * len(accounts) :]) == 300_00  # the other owner is not held back
    assert await bank.device_used("ana") == DAY_CAP
    assert await bank.device_used("bia") == 300_00
    # the shared counter is what the live holds of every account add up to
    live = await bank.limits.usage_holds(owner_usage_scope("ana"), DEVICE_DAY)
    assert sum(h.amount for h in live) == DAY_CAP
    assert {h.account_id for h in live} <= {a.id for a in accounts}
    assert sum([await bank.sent_from(a) for a in accounts]) == DAY_CAP
    await bank.world.assert_ledger_balanced()


async def test_a_dead_payments_hold_on_the_device_day_is_reclaimed_from_another_account(
    bank: Bank,
) -> None:
    first, second = await open_accounts(bank, "ana", 2)
    now = bank.world.clock.now()
    counters = bank.world.policy.usage_counters(
        amount=Money(PER_TX),
        holder_type=HolderType.INDIVIDUAL,
        account=None,
        now=now,
        device_id=DEVICE,
        new_device=True,
        owner_id="ana",
    )
    assert [c.scope for c in counters] == [None, owner_usage_scope("ana")]
    # a request that crashed after reserving the whole day from the first account
    ghost = UsageHold(
        account_id=first.id,
        hold_id="E-never-recorded",
        amount=DAY_CAP,
        counters=tuple(counters),
        created_at=now,
    )
    assert (await bank.limits.reserve_usage(ghost)).outcome is ReserveOutcome.RESERVED
    assert await bank.pay(second, "early", PER_TX) == 0
    assert bank.refusals == [("new_device_per_day", DAY_CAP)]
    bank.world.clock.advance(STALE_HOLD_SECONDS)

    assert await bank.pay(second, "late", PER_TX) == PER_TX

    assert await bank.device_used("ana") == PER_TX
    assert await bank.sent_from(first) == 0  # released on its own account
    assert await bank.limits.usage_holds(first.id, WINDOW) == []


# -- payments that name no device -------------------------------------------------------------

UNNAMED_DAY = DEVICE_DAY  # payments that name no device count there too


@pytest.fixture
async def unnamed_is_new(backend: Backend) -> Bank:
    """A bank where a payment that names no device is held to the new-device figures."""
    return await make_bank(backend, LimitSettings(unnamed_device_is_new=True))


async def test_payments_naming_no_device_share_one_new_device_day_per_owner(
    unnamed_is_new: Bank,
) -> None:
    bank = unnamed_is_new
    accounts = await open_accounts(bank, "ana", 3)
    # a device the owner has used for two days is trusted, whatever the unnamed ones did
    await bank.world.devices.record_use("ana", "old-phone", T0 - timedelta(days=2))

    assert await bank.pay(accounts[0], "too-much", PER_TX + 1, device=None) == 0
    sent = [
        await bank.pay(account, f"pay-{a}-{n}", PER_TX, device=None)
        for n in range(6)
        for a, account in enumerate(accounts)
    ]
    trusted = await bank.pay(accounts[0], "on-the-old-phone", 5_000_00, device="old-phone")

    assert sum(sent) == DAY_CAP  # 5 of 18, across the three accounts
    assert (
        bank.refusals
        == [("new_device_per_transaction", PER_TX)] + [("new_device_per_day", DAY_CAP)] * 13
    )
    assert await bank.limits.used(owner_usage_scope("ana"), UNNAMED_DAY) == DAY_CAP
    assert trusted == 5_000_00  # a trusted device is not under the cap, nor counted in it
    # an unnamed device is never first seen, so it never grows trusted
    assert await bank.world.devices.list_by_owner("ana") == [("old-phone", T0 - timedelta(days=2))]
    bank.world.clock.set(datetime(2026, 1, 8, 12, tzinfo=UTC))
    assert await bank.pay(accounts[1], "days-later", PER_TX + 1, device=None) == 0
    assert await bank.pay(accounts[1], "days-later-small", PER_TX, device=None) == PER_TX
    await bank.world.assert_ledger_balanced()


async def test_a_new_device_named_for_each_payment_shares_the_one_day(
    unnamed_is_new: Bank,
) -> None:
    """A stolen token naming a device never seen for each payment (or none) is held to
    R$ 1,000.00 a day in all, not R$ 1,000.00 a device."""
    bank = unnamed_is_new
    first, second = await open_accounts(bank, "ana", 2)

    sent = [
        await bank.pay(account, f"pay-{n}", PER_TX, device=device)
        for n, (account, device) in enumerate(
            (first if n % 2 else second, None if n % 3 == 0 else f"phone-{n}") for n in range(12)
        )
    ]

    assert sum(sent) == DAY_CAP
    assert bank.refusals == [("new_device_per_day", DAY_CAP)] * 7
    assert await bank.device_used("ana") == DAY_CAP
    await bank.world.assert_ledger_balanced()


async def test_concurrent_payments_naming_no_device_never_pass_the_day(
    unnamed_is_new: Bank,
) -> None:
    bank = unnamed_is_new
    accounts = await open_accounts(bank, "ana", 4)
    [bia] = await open_accounts(bank, "bia", 1)

    def paying(account: CustomerAccount, idem: str) -> Callable[[], Awaitable[int]]:
        return lambda: bank.pay(account, idem, 100_00, device=None)

    calls = [paying(a, f"at-once-{i}-{n}") for n in range(6) for i, a in enumerate(accounts)]
    calls += [paying(bia, f"bia-{n}") for n in range(3)]

    sent, errors = await outcomes(calls)

    assert not errors
    assert sum(sent[: 6 * len(accounts)]) == DAY_CAP  # 10 of 24 at once
    assert sum(sent[6 * len(accounts) :]) == 300_00  # another owner's day is their own
    assert bank.refusals == [("new_device_per_day", DAY_CAP)] * 14
    assert await bank.limits.used(owner_usage_scope("ana"), UNNAMED_DAY) == DAY_CAP
    live = await bank.limits.usage_holds(owner_usage_scope("ana"), UNNAMED_DAY)
    assert sum(h.amount for h in live) == DAY_CAP
    await bank.world.assert_ledger_balanced()


async def test_without_the_setting_a_payment_naming_no_device_meets_the_window_only(
    bank: Bank,
) -> None:
    [account] = await open_accounts(bank, "ana", 1)

    assert await bank.pay(account, "big", 5_000_00, device=None) == 5_000_00

    assert bank.refusals == []
    assert await bank.limits.used(owner_usage_scope("ana"), UNNAMED_DAY) == 0
    assert await bank.sent_from(account) == 5_000_00


# -- the store: a counter shared by accounts ----------------------------------------------------

ENDS = T0 + timedelta(hours=15)  # the local day's end


def window(cap: int = 100_000_00) -> UsageCounter:
    return UsageCounter(limit="day_per_period", period=WINDOW, cap=cap, ends_at=ENDS)


def device(owner_id: str = "ana", cap: int = DAY_CAP) -> UsageCounter:
    return UsageCounter(
        limit="new_device_per_day",
        period=DEVICE_DAY,
        cap=cap,
        ends_at=ENDS,
        scope=owner_usage_scope(owner_id),
    )


def hold(account: uuid.UUID, n: int, amount: int, *counters: UsageCounter) -> UsageHold:
    return UsageHold(
        account_id=account,
        hold_id=f"E{n:031d}",
        amount=amount,
        counters=counters,
        created_at=T0,
    )


async def test_accounts_of_one_owner_share_the_device_counter(backend: Backend) -> None:
    store, scope = backend.limits, owner_usage_scope("ana")
    accounts = [uuid.uuid4() for _ in range(3)]
    holds = [
        hold(a, 10 * n + i, PER_TX, window(), device())
        for n in range(3)
        for i, a in enumerate(accounts)
    ]

    results = [await store.reserve_usage(h) for h in holds]

    assert [r.outcome for r in results].count(ReserveOutcome.RESERVED) == 5
    assert {r.limit for r in results if r.outcome is ReserveOutcome.EXCEEDED} == {
        "new_device_per_day"
    }
    assert await store.used(scope, DEVICE_DAY) == DAY_CAP
    reserved = [
        h for h, r in zip(holds, results, strict=True) if r.outcome is ReserveOutcome.RESERVED
    ]
    live = await store.usage_holds(scope, DEVICE_DAY)
    assert sorted(h.hold_id for h in live) == sorted(h.hold_id for h in reserved)
    assert {h.account_id for h in live} == set(accounts)
    for account in accounts:  # the windows are each account's: refused holds added nothing
        mine = [h for h in reserved if h.account_id == account]
        assert await store.used(account, WINDOW) == PER_TX * len(mine)
        assert await store.used(account, DEVICE_DAY) == 0
        assert sorted(h.hold_id for h in await store.usage_holds(account, WINDOW)) == sorted(
            h.hold_id for h in mine
        )


async def test_concurrent_reservations_from_many_accounts_never_pass_the_device_cap(
    backend: Backend,
) -> None:
    store, scope = backend.limits, owner_usage_scope("ana")
    accounts = [uuid.uuid4() for _ in range(6)]
    holds = [hold(accounts[n % 6], n, 100_00, window(), device()) for n in range(24)]

    results, errors = await outcomes(
        [lambda h=h: store.reserve_usage(h) for h in holds]  # type: ignore[misc]
    )

    assert not errors
    outcomes_ = [r.outcome for r in results]
    assert outcomes_.count(ReserveOutcome.RESERVED) == 10
    assert outcomes_.count(ReserveOutcome.EXCEEDED) == 14
    assert await store.used(scope, DEVICE_DAY) == DAY_CAP
    live = await store.usage_holds(scope, DEVICE_DAY)
    assert sum(h.amount for h in live) == DAY_CAP
    for account in accounts:
        mine = [h for h in live if h.account_id == account]
        assert await store.used(account, WINDOW) == sum(h.amount for h in mine)


async def test_a_release_gives_the_device_counter_back_once(backend: Backend) -> None:
    store, scope = backend.limits, owner_usage_scope("ana")
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    kept = hold(first, 1, 600_00, window(), device())
    released = hold(second, 2, 400_00, window(), device())
    for h in (kept, released):
        assert (await store.reserve_usage(h)).outcome is ReserveOutcome.RESERVED
    late = hold(third, 3, 300_00, window(), device())
    assert (await store.reserve_usage(late)).outcome is ReserveOutcome.EXCEEDED

    # on its own account only, and once, whoever calls at the same time
    assert not await store.release_usage(first, released.hold_id)
    answers, errors = await outcomes([lambda: store.release_usage(second, released.hold_id)] * 8)

    assert not errors
    assert sorted(answers) == [False] * 7 + [True]
    assert await store.used(scope, DEVICE_DAY) == 600_00
    assert await store.used(second, WINDOW) == 0
    assert await store.usage_holds(scope, DEVICE_DAY) == [kept]
    # the room is usable again, from another account
    assert (await store.reserve_usage(late)).outcome is ReserveOutcome.RESERVED
    assert await store.used(scope, DEVICE_DAY) == 900_00
    assert await store.release_usage(first, kept.hold_id)
    assert await store.release_usage(third, late.hold_id)
    assert await store.used(scope, DEVICE_DAY) == 0
    assert await store.usage_holds(scope, DEVICE_DAY) == []


async def test_another_owners_device_counter_is_separate(backend: Backend) -> None:
    store = backend.limits
    ana, bia = uuid.uuid4(), uuid.uuid4()
    full = hold(ana, 1, DAY_CAP, window(), device("ana"))
    assert (await store.reserve_usage(full)).outcome is ReserveOutcome.RESERVED
    assert (await store.reserve_usage(hold(ana, 2, 1, window(), device("ana")))).limit == (
        "new_device_per_day"
    )

    bias = hold(bia, 3, DAY_CAP, window(), device("bia"))

    assert (await store.reserve_usage(bias)).outcome is ReserveOutcome.RESERVED
    assert owner_usage_scope("ana") != owner_usage_scope("bia")
    assert await store.used(owner_usage_scope("bia"), DEVICE_DAY) == DAY_CAP
    assert await store.usage_holds(owner_usage_scope("bia"), DEVICE_DAY) == [bias]
    assert await store.usage_holds(owner_usage_scope("ana"), DEVICE_DAY) == [full]
    assert await store.release_usage(bia, bias.hold_id)
    assert await store.used(owner_usage_scope("ana"), DEVICE_DAY) == DAY_CAP


async def test_a_hold_recorded_before_scopes_still_releases(backend: Backend) -> None:
    """A hold of the code before: its device day under the account, no scope in its JSON."""
    store, account = backend.limits, uuid.uuid4()
    unscoped = UsageCounter(
        limit="new_device_per_day", period=DEVICE_DAY, cap=DAY_CAP, ends_at=ENDS
    )
    old = hold(account, 1, 300_00, window(), unscoped)
    assert b"scope" not in msgspec.json.encode(old)  # as the code before wrote it
    await backend.legacy_reserve(old)
    assert await store.used(account, DEVICE_DAY) == 300_00
    # a new hold of the same account and device, on the owner's counter, beside it
    new = hold(account, 2, 200_00, window(), device())
    assert (await store.reserve_usage(new)).outcome is ReserveOutcome.RESERVED
    assert await store.used(account, WINDOW) == 500_00
    assert await store.usage_holds(account, DEVICE_DAY) == [old]

    assert await store.release_usage(account, old.hold_id)
    assert not await store.release_usage(account, old.hold_id)

    assert await store.used(account, DEVICE_DAY) == 0
    assert await store.used(account, WINDOW) == 200_00
    assert await store.used(owner_usage_scope("ana"), DEVICE_DAY) == 200_00
    assert await store.usage_holds(account, WINDOW) == [new]
    assert await store.release_usage(account, new.hold_id)
    assert await store.used(account, WINDOW) == 0
    assert await store.used(owner_usage_scope("ana"), DEVICE_DAY) == 0


def test_a_hold_without_scopes_decodes_as_the_accounts() -> None:
    account = uuid.uuid4()
    body = (
        f'{{"account_id":"{account}","hold_id":"E1","amount":100,"created_at":"{T0.isoformat()}",'
        f'"counters":[{{"limit":"new_device_per_day","period":"{DEVICE_DAY}","cap":100000,'
        f'"ends_at":"{ENDS.isoformat()}"}}]}}'
    )
    old = msgspec.json.decode(body, type=UsageHold)
    assert old.counters[0].scope is None
    assert old.counter_keys() == [(account, DEVICE_DAY)]
    assert msgspec.json.decode(msgspec.json.encode(old), type=UsageHold) == old
