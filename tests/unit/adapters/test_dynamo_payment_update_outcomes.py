"""How ``DynamoPixPaymentRepository.update`` names a refused write, from the record the
store shows: another version is a conflict (read again, retry); a status the write may
not leave is an illegal transition; a record that would pass the condition after all
(it moved between the write and the read: moto's threaded server applies concurrent
writes out of turn) is a conflict too, never "cannot go from SETTLED to SETTLED".

A client that refuses every write stands in for the store, so each answer is exact.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from botocore.exceptions import ClientError

from finbank_adapters.aws.dynamo import DynamoPixPaymentRepository, encode_payment
from finbank_core.pix.errors import IllegalPixTransition, PixVersionConflict
from finbank_core.pix.payments import (
    Initiation,
    PaymentStatus,
    PixFlow,
    PixParty,
    PixPayment,
)
from finbank_core.shared.money import Money

T0 = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)


def a_payment(status: PaymentStatus, version: int) -> PixPayment:
    payer = uuid.uuid4()
    pending = PixPayment(
        end_to_end_id="E9999999920260504150000000000001",
        flow=PixFlow.OUTGOING,
        status=PaymentStatus.PENDING,
        amount=Money(200_00),
        payer=PixParty(ispb="99999999", account_id=payer, owner_id="ana"),
        payee=PixParty(ispb="88888888", account_id=None),
        initiation=Initiation.KEY,
        created_at=T0,
        version=version,
    )
    if status is PaymentStatus.SETTLED:
        return msgspec.structs.replace(pending.settle(T0), version=version)
    return msgspec.structs.replace(pending, status=status)


class RefusingClient:
    """Every conditional write fails; the stored record is ``shown``, with or without it
    in the failure (``ALL_OLD``), as a transaction's first cancellation reason or not."""

    def __init__(self, shown: PixPayment, *, in_failure: bool) -> None:
        self.item = {
            "pk": {"S": f"PAY#{shown.end_to_end_id}"},
            "sk": {"S": "PAY"},
            "version": {"N": str(shown.version)},
            "status": {"S": shown.status.value},
            "body": {"S": encode_payment(shown)},
        }
        self.in_failure = in_failure

    async def put_item(self, **_: Any) -> None:
        failure: dict[str, Any] = {"Error": {"Code": "ConditionalCheckFailedException"}}
        if self.in_failure:
            failure["Item"] = self.item
        raise ClientError(failure, "PutItem")

    async def transact_write_items(self, **kwargs: Any) -> None:
        reasons: list[dict[str, Any]] = [{"Code": "ConditionalCheckFailed"}]
        if self.in_failure:
            reasons[0]["Item"] = self.item
        reasons += [{"Code": "None"}] * (len(kwargs["TransactItems"]) - 1)
        failure = {"Error": {"Code": "TransactionCanceledException"}}
        raise ClientError({**failure, "CancellationReasons": reasons}, "TransactWriteItems")

    async def get_item(self, **_: Any) -> dict[str, Any]:
        return {"Item": self.item}


@pytest.mark.parametrize("in_failure", [True, False], ids=["ALL_OLD", "read back"])
@pytest.mark.parametrize(
    ("shown", "written", "refusal"),
    [
        # a settled payment's refunds written while another writer's landed
        ((PaymentStatus.SETTLED, 3), PaymentStatus.SETTLED, PixVersionConflict),
        # the record looks untouched: it moved between the write and the read
        ((PaymentStatus.SETTLED, 2), PaymentStatus.SETTLED, PixVersionConflict),
        ((PaymentStatus.PENDING, 2), PaymentStatus.SETTLED, PixVersionConflict),
        # final stays final
        ((PaymentStatus.REJECTED, 2), PaymentStatus.SETTLED, IllegalPixTransition),
        ((PaymentStatus.SETTLED, 2), PaymentStatus.PENDING, IllegalPixTransition),
    ],
)
async def test_a_refused_update_is_named_from_the_record_the_store_shows(
    shown: tuple[PaymentStatus, int],
    written: PaymentStatus,
    refusal: type[Exception],
    in_failure: bool,
) -> None:
    status, version = shown
    client = RefusingClient(a_payment(status, version), in_failure=in_failure)
    repository = DynamoPixPaymentRepository(client, "finbank-pix")
    with pytest.raises(refusal):
        await repository.update(a_payment(written, 2), 2)
