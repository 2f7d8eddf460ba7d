"""The ``KeyDirectory`` contract, run against every adapter of it.

A backend joins by adding its name to ``KEY_DIRECTORY_BACKENDS`` and a branch
to the ``directory`` fixture (DynamoDB: moto server, a table per test).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from finbank_adapters.aws.dynamo_pix_directory import DynamoKeyDirectory
from finbank_adapters.memory.pix import InMemoryKeyDirectory
from finbank_adapters.postgres.pix_directory import PostgresKeyDirectory
from finbank_core.accounts.model import AccountKind, HolderType
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.directory import NewKeyRegistration
from finbank_core.pix.errors import PixKeyAlreadyRegistered, PixKeyLimitReached, PixKeyNotFound
from finbank_core.pix.ports import KeyDirectory
from tests.integration.aws_fixtures import aws_endpoint
from tests.integration.dynamo_support import dynamodb_client, new_table
from tests.postgres_support import isolated_schema

__all__ = ["aws_endpoint"]  # fixture
KEY_DIRECTORY_BACKENDS = ["memory", "dynamodb", "postgres"]
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


@pytest.fixture(params=KEY_DIRECTORY_BACKENDS)
async def directory(request: pytest.FixtureRequest) -> AsyncIterator[KeyDirectory]:
    if request.param == "memory":
        yield InMemoryKeyDirectory(random.Random(3))
    elif request.param == "dynamodb":  # moto server, a table of its own per test
        endpoint: str = request.getfixturevalue("aws_endpoint")
        async with dynamodb_client(endpoint) as client, new_table(client) as table:
            yield DynamoKeyDirectory(client, table)
    elif request.param == "postgres":  # a migrated schema of its own per test
        async with isolated_schema(request.getfixturevalue("postgres_dsn")) as (pool, _):
            yield PostgresKeyDirectory(pool)
    else:  # pragma: no cover - each backend adds its branch
        raise AssertionError(request.param)


def new(
    key: PixKey | None,
    *,
    account_id: uuid.UUID | None = None,
    owner_id: str = "ana",
    number: str = "100000-1",
    at: datetime = T0,
) -> NewKeyRegistration:
    return NewKeyRegistration(
        id=uuid.uuid4(),
        key_type=key.type if key else PixKeyType.EVP,
        key=key,
        ispb="99999999",
        branch="0001",
        account_number=number,
        account_kind=AccountKind.PAYMENT,
        holder_type=HolderType.INDIVIDUAL,
        holder_name="Ana Souza",
        holder_document="52998224725",
        created_at=at,
        account_id=account_id or uuid.uuid5(uuid.NAMESPACE_OID, number),
        owner_id=owner_id,
    )


async def test_registered_key_is_looked_up_with_the_document_masked(
    directory: KeyDirectory,
) -> None:
    key = PixKey.parse("ana@example.com")
    stored = await directory.register(new(key), max_keys_per_account=5)
    entry = await directory.lookup(key)
    assert entry.owner_name == "Ana Souza"
    assert entry.owner_document_masked == "***.982.247-**"
    assert "52998224725" not in repr(entry)
    assert (entry.ispb, entry.branch, entry.account_number) == ("99999999", "0001", "100000-1")
    assert (await directory.get(key)).holder_document == "52998224725"
    assert stored.key == key


async def test_evp_is_issued_by_the_directory_as_a_lowercase_uuid(directory: KeyDirectory) -> None:
    first = await directory.register(new(None), max_keys_per_account=5)
    second = await directory.register(new(None), max_keys_per_account=5)
    assert first.key.type is PixKeyType.EVP
    assert PixKey.parse(first.key.value, PixKeyType.EVP) == first.key
    assert first.key != second.key
    assert (await directory.lookup(first.key)).account_number == "100000-1"


async def test_a_key_belongs_to_one_account(directory: KeyDirectory) -> None:
    key = PixKey.parse("+5511987654321")
    await directory.register(new(key), max_keys_per_account=5)
    with pytest.raises(PixKeyAlreadyRegistered) as same:
        await directory.register(new(key), max_keys_per_account=5)
    with pytest.raises(PixKeyAlreadyRegistered):
        await directory.register(
            new(key, number="200000-2", owner_id="bia"), max_keys_per_account=5
        )
    assert same.value.code == "pix_key_already_registered"
    assert "987654321" not in str(same.value)


async def test_an_account_holds_at_most_its_limit_of_keys(directory: KeyDirectory) -> None:
    for _ in range(5):
        await directory.register(new(None), max_keys_per_account=5)
    with pytest.raises(PixKeyLimitReached):
        await directory.register(new(None), max_keys_per_account=5)
    # another account is not affected
    await directory.register(new(None, number="300000-3"), max_keys_per_account=5)
    assert len(await directory.list_by_account(uuid.uuid5(uuid.NAMESPACE_OID, "100000-1"))) == 5


async def test_only_the_owner_deletes_a_key_and_then_it_is_gone(directory: KeyDirectory) -> None:
    key = PixKey.parse("ana@example.com")
    stored = await directory.register(new(key), max_keys_per_account=5)
    with pytest.raises(PixKeyNotFound):
        await directory.delete(stored.id, "mallory")
    assert (await directory.lookup(key)).owner_name == "Ana Souza"
    removed = await directory.delete(stored.id, "ana")
    assert removed.key == key
    with pytest.raises(PixKeyNotFound):
        await directory.lookup(key)
    with pytest.raises(PixKeyNotFound):
        await directory.delete(stored.id, "ana")
    # a deleted key may be registered again, and frees its slot
    await directory.register(new(key, number="200000-2", owner_id="bia"), max_keys_per_account=1)


async def test_unknown_key_is_not_found(directory: KeyDirectory) -> None:
    with pytest.raises(PixKeyNotFound):
        await directory.lookup(PixKey.parse("nobody@example.com"))


async def test_keys_of_an_account_are_listed_oldest_first(directory: KeyDirectory) -> None:
    later = await directory.register(
        new(None, at=T0 + timedelta(minutes=1)), max_keys_per_account=5
    )
    earlier = await directory.register(new(None, at=T0), max_keys_per_account=5)
    listed = await directory.list_by_account(uuid.uuid5(uuid.NAMESPACE_OID, "100000-1"))
    assert [k.id for k in listed] == [earlier.id, later.id]


async def test_a_taken_key_is_reported_as_taken_even_on_a_full_account(
    directory: KeyDirectory,
) -> None:
    key = PixKey.parse("ana@example.com")
    await directory.register(new(key, number="200000-2", owner_id="bia"), max_keys_per_account=5)
    await directory.register(new(None), max_keys_per_account=1)
    with pytest.raises(PixKeyAlreadyRegistered):
        await directory.register(new(key), max_keys_per_account=1)
    with pytest.raises(PixKeyLimitReached):
        await directory.register(new(None), max_keys_per_account=1)
