"""Charges, account limits and devices on the PIX table (``pix_backend=dynamodb``).

Items (base-table keys only, no index; key builders in
:mod:`~finbank_adapters.aws.dynamo_schema`):

* **charge** ``pk=CHARGE#<txid>, sk=CHARGE``: ``body`` (msgspec JSON of the
  :class:`Charge`, amounts in integer centavos), ``version`` (N),
  ``status``, ``account_id``.
* **static txid item** ``pk=CHARGESTATIC#<first 25 chars>, sk=STATIC`` and
  **location item** ``pk=CHARGELOC#<location id>, sk=LOCATION``: ``txid``,
  the charge they name.
* **limits** ``pk=LIMITS#<account id>, sk=LIMITS``: ``body`` (msgspec JSON
  of :class:`AccountLimits`).
* **limit usage** ``pk=LIMITUSE#<id>``: a counter per period
  ``sk=USED#<period>`` (``used``, N, centavos) kept under that id (the
  hold's account, or the counter's scope: a new device's day, shared by the
  owner's accounts), and under the account a hold per payment
  ``sk=HOLD#<EndToEndId>`` (``body``: msgspec JSON of the :class:`UsageHold`);
  under each scope of a hold other than its account, a copy of the hold
  ``sk=HOLD#<account id>#<EndToEndId>`` (for ``usage_holds`` of the scope);
  all with ``expires_at`` (TTL) some days after their period.
* **device** ``pk=DEVICE#<owner id>, sk=DEVICE#<device id>``:
  ``first_seen`` (ISO 8601, with the offset it was given).

Guarantees:

* ``DynamoChargeRepository.add`` puts the three charge items in one
  ``TransactWriteItems``, each on ``attribute_not_exists(pk)``: a txid, a
  static txid or a location is taken once (``ChargeAlreadyExists``).
* ``update`` puts the charge on ``attribute_exists(pk) AND version =
  :expected`` (``PixVersionConflict``; ``ChargeNotFound`` if missing). The
  txid, static txid and location of a charge never change, so the pointer
  items are never rewritten.
* ``reserve_usage`` / ``release_usage``: see :class:`DynamoAccountLimitsStore`.
* ``record_use`` is ``SET first_seen = if_not_exists(first_seen, :at)``: the
  first use stays, whoever calls later or concurrently.

Reads are strongly consistent. Driver errors become core errors in
:mod:`~finbank_adapters.aws.dynamo_errors`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from finbank_adapters.aws.dynamo_errors import ConditionFailed, dynamo_errors
from finbank_adapters.aws.dynamo_ops import Item, get_item, key_of, n, s, transact_write
from finbank_adapters.aws.dynamo_schema import (
    CHARGE_LOCATION_SK,
    CHARGE_SK,
    CHARGE_STATIC_SK,
    LIMIT_HOLD_PREFIX,
    LIMITS_SK,
    PK,
    SK,
    TTL_ATTRIBUTE,
    charge_location_pk,
    charge_pk,
    charge_static_pk,
    device_pk,
    device_sk,
    limit_counter_sk,
    limit_hold_sk,
    limit_usage_pk,
    limits_pk,
)
from finbank_core.pix.charges import Charge
from finbank_core.pix.errors import ChargeAlreadyExists, ChargeNotFound, PixVersionConflict
from finbank_core.pix.limits import AccountLimits, ReserveOutcome, UsageHold, UsageReservation
from finbank_core.shared.errors import ServiceUnavailable

_encoder = msgspec.json.Encoder()
_charge_decoder = msgspec.json.Decoder(Charge)
_limits_decoder = msgspec.json.Decoder(AccountLimits)
_hold_decoder = msgspec.json.Decoder(UsageHold)
_FRESH = "attribute_not_exists(pk)"
#: tries of an ``update`` that others' writes keep overtaking (each try, one of them wins)
LIMITS_UPDATE_ATTEMPTS = 100


class DynamoChargeRepository:
    """The ``ChargeRepository`` port on the PIX table (see the module docstring)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    async def add(self, charge: Charge) -> Charge:
        stored = msgspec.structs.replace(charge, version=1)
        pointers = [
            (charge_static_pk(stored.static_txid), CHARGE_STATIC_SK),
            (charge_location_pk(stored.location_id), CHARGE_LOCATION_SK),
        ]
        items = [
            self._put(self._charge_item(stored), _FRESH),
            *(
                self._put({PK: s(pk), SK: s(sk), "txid": s(stored.txid)}, _FRESH)
                for pk, sk in pointers
            ),
        ]
        try:
            await transact_write(self._client, items)
        except ConditionFailed:
            raise ChargeAlreadyExists("a charge with this txid already exists") from None
        return stored

    async def get(self, txid: str) -> Charge:
        charge = await self._get(txid)
        if charge is None:
            raise ChargeNotFound()
        return charge

    async def find(self, account_id: uuid.UUID, reference: str) -> Charge | None:
        charge = await self._get(reference)
        if charge is None:
            pointer = await get_item(
                self._client, self._table, charge_static_pk(reference), CHARGE_STATIC_SK
            )
            charge = None if pointer is None else await self._get(pointer["txid"]["S"])
        return charge if charge is not None and charge.account_id == account_id else None

    async def get_by_location(self, location_id: str) -> Charge:
        pointer = await get_item(
            self._client, self._table, charge_location_pk(location_id), CHARGE_LOCATION_SK
        )
        if pointer is None:
            raise ChargeNotFound()
        return await self.get(pointer["txid"]["S"])

    async def update(self, charge: Charge, expected_version: int) -> Charge:
        stored = msgspec.structs.replace(charge, version=expected_version + 1)
        put = self._put(
            self._charge_item(stored),
            "attribute_exists(pk) AND version = :expected",
            values={":expected": n(expected_version)},
        )["Put"]
        put["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            with dynamo_errors():
                await self._client.put_item(**put)
        except ConditionFailed as failure:
            old = failure.old_item(0)
            if old is None:
                old = await get_item(self._client, self._table, charge_pk(charge.txid), CHARGE_SK)
            if old is None:
                raise ChargeNotFound() from None
            raise PixVersionConflict() from None
        return stored

    async def _get(self, txid: str) -> Charge | None:
        item = await get_item(self._client, self._table, charge_pk(txid), CHARGE_SK)
        return None if item is None else _charge_decoder.decode(item["body"]["S"])

    def _charge_item(self, charge: Charge) -> Item:
        return {
            PK: s(charge_pk(charge.txid)),
            SK: s(CHARGE_SK),
            "entity": s("charge"),
            "version": n(charge.version),
            "status": s(charge.status.value),
            "account_id": s(str(charge.account_id)),
            "body": s(_encoder.encode(charge).decode()),
        }

    def _put(
        self, item: Item, condition: str, *, values: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": condition,
        }
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}


class DynamoAccountLimitsStore:
    """The ``AccountLimitsStore`` port: choices (``update``: a put conditional on the body
    read) and usage counters.

    ``reserve_usage`` is one ``TransactWriteItems``: the hold item on
    ``attribute_not_exists(pk)``, its copies under its scopes and, per
    counter (under the id it is kept under), ``ADD used :amount`` on
    ``attribute_not_exists(used) OR used <= :room`` (``room = cap - amount``),
    so every counter stays within its cap, all or none, whoever writes at
    the same time, from whichever account. ``release_usage`` deletes the hold
    on ``attribute_exists(pk)`` and its copies, and subtracts its amount from
    the counters it names in the same transaction: exactly once. Counters and
    holds expire through TTL ``USAGE_TTL_SECONDS`` after their period ends.
    """

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    async def get(self, account_id: uuid.UUID) -> AccountLimits | None:
        item = await get_item(self._client, self._table, limits_pk(account_id), LIMITS_SK)
        return None if item is None else _limits_decoder.decode(item["body"]["S"])

    async def put(self, limits: AccountLimits) -> None:
        item = key_of(limits_pk(limits.account_id), LIMITS_SK)
        item["entity"] = s("limits")
        item["body"] = s(_encoder.encode(limits).decode())
        with dynamo_errors():
            await self._client.put_item(TableName=self._table, Item=item)

    async def update(
        self,
        account_id: uuid.UUID,
        change: Callable[[AccountLimits | None], AccountLimits | None],
    ) -> AccountLimits | None:
        # Optimistic: a conditional put over the body read (strongly consistent), or
        # over no item; whoever wrote in between made it miss: read again, change again.
        pk = limits_pk(account_id)
        for _ in range(LIMITS_UPDATE_ATTEMPTS):
            item = await get_item(self._client, self._table, pk, LIMITS_SK)
            body = None if item is None else item["body"]["S"]
            current = None if body is None else _limits_decoder.decode(body)
            changed = change(current)
            if changed is None:
                return current
            new = key_of(pk, LIMITS_SK)
            new["entity"] = s("limits")
            new["body"] = s(_encoder.encode(changed).decode())
            condition: dict[str, Any] = {"ConditionExpression": _FRESH}
            if body is not None:
                condition = {
                    "ConditionExpression": "body = :read",
                    "ExpressionAttributeValues": {":read": s(body)},
                }
            try:
                with dynamo_errors():
                    await self._client.put_item(TableName=self._table, Item=new, **condition)
            except ConditionFailed:
                continue
            return changed
        raise ServiceUnavailable("the account's limits keep changing; try again")

    async def reserve_usage(self, hold: UsageHold) -> UsageReservation:
        for counter in hold.counters:  # "used <= a negative room" would pass on a new counter
            if hold.amount > counter.cap:
                return UsageReservation(outcome=ReserveOutcome.EXCEEDED, limit=counter.limit)
        pk = limit_usage_pk(hold.account_id)
        expires = _expiry(max(c.ends_at for c in hold.counters))
        body = s(_encoder.encode(hold).decode())
        hold_item = key_of(pk, limit_hold_sk(hold.hold_id))
        hold_item.update(entity=s("limit_hold"), body=body, **{TTL_ATTRIBUTE: n(expires)})
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self._table, "Item": hold_item, "ConditionExpression": _FRESH}}
        ]
        for scope in _scopes(hold):  # unconditional: the hold item's condition decides
            copy = key_of(limit_usage_pk(scope), _hold_copy_sk(hold))
            copy.update(entity=s("limit_hold_copy"), body=body, **{TTL_ATTRIBUTE: n(expires)})
            items.append({"Put": {"TableName": self._table, "Item": copy}})
        first_counter = len(items)
        for counter in hold.counters:
            update = self._counter_update(
                limit_usage_pk(hold.kept_under(counter)), counter.period, hold.amount, expires
            )
            update["ConditionExpression"] = "attribute_not_exists(#used) OR #used <= :room"
            update["ExpressionAttributeValues"][":room"] = n(counter.cap - hold.amount)
            items.append({"Update": update})
        try:
            await transact_write(self._client, items)
        except ConditionFailed as failure:
            if failure.failed_at(0):
                return UsageReservation(outcome=ReserveOutcome.ALREADY_HELD)
            full = next(
                (c for i, c in enumerate(hold.counters) if failure.failed_at(first_counter + i)),
                hold.counters[0],
            )
            return UsageReservation(outcome=ReserveOutcome.EXCEEDED, limit=full.limit)
        return UsageReservation(outcome=ReserveOutcome.RESERVED)

    async def release_usage(self, account_id: uuid.UUID, hold_id: str) -> bool:
        pk = limit_usage_pk(account_id)
        item = await get_item(self._client, self._table, pk, limit_hold_sk(hold_id))
        if item is None:
            return False
        hold = _hold_decoder.decode(item["body"]["S"])
        expires = _expiry(max(c.ends_at for c in hold.counters))
        # the counters it names: a hold recorded before scopes existed, all the account's
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": key_of(pk, limit_hold_sk(hold_id)),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            *(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": key_of(limit_usage_pk(scope), _hold_copy_sk(hold)),
                    }
                }
                for scope in _scopes(hold)
            ),
            *(
                {
                    "Update": self._counter_update(
                        limit_usage_pk(kept_under), period, -hold.amount, expires
                    )
                }
                for kept_under, period in hold.counter_keys()
            ),
        ]
        try:
            await transact_write(self._client, items)
        except ConditionFailed:  # released meanwhile by a concurrent call
            return False
        return True

    async def usage_holds(self, account_id: uuid.UUID, period: str) -> list[UsageHold]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": PK, "#sk": SK},
            "ExpressionAttributeValues": {
                ":pk": s(limit_usage_pk(account_id)),
                ":prefix": s(LIMIT_HOLD_PREFIX),
            },
            "ConsistentRead": True,
        }
        found: list[UsageHold] = []
        while True:
            with dynamo_errors():
                response = await self._client.query(**query)
            for item in response.get("Items", []):  # a scope's: copies of holds of accounts
                hold = _hold_decoder.decode(item["body"]["S"])
                if (account_id, period) in hold.counter_keys():
                    found.append(hold)
            last = response.get("LastEvaluatedKey")
            if last is None:
                return found
            query["ExclusiveStartKey"] = last

    async def used(self, account_id: uuid.UUID, period: str) -> int:
        item = await get_item(
            self._client, self._table, limit_usage_pk(account_id), limit_counter_sk(period)
        )
        return int(item["used"]["N"]) if item is not None and "used" in item else 0

    def _counter_update(self, pk: str, period: str, delta: int, expires: int) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "Key": key_of(pk, limit_counter_sk(period)),
            "UpdateExpression": "ADD #used :delta SET #ttl = :ttl, #entity = :entity",
            "ExpressionAttributeNames": {
                "#used": "used",
                "#ttl": TTL_ATTRIBUTE,
                "#entity": "entity",
            },
            "ExpressionAttributeValues": {
                ":delta": n(delta),
                ":ttl": n(expires),
                ":entity": s("limit_counter"),
            },
        }


#: how long usage counters and holds outlive their period (DynamoDB TTL)
USAGE_TTL_SECONDS = 3 * 24 * 3600


def _expiry(ends_at: datetime) -> int:
    return int(ends_at.timestamp()) + USAGE_TTL_SECONDS


def _scopes(hold: UsageHold) -> list[uuid.UUID]:
    """The ids other than its account that the hold's counters are kept under."""
    return sorted({hold.kept_under(c) for c in hold.counters} - {hold.account_id})


def _hold_copy_sk(hold: UsageHold) -> str:
    """The sort key of a hold's copy under a scope (holds of many accounts meet there)."""
    return limit_hold_sk(f"{hold.account_id}#{hold.hold_id}")


class DynamoDeviceRegistry:
    """The ``DeviceRegistry`` port: the first use of a device stays (``if_not_exists``)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    async def first_seen(self, owner_id: str, device_id: str) -> datetime | None:
        item = await get_item(self._client, self._table, device_pk(owner_id), device_sk(device_id))
        if item is None or "first_seen" not in item:
            return None
        return datetime.fromisoformat(item["first_seen"]["S"])

    async def record_use(self, owner_id: str, device_id: str, at: datetime) -> None:
        with dynamo_errors():
            await self._client.update_item(
                TableName=self._table,
                Key=key_of(device_pk(owner_id), device_sk(device_id)),
                UpdateExpression="SET first_seen = if_not_exists(first_seen, :at)",
                ExpressionAttributeValues={":at": s(at.isoformat())},
            )

    async def list_by_owner(self, owner_id: str) -> list[tuple[str, datetime]]:
        """Every device of ``owner_id``: one ``Query`` of its partition."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": PK},
            "ExpressionAttributeValues": {":pk": s(device_pk(owner_id))},
            "ConsistentRead": True,
        }
        found: list[tuple[str, datetime]] = []
        while True:
            with dynamo_errors():
                response = await self._client.query(**query)
            for item in response.get("Items", []):
                if "first_seen" in item:
                    device = item[SK]["S"].removeprefix(device_sk(""))
                    found.append((device, datetime.fromisoformat(item["first_seen"]["S"])))
            last = response.get("LastEvaluatedKey")
            if last is None:
                return found
            query["ExclusiveStartKey"] = last
