"""``DynamoPixPaymentRepository``: PIX payment records on DynamoDB (single table).

A record (``pk=PAY#<e2e>, sk=PAY``: the msgspec JSON of the
:class:`PixPayment` beside ``version`` and ``status``) is written with its
idempotency item and index items (GSI1 by account, GSI2 by settlement day)
in one transaction. ``add`` is conditional on ``attribute_not_exists(pk)``,
so a retry however late fails with ``PixPaymentAlreadyExists``; ``update``
is conditional on the version read and on the state machine (a final record
never goes back). Reads are strongly consistent; listings read the GSIs for
*which* records, then the records. Transaction conflicts are retried a few
times; driver errors become core errors in
:mod:`~finbank_adapters.aws.dynamo_errors`. Key builders:
:mod:`~finbank_adapters.aws.dynamo_schema`.

The layout and the guarantees in full: ``docs/pix-aws.md``, "The table" and "Writes".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Callable, Collection
from datetime import date, datetime
from typing import Any

import msgspec

from finbank_adapters import tracing
from finbank_adapters.aws.dynamo_errors import ConditionFailed, dynamo_errors
from finbank_adapters.aws.dynamo_ops import CONFLICT_RETRIES, n, s, transact_write
from finbank_adapters.aws.dynamo_schema import (
    GSI1,
    GSI1_PK,
    GSI1_SK,
    GSI2,
    GSI2_PK,
    GSI2_SK,
    PAYMENT_SK,
    PK,
    SK,
    account_key,
    day_key,
    idempotency_pk,
    idempotency_sk,
    payment_pk,
    sortable_time,
)
from finbank_core.pix.errors import (
    IllegalPixTransition,
    PixPaymentAlreadyExists,
    PixPaymentNotFound,
    PixVersionConflict,
)
from finbank_core.pix.payments import (
    SAO_PAULO,
    PaymentDirection,
    PaymentPage,
    PaymentStatus,
    PixPayment,
)
from finbank_core.shared.errors import InvalidInput, ServiceUnavailable

Item = dict[str, dict[str, Any]]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(PixPayment)
_BATCH_GET_MAX = 100
_MAX_LIMIT = 1000


def encode_payment(payment: PixPayment) -> str:
    return _encoder.encode(payment).decode()


def decode_payment(item: Item) -> PixPayment:
    """The record of a ``PAY`` item (DynamoDB JSON); raises ``msgspec`` errors if malformed."""
    return decode_payment_body(item["body"]["S"])


def decode_payment_body(body: str | bytes) -> PixPayment:
    """The record from its ``body`` attribute; raises ``msgspec`` errors if malformed."""
    return _decoder.decode(body)


class DynamoPixPaymentRepository:
    """The ``PixPaymentRepository`` port on one DynamoDB table (see the module docstring).

    ``client`` is an open aioboto3 ``dynamodb`` client; the table exists
    (:func:`~finbank_adapters.aws.dynamo_schema.create_tables`).
    """

    def __init__(self, client: Any, table_name: str, *, timezone: str = SAO_PAULO) -> None:
        self._client = client
        self._table = table_name
        self._timezone = timezone

    # -- writes ------------------------------------------------------------------------

    async def add(self, payment: PixPayment) -> PixPayment:
        stored = msgspec.structs.replace(payment, version=1)
        items: list[dict[str, Any]] = [
            self._put(self._record_item(stored), "attribute_not_exists(pk)")
        ]
        if stored.idempotency_key is not None and stored.payer.owner_id is not None:
            items.append(
                self._put(
                    {
                        PK: s(idempotency_pk(stored.payer.owner_id)),
                        SK: s(idempotency_sk(stored.idempotency_key)),
                        "e2e": s(stored.end_to_end_id),
                    },
                    "attribute_not_exists(pk)",
                )
            )
        # Index items are new too; the condition also keeps a cancelled add from writing.
        fresh = "attribute_not_exists(pk)"
        items.extend(self._put(i, fresh) for i in self._account_items(stored))
        items.extend(self._put(i, fresh) for i in self._day_items(stored))
        try:
            await transact_write(self._client, items)
        except ConditionFailed:
            raise PixPaymentAlreadyExists(
                "a payment with this id or idempotency key exists"
            ) from None
        return stored

    async def update(self, payment: PixPayment, expected_version: int) -> PixPayment:
        stored = msgspec.structs.replace(payment, version=expected_version + 1)
        record = self._put(
            self._record_item(stored),
            "attribute_exists(pk) AND version = :expected"
            " AND (#status = :new OR #status = :pending)",
            names={"#status": "status"},
            values={
                ":expected": n(expected_version),
                ":new": s(stored.status.value),
                ":pending": s(PaymentStatus.PENDING.value),
            },
        )
        record["Put"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        items = [record, *(self._put(i) for i in self._day_items(stored))]
        try:
            if len(items) == 1:  # no index item to add: a conditional put is enough (and cheaper)
                with dynamo_errors():
                    await self._client.put_item(**record["Put"])
            else:
                await transact_write(self._client, items)
        except ConditionFailed as failure:
            old = failure.old_item(0)
            if old is None:
                old = await self._get_item(payment.end_to_end_id)
            if old is None:
                raise PixPaymentNotFound() from None
            if int(old["version"]["N"]) != expected_version:
                raise PixVersionConflict() from None
            current = old["status"]["S"]
            if current in (stored.status.value, PaymentStatus.PENDING.value):
                # What we read would pass the condition: the record moved between the
                # write and the read (a store that applies writes out of turn, as moto's
                # threaded server does), not a forbidden transition. A conflict: the
                # caller reads again and retries, as after any concurrent update.
                raise PixVersionConflict() from None
            raise IllegalPixTransition(
                f"a payment cannot go from {current} to {stored.status.value}",
                current=current,
                target=stored.status.value,
            ) from None
        return stored

    # -- reads -------------------------------------------------------------------------

    async def get(self, end_to_end_id: str) -> PixPayment:
        item = await self._get_item(end_to_end_id)
        if item is None:
            raise PixPaymentNotFound()
        return decode_payment(item)

    async def get_by_idempotency_key(self, owner_id: str, key: str) -> PixPayment | None:
        with dynamo_errors():
            response = await self._client.get_item(
                TableName=self._table,
                Key={PK: s(idempotency_pk(owner_id)), SK: s(idempotency_sk(key))},
                ConsistentRead=True,
            )
        item = response.get("Item")
        if item is None:
            return None
        return await self.get(item["e2e"]["S"])

    async def list_by_account(
        self,
        account_id: uuid.UUID,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
        statuses: Collection[PaymentStatus] | None = None,
        direction: PaymentDirection | None = None,
    ) -> PaymentPage:
        # sk = "<created_at>#<e2e>": every sk of an instant t sorts after "<t>" alone,
        # so BETWEEN "<since>" AND "<until>" is since <= created_at < until.
        if since is not None and until is not None and since >= until:
            _check_limit(limit)
            return PaymentPage(items=[])  # DynamoDB refuses a BETWEEN whose ends are reversed
        partition = account_key(account_id)
        names = {"#pk": GSI1_PK, "#sk": GSI1_SK}
        values: dict[str, Any] = {":pk": s(partition)}
        condition = "#pk = :pk"
        if since is not None and until is not None:
            condition += " AND #sk BETWEEN :lo AND :hi"
            values[":lo"] = s(sortable_time(since))
            values[":hi"] = s(sortable_time(until))
        elif since is not None:
            condition += " AND #sk >= :lo"
            values[":lo"] = s(sortable_time(since))
        elif until is not None:
            condition += " AND #sk < :hi"
            values[":hi"] = s(sortable_time(until))
        else:
            names.pop("#sk")

        def keep(payment: PixPayment) -> bool:  # filters read the record, not the index item
            return (statuses is None or payment.status in statuses) and (
                direction is None or direction in payment.directions(account_id)
            )

        return await self._page(
            GSI1,
            GSI1_PK,
            partition,
            condition,
            names,
            values,
            limit,
            cursor,
            newest_first=True,
            keep=None if statuses is None and direction is None else keep,
        )

    async def list_by_settlement_day(
        self, day: date, *, limit: int = 100, cursor: str | None = None
    ) -> PaymentPage:
        partition = day_key(day)
        return await self._page(
            GSI2,
            GSI2_PK,
            partition,
            "#pk = :pk",
            {"#pk": GSI2_PK},
            {":pk": s(partition)},
            limit,
            cursor,
            newest_first=False,
        )

    # -- items -------------------------------------------------------------------------

    def _record_item(self, payment: PixPayment) -> Item:
        return {
            PK: s(payment_pk(payment.end_to_end_id)),
            SK: s(PAYMENT_SK),
            "entity": s("payment"),
            "e2e": s(payment.end_to_end_id),
            "version": n(payment.version),
            "status": s(payment.status.value),
            "flow": s(payment.flow.value),
            "body": s(encode_payment(payment)),
            # tracing on: the writer's trace context, read by the stream Lambda
            **{name: s(value) for name, value in tracing.current_headers().items()},
        }

    def _account_items(self, payment: PixPayment) -> list[Item]:
        created = f"{sortable_time(payment.created_at)}#{payment.end_to_end_id}"
        return [
            {
                PK: s(payment_pk(payment.end_to_end_id)),
                SK: s(account_key(account_id)),
                GSI1_PK: s(account_key(account_id)),
                GSI1_SK: s(created),
            }
            for account_id in dict.fromkeys(payment.account_ids())
        ]

    def _day_items(self, payment: PixPayment) -> list[Item]:
        if payment.status is not PaymentStatus.SETTLED or payment.settled_at is None:
            return []
        settled = f"{sortable_time(payment.settled_at)}#{payment.end_to_end_id}"
        return [
            {
                PK: s(payment_pk(payment.end_to_end_id)),
                SK: s(day_key(day)),
                GSI2_PK: s(day_key(day)),
                GSI2_SK: s(settled),
            }
            for day in sorted(payment.settlement_days(self._timezone))
        ]

    def _put(
        self,
        item: Item,
        condition: str | None = None,
        *,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self._table, "Item": item}
        if condition is not None:
            put["ConditionExpression"] = condition
        if names:
            put["ExpressionAttributeNames"] = names
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    # -- plumbing ----------------------------------------------------------------------

    async def _get_item(self, end_to_end_id: str) -> Item | None:
        with dynamo_errors():
            response = await self._client.get_item(
                TableName=self._table,
                Key={PK: s(payment_pk(end_to_end_id)), SK: s(PAYMENT_SK)},
                ConsistentRead=True,
            )
        item: Item | None = response.get("Item")
        return item

    async def _page(
        self,
        index: str,
        partition_attribute: str,
        partition: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
        limit: int,
        cursor: str | None,
        *,
        newest_first: bool,
        keep: Callable[[PixPayment], bool] | None = None,
    ) -> PaymentPage:
        """One page of an index, records fetched after it; ``keep`` drops records after the fetch.

        With ``keep``, index pages are read until ``limit + 1`` records pass
        it or the index ends, and the cursor is the index key of the last
        record returned, so the next page starts right after it.
        """
        _check_limit(limit)
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
        }
        if cursor:
            query["ExclusiveStartKey"] = _decode_cursor(cursor, partition_attribute, partition)
        # One more than asked tells whether a next page exists without an empty last page.
        found: list[tuple[Item, PixPayment]] = []
        while len(found) <= limit:
            wanted = limit + 1 - len(found)
            # a filter drops some records: read ahead (the cursor still follows what is returned)
            query["Limit"] = wanted if keep is None else min(_MAX_LIMIT, 2 * wanted + 10)
            with dynamo_errors():
                response = await self._client.query(**query)
            keys: list[Item] = response.get("Items", [])
            records = await self._batch_get([k[PK]["S"] for k in keys])
            found.extend(
                (k, records[k[PK]["S"]])
                for k in keys
                if k[PK]["S"] in records and (keep is None or keep(records[k[PK]["S"]]))
            )
            last = response.get("LastEvaluatedKey")
            if last is None:
                break
            query["ExclusiveStartKey"] = last
        more = len(found) > limit
        found = found[:limit]
        next_cursor = _encode_cursor(found[-1][0]) if more and found else None
        return PaymentPage(items=[record for _, record in found], next_cursor=next_cursor)

    async def _batch_get(self, partitions: list[str]) -> dict[str, PixPayment]:
        """Records by pk, strongly consistent; retries unprocessed keys."""
        found: dict[str, PixPayment] = {}
        unique = list(dict.fromkeys(partitions))
        for start in range(0, len(unique), _BATCH_GET_MAX):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [
                        {PK: s(p), SK: s(PAYMENT_SK)}
                        for p in unique[start : start + _BATCH_GET_MAX]
                    ],
                    "ConsistentRead": True,
                }
            }
            attempt = 0
            while request:
                with dynamo_errors():
                    response = await self._client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    found[item[PK]["S"]] = decode_payment(item)
                request = response.get("UnprocessedKeys") or {}
                if request:
                    attempt += 1
                    if attempt > CONFLICT_RETRIES:
                        raise ServiceUnavailable("the payment store is busy; retry later")
                    await asyncio.sleep(0.01 * 2**attempt)
        return found


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= _MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {_MAX_LIMIT}", field="limit")


def _encode_cursor(key: Item) -> str:
    plain = {name: value["S"] for name, value in key.items()}
    return base64.urlsafe_b64encode(msgspec.json.encode(plain)).decode()


def _decode_cursor(cursor: str, partition_attribute: str, partition: str) -> Item:
    """The ``ExclusiveStartKey`` a cursor stands for; only a cursor of the same listing."""
    try:
        plain = msgspec.json.decode(base64.urlsafe_b64decode(cursor.encode()), type=dict[str, str])
    except (msgspec.DecodeError, msgspec.ValidationError, binascii.Error, ValueError):
        raise InvalidInput("invalid cursor", field="cursor") from None
    if plain.get(partition_attribute) != partition:
        raise InvalidInput("invalid cursor", field="cursor")
    return {name: s(value) for name, value in plain.items()}
