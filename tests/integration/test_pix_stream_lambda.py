"""The DynamoDB Streams Lambda on real stream records: records written to moto, read back
from moto's stream (``dynamodbstreams``), handed to the handler as Lambda would.

The tests are synchronous like Lambda itself: the handler runs its own event
loop, which the test's aioboto3 clients share.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from finbank import lambdas
from finbank.lambdas import pix_stream_handler
from finbank_adapters.aws.dynamo import DynamoPixPaymentRepository
from finbank_adapters.aws.dynamo_effects import DynamoEffectLog
from finbank_adapters.aws.lambda_handlers import PAYMENT_STATUS_CHANGED, PixStreamProcessor
from finbank_adapters.memory import InMemoryEventPublisher
from finbank_adapters.system import SystemClock
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.events import EventEnvelope
from tests.contract.test_pix_repository_contract import T0, payment
from tests.integration.aws_fixtures import aws_endpoint
from tests.integration.dynamo_support import dynamodb_client, new_table, read_stream

pytestmark = pytest.mark.services
__all__ = ["aws_endpoint"]  # fixture


class FlakyPublisher(InMemoryEventPublisher):
    """Records what it publishes; refuses the first ``failures`` attempts for one payment."""

    def __init__(self, failing_aggregate: str | None = None, failures: int = 0) -> None:
        super().__init__()
        self._failing = failing_aggregate
        self._failures_left = failures

    async def publish(self, events: Sequence[EventEnvelope]) -> None:
        if self._failures_left and any(e.aggregate_id == self._failing for e in events):
            self._failures_left -= 1
            raise ServiceUnavailable("the outbox is down")
        await super().publish(events)


@dataclass
class StreamWorld:
    loop: asyncio.AbstractEventLoop
    endpoint: str
    client: Any
    table: str
    repository: DynamoPixPaymentRepository

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def processor(self, publisher: InMemoryEventPublisher) -> PixStreamProcessor:
        effects = DynamoEffectLog(self.client, self.table, "pix-stream", SystemClock())
        return PixStreamProcessor(publisher, effects, self.loop)

    def stream(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self.run(
            read_stream(self.endpoint, self.client, self.table)
        )
        return records

    def write_history(self) -> dict[str, str]:
        """A settled, a rejected and a pending payment; returns e2e ids by name."""
        repository = self.repository

        async def write() -> dict[str, str]:
            settled = await repository.add(payment(1))
            await repository.update(settled.settle(T0), settled.version)
            rejected = await repository.add(payment(2))
            await repository.update(rejected.reject(IsoReason.AC07, T0), rejected.version)
            pending = await repository.add(payment(3, key="k3"))
            return {
                "settled": settled.end_to_end_id,
                "rejected": rejected.end_to_end_id,
                "pending": pending.end_to_end_id,
            }

        ids: dict[str, str] = self.run(write())
        return ids


@pytest.fixture
def world(aws_endpoint: str) -> Iterator[StreamWorld]:
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    try:
        client = loop.run_until_complete(stack.enter_async_context(dynamodb_client(aws_endpoint)))
        table = loop.run_until_complete(stack.enter_async_context(new_table(client)))
        yield StreamWorld(
            loop, aws_endpoint, client, table, DynamoPixPaymentRepository(client, table)
        )
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()


def event_of(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": copy.deepcopy(records)}


def sequence(record: dict[str, Any]) -> str:
    value: str = record["dynamodb"]["SequenceNumber"]
    return value


def payment_records(records: list[dict[str, Any]], e2e: str) -> list[dict[str, Any]]:
    return [
        r
        for r in records
        if r["dynamodb"]["Keys"] == {"pk": {"S": f"PAY#{e2e}"}, "sk": {"S": "PAY"}}
    ]


def failures(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def changes(publisher: InMemoryEventPublisher) -> list[tuple[str, str, str]]:
    """(e2e, previous status or "-" for a new record, status) per published change."""
    return [
        (e.aggregate_id, e.payload["previous_status"] or "-", e.payload["status"])
        for e in publisher.of_type(PAYMENT_STATUS_CHANGED)
    ]


def test_each_status_change_becomes_one_event_and_a_redelivered_batch_changes_nothing(
    world: StreamWorld,
) -> None:
    ids = world.write_history()
    records = world.stream()
    assert len(records) > 5  # index and idempotency items are in the stream too
    publisher = InMemoryEventPublisher()
    processor = world.processor(publisher)

    assert failures(processor.process_batch(event_of(records))) == []
    assert sorted(changes(publisher)) == sorted(
        [
            (ids["settled"], "-", "PENDING"),
            (ids["settled"], "PENDING", "SETTLED"),
            (ids["rejected"], "-", "PENDING"),
            (ids["rejected"], "PENDING", "REJECTED"),
            (ids["pending"], "-", "PENDING"),
        ]
    )
    settled_event = next(e for e in publisher.published if e.payload["status"] == "SETTLED")
    assert settled_event.payload["amount_cents"] == 10_01
    assert settled_event.payload["record_version"] == 2

    assert failures(processor.process_batch(event_of(records))) == []
    assert len(publisher.published) == 5  # the redelivery found every effect recorded


def test_a_failing_record_reports_itself_and_its_items_later_records_and_the_retry_completes(
    world: StreamWorld,
) -> None:
    ids = world.write_history()
    records = world.stream()
    settled_records = payment_records(records, ids["settled"])
    assert [r["eventName"] for r in settled_records] == ["INSERT", "MODIFY"]
    publisher = FlakyPublisher(failing_aggregate=ids["settled"], failures=1)
    processor = world.processor(publisher)

    first = processor.process_batch(event_of(records))

    # the INSERT failed; the MODIFY of the same item was held back to keep the order
    assert failures(first) == [sequence(r) for r in settled_records]
    assert sorted(changes(publisher)) == sorted(
        [
            (ids["rejected"], "-", "PENDING"),
            (ids["rejected"], "PENDING", "REJECTED"),
            (ids["pending"], "-", "PENDING"),
        ]
    )
    # Lambda retries from the lowest failed sequence number: other items' records come again
    lowest = min(failures(first), key=int)
    retry = [r for r in records if int(sequence(r)) >= int(lowest)]
    assert len(retry) > len(settled_records)

    assert failures(processor.process_batch(event_of(retry))) == []
    assert changes(publisher)[-2:] == [
        (ids["settled"], "-", "PENDING"),
        (ids["settled"], "PENDING", "SETTLED"),
    ]
    event_ids = [e.event_id for e in publisher.published]
    assert len(event_ids) == len(set(event_ids)) == 5  # no effect applied twice


def test_a_poisoned_record_keeps_failing_alone_with_its_items_later_records(
    world: StreamWorld,
) -> None:
    ids = world.write_history()
    records = world.stream()
    poisoned = payment_records(records, ids["rejected"])
    poisoned[0]["dynamodb"]["NewImage"]["body"] = {"S": '{"end_to_end_id": 42'}
    publisher = InMemoryEventPublisher()
    processor = world.processor(publisher)

    for _ in range(2):  # Lambda retries it until the mapping's limits park it
        response = processor.process_batch(event_of(records))
        assert failures(response) == [sequence(r) for r in poisoned]
    assert sorted(changes(publisher)) == sorted(
        [
            (ids["settled"], "-", "PENDING"),
            (ids["settled"], "PENDING", "SETTLED"),
            (ids["pending"], "-", "PENDING"),
        ]
    )


def metric_total(emf: list[dict[str, Any]], name: str) -> float:
    """Sum of one metric over EMF documents (a value, or a list of values per document)."""
    total = 0.0
    for document in emf:
        value = document.get(name, 0)
        total += sum(value) if isinstance(value, list) else value
    return total


def test_the_lambda_entry_point_reuses_one_loop_and_emits_metrics(
    world: StreamWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world.write_history()
    records = world.stream()
    monkeypatch.setenv("FINBANK_PIX_BACKEND", "dynamodb")
    monkeypatch.setenv("FINBANK_PIX_TABLE_NAME", world.table)
    monkeypatch.setenv("FINBANK_AWS_ENDPOINT_URL", world.endpoint)
    monkeypatch.setenv("FINBANK_AWS_REGION", "sa-east-1")
    lambdas.reset_runtime()
    try:
        assert failures(pix_stream_handler(event_of(records), None)) == []
        runtime = lambdas.current_runtime()
        loop = runtime.loop
        assert failures(pix_stream_handler(event_of(records), None)) == []
        assert lambdas.current_runtime().loop is loop  # warm invocation, same loop
        publisher = runtime.publisher
        assert isinstance(publisher, InMemoryEventPublisher)
        assert len(publisher.of_type(PAYMENT_STATUS_CHANGED)) == 5
    finally:
        lambdas.reset_runtime()
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert metric_total(emf, "StreamRecordProcessed") == 5  # first invocation
    assert metric_total(emf, "StreamRecordDuplicate") == 5  # the redelivery
    assert all(m["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "finbank" for m in emf)


def test_the_entry_point_reads_the_application_secret_at_cold_start(
    world: StreamWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table name comes only from the secret: the handler finds it, so it read the secret."""
    import boto3

    ids = world.write_history()
    records = world.stream()
    secret_id = f"finbank/test/{world.table}"
    boto3.client(
        "secretsmanager", region_name="sa-east-1", endpoint_url=world.endpoint
    ).create_secret(Name=secret_id, SecretString=json.dumps({"pix_table_name": world.table}))
    monkeypatch.setenv("FINBANK_PIX_BACKEND", "dynamodb")
    monkeypatch.setenv("FINBANK_AWS_ENDPOINT_URL", world.endpoint)
    monkeypatch.setenv("FINBANK_AWS_REGION", "sa-east-1")
    monkeypatch.setenv("FINBANK_SECRETS_ID", secret_id)
    # the secret writes FINBANK_PIX_TABLE_NAME into os.environ: monkeypatch removes it after
    monkeypatch.setenv("FINBANK_PIX_TABLE_NAME", "placeholder")
    monkeypatch.delenv("FINBANK_PIX_TABLE_NAME")
    lambdas.reset_runtime()
    try:
        assert failures(pix_stream_handler(event_of(records), None)) == []
        runtime = lambdas.current_runtime()
        assert runtime.container.infra.settings().pix.table_name == world.table
        publisher = runtime.publisher
        assert isinstance(publisher, InMemoryEventPublisher)
        assert {e.aggregate_id for e in publisher.of_type(PAYMENT_STATUS_CHANGED)} == set(
            ids.values()
        )
    finally:
        lambdas.reset_runtime()
