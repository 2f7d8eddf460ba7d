"""The one place where DynamoDB errors become core errors.

* A failed condition is the caller's business: the repository decides what
  it means (record exists, version moved, illegal transition), so
  :func:`dynamo_errors` lets :class:`ConditionFailed` through with the
  cancellation reasons of a transaction.
* Throttling, capacity, internal errors, transaction conflicts that did not
  clear after the repository's own retries, connection and timeout errors
  become ``ServiceUnavailable`` (retry later).
* A validation error is a bug in our request, not the caller's input: it
  becomes ``ServiceUnavailable`` too, logged with its code, so no driver
  message (which can echo attribute values) reaches a client.

Only error codes are logged, never messages or items.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from finbank_core.shared.errors import DomainError, ServiceUnavailable

logger = logging.getLogger("finbank.aws.dynamodb")

CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"
TRANSACTION_CANCELED = "TransactionCanceledException"
#: cancellation reason codes of TransactWriteItems
REASON_CONDITION = "ConditionalCheckFailed"
REASON_CONFLICT = "TransactionConflict"


class ConditionFailed(Exception):
    """A conditional write did not apply. ``reasons``: one per transaction item, in order.

    Each reason is ``{"Code": ..., "Item": {...}}`` (``Item`` when the request
    asked for ``ReturnValuesOnConditionCheckFailure=ALL_OLD``); ``"None"`` for
    items that were fine.
    """

    def __init__(self, reasons: Sequence[dict[str, Any]]) -> None:
        super().__init__("conditional write failed")
        self.reasons = list(reasons)

    def failed_at(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index].get("Code") == REASON_CONDITION

    def old_item(self, index: int) -> dict[str, Any] | None:
        if index >= len(self.reasons):
            return None
        item: dict[str, Any] | None = self.reasons[index].get("Item")
        return item

    @property
    def conflicted(self) -> bool:
        """Cancelled by a concurrent transaction on the same items (worth retrying)."""
        codes = {r.get("Code") for r in self.reasons}
        return REASON_CONFLICT in codes and REASON_CONDITION not in codes


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return type(exc).__name__


@contextmanager
def dynamo_errors() -> Iterator[None]:
    """Translate driver errors raised inside the block (``ConditionFailed`` passes through)."""
    try:
        yield
    except (DomainError, ConditionFailed):
        raise
    except ClientError as exc:
        code = error_code(exc)
        if code == CONDITIONAL_CHECK_FAILED:
            item = exc.response.get("Item")
            raise ConditionFailed([{"Code": REASON_CONDITION, "Item": item}]) from None
        if code == TRANSACTION_CANCELED:
            reasons = exc.response.get("CancellationReasons") or []
            raise ConditionFailed(reasons) from None
        logger.warning("dynamodb request failed: %s", code)
        raise ServiceUnavailable("the payment store is unavailable") from None
    except (BotoCoreError, OSError, TimeoutError) as exc:
        logger.warning("dynamodb unreachable: %s", type(exc).__name__)
        raise ServiceUnavailable("the payment store is unreachable") from None
