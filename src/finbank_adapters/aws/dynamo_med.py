"""MED cases and precautionary blocks on the PIX table (``pix_backend=dynamodb``).

Items (base-table keys only, no index):

* **case** ``pk=MED#<EndToEndId>, sk=CASE``: ``body`` (msgspec JSON of the
  :class:`MedCase`, amounts in integer centavos), ``version`` (N),
  ``status``, ``report_id``.
* **precautionary block** ``pk=MED#<EndToEndId>, sk=BLOCK``: ``body``,
  ``version``, ``status``, ``expires_at_iso``.

``add_*`` puts on ``attribute_not_exists(pk)`` (one of each per payment);
``update_*`` puts on ``attribute_exists(pk) AND version = :expected``
(``MedVersionConflict``; not found if the item is missing), so of concurrent
writers that read one version exactly one wins: DynamoDB serializes
conditional writes per item. Reads are strongly consistent. The stream
Lambda ignores these items (it handles payment items only). Driver errors
become core errors in :mod:`~finbank_adapters.aws.dynamo_errors`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from finbank_adapters.aws.dynamo_errors import ConditionFailed, dynamo_errors
from finbank_adapters.aws.dynamo_ops import Item, get_item, n, s
from finbank_adapters.aws.dynamo_schema import PK, SK
from finbank_core.pix.med.errors import (
    MedCaseAlreadyExists,
    MedCaseNotFound,
    MedVersionConflict,
    PrecautionaryBlockAlreadyExists,
)
from finbank_core.pix.med.model import MedCase, PrecautionaryBlock
from finbank_core.shared.errors import NotFound

CASE_SK = "CASE"
BLOCK_SK = "BLOCK"
_encoder = msgspec.json.Encoder()
_case_decoder = msgspec.json.Decoder(MedCase)
_block_decoder = msgspec.json.Decoder(PrecautionaryBlock)
_FRESH = "attribute_not_exists(pk)"
_AT_VERSION = "attribute_exists(pk) AND version = :expected"


def med_pk(end_to_end_id: str) -> str:
    return f"MED#{end_to_end_id}"


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
        }
