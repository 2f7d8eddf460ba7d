"""One PIX payment's trace, end to end, on real parts: HTTP request -> outbox (PostgreSQL)
-> relay -> Kafka (Tansu) -> settlement worker -> SETTLED -> the DynamoDB Streams Lambda.

The HTTP app, the relay and the worker run in this process as asyncio tasks,
each with its own container (as in ``tests/e2e/test_local_profile.py``); the
payment records live in DynamoDB on moto, whose stream records are handed to
the Lambda's processor on an event loop of its own, as Lambda would. Every
span goes to one ``InMemorySpanExporter``; the test then follows the payment
from its HTTP span by parent ids and links (``docs/operations.md``, "Traces").
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from finbank.runtime import PixSettlementWorker, run_relay
from finbank_adapters import tracing
from finbank_adapters.aws.dynamo_effects import DynamoEffectLog
from finbank_adapters.aws.dynamo_schema import create_tables
from finbank_adapters.aws.lambda_handlers import PAYMENT_STATUS_CHANGED, PixStreamProcessor
from finbank_adapters.aws_wiring import open_dynamodb_client
from finbank_adapters.containers import build_container
from finbank_adapters.kafka import KafkaSettings, RetryPolicy
from finbank_adapters.kafka.clients import create_topics, open_producer
from finbank_adapters.kafka.relay import OutboxRelay
from finbank_adapters.memory import InMemoryEventPublisher
from finbank_adapters.postgres import PostgresEventPublisher, PostgresOutbox
from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_adapters.settings import Settings
from finbank_adapters.system import SystemClock
from finbank_core.pix.events import PAYMENT_REQUESTED, PAYMENT_SETTLED
from finbank_core.shared.events import (
    AUTH_TOPIC,
    LEDGER_TOPIC,
    PIX_TOPIC,
    EventEnvelope,
    decode_event,
)
from finbank_http import create_app
from tests.e2e.test_local_profile import funded_account, local_settings, log_in, poll_status
from tests.integration.aws_fixtures import aws_endpoint
from tests.integration.dynamo_support import dynamodb_client, read_stream
from tests.integration.kafka_fixtures import kafka_broker, kafka_test_settings, read_topics
from tests.postgres_support import isolated_schema, require_postgres
from tests.support_redis import open_test_redis

pytestmark = pytest.mark.services
__all__ = ["aws_endpoint", "kafka_broker"]  # fixtures

DEADLINE_SECONDS = 60.0


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process (HTTP, relay, worker, Lambda), spans kept in memory."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    monkeypatch.setenv("FINBANK_TRACING", "otel")  # the HTTP app reads it when built
    tracing.reset_for_tests(provider)
    try:
        yield spans
    finally:
        tracing.reset_for_tests()
        provider.shutdown()


@dataclass
class TracedStack:
    settings: Settings
    kafka: KafkaSettings
    endpoint: str
    table: str
    worker: PixSettlementWorker
    client: AsyncTestClient[Any]


@pytest.fixture
async def stack(
    exporter: InMemorySpanExporter, aws_endpoint: str, kafka_broker: Any
) -> AsyncIterator[TracedStack]:
    require_postgres()
    kafka = kafka_test_settings(kafka_broker.bootstrap)
    table = f"pix-{uuid.uuid4().hex[:12]}"
    async with isolated_schema() as (_pool, schema), open_test_redis() as (_redis, prefix):
        settings = local_settings(schema, prefix, aws_endpoint, table, kafka, "dynamodb")
        async with open_dynamodb_client(settings) as dynamodb:
            await create_tables(dynamodb, table)
        await create_topics(kafka, [PIX_TOPIC, LEDGER_TOPIC, AUTH_TOPIC])
        stop = asyncio.Event()
        worker = PixSettlementWorker(
            settings,
            kafka=kafka,
            retry=RetryPolicy(attempts=3, base_delay_seconds=0.05, max_delay_seconds=0.5),
            group_id=f"pix-settlement-{uuid.uuid4().hex[:8]}",
        )
        tasks = [
            asyncio.create_task(run_relay(settings, stop)),
            asyncio.create_task(worker.run(stop)),
        ]
        try:
            async with asyncio.timeout(DEADLINE_SECONDS):
                await worker.ready.wait()
            app = create_app(build_container(settings))
            async with AsyncTestClient(app=app) as client:
                yield TracedStack(settings, kafka, aws_endpoint, table, worker, client)
        finally:
            stop.set()
            await asyncio.gather(*tasks)


# -- reading the exported spans -------------------------------------------------------


def attribute(span: ReadableSpan, name: str) -> Any:
    return (span.attributes or {}).get(name)


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def linked_ids(span: ReadableSpan) -> set[int]:
    return {link.context.span_id for link in span.links}


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    value: int = span.context.span_id
    return value


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    value: int = span.context.trace_id
    return value


def started(span: ReadableSpan) -> int:
    assert span.start_time is not None
    return span.start_time


def ended(span: ReadableSpan) -> int:
    assert span.end_time is not None
    return span.end_time


def the_one(spans: list[ReadableSpan], what: str, **conditions: Any) -> ReadableSpan:
    """The single span named ``what`` whose attributes (and ``parent=``) match."""
    parent = conditions.pop("parent", None)
    found = [
        s
        for s in spans
        if s.name == what
        and all(attribute(s, k.replace("__", ".")) == v for k, v in conditions.items())
        and (parent is None or parent_id(s) == span_id(parent))
    ]
    assert len(found) == 1, f"{what} {conditions}: {[(s.name, s.attributes) for s in found]}"
    return found[0]


def is_descendant(span: ReadableSpan, ancestor: ReadableSpan, spans: list[ReadableSpan]) -> bool:
    by_id = {span_id(s): s for s in spans}
    current: ReadableSpan | None = span
    while current is not None and current.parent is not None:
        if current.parent.span_id == span_id(ancestor):
            return True
        current = by_id.get(current.parent.span_id)
    return False


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {DEADLINE_SECONDS} s waiting for {what}")
        await asyncio.sleep(0.05)


def run_lambda(endpoint: str, table: str, records: list[dict[str, Any]]) -> Any:
    """The stream Lambda's processor over ``records``, on an event loop of its own."""
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    try:
        client = loop.run_until_complete(stack.enter_async_context(dynamodb_client(endpoint)))
        publisher = InMemoryEventPublisher()
        effects = DynamoEffectLog(client, table, "pix-stream", SystemClock())
        response = PixStreamProcessor(publisher, effects, loop).process_batch(
            {"Records": copy.deepcopy(records)}
        )
        return response, publisher
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()


# -- the test -------------------------------------------------------------------------


async def test_one_payment_is_one_trace_from_the_request_to_the_stream_lambda(
    stack: TracedStack, exporter: InMemorySpanExporter
) -> None:
    client = stack.client
    headers = await log_in(client, f"ana-{secrets.token_hex(4)}")
    account_id = await funded_account(client, headers)
    response = await client.post(
        "/v1/pix/payments",
        json={"account_id": account_id, "key": PEER_KEY_EMAIL, "amount": "12.34"},
        headers={**headers, "Idempotency-Key": f"pay-{secrets.token_hex(4)}"},
    )
    assert response.status_code == 201, response.text
    e2e: str = response.json()["end_to_end_id"]
    await poll_status(client, headers, e2e, "SETTLED")

    def spans() -> list[ReadableSpan]:
        return list(exporter.get_finished_spans())

    def processed(event_type: str) -> bool:
        return any(
            s.name == f"process {stack.kafka.topic(PIX_TOPIC)}"
            and attribute(s, "finbank.event.type") == event_type
            and attribute(s, "messaging.consumer.group.name") == stack.worker.group_id
            for s in spans()
        )

    # the outcome event went out too, and came back to the worker (which skips it)
    await wait_for(lambda: processed(PAYMENT_SETTLED), "pix.payment_settled to be consumed")

    # -- the HTTP request and the event it appended
    finished = spans()
    requested = the_one(finished, f"create {PIX_TOPIC}", finbank__event__type=PAYMENT_REQUESTED)
    assert requested.kind is SpanKind.PRODUCER
    the_trace = trace_id(requested)
    mine = [s for s in finished if trace_id(s) == the_trace]
    (request,) = [s for s in mine if s.parent is None]  # the trace's root
    assert request.kind is SpanKind.SERVER
    assert request.name.startswith("POST /v1/pix/payments")
    assert is_descendant(requested, request, mine)
    event_id = attribute(requested, "messaging.message.id")
    topic = stack.kafka.topic(PIX_TOPIC)

    # -- the relay: a send span per item, a child of the creation context, linked to it
    sent = the_one(mine, f"send {topic}", messaging__message__id=event_id)
    assert sent.kind is SpanKind.CLIENT
    assert parent_id(sent) == span_id(requested)
    assert linked_ids(sent) == {span_id(requested)}
    assert attribute(sent, "messaging.operation.type") == "publish"

    # -- the worker: process (consumer), then the use case, both in the trace
    process = the_one(
        mine,
        f"process {topic}",
        messaging__message__id=event_id,
        messaging__consumer__group__name=stack.worker.group_id,
    )
    assert process.kind is SpanKind.CONSUMER
    assert parent_id(process) == span_id(requested)
    assert linked_ids(process) == {span_id(requested)}
    settle = the_one(mine, "SettlePixPayment", parent=process)
    assert attribute(settle, "messaging.message.id") == event_id

    # -- the outcome: created inside the settlement, relayed and consumed in the same trace
    outcome = the_one(mine, f"create {PIX_TOPIC}", finbank__event__type=PAYMENT_SETTLED)
    assert is_descendant(outcome, settle, mine)
    outcome_id = attribute(outcome, "messaging.message.id")
    outcome_sent = the_one(mine, f"send {topic}", messaging__message__id=outcome_id)
    assert parent_id(outcome_sent) == span_id(outcome)
    outcome_process = the_one(
        mine,
        f"process {topic}",
        messaging__message__id=outcome_id,
        messaging__consumer__group__name=stack.worker.group_id,
    )
    assert parent_id(outcome_process) == span_id(outcome)

    # -- causal order: each step starts after the one it follows has begun (or ended)
    assert started(request) <= started(requested)
    assert ended(requested) <= started(sent)  # the relay claims committed rows only
    assert started(process) >= started(sent)
    assert started(process) <= started(settle)
    assert started(settle) <= started(outcome) <= ended(settle)

    # -- the DynamoDB Streams Lambda, fed the records of this payment
    async with dynamodb_client(stack.endpoint) as dynamo:
        records = await read_stream(stack.endpoint, dynamo, stack.table)
    mine_records = [
        r
        for r in records
        if r["dynamodb"]["Keys"] == {"pk": {"S": f"PAY#{e2e}"}, "sk": {"S": "PAY"}}
    ]
    assert [r["eventName"] for r in mine_records] == ["INSERT", "MODIFY"]
    settled_image = mine_records[-1]["dynamodb"]["NewImage"]
    assert settled_image["traceparent"]["S"].split("-")[1] == f"{the_trace:032x}"
    response_body, publisher = await asyncio.to_thread(
        run_lambda, stack.endpoint, stack.table, mine_records
    )
    assert response_body == {"batchItemFailures": []}
    changes = publisher.of_type(PAYMENT_STATUS_CHANGED)
    assert [c.payload["status"] for c in changes] == ["PENDING", "SETTLED"]

    finished = spans()
    lambda_spans = [
        s for s in finished if s.name == "process pix-stream" and trace_id(s) == the_trace
    ]
    assert len(lambda_spans) == 2  # the INSERT (written in the request) and the MODIFY
    on_insert, on_modify = sorted(lambda_spans, key=lambda s: s.start_time or 0)
    assert on_insert.kind is on_modify.kind is SpanKind.CONSUMER
    assert is_descendant(on_insert, request, finished)
    # the settled version was written inside the settlement: the Lambda continues from it
    assert parent_id(on_modify) == span_id(settle)
    assert linked_ids(on_modify) == {span_id(settle)}
    # and the event it published carries its own creation context on, in the same trace
    published = the_one(
        [s for s in finished if trace_id(s) == the_trace],
        f"create {PIX_TOPIC}",
        messaging__message__id=str(changes[-1].event_id),
    )
    assert parent_id(published) == span_id(on_modify)
    carried = changes[-1].header(tracing.TRACEPARENT)
    assert carried is not None
    assert carried.split("-")[1:3] == [f"{the_trace:032x}", f"{span_id(published):016x}"]


async def test_the_relay_puts_the_creation_context_in_the_kafka_record_headers(
    exporter: InMemorySpanExporter, kafka_broker: Any
) -> None:
    """On a real broker: a traced event's record carries ``traceparent``/``tracestate``;
    an untraced one's record has the headers it always had, no more."""
    require_postgres()
    kafka = kafka_test_settings(kafka_broker.bootstrap)
    await create_topics(kafka, [PIX_TOPIC])
    traced = EventEnvelope(
        event_id=uuid.uuid4(),
        type=PAYMENT_REQUESTED,
        version=1,
        occurred_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        aggregate_id="E1",
    ).with_headers({"tracestate": "vendor=1"})
    untraced = msgspec.structs.replace(traced, event_id=uuid.uuid4(), headers=msgspec.UNSET)
    async with isolated_schema() as (pool, _schema):
        tracer = tracing.tracer_provider().get_tracer("test")
        with tracer.start_as_current_span("POST /v1/pix/payments"):
            await PostgresEventPublisher(pool).publish([traced])
        tracing.reset_for_tests()  # a writer with tracing off
        await PostgresEventPublisher(pool).publish([untraced])
        async with open_producer(kafka) as producer:
            relay = OutboxRelay(
                PostgresOutbox(pool, SystemClock()), producer, topic_prefix=kafka.topic_prefix
            )
            assert await relay.relay_batch() == 2
    records = await read_topics(kafka, [kafka.topic(PIX_TOPIC)])
    by_event = {dict(r.headers)["event_id"].decode(): dict(r.headers) for r in records}
    stored = decode_event(
        next(
            r.value for r in records if dict(r.headers)["event_id"] == str(traced.event_id).encode()
        )
    )
    traced_headers = by_event[str(traced.event_id)]
    assert traced_headers["traceparent"].decode() == stored.header("traceparent")
    assert traced_headers["tracestate"] == b"vendor=1"
    assert sorted(by_event[str(untraced.event_id)]) == ["event_id", "type", "version"]
