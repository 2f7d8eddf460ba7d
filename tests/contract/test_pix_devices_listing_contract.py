"""Listing a customer's devices (``DeviceListing``), on every ``DeviceRegistry`` adapter,
and the use case that shows whether each is still capped as new."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest

from finbank_adapters.aws.dynamo_pix_records import DynamoDeviceRegistry
from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.pix import InMemoryDeviceRegistry
from finbank_adapters.postgres.pix_records import PostgresDeviceRegistry
from finbank_core.pix.limits import LimitPolicy
from finbank_core.pix.use_cases.devices import ListPixDevices, ListPixDevicesQuery
from tests.integration.aws_fixtures import aws_endpoint
from tests.integration.dynamo_support import dynamodb_client, new_table
from tests.postgres_support import isolated_schema

__all__ = ["aws_endpoint"]  # fixture
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


class Registry(Protocol):
    async def record_use(self, owner_id: str, device_id: str, at: datetime) -> None: ...

    async def list_by_owner(self, owner_id: str) -> list[tuple[str, datetime]]: ...


@pytest.fixture(params=["memory", "postgres", "dynamodb"])
async def registry(request: pytest.FixtureRequest) -> AsyncIterator[Registry]:
    if request.param == "memory":
        yield InMemoryDeviceRegistry()
    elif request.param == "postgres":
        async with isolated_schema(request.getfixturevalue("postgres_dsn")) as (pool, _):
            yield PostgresDeviceRegistry(pool)
    else:
        endpoint: str = request.getfixturevalue("aws_endpoint")
        async with dynamodb_client(endpoint) as client, new_table(client) as table:
            yield DynamoDeviceRegistry(client, table)


async def test_a_customers_devices_are_listed_with_their_first_use(registry: Registry) -> None:
    await registry.record_use("ana", "phone", T0)
    await registry.record_use("ana", "phone", T0 + timedelta(days=3))  # the first use stays
    await registry.record_use("ana", "tablet", T0 + timedelta(hours=1))
    await registry.record_use("bia", "laptop", T0)
    assert sorted(await registry.list_by_owner("ana")) == [
        ("phone", T0),
        ("tablet", T0 + timedelta(hours=1)),
    ]
    assert await registry.list_by_owner("carla") == []


async def test_concurrent_first_uses_keep_one_record_per_device(registry: Registry) -> None:
    await asyncio.gather(
        *(registry.record_use("ana", "phone", T0 + timedelta(seconds=i)) for i in range(10))
    )
    listed = await registry.list_by_owner("ana")
    assert len(listed) == 1
    assert listed[0][0] == "phone"


async def test_devices_show_the_new_device_period_edges(registry: Registry) -> None:
    await registry.record_use("ana", "phone", T0)
    clock = FakeClock(T0 + timedelta(hours=24) - timedelta(microseconds=1))
    use_case = ListPixDevices(devices=registry, policy=LimitPolicy(), clock=clock)
    [device] = await use_case(ListPixDevicesQuery(owner_id="ana"))
    assert device.new_device
    assert device.trusted_from == T0 + timedelta(hours=24)
    clock.set(T0 + timedelta(hours=24))  # exactly at the end of the period: trusted
    [device] = await use_case(ListPixDevicesQuery(owner_id="ana"))
    assert not device.new_device
