"""Small DynamoDB request helpers shared by the PIX adapters (keys, charges, limits, devices).

Attribute value builders, a strongly consistent ``GetItem`` and a
``TransactWriteItems`` retried while only concurrent transactions cancelled
it. Every driver call goes through :func:`~finbank_adapters.aws.dynamo_errors.dynamo_errors`.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from finbank_adapters.aws.dynamo_errors import ConditionFailed, dynamo_errors
from finbank_adapters.aws.dynamo_schema import PK, SK
from finbank_core.shared.errors import ServiceUnavailable

Item = dict[str, dict[str, Any]]

CONFLICT_RETRIES = 5


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def key_of(pk: str, sk: str) -> Item:
    return {PK: s(pk), SK: s(sk)}


async def get_item(client: Any, table: str, pk: str, sk: str) -> Item | None:
    """The item at ``(pk, sk)``, read strongly consistently, or ``None``."""
    with dynamo_errors():
        response = await client.get_item(TableName=table, Key=key_of(pk, sk), ConsistentRead=True)
    item: Item | None = response.get("Item")
    return item


async def transact_write(client: Any, items: list[dict[str, Any]]) -> None:
    """``TransactWriteItems``, retried with backoff while only ``TransactionConflict`` cancelled it.

    A failed condition raises :class:`ConditionFailed` (reasons in item order).
    No ``ClientRequestToken``: the conditions answer a replay, however late.
    """
    for attempt in range(CONFLICT_RETRIES):
        try:
            with dynamo_errors():
                await client.transact_write_items(TransactItems=items)
            return
        except ConditionFailed as failure:
            if not failure.conflicted:
                raise
            await asyncio.sleep(0.01 * 2**attempt * (1 + secrets.randbelow(100) / 100))
    raise ServiceUnavailable("the PIX store is busy; retry later")
