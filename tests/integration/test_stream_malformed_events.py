"""The PIX stream Lambda on events Lambda should not send, and on empty ones.

Powertools raised ``UnexpectedBatchTypeError`` for an event without records, and a
record without its ``dynamodb`` part made Powertools' failure report raise
``AttributeError`` (it reads the failed record's sequence number there), failing the
whole invocation unreported. Now: no records is an empty success; ``Records`` that is
not a list is a :class:`MalformedStreamEvent`; a record without ``dynamodb`` fails alone
(a null identifier, as for any record without a sequence number) and the others of the
batch are processed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from finbank_adapters.aws.lambda_handlers import PAYMENT_STATUS_CHANGED, MalformedStreamEvent
from tests.contract.test_pix_repository_contract import T0, payment
from tests.integration.test_pix_stream_samples import (
    SAMPLES,
    failed,
    load,
    payment_record,
    processor,
)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def settlement(number: int, sequence: str) -> dict[str, Any]:
    """A finbank payment's PENDING -> SETTLED change, as a MODIFY stream record."""
    sample = next(
        r
        for r in load(SAMPLES / "samcli_DynamoDBUpdate.json")["Records"]
        if r["eventName"] == "MODIFY"
    )
    pending = payment(number)
    record = payment_record(sample, "NEW_AND_OLD_IMAGES", pending.settle(T0), pending)
    record["dynamodb"]["SequenceNumber"] = sequence
    return record


@pytest.mark.parametrize(
    "event", [{}, {"Records": None}, {"Records": []}], ids=["no-records", "null", "empty"]
)
def test_an_event_without_records_is_an_empty_success(
    event: dict[str, Any], loop: asyncio.AbstractEventLoop
) -> None:
    stream, publisher = processor(loop)
    assert stream.process_batch(event) == {"batchItemFailures": []}
    assert publisher.published == []


@pytest.mark.parametrize(
    "event",
    [{"Records": "abc"}, {"Records": {"0": {}}}, {"Records": 1}, ["x"]],
    ids=["string", "object", "number", "event-is-a-list"],
)
def test_records_that_are_not_a_list_are_a_clear_error(
    event: Any, loop: asyncio.AbstractEventLoop
) -> None:
    stream, publisher = processor(loop)
    with pytest.raises(MalformedStreamEvent, match="must be"):
        stream.process_batch(event)
    assert publisher.published == []


@pytest.mark.parametrize(
    "malformed",
    [
        {"eventID": "1", "eventName": "MODIFY"},
        {"eventID": "1", "eventName": "MODIFY", "dynamodb": None},
        {"eventID": "1", "eventName": "MODIFY", "dynamodb": "not an object"},
        "not a record",
    ],
    ids=["no-dynamodb", "null-dynamodb", "string-dynamodb", "record-is-a-string"],
)
def test_a_record_without_its_dynamodb_part_fails_alone(
    malformed: Any, loop: asyncio.AbstractEventLoop
) -> None:
    stream, publisher = processor(loop)
    first, last = settlement(1, "100"), settlement(2, "300")

    response = stream.process_batch({"Records": [first, malformed, last]})

    # the record's own failure, in the processor's shape; it has no sequence number
    assert response == {"batchItemFailures": [{"itemIdentifier": None}]}
    assert failed(response) == [None]
    published = publisher.of_type(PAYMENT_STATUS_CHANGED)
    assert [e.aggregate_id for e in published] == [
        payment(1).end_to_end_id,
        payment(2).end_to_end_id,
    ]
