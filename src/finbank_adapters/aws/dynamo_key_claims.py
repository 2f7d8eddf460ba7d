"""``DynamoKeyClaimStore``: PIX key claims on the PIX table.

Items (base table keys only):

* **claim** ``pk=KEYCLAIM#<id>, sk=KEYCLAIM``: ``body`` (the claim, msgspec
  JSON) and ``version`` (N);
* **active claim of a key** ``pk=KEYCLAIMKEY#<type>#<value>, sk=ACTIVE``:
  ``claim_id``; exists while the key has an open, waiting or confirmed claim;
* **owner index** ``pk=KEYCLAIMOWNER#<owner>, sk=<opened_at>#<id>``, one per
  side of ours (claimer, donor), so a customer's claims are one ``Query``.

Adding a claim writes the claim, the active item (``attribute_not_exists``)
and the owner items in one ``TransactWriteItems``: of concurrent claims on
one key exactly one is stored. An update puts the claim on the condition
``version = :expected`` and, when the claim becomes final, deletes the
active item in the same transaction.

The outbox is not on this table: the store takes no events
(``appends_events`` is false) and the claim steps publish each step's event
after its write, marking the claim ``announced`` (see ``ClaimSteps``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from finbank_adapters.aws.dynamo_errors import ConditionFailed, dynamo_errors
from finbank_adapters.aws.dynamo_ops import Item, get_item, key_of, n, s, transact_write
from finbank_adapters.aws.dynamo_schema import PK, sortable_time
from finbank_core.pix.claims.errors import (
    KeyClaimAlreadyOpen,
    KeyClaimNotFound,
    KeyClaimVersionConflict,
)
from finbank_core.pix.claims.model import KeyClaim
from finbank_core.pix.codes.keys import PixKey
from finbank_core.shared.events import EventEnvelope

CLAIM_SK = "KEYCLAIM"
ACTIVE_SK = "ACTIVE"
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(KeyClaim)


def claim_pk(claim_id: uuid.UUID) -> str:
    return f"KEYCLAIM#{claim_id}"


def active_pk(key: PixKey) -> str:
    return f"KEYCLAIMKEY#{key.type.value}#{key.value}"


def owner_pk(owner_id: str) -> str:
    return f"KEYCLAIMOWNER#{owner_id}"


def _decode(item: Item) -> KeyClaim:
    claim = _decoder.decode(item["body"]["S"])
    return msgspec.structs.replace(claim, version=int(item["version"]["N"]))


class DynamoKeyClaimStore:
    """``KeyClaimStore`` on the PIX table (see the module docstring)."""

    appends_events = False

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _claim_put(self, claim: KeyClaim, condition: str, values: Item | None = None) -> Item:
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                **key_of(claim_pk(claim.id), CLAIM_SK),
                "entity": s("pix_key_claim"),
                "body": s(_encoder.encode(claim).decode()),
                "version": n(claim.version),
            },
            "ConditionExpression": condition,
        }
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    async def add(self, claim: KeyClaim, *, events: Sequence[EventEnvelope] = ()) -> KeyClaim:
        if events:
            raise ValueError("the DynamoDB claim store does not append events")
        stored = msgspec.structs.replace(claim, version=1)
        items: list[dict[str, Any]] = [
            self._claim_put(stored, "attribute_not_exists(pk)"),
        ]
        if stored.status.active:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            **key_of(active_pk(claim.key), ACTIVE_SK),
                            "claim_id": s(str(claim.id)),
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        owners = {o for o in (claim.claimer.owner_id, claim.donor.owner_id) if o is not None}
        for owner in sorted(owners):
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            **key_of(
                                owner_pk(owner), f"{sortable_time(claim.opened_at)}#{claim.id}"
                            ),
                            "claim_id": s(str(claim.id)),
                        },
                    }
                }
            )
        try:
            await transact_write(self._client, items)
        except ConditionFailed:
            raise KeyClaimAlreadyOpen("the key already has an active claim") from None
        return stored

    async def get(self, claim_id: uuid.UUID) -> KeyClaim:
        item = await get_item(self._client, self._table, claim_pk(claim_id), CLAIM_SK)
        if item is None:
            raise KeyClaimNotFound()
        return _decode(item)

    async def update(
        self, claim: KeyClaim, expected_version: int, *, events: Sequence[EventEnvelope] = ()
    ) -> KeyClaim:
        if events:
            raise ValueError("the DynamoDB claim store does not append events")
        stored = msgspec.structs.replace(claim, version=expected_version + 1)
        items: list[dict[str, Any]] = [
            self._claim_put(
                stored,
                "attribute_exists(pk) AND version = :expected",
                {":expected": n(expected_version)},
            )
        ]
        if not stored.status.active:
            items.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": key_of(active_pk(claim.key), ACTIVE_SK),
                        "ConditionExpression": "attribute_not_exists(pk) OR claim_id = :id",
                        "ExpressionAttributeValues": {":id": s(str(claim.id))},
                    }
                }
            )
        try:
            await transact_write(self._client, items)
        except ConditionFailed as failure:
            if failure.failed_at(0):
                await self.get(claim.id)  # KeyClaimNotFound if it never existed
                raise KeyClaimVersionConflict() from None
            raise
        return stored

    async def active_for_key(self, key: PixKey) -> KeyClaim | None:
        item = await get_item(self._client, self._table, active_pk(key), ACTIVE_SK)
        if item is None:
            return None
        return await self.get(uuid.UUID(item["claim_id"]["S"]))

    async def list_by_owner(self, owner_id: str) -> list[KeyClaim]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": PK},
            "ExpressionAttributeValues": {":pk": s(owner_pk(owner_id))},
            "ConsistentRead": True,
        }
        ids: list[uuid.UUID] = []
        while True:
            with dynamo_errors():
                response = await self._client.query(**query)
            ids.extend(uuid.UUID(i["claim_id"]["S"]) for i in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if last is None:
                break
            query["ExclusiveStartKey"] = last
        return [await self.get(claim_id) for claim_id in ids]
