"""The PIX ports under concurrent callers, run against every adapter of them.

Many callers at once on the same key, account, payment, charge and limit
counter; each test checks the final state, not only the answers: one
holder per key, an account never past its key limit, one record per
idempotency key, one writer per version, a counter never past its cap and
equal to what its live holds add up to, a release applied once, and every
replay answered like the first.

Backends: memory (behind :class:`~tests.pix_concurrency_support.Interleaved`,
so the callers take turns at every call) and DynamoDB on a moto server that
serves one request at a time, as DynamoDB serializes the writes of an item
(moto's threaded server does not, see ``tests/integration/dynamo_support.py``).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from finbank_adapters.aws.dynamo import DynamoPixPaymentRepository
from finbank_adapters.aws.dynamo_pix_directory import DynamoKeyDirectory
from finbank_adapters.aws.dynamo_pix_records import (
    DynamoAccountLimitsStore,
    DynamoChargeRepository,
)
from finbank_adapters.memory.pix import (
    InMemoryAccountLimitsStore,
    InMemoryChargeRepository,
    InMemoryKeyDirectory,
    InMemoryPixPaymentRepository,
)
from finbank_adapters.postgres.pix_directory import PostgresKeyDirectory
from finbank_adapters.postgres.pix_payments import PostgresPixPaymentRepository
from finbank_adapters.postgres.pix_records import (
    PostgresAccountLimitsStore,
    PostgresChargeRepository,
)
from finbank_core.accounts.model import AccountKind, HolderType
from finbank_core.pix.charges import Charge
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.directory import NewKeyRegistration
from finbank_core.pix.limits import ReserveOutcome, UsageCounter, UsageHold, UsageReservation
from finbank_core.pix.payments import Initiation, PaymentStatus, PixFlow, PixParty, PixPayment
from finbank_core.pix.ports import (
    AccountLimitsStore,
    ChargeRepository,
    KeyDirectory,
    PixPaymentRepository,
)
from finbank_core.shared.money import Money
from tests.integration.dynamo_support import dynamodb_client, new_table, serial_moto_endpoint
from tests.pix_concurrency_support import interleaved, outcomes
from tests.postgres_support import isolated_schema

__all__ = ["serial_moto_endpoint"]  # fixture
PIX_CONCURRENCY_BACKENDS = [
    "memory",
    pytest.param("dynamodb", marks=pytest.mark.services),
    pytest.param("postgres", marks=pytest.mark.services),
]
#: concurrent callers per test
N = 24
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)  # 09:00 in São Paulo
ENDS = T0 + timedelta(hours=8)


@dataclass
class PixStores:
    directory: KeyDirectory
    payments: PixPaymentRepository
    charges: ChargeRepository
    limits: AccountLimitsStore


@pytest.fixture(params=PIX_CONCURRENCY_BACKENDS)
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[PixStores]:
    if request.param == "memory":
        yield PixStores(
            interleaved(InMemoryKeyDirectory(random.Random(5))),
            interleaved(InMemoryPixPaymentRepository()),
            interleaved(InMemoryChargeRepository()),
            interleaved(InMemoryAccountLimitsStore()),
        )
    elif request.param == "dynamodb":  # serial moto, a table of its own per test
        endpoint: str = request.getfixturevalue("serial_moto_endpoint")
        async with dynamodb_client(endpoint) as client, new_table(client) as table:
            yield PixStores(
                DynamoKeyDirectory(client, table),
                DynamoPixPaymentRepository(client, table),
                DynamoChargeRepository(client, table),
                DynamoAccountLimitsStore(client, table),
            )
    elif request.param == "postgres":  # a migrated schema of its own, a connection per caller
        dsn = request.getfixturevalue("postgres_dsn")
        async with isolated_schema(dsn, max_size=N) as (pool, _):
            yield PixStores(
                PostgresKeyDirectory(pool),
                PostgresPixPaymentRepository(pool),
                PostgresChargeRepository(pool),
                PostgresAccountLimitsStore(pool),
            )
    else:  # pragma: no cover - each backend adds its branch
        raise AssertionError(request.param)


# -- key directory ------------------------------------------------------------------------


def registration(key: PixKey | None, account_id: uuid.UUID) -> NewKeyRegistration:
    return NewKeyRegistration(
        id=uuid.uuid4(),
        key_type=key.type if key else PixKeyType.EVP,
        key=key,
        ispb="99999999",
        branch="0001",
        account_number=f"{account_id.int % 1_000_000:06d}-0",
        account_kind=AccountKind.PAYMENT,
        holder_type=HolderType.INDIVIDUAL,
        holder_name="Ana Souza",
        holder_document="52998224725",
        created_at=T0,
        account_id=account_id,
        owner_id="ana",
    )


async def test_concurrent_registrations_of_one_key_bind_it_to_one_account(
    stores: PixStores,
) -> None:
    key = PixKey.parse("disputed@example.com")
    accounts = [uuid.uuid4() for _ in range(N)]

    registered, errors = await outcomes(
        [
            lambda a=a: stores.directory.register(registration(key, a), max_keys_per_account=5)  # type: ignore[misc]
            for a in accounts
        ]
    )

    assert len(registered) == 1
    assert errors == {"PixKeyAlreadyRegistered": N - 1}
    [winner] = registered
    assert (await stores.directory.get(key)).account_id == winner.account_id
    for account in accounts:
        held = await stores.directory.list_by_account(account)
        assert [r.key for r in held] == ([key] if account == winner.account_id else [])


async def test_concurrent_registrations_on_one_account_stop_at_its_limit(
    stores: PixStores,
) -> None:
    account = uuid.uuid4()

    async def register_evp() -> PixKey:
        stored = await stores.directory.register(
            registration(None, account), max_keys_per_account=5
        )
        return stored.key

    registered, errors = await outcomes([register_evp] * N)

    assert len(registered) == 5
    assert errors == {"PixKeyLimitReached": N - 5}
    held = await stores.directory.list_by_account(account)
    assert sorted(r.key.value for r in held) == sorted(k.value for k in registered)
    # a freed place is taken by exactly one of the next crowd
    await stores.directory.delete(held[0].id, "ana")
    again, errors = await outcomes([register_evp] * N)
    assert (len(again), errors) == (1, {"PixKeyLimitReached": N - 1})
    assert len(await stores.directory.list_by_account(account)) == 5


# -- payment records ----------------------------------------------------------------------


def payment(n: int, *, key: str | None = "same-key") -> PixPayment:
    payer = uuid.UUID(int=1)
    return PixPayment(
        end_to_end_id=f"E99999999202601051200{n:011d}",
        flow=PixFlow.OUTGOING,
        status=PaymentStatus.PENDING,
        amount=Money(10_00),
        payer=PixParty(ispb="99999999", account_id=payer, owner_id="ana"),
        payee=PixParty(ispb="88888888"),
        initiation=Initiation.KEY,
        created_at=T0,
        idempotency_key=key,
        request_fingerprint="fp",
    )


async def test_concurrent_adds_with_one_idempotency_key_keep_one_record(
    stores: PixStores,
) -> None:
    stored, errors = await outcomes(
        [lambda n=n: stores.payments.add(payment(n)) for n in range(N)]  # type: ignore[misc]
    )

    assert len(stored) == 1
    assert errors == {"PixPaymentAlreadyExists": N - 1}
    [winner] = stored
    assert await stores.payments.get_by_idempotency_key("ana", "same-key") == winner
    found, missing = await outcomes(
        [lambda n=n: stores.payments.get(payment(n).end_to_end_id) for n in range(N)]  # type: ignore[misc]
    )
    assert (found, missing) == ([winner], {"PixPaymentNotFound": N - 1})


async def test_concurrent_updates_of_one_version_apply_once(stores: PixStores) -> None:
    first = await stores.payments.add(payment(1, key=None))

    def settle(n: int) -> PixPayment:
        return first.settle(T0 + timedelta(seconds=n))

    updated, errors = await outcomes(
        [lambda n=n: stores.payments.update(settle(n), 1) for n in range(N)]  # type: ignore[misc]
    )

    assert len(updated) == 1
    assert errors == {"PixVersionConflict": N - 1}
    assert await stores.payments.get(first.end_to_end_id) == updated[0]
    assert updated[0].version == 2


# -- charges --------------------------------------------------------------------------------


def charge(txid: str = "abcdefghijklmnopqrstuvwxyz0123") -> Charge:
    return Charge(
        txid=txid,
        location_id=f"loc-{txid}",
        account_id=uuid.UUID(int=2),
        owner_id="bia",
        pix_key=PixKey.parse("bia@example.com"),
        amount=Money(50_00),
        merchant_name="Bia",
        merchant_city="SAO PAULO",
        created_at=T0,
        expires_in_seconds=3600,
    )


async def test_concurrent_adds_of_one_txid_keep_one_charge(stores: PixStores) -> None:
    added, errors = await outcomes(
        [
            lambda n=n: stores.charges.add(  # type: ignore[misc]
                msgspec.structs.replace(charge(), location_id=f"loc-{n}")
            )
            for n in range(N)
        ]
    )
    assert len(added) == 1
    assert errors == {"ChargeAlreadyExists": N - 1}
    assert await stores.charges.get(charge().txid) == added[0]


async def test_concurrent_claims_of_one_charge_leave_one_claimant(stores: PixStores) -> None:
    """What ``claim_charge`` relies on: of many claims on one version, one is stored."""
    added = await stores.charges.add(charge())

    claimed, errors = await outcomes(
        [
            lambda n=n: stores.charges.update(added.claim(f"E{n}", T0), added.version)  # type: ignore[misc]
            for n in range(N)
        ]
    )

    assert len(claimed) == 1
    assert errors == {"PixVersionConflict": N - 1}
    stored = await stores.charges.get(added.txid)
    assert stored == claimed[0]
    assert (stored.claimed_by, stored.version) == (claimed[0].claimed_by, 2)
    # the winner concludes; a release racing with it from a stale read is refused
    concluded, late = await outcomes(
        [
            lambda: stores.charges.update(stored.conclude(stored.claimed_by or "", T0), 2),
            lambda: stores.charges.update(stored.release(), 2),
        ]
    )
    assert (len(concluded), late) == (1, {"PixVersionConflict": 1})
    assert (await stores.charges.get(added.txid)).version == 3


# -- limit usage ----------------------------------------------------------------------------


def counter(
    cap: int, period: str = "day:2026-01-05T09:00Z", limit: str = "day_per_period"
) -> UsageCounter:
    return UsageCounter(limit=limit, period=period, cap=cap, ends_at=ENDS)


def hold(account: uuid.UUID, n: int, amount: int, *counters: UsageCounter) -> UsageHold:
    return UsageHold(
        account_id=account,
        hold_id=f"E{n:031d}",
        amount=amount,
        counters=counters,
        created_at=T0,
    )


async def reserve_all(stores: PixStores, holds: list[UsageHold]) -> list[UsageReservation]:
    results, errors = await outcomes(
        [lambda h=h: stores.limits.reserve_usage(h) for h in holds]  # type: ignore[misc]
    )
    assert not errors
    return results


async def test_concurrent_reservations_never_pass_the_cap(stores: PixStores) -> None:
    account, day = uuid.uuid4(), counter(cap=10_00)
    holds = [hold(account, n, 1_00, day) for n in range(N)]

    results = await reserve_all(stores, holds)

    reserved = [
        h for h, r in zip(holds, results, strict=True) if r.outcome is ReserveOutcome.RESERVED
    ]
    assert len(reserved) == 10
    assert all(
        r == UsageReservation(outcome=ReserveOutcome.EXCEEDED, limit="day_per_period")
        for r in results
        if r.outcome is not ReserveOutcome.RESERVED
    )
    assert await stores.limits.used(account, day.period) == 10_00
    live = await stores.limits.usage_holds(account, day.period)
    assert sorted(h.hold_id for h in live) == sorted(h.hold_id for h in reserved)
    assert await stores.limits.used(uuid.uuid4(), day.period) == 0  # per account


async def test_a_replayed_reservation_is_counted_once(stores: PixStores) -> None:
    account, day = uuid.uuid4(), counter(cap=10_00)
    same = hold(account, 1, 3_00, day)

    results = await reserve_all(stores, [same] * N)

    assert sorted(r.outcome for r in results) == sorted(
        [ReserveOutcome.RESERVED] + [ReserveOutcome.ALREADY_HELD] * (N - 1)
    )
    assert await stores.limits.used(account, day.period) == 3_00
    assert await stores.limits.usage_holds(account, day.period) == [same]


async def test_concurrent_releases_of_one_hold_apply_once(stores: PixStores) -> None:
    account, day = uuid.uuid4(), counter(cap=10_00)
    kept, released = hold(account, 1, 4_00, day), hold(account, 2, 6_00, day)
    await reserve_all(stores, [kept, released])

    answers, errors = await outcomes(
        [lambda: stores.limits.release_usage(account, released.hold_id)] * N
    )

    assert not errors
    assert sorted(answers) == [False] * (N - 1) + [True]
    assert await stores.limits.used(account, day.period) == 4_00
    assert await stores.limits.usage_holds(account, day.period) == [kept]
    assert not await stores.limits.release_usage(account, "E-never-held")
    # the room is back, for one newcomer of many
    results = await reserve_all(stores, [hold(account, 100 + n, 6_00, day) for n in range(N)])
    assert [r.outcome for r in results].count(ReserveOutcome.RESERVED) == 1
    assert await stores.limits.used(account, day.period) == 10_00


async def test_a_hold_on_two_counters_is_all_or_nothing(stores: PixStores) -> None:
    account = uuid.uuid4()
    window = counter(cap=100_00)
    device = counter(cap=3_00, period="device:phone:2026-01-05", limit="new_device_per_day")
    holds = [hold(account, n, 1_00, window, device) for n in range(N)]

    results = await reserve_all(stores, holds)

    assert [r.outcome for r in results].count(ReserveOutcome.RESERVED) == 3
    assert {r.limit for r in results if r.outcome is ReserveOutcome.EXCEEDED} == {
        "new_device_per_day"
    }
    # the refused ones added nothing to the window either
    assert await stores.limits.used(account, window.period) == 3_00
    assert await stores.limits.used(account, device.period) == 3_00
    # a payment from a trusted device (window only) still has the window's room
    other = await reserve_all(stores, [hold(account, 999, 97_00, window)])
    assert other[0].outcome is ReserveOutcome.RESERVED
    assert await stores.limits.used(account, window.period) == 100_00


async def test_a_counter_is_what_its_live_holds_add_up_to_under_mixed_traffic(
    stores: PixStores,
) -> None:
    account, day = uuid.uuid4(), counter(cap=20_00)
    first = [hold(account, n, 2_00, day) for n in range(10)]
    await reserve_all(stores, first)
    newcomers = [hold(account, 100 + n, 2_00, day) for n in range(N)]

    calls: list[Callable[[], Awaitable[object]]] = [
        lambda h=h: stores.limits.reserve_usage(h)  # type: ignore[misc]
        for h in newcomers
    ]
    calls += [
        lambda h=h: stores.limits.release_usage(account, h.hold_id)  # type: ignore[misc]
        for h in first[:5]
    ]
    _, errors = await outcomes(calls)

    assert not errors
    live = await stores.limits.usage_holds(account, day.period)
    used = await stores.limits.used(account, day.period)
    assert used == sum(h.amount for h in live) <= day.cap
    assert {h.hold_id for h in first[5:]} <= {h.hold_id for h in live}
    assert not {h.hold_id for h in first[:5]} & {h.hold_id for h in live}


async def test_a_hold_larger_than_the_cap_is_refused_on_a_fresh_counter(
    stores: PixStores,
) -> None:
    account, day = uuid.uuid4(), counter(cap=5_00)
    [result] = await reserve_all(stores, [hold(account, 1, 5_01, day)])
    assert result == UsageReservation(outcome=ReserveOutcome.EXCEEDED, limit="day_per_period")
    assert await stores.limits.used(account, day.period) == 0
    assert await stores.limits.usage_holds(account, day.period) == []
