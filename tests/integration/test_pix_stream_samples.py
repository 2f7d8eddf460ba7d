"""The PIX stream Lambda on DynamoDB Streams events as AWS's own repositories publish them
(``tests/integration/data/aws_samples``, sources in its README): it processes records of
the ``NEW_AND_OLD_IMAGES`` view and refuses every other view, naming it, publishing nothing.

No server: the samples' items are not finbank's (their keys are not ``pk``/``sk``), so the
records the handler accepts are skipped; a finbank payment record dressed in a sample's
envelope shows what a wrong view would have done to a real change.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from finbank_adapters.aws.dynamo import encode_payment
from finbank_adapters.aws.lambda_handlers import (
    PAYMENT_STATUS_CHANGED,
    REQUIRED_VIEW,
    PixStreamProcessor,
    UnsupportedStreamView,
    check_stream_view,
)
from finbank_adapters.memory import InMemoryEventPublisher
from finbank_core.pix.payments import PixPayment
from tests.contract.test_pix_repository_contract import T0, payment

SAMPLES = Path(__file__).parent / "data" / "aws_samples"
FILES = sorted(SAMPLES.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))  # BOMs kept
    return event


def view_of(record: dict[str, Any]) -> str | None:
    view: str | None = record.get("dynamodb", {}).get("StreamViewType")
    return view


class MemoryEffects:
    def __init__(self) -> None:
        self.done_ids: set[str] = set()

    async def done(self, effect_id: str) -> bool:
        return effect_id in self.done_ids

    async def record(self, effect_id: str) -> None:
        self.done_ids.add(effect_id)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def processor(
    loop: asyncio.AbstractEventLoop,
) -> tuple[PixStreamProcessor, InMemoryEventPublisher]:
    publisher = InMemoryEventPublisher()
    return PixStreamProcessor(publisher, MemoryEffects(), loop), publisher


def failed(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def test_the_samples_cover_every_stream_view_and_every_event_name() -> None:
    records = [r for path in FILES for r in load(path)["Records"]]
    assert len(FILES) == 11
    assert {view_of(r) for r in records} == {
        "NEW_AND_OLD_IMAGES",
        "NEW_IMAGE",
        "OLD_IMAGE",
        "KEYS_ONLY",
    }
    assert {r["eventName"] for r in records} == {"INSERT", "MODIFY", "REMOVE"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_each_sample_is_processed_or_refused_by_its_stream_view(
    path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    event = load(path)
    records = event["Records"]
    stream, publisher = processor(loop)

    response = stream.process_batch(copy.deepcopy(event))

    refused = [r["dynamodb"]["SequenceNumber"] for r in records if view_of(r) != REQUIRED_VIEW]
    # every record of another view is refused; the others (not finbank items) are skipped,
    # except that one refused record holds back the later records of its item
    held_back_or_refused = set(failed(response))
    assert set(refused) <= held_back_or_refused
    keys_of_refused = {
        json.dumps(r["dynamodb"]["Keys"], sort_keys=True)
        for r in records
        if r["dynamodb"]["SequenceNumber"] in refused
    }
    for record in records:
        sequence = record["dynamodb"]["SequenceNumber"]
        if sequence in held_back_or_refused and sequence not in refused:
            assert json.dumps(record["dynamodb"]["Keys"], sort_keys=True) in keys_of_refused
    if not refused:
        assert failed(response) == []
    assert publisher.published == []  # none of these is a finbank payment record


@pytest.mark.parametrize(
    "record",
    [r for path in FILES for r in load(path)["Records"] if view_of(r) != REQUIRED_VIEW],
    ids=lambda r: f"{r['dynamodb']['StreamViewType']}-{r['eventName']}",
)
def test_the_refusal_names_the_view_it_got_and_the_one_it_needs(record: dict[str, Any]) -> None:
    view = view_of(record)
    with pytest.raises(UnsupportedStreamView) as refused:
        check_stream_view(DynamoDBRecord(record))
    assert refused.value.view == view
    assert f"stream view {view} is not supported" in str(refused.value)
    assert REQUIRED_VIEW in str(refused.value)


def test_a_record_without_a_stream_view_is_refused_too() -> None:
    record = copy.deepcopy(load(SAMPLES / "go_dynamodb-event.json")["Records"][0])
    del record["dynamodb"]["StreamViewType"]
    with pytest.raises(UnsupportedStreamView, match="stream view none stated"):
        check_stream_view(DynamoDBRecord(record))


# -- a finbank payment record in a sample's envelope ----------------------------------------


def payment_record(
    sample: dict[str, Any], view: str, new: PixPayment, old: PixPayment | None
) -> dict[str, Any]:
    """``sample`` (a MODIFY record as AWS publishes it) carrying a finbank payment item."""

    def image(p: PixPayment) -> dict[str, Any]:
        return {
            "pk": {"S": f"PAY#{p.end_to_end_id}"},
            "sk": {"S": "PAY"},
            "version": {"N": str(p.version)},
            "status": {"S": p.status.value},
            "body": {"S": encode_payment(p)},
        }

    record = copy.deepcopy(sample)
    stream = record["dynamodb"]
    stream["Keys"] = {"pk": {"S": f"PAY#{new.end_to_end_id}"}, "sk": {"S": "PAY"}}
    stream["StreamViewType"] = view
    stream.pop("NewImage", None)
    stream.pop("OldImage", None)
    if view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        stream["NewImage"] = image(new)
    if view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and old is not None:
        stream["OldImage"] = image(old)
    return record


@pytest.mark.parametrize("view", ["NEW_IMAGE", "OLD_IMAGE", "KEYS_ONLY"])
def test_a_settlement_under_another_view_is_refused_not_announced_as_a_change_from_nothing(
    view: str, loop: asyncio.AbstractEventLoop
) -> None:
    pending = payment(1)
    settled = pending.settle(T0)
    sample = next(
        r
        for r in load(SAMPLES / "samcli_DynamoDBUpdate.json")["Records"]
        if r["eventName"] == "MODIFY"
    )
    record = payment_record(sample, view, settled, pending)
    stream, publisher = processor(loop)

    response = stream.process_batch({"Records": [record]})

    assert failed(response) == [record["dynamodb"]["SequenceNumber"]]
    assert publisher.published == []


def test_the_same_settlement_under_new_and_old_images_is_one_change_from_pending(
    loop: asyncio.AbstractEventLoop,
) -> None:
    pending = payment(1)
    settled = pending.settle(T0)
    sample = next(
        r
        for r in load(SAMPLES / "samcli_DynamoDBUpdate.json")["Records"]
        if r["eventName"] == "MODIFY"
    )
    record = payment_record(sample, "NEW_AND_OLD_IMAGES", settled, pending)
    stream, publisher = processor(loop)

    assert failed(stream.process_batch({"Records": [record]})) == []

    [event] = publisher.of_type(PAYMENT_STATUS_CHANGED)
    assert (event.payload["previous_status"], event.payload["status"]) == ("PENDING", "SETTLED")
    assert event.aggregate_id == settled.end_to_end_id
