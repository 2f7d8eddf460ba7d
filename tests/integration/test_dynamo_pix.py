"""DynamoDB-specific guarantees of the PIX record store, on moto server.

The behaviour both backends share is in tests/contract/test_pix_repository_contract.py
(and test_key_directory_contract.py); here: retries that never duplicate, final
states that stay final, refund days indexed, table bootstrap, error translation,
the key directory's limit and uniqueness under concurrent registrations,
and one winner among concurrent writes of a charge.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest

from finbank_adapters.aws.dynamo import DynamoPixPaymentRepository
from finbank_adapters.aws.dynamo_pix_directory import DynamoKeyDirectory
from finbank_adapters.aws.dynamo_pix_records import DynamoChargeRepository
from finbank_adapters.aws.dynamo_schema import (
    PAYMENT_SK,
    create_tables,
    key_account_pk,
    payment_pk,
)
from finbank_adapters.memory.pix import InMemoryPixPaymentRepository
from finbank_core.pix.codes.keys import PixKey
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.directory import KeyRegistration
from finbank_core.pix.errors import (
    ChargeAlreadyExists,
    IllegalPixTransition,
    PixKeyAlreadyRegistered,
    PixKeyLimitReached,
    PixPaymentAlreadyExists,
    PixPaymentNotFound,
    PixVersionConflict,
)
from finbank_core.pix.payments import PaymentStatus, PixFlow, PixPayment
from finbank_core.pix.ports import PixPaymentRepository
from finbank_core.pix.refunds import PixRefund, RefundNature, RefundStatus
from finbank_core.shared.errors import InvalidInput, ServiceUnavailable
from finbank_core.shared.money import Money
from tests.contract.test_charge_repository_contract import charge
from tests.contract.test_key_directory_contract import new
from tests.contract.test_pix_repository_contract import T0, payment
from tests.integration.aws_fixtures import aws_endpoint
from tests.integration.dynamo_support import (
    dynamodb_client,
    new_table,
    serial_moto_endpoint,
    table_name,
)

pytestmark = pytest.mark.services
__all__ = ["aws_endpoint", "serial_moto_endpoint"]  # fixtures

RETRIES = 1_000


@pytest.fixture
async def client(aws_endpoint: str) -> AsyncIterator[Any]:
    async with dynamodb_client(aws_endpoint) as client:
        yield client


@pytest.fixture
async def dynamo(client: Any) -> AsyncIterator[DynamoPixPaymentRepository]:
    async with new_table(client) as table:
        yield DynamoPixPaymentRepository(client, table)


async def stored_items(client: Any, table: str, e2e: str) -> list[dict[str, Any]]:
    response = await client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": payment_pk(e2e)}},
        ConsistentRead=True,
    )
    items: list[dict[str, Any]] = response["Items"]
    return items


@pytest.mark.slow
async def test_a_thousand_concurrent_retries_of_one_write_store_one_record(
    serial_moto_endpoint: str,
) -> None:
    original = payment(1, key="k1")
    async with (
        dynamodb_client(serial_moto_endpoint, max_pool_connections=50) as client,
        new_table(client) as table,
    ):
        repository = DynamoPixPaymentRepository(client, table)

        async def attempt() -> bool:
            try:
                await repository.add(original)
            except PixPaymentAlreadyExists:
                return False
            return True

        outcomes = await asyncio.gather(*(attempt() for _ in range(RETRIES)))
        assert outcomes.count(True) == 1
        items = await stored_items(client, table, original.end_to_end_id)
        assert [i["sk"] for i in items].count({"S": PAYMENT_SK}) == 1
        stored = await repository.get(original.end_to_end_id)
        assert stored == msgspec.structs.replace(original, version=1)


@pytest.mark.slow
async def test_late_sequential_retries_never_overwrite_a_record_that_moved_on(
    dynamo: DynamoPixPaymentRepository, client: Any
) -> None:
    # No ClientRequestToken is involved: a retry an hour, a day or a year later meets
    # the same attribute_not_exists(pk) condition as one a millisecond later.
    original = payment(2, key="k2")
    first = await dynamo.add(original)
    settled = await dynamo.update(first.settle(T0), expected_version=1)
    refused = 0
    for _ in range(RETRIES):
        try:
            await dynamo.add(original)
        except PixPaymentAlreadyExists:
            refused += 1
    assert refused == RETRIES
    assert await dynamo.get(original.end_to_end_id) == settled
    assert (await dynamo.get_by_idempotency_key(f"owner-{original.payer.account_id}", "k2")) == (
        settled
    )


async def test_a_settled_record_never_goes_back_to_pending_even_with_the_right_version(
    dynamo: DynamoPixPaymentRepository,
) -> None:
    pending = await dynamo.add(payment(3))
    settled = await dynamo.update(pending.settle(T0), expected_version=1)
    with pytest.raises(IllegalPixTransition):
        await dynamo.update(pending, expected_version=settled.version)
    with pytest.raises(IllegalPixTransition):
        await dynamo.update(pending.reject(IsoReason.AB03, T0), expected_version=settled.version)
    with pytest.raises(PixVersionConflict):
        await dynamo.update(pending, expected_version=1)
    assert await dynamo.get(pending.end_to_end_id) == settled


async def test_updates_of_a_missing_record_are_not_found(
    dynamo: DynamoPixPaymentRepository,
) -> None:
    with pytest.raises(PixPaymentNotFound):
        await dynamo.update(payment(4), expected_version=1)


def received(n: int, settled_at: datetime) -> PixPayment:
    base = payment(n)
    return msgspec.structs.replace(
        base,
        flow=PixFlow.INCOMING,
        status=PaymentStatus.SETTLED,
        payer=base.payee,
        payee=base.payer,
        created_at=settled_at,
        settled_at=settled_at,
    )


@pytest.mark.parametrize("backend", ["memory", "dynamodb"])
async def test_a_record_is_listed_on_its_settlement_day_and_on_each_refund_day(
    backend: str, dynamo: DynamoPixPaymentRepository
) -> None:
    repository: PixPaymentRepository = (
        dynamo if backend == "dynamodb" else InMemoryPixPaymentRepository()
    )
    day5 = datetime(2026, 1, 5, 15, tzinfo=UTC)
    stored = await repository.add(received(5, day5))  # born SETTLED (incoming)
    refund = PixRefund(
        return_id="D99999999202601071200000000000R1",
        client_refund_id="r1",
        amount=Money(1_00),
        nature=RefundNature.ORIGINAL,
        status=RefundStatus.EM_PROCESSAMENTO,
        requested_at=day5 + timedelta(days=2),
        request_fingerprint="fp",
    )
    with_refund = await repository.update(stored.add_refund(refund), stored.version)
    done = refund.complete(day5 + timedelta(days=2))
    await repository.update(with_refund.replace_refund(done), with_refund.version)

    async def listed(day: date) -> list[str]:
        page = await repository.list_by_settlement_day(day)
        return [p.end_to_end_id for p in page.items]

    e2e = stored.end_to_end_id
    assert await listed(date(2026, 1, 5)) == [e2e]
    assert await listed(date(2026, 1, 6)) == []
    assert await listed(date(2026, 1, 7)) == [e2e]
    [latest] = (await repository.list_by_settlement_day(date(2026, 1, 7))).items
    assert latest.refunds[0].status is RefundStatus.DEVOLVIDO  # the current version


async def test_the_record_body_is_msgspec_json_with_integer_centavos(
    dynamo: DynamoPixPaymentRepository, client: Any
) -> None:
    stored = await dynamo.add(payment(6))
    table = dynamo._table
    [record] = [
        i
        for i in await stored_items(client, table, stored.end_to_end_id)
        if i["sk"] == {"S": PAYMENT_SK}
    ]
    body = json.loads(record["body"]["S"])
    assert body["amount"] == {"cents": 10_06}
    assert record["version"] == {"N": "1"}
    assert record["status"] == {"S": "PENDING"}


async def test_a_cursor_of_another_listing_is_invalid_input(
    dynamo: DynamoPixPaymentRepository,
) -> None:
    for n in range(3):
        await dynamo.add(payment(n, at=T0 + timedelta(minutes=n)))
    account = payment(0).payer.account_id
    assert account is not None
    page = await dynamo.list_by_account(account, limit=1)
    assert page.next_cursor is not None
    with pytest.raises(InvalidInput):
        await dynamo.list_by_settlement_day(date(2026, 1, 5), cursor=page.next_cursor)
    with pytest.raises(InvalidInput):
        await dynamo.list_by_account(account, cursor="not-a-cursor")


async def test_create_tables_is_idempotent_and_sets_up_indexes_and_the_stream(
    client: Any,
) -> None:
    name = table_name()
    assert await create_tables(client, name) is True
    assert await create_tables(client, name) is False
    table = (await client.describe_table(TableName=name))["Table"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"gsi1", "gsi2"}
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    await client.delete_table(TableName=name)


async def test_a_missing_table_or_an_unreachable_endpoint_is_service_unavailable(
    client: Any,
) -> None:
    with pytest.raises(ServiceUnavailable):
        await DynamoPixPaymentRepository(client, "no-such-table").get("E1")
    async with dynamodb_client(
        "http://127.0.0.1:9", retries={"max_attempts": 1}, connect_timeout=1
    ) as unreachable:
        with pytest.raises(ServiceUnavailable):
            await DynamoPixPaymentRepository(unreachable, "t").add(payment(7))


async def test_an_empty_creation_window_lists_nothing(dynamo: DynamoPixPaymentRepository) -> None:
    await dynamo.add(payment(8))
    account = payment(8).payer.account_id
    assert account is not None
    page = await dynamo.list_by_account(account, since=T0 + timedelta(hours=1), until=T0)
    assert page.items == []
    assert (await dynamo.list_by_account(account, since=T0, until=T0 + timedelta(hours=1))).items


# -- the key directory ---------------------------------------------------------------------


async def _outcome(call: Awaitable[object]) -> str:
    try:
        await call
    except PixKeyAlreadyRegistered:
        return "taken"
    except PixKeyLimitReached:
        return "limit"
    return "ok"


@pytest.mark.slow
async def test_concurrent_registrations_on_one_account_never_exceed_its_limit(
    serial_moto_endpoint: str,
) -> None:
    async with (
        dynamodb_client(serial_moto_endpoint, max_pool_connections=30) as client,
        new_table(client) as table,
    ):
        directory = DynamoKeyDirectory(client, table)
        outcomes = await asyncio.gather(
            *(_outcome(directory.register(new(None), max_keys_per_account=5)) for _ in range(30))
        )
        assert (outcomes.count("ok"), outcomes.count("limit")) == (5, 25)
        account = uuid.uuid5(uuid.NAMESPACE_OID, "100000-1")
        assert len(await directory.list_by_account(account)) == 5
        counter = await client.get_item(
            TableName=table,
            Key={"pk": {"S": key_account_pk(account, "", "", "")}, "sk": {"S": "COUNT"}},
            ConsistentRead=True,
        )
        assert counter["Item"]["keys"] == {"N": "5"}


@pytest.mark.slow
async def test_one_key_registered_concurrently_from_two_accounts_ends_on_exactly_one(
    serial_moto_endpoint: str,
) -> None:
    async with (
        dynamodb_client(serial_moto_endpoint, max_pool_connections=20) as client,
        new_table(client) as table,
    ):
        directory = DynamoKeyDirectory(client, table)
        for n in range(10):
            key = PixKey.parse(f"race{n}@example.com")
            ana = new(key)
            bia = new(key, number="200000-2", owner_id="bia")
            outcomes = await asyncio.gather(
                *(
                    _outcome(directory.register(r, max_keys_per_account=20))
                    for r in (ana, bia, ana, bia)
                )
            )
            assert outcomes.count("ok") == 1
            assert outcomes.count("taken") == 3
            holder = await directory.get(key)
            assert holder.account_number in ("100000-1", "200000-2")
            listed = [
                k
                for number in ("100000-1", "200000-2")
                for k in await directory.list_by_account(uuid.uuid5(uuid.NAMESPACE_OID, number))
                if k.key == key
            ]
            assert [k.id for k in listed] == [holder.id]


async def test_seed_keys_are_written_once_whichever_process_comes_first(client: Any) -> None:
    peer = KeyRegistration.of(
        new(PixKey.parse("peer@example.com"), number="555-5", owner_id="x"),
        PixKey.parse("peer@example.com"),
    )
    peer = msgspec.structs.replace(peer, account_id=None, owner_id=None)
    async with new_table(client) as table:
        first = DynamoKeyDirectory(client, table, seed=[peer])
        second = DynamoKeyDirectory(client, table, seed=[peer])
        assert await first.get(peer.key) == peer
        assert await second.get(peer.key) == peer
        with pytest.raises(PixKeyAlreadyRegistered):
            await first.register(new(peer.key), max_keys_per_account=5)


async def test_the_directory_translates_driver_errors(client: Any) -> None:
    with pytest.raises(ServiceUnavailable):
        await DynamoKeyDirectory(client, "no-such-table").get(PixKey.parse("a@example.com"))
    async with dynamodb_client(
        "http://127.0.0.1:9", retries={"max_attempts": 1}, connect_timeout=1
    ) as unreachable:
        with pytest.raises(ServiceUnavailable):
            await DynamoKeyDirectory(unreachable, "t").register(new(None), max_keys_per_account=5)


# -- charges -------------------------------------------------------------------------------


@pytest.mark.slow
async def test_concurrent_adds_and_updates_of_one_charge_have_one_winner(
    serial_moto_endpoint: str,
) -> None:
    async with (
        dynamodb_client(serial_moto_endpoint, max_pool_connections=20) as client,
        new_table(client) as table,
    ):
        http, worker = DynamoChargeRepository(client, table), DynamoChargeRepository(client, table)

        async def add() -> bool:
            try:
                await http.add(charge())
            except ChargeAlreadyExists:
                return False
            return True

        assert (await asyncio.gather(*(add() for _ in range(20)))).count(True) == 1
        stored = await worker.get(charge().txid)  # another process sees it

        async def conclude(n: int) -> bool:
            try:
                await worker.update(stored.conclude(f"E{n}", T0), expected_version=1)
            except PixVersionConflict:
                return False
            return True

        assert (await asyncio.gather(*(conclude(n) for n in range(20)))).count(True) == 1
        assert (await http.get(stored.txid)).version == 2
