"""The trace context in the event envelope: off by default, stamped by every outbox backend
(memory, PostgreSQL; concurrent writers each keep their own trace), carried into Kafka
record headers, read back by consumers, and exported over OTLP when nothing else is set up.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

import msgspec
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from finbank_adapters import tracing
from finbank_adapters.kafka.publisher import envelope_headers, event_headers
from finbank_adapters.memory import InMemoryEventPublisher
from finbank_adapters.postgres import PostgresEventPublisher
from finbank_core.shared.events import EventEnvelope, decode_event, encode_event
from tests.postgres_support import isolated_schema, require_postgres

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def event(n: int = 1, aggregate: str = "agg-1", **fields: Any) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.UUID(int=n),
        type="pix.payment_requested",
        version=1,
        occurred_at=T0,
        aggregate_id=aggregate,
        payload={"amount_cents": 100 * n},
        **fields,
    )


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing.reset_for_tests(provider)
    try:
        yield spans
    finally:
        tracing.reset_for_tests()
        provider.shutdown()


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    value: int = span.context.span_id
    return value


def trace_of(traceparent: str | None) -> tuple[str, str]:
    """(trace id, span id) of a W3C ``traceparent``."""
    assert traceparent is not None
    version, trace_id, parent_id, flags = traceparent.split("-")
    assert version == "00"
    assert int(flags, 16) & 1  # sampled
    return trace_id, parent_id


# -- off: nothing changes -------------------------------------------------------------


def test_off_by_default_an_envelope_is_byte_for_byte_what_it_was() -> None:
    tracing.reset_for_tests()
    assert not tracing.configure({})
    assert not tracing.active()
    plain = event()
    # the envelope before headers existed: the same fields, in the same order
    assert encode_event(plain) == (
        b'{"event_id":"00000000-0000-0000-0000-000000000001","type":"pix.payment_requested",'
        b'"version":1,"occurred_at":"2026-03-01T12:00:00Z","aggregate_id":"agg-1",'
        b'"correlation_id":null,"payload":{"amount_cents":100}}'
    )
    assert tracing.stamp([plain])[0] is plain
    stamped, creation = tracing.start_creation([plain])
    assert creation is None
    assert stamped[0] is plain
    assert tracing.current_headers() == {}
    assert [name for name, _ in event_headers(plain)] == ["event_id", "type", "version"]
    tracing.reset_for_tests()


async def test_off_the_memory_publisher_keeps_the_events_it_was_given() -> None:
    tracing.reset_for_tests()
    publisher = InMemoryEventPublisher()
    given = [event(1), event(2)]
    await publisher.publish(given)
    assert publisher.published == given
    assert all(e.headers is msgspec.UNSET for e in publisher.published)


def test_headers_round_trip_and_older_readers_ignore_them() -> None:
    carried = event().with_headers({"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"})
    assert decode_event(encode_event(carried)) == carried
    assert carried.header("traceparent") == "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    assert carried.header("tracestate") is None
    assert event().header("traceparent") is None
    assert carried.with_headers({"tracestate": "x=1"}).headers == {
        "traceparent": carried.header("traceparent"),
        "tracestate": "x=1",
    }

    class Before(msgspec.Struct, frozen=True, kw_only=True):
        """The envelope as a consumer built before headers existed decodes it."""

        event_id: uuid.UUID
        type: str
        version: int
        occurred_at: datetime
        aggregate_id: str
        correlation_id: str | None = None
        payload: dict[str, Any] = msgspec.field(default_factory=dict)

    older = msgspec.json.decode(encode_event(carried), type=Before)
    assert (older.event_id, older.payload) == (carried.event_id, carried.payload)


# -- on: every outbox backend stamps the creation context ---------------------------


class Backend(Protocol):
    async def publish(self, events: Sequence[EventEnvelope]) -> None: ...

    async def stored(self) -> list[EventEnvelope]: ...


class MemoryBackend:
    def __init__(self) -> None:
        self.publisher = InMemoryEventPublisher()

    async def publish(self, events: Sequence[EventEnvelope]) -> None:
        await self.publisher.publish(events)

    async def stored(self) -> list[EventEnvelope]:
        return list(self.publisher.published)


class PostgresBackend:
    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.publisher = PostgresEventPublisher(pool)

    async def publish(self, events: Sequence[EventEnvelope]) -> None:
        await self.publisher.publish(events)

    async def stored(self) -> list[EventEnvelope]:
        rows = await self.pool.fetch("SELECT envelope FROM outbox ORDER BY id")
        return [decode_event(row["envelope"]) for row in rows]


@asynccontextmanager
async def open_backend(name: str) -> AsyncIterator[Backend]:
    if name == "memory":
        yield MemoryBackend()
        return
    require_postgres()
    async with isolated_schema(max_size=8) as (pool, _schema):
        yield PostgresBackend(pool)


BACKENDS = ["memory", "postgres"]


@pytest.mark.parametrize("backend_name", BACKENDS)
async def test_each_appended_event_carries_its_own_create_span_under_the_callers_span(
    backend_name: str, exporter: InMemorySpanExporter
) -> None:
    provider = tracing.tracer_provider()
    async with open_backend(backend_name) as backend:
        with provider.get_tracer("test").start_as_current_span("POST /v1/pix/payments") as caller:
            await backend.publish([event(1), event(2, aggregate="agg-2")])
        stored = await backend.stored()

    creates = {
        str((s.attributes or {})["messaging.message.id"]): s
        for s in exporter.get_finished_spans()
        if s.name.startswith("create ")
    }
    assert sorted(creates) == [str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]
    caller_trace = f"{caller.get_span_context().trace_id:032x}"
    for envelope in stored:
        created = creates[str(envelope.event_id)]
        assert created.kind is SpanKind.PRODUCER
        assert created.name == "create finbank.pix.v1"
        assert created.parent is not None
        assert created.parent.span_id == caller.get_span_context().span_id
        assert trace_of(envelope.header("traceparent")) == (
            caller_trace,
            f"{span_id(created):016x}",
        )
        assert created.attributes is not None
        assert created.attributes["messaging.destination.name"] == "finbank.pix.v1"
        assert created.attributes["messaging.operation.type"] == "create"


@pytest.mark.parametrize("backend_name", BACKENDS)
async def test_an_event_that_carries_a_creation_context_keeps_it_and_gets_no_create_span(
    backend_name: str, exporter: InMemorySpanExporter
) -> None:
    given = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"
    async with open_backend(backend_name) as backend:
        await backend.publish([event(1).with_headers({"traceparent": given, "tracestate": "k=v"})])
        (stored,) = await backend.stored()
    assert stored.headers == {"traceparent": given, "tracestate": "k=v"}
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize("backend_name", BACKENDS)
async def test_concurrent_writers_each_stamp_their_own_trace_and_every_event_is_stored_once(
    backend_name: str, exporter: InMemorySpanExporter
) -> None:
    tracer = tracing.tracer_provider().get_tracer("test")
    writers = 40
    traces: dict[str, str] = {}  # event id -> the writer's trace id

    async def writer(n: int, backend: Backend) -> None:
        with tracer.start_as_current_span(f"request {n}") as request:
            traces[str(uuid.UUID(int=n))] = f"{request.get_span_context().trace_id:032x}"
            await asyncio.sleep(0)  # let the writers interleave
            # every writer on one aggregate: the outbox's per-aggregate lock is contended too
            await backend.publish([event(n, aggregate="agg-shared")])

    async with open_backend(backend_name) as backend:
        await asyncio.gather(*(writer(n, backend) for n in range(1, writers + 1)))
        stored = await backend.stored()

    assert sorted(str(e.event_id) for e in stored) == sorted(traces)  # each once
    for envelope in stored:
        assert trace_of(envelope.header("traceparent"))[0] == traces[str(envelope.event_id)]
    assert len(traces) == len(set(traces.values())) == writers
    create_spans = [s for s in exporter.get_finished_spans() if s.name.startswith("create ")]
    assert len(create_spans) == writers


async def test_a_failed_append_ends_its_create_spans_failed_by_type_only(
    exporter: InMemorySpanExporter,
) -> None:
    require_postgres()
    async with isolated_schema() as (pool, _schema):
        publisher = PostgresEventPublisher(pool)
        await pool.execute("DROP FUNCTION outbox_append")  # the append cannot succeed
        with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the driver raises
            await publisher.publish([event(1)])
    (created,) = exporter.get_finished_spans()
    assert created.status.status_code is StatusCode.ERROR
    assert created.attributes is not None
    assert created.attributes["error.type"]
    assert created.events == ()  # no exception event: its message could carry data


# -- the relay's record headers, the consumer's span --------------------------------


def test_the_record_headers_carry_the_envelopes_trace_context(
    exporter: InMemorySpanExporter,
) -> None:
    (stamped,) = tracing.stamp([event()])
    stamped = stamped.with_headers({"tracestate": "vendor=1"})
    headers = dict(envelope_headers(encode_event(stamped)))
    assert headers["traceparent"].decode() == stamped.header("traceparent")
    assert headers["tracestate"] == b"vendor=1"
    assert envelope_headers(encode_event(stamped)) == event_headers(stamped)
    # a header-less envelope gets the headers it always had, no more
    assert [name for name, _ in envelope_headers(encode_event(event()))] == [
        "event_id",
        "type",
        "version",
    ]


def test_a_relay_send_span_is_a_child_of_and_linked_to_the_creation_context(
    exporter: InMemorySpanExporter,
) -> None:
    (stamped,) = tracing.stamp([event()])
    (created,) = exporter.get_finished_spans()
    loop = asyncio.new_event_loop()
    try:
        ok: asyncio.Future[object] = loop.create_future()
        sent = tracing.start_send("t.finbank.pix.v1", encode_event(stamped))
        tracing.end_send(sent, ok)
        ok.set_result(None)
        failed: asyncio.Future[object] = loop.create_future()
        tracing.end_send(tracing.start_send("t.finbank.pix.v1", encode_event(stamped)), failed)
        failed.set_exception(TimeoutError("the broker did not answer"))
        loop.run_until_complete(asyncio.sleep(0))  # run the done callbacks
    finally:
        loop.close()
    sends = [s for s in exporter.get_finished_spans() if s.name == "send t.finbank.pix.v1"]
    assert len(sends) == 2
    for send in sends:
        assert send.kind is SpanKind.CLIENT
        assert send.parent is not None
        assert send.parent.span_id == span_id(created)
        assert [link.context.span_id for link in send.links] == [span_id(created)]
    assert [s.status.status_code for s in sends] == [StatusCode.UNSET, StatusCode.ERROR]
    assert sends[1].attributes is not None
    assert sends[1].attributes["error.type"] == "TimeoutError"


def test_a_consumer_reads_the_record_headers_when_the_envelope_has_none(
    exporter: InMemorySpanExporter,
) -> None:
    tracer = tracing.tracer_provider().get_tracer("test")
    producer_side = "00-" + "e" * 32 + "-" + "f" * 16 + "-01"
    with tracer.start_as_current_span("the poll loop"):  # not the parent of what it handles
        with tracing.processing(
            event(),
            [("event_id", b"x"), ("traceparent", producer_side.encode())],
            topic="finbank.pix.v1",
            group="g",
            partition=3,
            offset=7,
        ):
            pass
        with tracing.processing(event(), [], topic="finbank.pix.v1", group="g"):
            pass
    from_headers, orphan = (
        s for s in exporter.get_finished_spans() if s.name.startswith("process")
    )
    assert from_headers.kind is SpanKind.CONSUMER
    assert from_headers.context is not None
    assert from_headers.parent is not None
    assert f"{from_headers.context.trace_id:032x}" == "e" * 32
    assert f"{from_headers.parent.span_id:016x}" == "f" * 16
    assert from_headers.attributes is not None
    assert from_headers.attributes["messaging.destination.partition.id"] == "3"
    assert from_headers.attributes["messaging.kafka.offset"] == 7
    # no creation context at all: a trace of its own, not the poll loop's child
    assert orphan.parent is None
    assert orphan.links == ()


def test_a_failing_handler_ends_its_process_span_failed_without_the_message(
    exporter: InMemorySpanExporter,
) -> None:
    (stamped,) = tracing.stamp([event()])
    with pytest.raises(ValueError, match="CPF 123"):  # noqa: SIM117
        with tracing.processing(stamped, topic="finbank.pix.v1", group="g"):
            raise ValueError("CPF 123")
    (process,) = (s for s in exporter.get_finished_spans() if s.name.startswith("process"))
    assert process.status.status_code is StatusCode.ERROR
    assert process.status.description == "ValueError"
    assert process.events == ()
    assert "CPF" not in json.dumps(dict(process.attributes or {}))


# -- configuration and export ---------------------------------------------------------


def test_configure_turns_on_only_when_asked_and_once() -> None:
    tracing.reset_for_tests()
    try:
        assert not tracing.configure({"FINBANK_TRACING": "off"})
        assert not tracing.configure({"FINBANK_TRACING": "otel"})  # configured once: stays off
        tracing.reset_for_tests()
        provider = TracerProvider()
        assert tracing.configure({}, tracer_provider=provider)
        assert tracing.tracer_provider() is provider
    finally:
        tracing.reset_for_tests()


class _Collector(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


_EXPORTING = """
import asyncio
from finbank_adapters import tracing
from finbank_adapters.memory import InMemoryEventPublisher
from finbank_core.shared.events import EventEnvelope
import uuid, datetime

assert tracing.configure()
event = EventEnvelope(event_id=uuid.uuid4(), type="ledger.deposit_made", version=1,
                      occurred_at=datetime.datetime.now(datetime.UTC), aggregate_id="a")
asyncio.run(InMemoryEventPublisher().publish([event]))
"""


def test_with_nothing_else_set_up_spans_are_exported_over_otlp_http() -> None:
    """A process of its own: the provider it installs is process-global."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    _Collector.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {
            **os.environ,
            "FINBANK_TRACING": "otel",
            "OTEL_SERVICE_NAME": "finbank-relay",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
        }
        done = subprocess.run(
            [sys.executable, "-c", _EXPORTING], env=env, capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr.decode()
    finally:
        server.shutdown()
        thread.join()
    assert [path for path, _ in _Collector.received] == ["/v1/traces"]
    request = ExportTraceServiceRequest.FromString(_Collector.received[0][1])
    (resource_spans,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "finbank-relay"
    names = [s.name for scope in resource_spans.scope_spans for s in scope.spans]
    assert names == ["create finbank.ledger.v1"]
