"""``DynamoKeyDirectory``: the PIX key directory (DICT) on the PIX table.

Items (same table as the payment records, base table keys only, no index;
key builders in :mod:`~finbank_adapters.aws.dynamo_schema`):

* **key item** ``pk=PIXKEY#<type>#<value>, sk=KEY``: the registration
  (``body``, msgspec JSON, the holder's document included) and ``key_id``.
  The type never contains ``#``, so the pk names one key. Its put is
  conditional on ``attribute_not_exists(pk)``: a key is bound once, in any
  account.
* **account key item** ``pk=PIXACCT#<account>, sk=KEY#<created_at>#<id>``:
  the same ``body``, so the keys of an account are one strongly consistent
  ``Query``, oldest first.
* **key counter** ``pk=PIXACCT#<account>, sk=COUNT``: ``keys`` (N), the
  number of keys the account holds. Registration adds 1 on the condition
  ``attribute_not_exists(#keys) OR #keys < :max``; deletion subtracts 1.
* **key id item** ``pk=PIXKEYID#<id>, sk=KEYID``: where key ``id`` lives
  (``key_pk``, ``account_pk``, ``account_sk``, ``owner_id``), for deletion
  by id.

``<account>`` is the account id for this bank's accounts, or
``EXT#<ispb>#<branch>#<number>`` for an account of another institution
(``account_id=None``: the sandbox's peer bank).

The four items are written (and deleted) in one ``TransactWriteItems``, so
the uniqueness of the key, the per-account limit and the write are one
atomic step: two concurrent registrations on one account cannot both pass
the counter's condition, and a key registered from two accounts at once is
bound to exactly one. A failed key condition wins over a failed limit (the
key item comes first), as in the memory directory.

Keys of the simulated institutions (``seed``) are written once per process,
before the first operation, each conditional on the key being free; other
processes seeding the same keys find them there and move on.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from finbank_adapters.aws.dynamo_errors import ConditionFailed, dynamo_errors
from finbank_adapters.aws.dynamo_key_claims import ACTIVE_SK, active_pk
from finbank_adapters.aws.dynamo_ops import Item, get_item, key_of, n, s, transact_write
from finbank_adapters.aws.dynamo_schema import (
    KEY_COUNT_SK,
    KEY_ID_SK,
    KEY_SK,
    PK,
    SK,
    key_account_pk,
    key_account_sk,
    key_id_pk,
    pix_key_pk,
)
from finbank_core.pix.claims.errors import PixKeyUnderClaim
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.directory import DirectoryEntry, KeyRegistration, NewKeyRegistration
from finbank_core.pix.errors import PixKeyAlreadyRegistered, PixKeyLimitReached, PixKeyNotFound
from finbank_core.shared.errors import InvalidInput, ServiceUnavailable

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(KeyRegistration)
_EVP_ATTEMPTS = 5


def _decode(item: Item) -> KeyRegistration:
    return _decoder.decode(item["body"]["S"])


class DynamoKeyDirectory:
    """The ``KeyDirectory`` port on the PIX table (see the module docstring).

    ``client`` is an open aioboto3 ``dynamodb`` client; the table exists.
    ``seed``: registrations of other institutions to make sure are present.
    """

    def __init__(
        self, client: Any, table_name: str, *, seed: Sequence[KeyRegistration] = ()
    ) -> None:
        self._client = client
        self._table = table_name
        self._seed = list(seed)
        self._seeded = not self._seed
        self._seed_lock = asyncio.Lock()

    # -- writes ------------------------------------------------------------------------

    async def register(
        self, registration: NewKeyRegistration, *, max_keys_per_account: int
    ) -> KeyRegistration:
        await self._ensure_seeded()
        if registration.key is not None:
            return await self._register(registration, registration.key, max_keys_per_account)
        if registration.key_type is not PixKeyType.EVP:
            raise InvalidInput("only random keys (EVP) are issued by the directory")
        for _ in range(_EVP_ATTEMPTS):  # a clash of 122 random bits: practically never
            key = PixKey(PixKeyType.EVP, str(uuid.UUID(int=secrets.randbits(128), version=4)))
            try:
                return await self._register(registration, key, max_keys_per_account)
            except PixKeyAlreadyRegistered:
                continue
        raise ServiceUnavailable("could not issue a random key; retry later")

    async def _register(
        self, registration: NewKeyRegistration, key: PixKey, max_keys: int | None
    ) -> KeyRegistration:
        stored = KeyRegistration.of(registration, key)
        try:
            await transact_write(self._client, self._register_items(stored, max_keys))
        except ConditionFailed as failure:
            if failure.failed_at(1) and not failure.failed_at(0):
                raise PixKeyLimitReached(
                    f"an account of this kind holds at most {max_keys} keys",
                    max_keys=max_keys,
                ) from None
            # the key item (or the id item: a reused registration id, a caller bug)
            raise PixKeyAlreadyRegistered("this key is already registered") from None
        return stored

    def _register_items(
        self, stored: KeyRegistration, max_keys: int | None
    ) -> list[dict[str, Any]]:
        body = s(_encoder.encode(stored).decode())
        key_pk = pix_key_pk(stored.key.type.value, stored.key.value)
        account_pk = key_account_pk(
            stored.account_id, stored.ispb, stored.branch, stored.account_number
        )
        account_sk = key_account_sk(stored.created_at, stored.id)
        counter: dict[str, Any] = {
            "TableName": self._table,
            "Key": key_of(account_pk, KEY_COUNT_SK),
            "UpdateExpression": "ADD #keys :one",
            "ExpressionAttributeNames": {"#keys": "keys"},
            "ExpressionAttributeValues": {":one": n(1)},
        }
        if max_keys is not None:
            counter["ConditionExpression"] = "attribute_not_exists(#keys) OR #keys < :max"
            counter["ExpressionAttributeValues"][":max"] = n(max_keys)
        fresh = "attribute_not_exists(pk)"
        return [
            self._put(
                {
                    PK: s(key_pk),
                    SK: s(KEY_SK),
                    "entity": s("pix_key"),
                    "key_id": s(str(stored.id)),
                    "body": body,
                },
                fresh,
            ),
            {"Update": counter},
            self._put({PK: s(account_pk), SK: s(account_sk), "body": body}, fresh),
            self._put(
                {
                    PK: s(key_id_pk(stored.id)),
                    SK: s(KEY_ID_SK),
                    "key_pk": s(key_pk),
                    "account_pk": s(account_pk),
                    "account_sk": s(account_sk),
                    **({"owner_id": s(stored.owner_id)} if stored.owner_id is not None else {}),
                },
                fresh,
            ),
        ]

    async def delete(self, key_id: uuid.UUID, owner_id: str) -> KeyRegistration:
        await self._ensure_seeded()
        pointer = await get_item(self._client, self._table, key_id_pk(key_id), KEY_ID_SK)
        if pointer is None or pointer.get("owner_id", {}).get("S") != owner_id:
            raise PixKeyNotFound()
        key_pk = pointer["key_pk"]["S"]
        account_pk = pointer["account_pk"]["S"]
        item = await get_item(self._client, self._table, key_pk, KEY_SK)
        if item is None or item.get("key_id", {}).get("S") != str(key_id):
            raise PixKeyNotFound()
        registration = _decode(item)
        held = "attribute_exists(pk)"
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": key_of(key_pk, KEY_SK),
                    "ConditionExpression": "key_id = :id",
                    "ExpressionAttributeValues": {":id": s(str(key_id))},
                }
            },
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": key_of(account_pk, pointer["account_sk"]["S"]),
                    "ConditionExpression": held,
                }
            },
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": key_of(key_id_pk(key_id), KEY_ID_SK),
                    "ConditionExpression": held,
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": key_of(account_pk, KEY_COUNT_SK),
                    "UpdateExpression": "ADD #keys :minus",
                    "ExpressionAttributeNames": {"#keys": "keys"},
                    "ExpressionAttributeValues": {":minus": n(-1)},
                }
            },
            {  # no active claim on the key, in the same transaction as the deletion
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": key_of(active_pk(registration.key), ACTIVE_SK),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        try:
            await transact_write(self._client, items)
        except ConditionFailed as failure:
            if failure.failed_at(len(items) - 1):
                raise PixKeyUnderClaim(
                    "the key has an active claim: confirm or cancel it first", field="key_id"
                ) from None
            raise PixKeyNotFound() from None  # deleted meanwhile by a concurrent call
        return registration

    async def transfer(
        self, from_key_id: uuid.UUID, to: NewKeyRegistration, *, max_keys_per_account: int
    ) -> KeyRegistration:
        """A completed claim's key move (``ClaimableKeyDirectory``), one ``TransactWriteItems``.

        The key item is overwritten on the condition that it still names
        ``from_key_id``; the donor's account and id items go, its counter
        drops, and the claimer's items are written with the counter's limit
        condition, all in the same transaction.
        """
        await self._ensure_seeded()
        if to.key is None:
            raise InvalidInput("a transfer names its key")
        key_pk = pix_key_pk(to.key.type.value, to.key.value)
        item = await get_item(self._client, self._table, key_pk, KEY_SK)
        if item is not None and item.get("key_id", {}).get("S") == str(to.id):
            return _decode(item)
        pointer = await get_item(self._client, self._table, key_id_pk(from_key_id), KEY_ID_SK)
        if item is None or pointer is None or item["key_id"]["S"] != str(from_key_id):
            raise PixKeyNotFound()
        stored = KeyRegistration.of(to, to.key)
        new_items = self._register_items(stored, max_keys_per_account)
        # the key item: overwrite it only while it still names the donor's registration
        put_key = new_items[0]["Put"]
        put_key["ConditionExpression"] = "key_id = :from"
        put_key["ExpressionAttributeValues"] = {":from": s(str(from_key_id))}
        old_account_pk = pointer["account_pk"]["S"]
        held = "attribute_exists(pk)"
        items = [
            *new_items,
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": key_of(old_account_pk, pointer["account_sk"]["S"]),
                    "ConditionExpression": held,
                }
            },
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": key_of(key_id_pk(from_key_id), KEY_ID_SK),
                    "ConditionExpression": held,
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": key_of(old_account_pk, KEY_COUNT_SK),
                    "UpdateExpression": "ADD #keys :minus",
                    "ExpressionAttributeNames": {"#keys": "keys"},
                    "ExpressionAttributeValues": {":minus": n(-1)},
                }
            },
        ]
        try:
            await transact_write(self._client, items)
        except ConditionFailed as failure:
            if failure.failed_at(1) and not failure.failed_at(0):
                raise PixKeyLimitReached(
                    f"an account of this kind holds at most {max_keys_per_account} keys",
                    max_keys=max_keys_per_account,
                ) from None
            again = await get_item(self._client, self._table, key_pk, KEY_SK)
            if again is not None and again.get("key_id", {}).get("S") == str(to.id):
                return _decode(again)  # a concurrent replay moved it first
            raise PixKeyNotFound() from None
        return stored

    # -- reads -------------------------------------------------------------------------

    async def lookup(self, key: PixKey) -> DirectoryEntry:
        return (await self.get(key)).entry()

    async def get(self, key: PixKey) -> KeyRegistration:
        await self._ensure_seeded()
        item = await get_item(
            self._client, self._table, pix_key_pk(key.type.value, key.value), KEY_SK
        )
        if item is None:
            raise PixKeyNotFound()
        return _decode(item)

    async def list_by_account(self, account_id: uuid.UUID) -> list[KeyRegistration]:
        await self._ensure_seeded()
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": PK, "#sk": SK},
            "ExpressionAttributeValues": {
                ":pk": s(key_account_pk(account_id, "", "", "")),
                ":prefix": s(f"{KEY_SK}#"),
            },
            "ConsistentRead": True,
        }
        found: list[KeyRegistration] = []
        while True:
            with dynamo_errors():
                response = await self._client.query(**query)
            found.extend(_decode(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if last is None:
                break
            query["ExclusiveStartKey"] = last
        return sorted(found, key=lambda r: (r.created_at, r.id))

    # -- plumbing ----------------------------------------------------------------------

    async def _ensure_seeded(self) -> None:
        if self._seeded:
            return
        async with self._seed_lock:
            if self._seeded:
                return
            for registration in self._seed:
                # already there (another process seeded it), or the key is taken: move on
                with contextlib.suppress(ConditionFailed):
                    await transact_write(self._client, self._register_items(registration, None))
            self._seeded = True

    def _put(self, item: Item, condition: str) -> dict[str, Any]:
        return {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": condition}}
