"""``DynamoEffectLog``: which effects a stream consumer already applied (its inbox on DynamoDB).

A marker item per effect, ``pk=EFFECT#<consumer>, sk=<effect id>``, in the
PIX table, expiring through TTL (``expires_at``) well after the stream's
24-hour retention, when nothing can redeliver the record any more.

Use it as *check, apply, record*: :meth:`done` before the effect,
:meth:`record` after it. A crash between applying and recording applies the
effect again on the retry, so the effect itself must be repeatable with the
same result (the streams Lambda publishes an event whose ``event_id`` is
derived from the record version: consumers drop the repeat). The opposite
order (record, then apply) could lose the effect, which is worse.
"""

from __future__ import annotations

from typing import Any

from finbank_adapters.aws.dynamo_errors import dynamo_errors
from finbank_adapters.aws.dynamo_schema import PK, SK, TTL_ATTRIBUTE
from finbank_core.shared.clock import Clock

#: longer than a DynamoDB stream's 24 h retention plus Lambda's retries
DEFAULT_MARKER_TTL_SECONDS = 7 * 24 * 3600


class DynamoEffectLog:
    """Effect markers of one consumer (``consumer`` names it, e.g. ``pix-stream``)."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        consumer: str,
        clock: Clock,
        *,
        ttl_seconds: int = DEFAULT_MARKER_TTL_SECONDS,
    ) -> None:
        if not consumer:
            raise ValueError("an effect log needs a consumer name")
        self._client = client
        self._table = table_name
        self._partition = f"EFFECT#{consumer}"
        self._clock = clock
        self._ttl_seconds = ttl_seconds

    async def done(self, effect_id: str) -> bool:
        """True if ``effect_id`` was recorded (strongly consistent read)."""
        with dynamo_errors():
            response = await self._client.get_item(
                TableName=self._table,
                Key={PK: {"S": self._partition}, SK: {"S": effect_id}},
                ConsistentRead=True,
            )
        return "Item" in response

    async def record(self, effect_id: str) -> None:
        """Remember ``effect_id`` as applied; recording it again is harmless."""
        expires_at = int(self._clock.now().timestamp()) + self._ttl_seconds
        with dynamo_errors():
            await self._client.put_item(
                TableName=self._table,
                Item={
                    PK: {"S": self._partition},
                    SK: {"S": effect_id},
                    TTL_ATTRIBUTE: {"N": str(expires_at)},
                },
            )
