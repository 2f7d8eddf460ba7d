"""``DynamoRequestClaims``: in-flight claims of idempotent requests on the PIX table.

One item per claim, ``pk=CLAIM#<claim id>, sk=CLAIM``, holding the holder's
``token`` and the lease end ``lease_until`` (epoch milliseconds). Taking a
claim is one conditional ``PutItem`` (no item, or a lease ended by now), so
every replica sees the same holder; releasing ends the lease at once
(``UpdateItem`` of ``lease_until`` to 0, on the condition that the token is
still ours: the app's IAM policy has no ``DeleteItem``). ``expires_at``
(DynamoDB TTL, the table's) removes the item a day after its lease, whether
released or left by a crashed holder; TTL deletes lazily, so the lease
itself is always checked in the condition.

Claim items have ``sk=CLAIM``, so the streams Lambda (payment records only,
``sk=PAY``) never sees them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from finbank_adapters.aws.dynamo_errors import ConditionFailed, dynamo_errors
from finbank_adapters.aws.dynamo_ops import key_of, n, s
from finbank_adapters.aws.dynamo_schema import PK, TTL_ATTRIBUTE

CLAIM_SK = "CLAIM"
#: how long after its lease a forgotten claim item stays before TTL removes it
CLEANUP_AFTER_SECONDS = 24 * 3600


def claim_pk(claim_id: str) -> str:
    return f"CLAIM#{claim_id}"


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class DynamoRequestClaims:
    """``RequestClaims`` on the PIX table; ``client`` is an open aioboto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    async def acquire(self, claim_id: str, token: str, *, now: datetime, until: datetime) -> bool:
        item = {
            **key_of(claim_pk(claim_id), CLAIM_SK),
            "token": s(token),
            "lease_until": n(_millis(until)),
            TTL_ATTRIBUTE: n(int(until.timestamp()) + CLEANUP_AFTER_SECONDS),
        }
        try:
            with dynamo_errors():
                await self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(#pk) OR #lease <= :now",
                    ExpressionAttributeNames={"#pk": PK, "#lease": "lease_until"},
                    ExpressionAttributeValues={":now": n(_millis(now))},
                )
        except ConditionFailed:
            return False
        return True

    async def release(self, claim_id: str, token: str) -> None:
        try:
            with dynamo_errors():
                await self._client.update_item(
                    TableName=self._table,
                    Key=key_of(claim_pk(claim_id), CLAIM_SK),
                    UpdateExpression="SET #lease = :ended",
                    ConditionExpression="#token = :token",
                    ExpressionAttributeNames={"#token": "token", "#lease": "lease_until"},
                    ExpressionAttributeValues={":token": s(token), ":ended": n(0)},
                )
        except ConditionFailed:
            return  # gone, or taken over after our lease ended: not ours to drop
