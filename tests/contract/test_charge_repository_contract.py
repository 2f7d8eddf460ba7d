"""The ``ChargeRepository`` contract, run against every adapter of it.

A backend joins by adding its name to ``CHARGE_REPOSITORY_BACKENDS`` and a
branch to the ``charges`` fixture (DynamoDB: moto server, a table per test).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import msgspec
import pytest

from finbank_adapters.aws.dynamo_pix_records import DynamoChargeRepository
from finbank_adapters.memory.pix import InMemoryChargeRepository
from finbank_adapters.postgres.pix_records import PostgresChargeRepository
from finbank_core.pix.charges import Charge, ChargePayer, ChargeStatus
from finbank_core.pix.codes.keys import PixKey
from finbank_core.pix.errors import ChargeAlreadyExists, ChargeNotFound, PixVersionConflict
from finbank_core.pix.ports import ChargeRepository
from finbank_core.shared.money import Money
from tests.integration.aws_fixtures import aws_endpoint
from tests.integration.dynamo_support import dynamodb_client, new_table
from tests.postgres_support import isolated_schema

__all__ = ["aws_endpoint"]  # fixture
CHARGE_REPOSITORY_BACKENDS = ["memory", "dynamodb", "postgres"]
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)
ANA = uuid.uuid4()
BIA = uuid.uuid4()
TXID = "abcdefghijklmnopqrstuvwxyz0123"  # 30 characters; static txid: the first 25


@pytest.fixture(params=CHARGE_REPOSITORY_BACKENDS)
async def charges(request: pytest.FixtureRequest) -> AsyncIterator[ChargeRepository]:
    if request.param == "memory":
        yield InMemoryChargeRepository()
    elif request.param == "dynamodb":  # moto server, a table of its own per test
        endpoint: str = request.getfixturevalue("aws_endpoint")
        async with dynamodb_client(endpoint) as client, new_table(client) as table:
            yield DynamoChargeRepository(client, table)
    elif request.param == "postgres":  # a migrated schema of its own per test
        async with isolated_schema(request.getfixturevalue("postgres_dsn")) as (pool, _):
            yield PostgresChargeRepository(pool)
    else:  # pragma: no cover - each backend adds its branch
        raise AssertionError(request.param)


def charge(txid: str = TXID, *, location: str = "loc-1", account: uuid.UUID = ANA) -> Charge:
    return Charge(
        txid=txid,
        location_id=location,
        account_id=account,
        owner_id="ana",
        pix_key=PixKey.parse("ana@example.com"),
        amount=Money(50_00),
        merchant_name="Ana",
        merchant_city="SAO PAULO",
        created_at=T0,
        expires_in_seconds=3600,
        description="café",
        payer=ChargePayer(name="Bia", document="52998224725"),
    )


async def test_add_then_get_returns_the_charge_at_version_1(charges: ChargeRepository) -> None:
    stored = await charges.add(msgspec.structs.replace(charge(), version=7))
    assert stored == msgspec.structs.replace(charge(), version=1)
    assert await charges.get(TXID) == stored
    assert await charges.get_by_location("loc-1") == stored


async def test_unknown_charges_are_not_found(charges: ChargeRepository) -> None:
    with pytest.raises(ChargeNotFound):
        await charges.get(TXID)
    with pytest.raises(ChargeNotFound):
        await charges.get_by_location("loc-1")
    assert await charges.find(ANA, TXID) is None


async def test_a_txid_its_first_25_chars_or_a_location_is_taken_once(
    charges: ChargeRepository,
) -> None:
    await charges.add(charge())
    with pytest.raises(ChargeAlreadyExists):
        await charges.add(charge(location="loc-2"))  # same txid
    with pytest.raises(ChargeAlreadyExists):
        await charges.add(charge(TXID[:25] + "zzzzz", location="loc-3"))  # same static txid
    with pytest.raises(ChargeAlreadyExists):
        await charges.add(charge("another-txid-of-26-chars-0"))  # same location
    # a refused add leaves nothing behind
    for reference in ("loc-2", "loc-3"):
        with pytest.raises(ChargeNotFound):
            await charges.get_by_location(reference)
    with pytest.raises(ChargeNotFound):
        await charges.get("another-txid-of-26-chars-0")
    other = await charges.add(charge("another-txid-of-26-chars-0", location="loc-4"))
    assert await charges.get_by_location("loc-4") == other


async def test_find_by_txid_or_static_txid_only_in_the_owning_account(
    charges: ChargeRepository,
) -> None:
    stored = await charges.add(charge())
    assert await charges.find(ANA, TXID) == stored
    assert await charges.find(ANA, TXID[:25]) == stored
    assert await charges.find(BIA, TXID) is None
    assert await charges.find(BIA, TXID[:25]) is None
    assert await charges.find(ANA, TXID[:24]) is None
    assert await charges.find(ANA, "nothing") is None


async def test_update_is_optimistic(charges: ChargeRepository) -> None:
    stored = await charges.add(charge())
    done = await charges.update(stored.conclude("E1", T0), expected_version=1)
    assert (done.version, done.status, done.end_to_end_id) == (2, ChargeStatus.CONCLUIDA, "E1")
    with pytest.raises(PixVersionConflict):
        await charges.update(stored.remove(), expected_version=1)
    assert await charges.get(TXID) == done
    assert await charges.get_by_location("loc-1") == done
    assert await charges.find(ANA, TXID[:25]) == done
    with pytest.raises(ChargeNotFound):
        await charges.update(charge("missing-txid-of-26-chars-0"), expected_version=1)
