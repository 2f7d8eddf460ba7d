"""MED cases and precautionary blocks on the PIX table (``pix_backend=dynamodb``).

Items:

* **case** ``pk=MED#<EndToEndId>, sk=CASE``: ``body`` (msgspec JSON of the
  :class:`MedCase`, amounts in integer centavos), ``version`` (N),
  ``status``, ``report_id``; and, while something is due on it
  (``MedCase.attention_at()``), ``gsi2pk=MEDDUE#CASE``,
  ``gsi2sk=<attention_at>#<EndToEndId>``.
* **precautionary block** ``pk=MED#<EndToEndId>, sk=BLOCK``: ``body``,
  ``version``, ``status``, ``expires_at_iso``; and, while something is due
  on it (``PrecautionaryBlock.attention_at()``: its deadline while ``ACTIVE``),
  ``gsi2pk=MEDDUE#BLOCK``, ``gsi2sk=<attention_at>#<EndToEndId>``.

The due items share GSI2 with the settlement days (other partitions: the
index is overloaded, as single-table designs do, so the table and its
Terraform keep their two indexes). The keys leave the index when the item
is written without them (every write puts the whole item), so ``due_cases``
and ``due_blocks`` query one partition each, in time order. A GSI is
eventually consistent: a case finished a moment ago can still be listed,
and the sweeper reads each one again before acting. One partition per kind
is enough for MED's volume (cases and blocks are rare next to payments).

``add_*`` puts on ``attribute_not_exists(pk)`` (one of each per payment);
``update_*`` puts on ``attribute_exists(pk) AND version = :expected``
(``MedVersionConflict``; not found if the item is missing), so of concurrent
writers that read one version exactly one wins: DynamoDB serializes
conditional writes per item. Reads are strongly consistent. The stream
Lambda ignores these items (it handles payment items only). Driver errors
become core errors in :mod:`~finbank_adapters.aws.dynamo_errors`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from finbank_adapters.aws.dynamo_errors import ConditionFailed, dynamo_errors
from finbank_adapters.aws.dynamo_ops import Item, get_item, n, s
from finbank_adapters.aws.dynamo_schema import GSI2, GSI2_PK, GSI2_SK, PK, SK, sortable_time
from finbank_core.pix.med.errors import (
    MedCaseAlreadyExists,
    MedCaseNotFound,
    MedVersionConflict,
    PrecautionaryBlockAlreadyExists,
)
from finbank_core.pix.med.model import MedCase, MedDue, PrecautionaryBlock
from finbank_core.shared.errors import NotFound

CASE_SK = "CASE"
BLOCK_SK = "BLOCK"
_encoder = msgspec.json.Encoder()
_case_decoder = msgspec.json.Decoder(MedCase)
_block_decoder = msgspec.json.Decoder(PrecautionaryBlock)
_FRESH = "attribute_not_exists(pk)"
_AT_VERSION = "attribute_exists(pk) AND version = :expected"
DUE_CASES = "MEDDUE#CASE"
DUE_BLOCKS = "MEDDUE#BLOCK"
_SORTABLE = "%Y-%m-%dT%H:%M:%S.%fZ"
_PK_PREFIX = "MED#"


def med_pk(end_to_end_id: str) -> str:
    return f"{_PK_PREFIX}{end_to_end_id}"


def _due_keys(partition: str, at: datetime | None, end_to_end_id: str) -> Item:
    if at is None:
        return {}
    return {GSI2_PK: s(partition), GSI2_SK: s(f"{sortable_time(at)}#{end_to_end_id}")}


class DynamoMedRepository:
    """The ``MedRepository`` port on the PIX table (see the module docstring)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    async def add_case(self, case: MedCase) -> MedCase:
        stored = msgspec.structs.replace(case, version=1)
        if not await self._put(self._case_item(stored), _FRESH):
            raise MedCaseAlreadyExists()
        return stored

    async def get_case(self, end_to_end_id: str) -> MedCase | None:
        item = await get_item(self._client, self._table, med_pk(end_to_end_id), CASE_SK)
        return None if item is None else _case_decoder.decode(item["body"]["S"])

    async def update_case(self, case: MedCase, expected_version: int) -> MedCase:
        stored = msgspec.structs.replace(case, version=expected_version + 1)
        if await self._put(self._case_item(stored), _AT_VERSION, expected_version):
            return stored
        if await self.get_case(case.end_to_end_id) is None:
            raise MedCaseNotFound()
        raise MedVersionConflict()

    async def add_block(self, block: PrecautionaryBlock) -> PrecautionaryBlock:
        stored = msgspec.structs.replace(block, version=1)
        if not await self._put(self._block_item(stored), _FRESH):
            raise PrecautionaryBlockAlreadyExists()
        return stored

    async def get_block(self, end_to_end_id: str) -> PrecautionaryBlock | None:
        item = await get_item(self._client, self._table, med_pk(end_to_end_id), BLOCK_SK)
        return None if item is None else _block_decoder.decode(item["body"]["S"])

    async def update_block(
        self, block: PrecautionaryBlock, expected_version: int
    ) -> PrecautionaryBlock:
        stored = msgspec.structs.replace(block, version=expected_version + 1)
        if await self._put(self._block_item(stored), _AT_VERSION, expected_version):
            return stored
        if await self.get_block(block.end_to_end_id) is None:
            raise NotFound("no such precautionary block")
        raise MedVersionConflict()

    async def due_cases(
        self, until: datetime, *, after: MedDue | None = None, limit: int = 100
    ) -> list[MedDue]:
        return await self._due(DUE_CASES, until, after, limit)

    async def due_blocks(
        self, until: datetime, *, after: MedDue | None = None, limit: int = 100
    ) -> list[MedDue]:
        return await self._due(DUE_BLOCKS, until, after, limit)

    async def _due(
        self, partition: str, until: datetime, after: MedDue | None, limit: int
    ) -> list[MedDue]:
        """One partition of GSI2 between ``after`` (exclusive) and ``until`` (inclusive).

        The sort key is ``<time>#<EndToEndId>``: ``#~`` after ``until``'s time sorts
        after every EndToEndId (letters and digits), and the first page starts at
        ``0``, before every time written (years 1000 to 9999).
        """
        start = "0" if after is None else f"{sortable_time(after.at)}#{after.end_to_end_id}"
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": GSI2,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :from AND :to",
            "ExpressionAttributeNames": {"#pk": GSI2_PK, "#sk": GSI2_SK},
            "ExpressionAttributeValues": {
                ":pk": s(partition),
                ":from": s(start),
                ":to": s(f"{sortable_time(until)}#~"),
            },
        }
        found: list[MedDue] = []
        while len(found) < limit:
            query["Limit"] = limit - len(found) + 1  # BETWEEN includes ``after`` itself
            with dynamo_errors():
                response = await self._client.query(**query)
            for item in response.get("Items", []):
                moment, _, end_to_end_id = item[GSI2_SK]["S"].partition("#")
                due = MedDue(
                    datetime.strptime(moment, _SORTABLE).replace(tzinfo=UTC), end_to_end_id
                )
                if after is None or due > after:
                    found.append(due)
            last = response.get("LastEvaluatedKey")
            if last is None:
                break
            query["ExclusiveStartKey"] = last
        return found[:limit]

    async def _put(self, item: Item, condition: str, expected: int | None = None) -> bool:
        """Put ``item`` on ``condition``; False when the condition failed."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": condition,
        }
        if expected is not None:
            request["ExpressionAttributeValues"] = {":expected": n(expected)}
        try:
            with dynamo_errors():
                await self._client.put_item(**request)
        except ConditionFailed:
            return False
        return True

    @staticmethod
    def _case_item(case: MedCase) -> Item:
        return {
            PK: s(med_pk(case.end_to_end_id)),
            SK: s(CASE_SK),
            "entity": s("med_case"),
            "version": n(case.version),
            "status": s(case.status.value),
            "report_id": s(case.report_id),
            "body": s(_encoder.encode(case).decode()),
            **_due_keys(DUE_CASES, case.attention_at(), case.end_to_end_id),
        }

    @staticmethod
    def _block_item(block: PrecautionaryBlock) -> Item:
        return {
            PK: s(med_pk(block.end_to_end_id)),
            SK: s(BLOCK_SK),
            "entity": s("med_block"),
            "version": n(block.version),
            "status": s(block.status.value),
            "expires_at_iso": s(block.expires_at.isoformat()),
            "body": s(_encoder.encode(block).decode()),
            **_due_keys(DUE_BLOCKS, block.attention_at(), block.end_to_end_id),
        }
