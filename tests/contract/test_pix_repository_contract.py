"""The ``PixPaymentRepository`` contract, run against every adapter of it.

A backend joins by adding its name to ``PIX_REPOSITORY_BACKENDS`` and a branch
to the ``repository`` fixture (DynamoDB: moto server, a table per test).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest

from finbank_adapters.aws.dynamo import DynamoPixPaymentRepository
from finbank_adapters.aws.dynamo_schema import create_tables
from finbank_adapters.memory.pix import InMemoryPixPaymentRepository
from finbank_adapters.postgres.pix_payments import PostgresPixPaymentRepository
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.errors import (
    IllegalPixTransition,
    PixPaymentAlreadyExists,
    PixPaymentNotFound,
    PixVersionConflict,
)
from finbank_core.pix.payments import (
    Initiation,
    PaymentDirection,
    PaymentStatus,
    PixFlow,
    PixParty,
    PixPayment,
)
from finbank_core.pix.ports import PixPaymentRepository
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.money import Money
from tests.integration.aws_fixtures import aws_endpoint
from tests.postgres_support import isolated_schema

__all__ = ["aws_endpoint"]  # fixture
PIX_REPOSITORY_BACKENDS = ["memory", "dynamodb", "postgres"]
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)  # 09:00 in São Paulo
ANA = uuid.uuid4()
BIA = uuid.uuid4()


@pytest.fixture(params=PIX_REPOSITORY_BACKENDS)
async def repository(request: pytest.FixtureRequest) -> AsyncIterator[PixPaymentRepository]:
    if request.param == "memory":
        yield InMemoryPixPaymentRepository()
    elif request.param == "dynamodb":  # moto server, a table of its own per test
        import aioboto3

        endpoint: str = request.getfixturevalue("aws_endpoint")
        table = f"pix-{uuid.uuid4().hex[:12]}"
        async with aioboto3.Session().client(
            "dynamodb", region_name="sa-east-1", endpoint_url=endpoint
        ) as client:
            await create_tables(client, table)
            yield DynamoPixPaymentRepository(client, table)
    elif request.param == "postgres":  # a migrated schema of its own per test
        async with isolated_schema(request.getfixturevalue("postgres_dsn")) as (pool, _):
            yield PostgresPixPaymentRepository(pool)
    else:  # pragma: no cover - each backend adds its branch
        raise AssertionError(request.param)


def payment(
    n: int,
    *,
    at: datetime = T0,
    payer: uuid.UUID = ANA,
    payee: uuid.UUID | None = None,
    key: str | None = None,
) -> PixPayment:
    return PixPayment(
        end_to_end_id=f"E99999999202601051200{n:011d}",
        flow=PixFlow.ON_US if payee else PixFlow.OUTGOING,
        status=PaymentStatus.PENDING,
        amount=Money(10_00 + n),
        payer=PixParty(ispb="99999999", account_id=payer, owner_id=f"owner-{payer}"),
        payee=PixParty(ispb="99999999" if payee else "88888888", account_id=payee),
        initiation=Initiation.KEY,
        created_at=at,
        idempotency_key=key,
        request_fingerprint="fp",
    )


async def test_add_then_get_returns_the_record_at_version_1(
    repository: PixPaymentRepository,
) -> None:
    stored = await repository.add(payment(1, key="k1"))
    assert stored.version == 1
    assert await repository.get(stored.end_to_end_id) == stored
    assert await repository.get_by_idempotency_key(f"owner-{ANA}", "k1") == stored
    assert await repository.get_by_idempotency_key(f"owner-{ANA}", "k2") is None
    assert await repository.get_by_idempotency_key("someone-else", "k1") is None


async def test_add_is_conditional_on_the_end_to_end_id_and_the_idempotency_key(
    repository: PixPaymentRepository,
) -> None:
    await repository.add(payment(1, key="k1"))
    with pytest.raises(PixPaymentAlreadyExists):
        await repository.add(payment(1, key="other"))
    with pytest.raises(PixPaymentAlreadyExists):
        await repository.add(payment(2, key="k1"))
    with pytest.raises(PixPaymentNotFound):
        await repository.get(payment(2).end_to_end_id)


async def test_update_is_optimistic(repository: PixPaymentRepository) -> None:
    stored = await repository.add(payment(1))
    settled = await repository.update(stored.settle(T0), expected_version=1)
    assert (settled.version, settled.status) == (2, PaymentStatus.SETTLED)
    with pytest.raises(PixVersionConflict):
        await repository.update(stored.reject(IsoReason.AB03, T0), expected_version=1)
    assert (await repository.get(stored.end_to_end_id)).status is PaymentStatus.SETTLED
    with pytest.raises(PixPaymentNotFound):
        await repository.update(payment(9), expected_version=1)


async def test_list_by_account_finds_both_sides_newest_first_in_pages(
    repository: PixPaymentRepository,
) -> None:
    for n in range(5):
        await repository.add(payment(n, at=T0 + timedelta(minutes=n)))
    await repository.add(payment(10, at=T0, payer=BIA, payee=ANA))
    await repository.add(payment(11, at=T0, payer=BIA))
    seen: list[str] = []
    cursor = None
    while True:
        page = await repository.list_by_account(ANA, limit=2, cursor=cursor)
        seen.extend(p.end_to_end_id for p in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == 6
    assert len(set(seen)) == 6
    assert seen[0] == payment(4).end_to_end_id
    bia = await repository.list_by_account(BIA)
    assert {p.end_to_end_id for p in bia.items} == {
        payment(10).end_to_end_id,
        payment(11).end_to_end_id,
    }


async def test_list_by_account_filters_by_creation_time(repository: PixPaymentRepository) -> None:
    for n in range(4):
        await repository.add(payment(n, at=T0 + timedelta(hours=n)))
    page = await repository.list_by_account(
        ANA, since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3)
    )
    assert [p.amount.cents for p in page.items] == [10_02, 10_01]


async def test_list_by_settlement_day_uses_the_sao_paulo_date(
    repository: PixPaymentRepository,
) -> None:
    late_evening = datetime(2026, 1, 6, 2, 30, tzinfo=UTC)  # 23:30 on the 5th in São Paulo
    for n, when in enumerate([T0, late_evening, late_evening + timedelta(hours=1)]):
        stored = await repository.add(payment(n, at=when))
        await repository.update(stored.settle(when), stored.version)
    await repository.add(payment(7, at=T0))  # pending: not settled on any day
    day5 = await repository.list_by_settlement_day(date(2026, 1, 5))
    day6 = await repository.list_by_settlement_day(date(2026, 1, 6))
    assert [p.end_to_end_id for p in day5.items] == [
        payment(0).end_to_end_id,
        payment(1).end_to_end_id,
    ]
    assert [p.end_to_end_id for p in day6.items] == [payment(2).end_to_end_id]


async def test_records_round_trip_with_every_field(repository: PixPaymentRepository) -> None:
    original = msgspec.structs.replace(
        payment(1, key="k"), txid="abc", description="aluguel", device_id="d1"
    )
    stored = await repository.add(original)
    assert msgspec.structs.replace(stored, version=0) == original


async def test_a_final_record_never_goes_back_to_pending(repository: PixPaymentRepository) -> None:
    stored = await repository.add(payment(1))
    settled = await repository.update(stored.settle(T0), stored.version)
    back = msgspec.structs.replace(settled, status=PaymentStatus.PENDING, settled_at=None)
    with pytest.raises(IllegalPixTransition):
        await repository.update(back, settled.version)
    rejected = msgspec.structs.replace(settled, status=PaymentStatus.REJECTED)
    with pytest.raises(IllegalPixTransition):
        await repository.update(rejected, settled.version)
    again = await repository.update(settled, settled.version)  # same status: a refund, say
    assert (again.version, again.status) == (3, PaymentStatus.SETTLED)
    assert await repository.get(stored.end_to_end_id) == again


async def _pages(
    repository: PixPaymentRepository, account: uuid.UUID, limit: int, **filters: Any
) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = await repository.list_by_account(account, limit=limit, cursor=cursor, **filters)
        assert len(page.items) <= limit
        seen.extend(p.end_to_end_id for p in page.items)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


async def test_list_by_account_filters_by_status_and_direction_across_pages(
    repository: PixPaymentRepository,
) -> None:
    sent = [await repository.add(payment(n, at=T0 + timedelta(minutes=n))) for n in range(6)]
    for record in sent[::2]:  # 0, 2, 4 settled
        await repository.update(record.settle(T0), record.version)
    received = await repository.add(payment(10, at=T0 + timedelta(minutes=3), payer=BIA, payee=ANA))
    to_self = await repository.add(payment(11, at=T0 + timedelta(minutes=9), payee=ANA))
    e2e = [p.end_to_end_id for p in sent]

    settled = {PaymentStatus.SETTLED}
    assert await _pages(repository, ANA, 2, statuses=settled) == [e2e[4], e2e[2], e2e[0]]
    pending = {PaymentStatus.PENDING}
    assert await _pages(repository, ANA, 1, statuses=pending, direction=PaymentDirection.SENT) == [
        to_self.end_to_end_id,
        e2e[5],
        e2e[3],
        e2e[1],
    ]
    assert await _pages(repository, ANA, 5, direction=PaymentDirection.RECEIVED) == [
        to_self.end_to_end_id,
        received.end_to_end_id,
    ]
    assert await _pages(repository, BIA, 5, direction=PaymentDirection.RECEIVED) == []
    assert await _pages(repository, BIA, 5, direction=PaymentDirection.SENT) == [
        received.end_to_end_id
    ]
    everything = await _pages(repository, ANA, 3)
    assert len(everything) == len(set(everything)) == 8  # a payment to oneself listed once
    assert await _pages(repository, ANA, 3, statuses=set(PaymentStatus)) == everything


async def test_a_cursor_of_another_listing_or_tampered_is_invalid_input(
    repository: PixPaymentRepository,
) -> None:
    for n in range(3):
        await repository.add(payment(n, at=T0 + timedelta(minutes=n)))
    await repository.add(payment(9, at=T0, payer=BIA))
    cursor = (await repository.list_by_account(ANA, limit=1)).next_cursor
    assert cursor is not None
    for bad in ("", "x", cursor[:-2], cursor + "A", "not a cursor!", "0", "%%%"):
        if not bad:
            continue
        with pytest.raises(InvalidInput) as raised:
            await repository.list_by_account(ANA, limit=1, cursor=bad)
        assert raised.value.details.get("field") == "cursor"
    with pytest.raises(InvalidInput):  # another account's listing
        await repository.list_by_account(BIA, limit=1, cursor=cursor)
    with pytest.raises(InvalidInput):
        await repository.list_by_settlement_day(date(2026, 1, 5), cursor=cursor)
    for limit in (0, 1001):
        with pytest.raises(InvalidInput) as raised:
            await repository.list_by_account(ANA, limit=limit)
        assert raised.value.details.get("field") == "limit"
