"""The ``AccountLimitsStore`` and ``DeviceRegistry`` contracts, run against every adapter.

A backend joins by adding its name to ``LIMITS_AND_DEVICES_BACKENDS`` and a
branch to the ``stores`` fixture (DynamoDB: moto server, a table per test).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from finbank_adapters.aws.dynamo_pix_records import DynamoAccountLimitsStore, DynamoDeviceRegistry
from finbank_adapters.memory.pix import InMemoryAccountLimitsStore, InMemoryDeviceRegistry
from finbank_adapters.postgres.pix_records import (
    PostgresAccountLimitsStore,
    PostgresDeviceRegistry,
)
from finbank_core.pix.limits import AccountLimits, PendingRaise, TierLimits
from finbank_core.pix.ports import AccountLimitsStore, DeviceRegistry
from tests.integration.aws_fixtures import aws_endpoint
from tests.integration.dynamo_support import dynamodb_client, new_table
from tests.postgres_support import isolated_schema

__all__ = ["aws_endpoint"]  # fixture
LIMITS_AND_DEVICES_BACKENDS = ["memory", "dynamodb", "postgres"]
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


@dataclass
class Stores:
    limits: AccountLimitsStore
    devices: DeviceRegistry


@pytest.fixture(params=LIMITS_AND_DEVICES_BACKENDS)
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    if request.param == "memory":
        yield Stores(InMemoryAccountLimitsStore(), InMemoryDeviceRegistry())
    elif request.param == "dynamodb":  # moto server, a table of its own per test
        endpoint: str = request.getfixturevalue("aws_endpoint")
        async with dynamodb_client(endpoint) as client, new_table(client) as table:
            yield Stores(
                DynamoAccountLimitsStore(client, table), DynamoDeviceRegistry(client, table)
            )
    elif request.param == "postgres":  # a migrated schema of its own per test
        async with isolated_schema(request.getfixturevalue("postgres_dsn")) as (pool, _):
            yield Stores(PostgresAccountLimitsStore(pool), PostgresDeviceRegistry(pool))
    else:  # pragma: no cover - each backend adds its branch
        raise AssertionError(request.param)


def tier(amount: int) -> TierLimits:
    return TierLimits(
        day_per_transaction=amount,
        day_per_period=amount * 2,
        night_per_transaction=amount // 10,
        night_per_period=amount // 5,
    )


async def test_limits_are_none_until_put_and_the_last_put_wins(stores: Stores) -> None:
    account, other = uuid.uuid4(), uuid.uuid4()
    assert await stores.limits.get(account) is None
    first = AccountLimits(account_id=account, late_night=True)
    await stores.limits.put(first)
    assert await stores.limits.get(account) == first
    second = AccountLimits(
        account_id=account,
        limits=tier(5_000_00),
        pending_raise=PendingRaise(limits=tier(9_000_00), requested_at=T0),
    )
    await stores.limits.put(second)
    assert await stores.limits.get(account) == second
    assert await stores.limits.get(other) is None


async def test_a_device_keeps_its_first_use(stores: Stores) -> None:
    assert await stores.devices.first_seen("ana", "phone") is None
    await stores.devices.record_use("ana", "phone", T0)
    await stores.devices.record_use("ana", "phone", T0 + timedelta(days=3))
    await stores.devices.record_use("ana", "phone", T0 - timedelta(days=3))
    assert await stores.devices.first_seen("ana", "phone") == T0
    # devices are per owner
    assert await stores.devices.first_seen("bia", "phone") is None
    assert await stores.devices.first_seen("ana", "tablet") is None


async def test_first_seen_keeps_the_instant_and_its_offset(stores: Stores) -> None:
    local = datetime(2026, 1, 5, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-3)))
    await stores.devices.record_use("ana", "phone", local)
    seen = await stores.devices.first_seen("ana", "phone")
    assert seen == local
    assert seen is not None
    assert seen.utcoffset() == timedelta(hours=-3)


async def test_concurrent_first_uses_leave_one_of_them(stores: Stores) -> None:
    moments = [T0 + timedelta(seconds=n) for n in range(10)]
    await asyncio.gather(*(stores.devices.record_use("ana", "phone", at) for at in moments))
    assert await stores.devices.first_seen("ana", "phone") in moments
