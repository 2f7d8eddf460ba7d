"""Traces across the event backbone: W3C trace context in the event envelope, OpenTelemetry spans.

Off unless ``FINBANK_TRACING=otel`` (or a test hands :func:`configure` a
tracer provider). Off, every function here returns at its first line: events
keep no headers, nothing is imported from OpenTelemetry, no span is made.

On, a payment's request, its outbox rows, the relay, Kafka, the worker and
the DynamoDB Streams Lambda are one trace, shaped as OpenTelemetry's
messaging semantic conventions say (``docs/operations.md``, "Traces"):

* **create** (``PRODUCER``): one span per event when it is appended to the
  outbox (:func:`start_creation`), a child of whatever span is current (the
  HTTP request's, the settlement's...). Its context is the event's *creation
  context*: injected as ``traceparent``/``tracestate`` into
  ``EventEnvelope.headers``, so it is stored with the event, byte for byte,
  and no intermediary can change it. An event that already carries a
  ``traceparent`` keeps it and gets no create span.
* **send** (``CLIENT``): the relay's delivery of one outbox item to Kafka
  (:func:`start_send`), from the producer's hand-off to the broker's
  acknowledgement; the relay copies the creation context into the record's
  Kafka headers.
* **process** (``CONSUMER``): a consumer's handling of one record
  (:func:`processing`), and the Lambda's handling of one stream record
  (:func:`processing_record`).
* the use case a worker runs (``SettlePixPayment``...; :func:`span`).

``send`` and ``process`` *link* to the creation context, as the conventions
require, and, since each accounts for a single message, also take it as
their parent (the conventions allow it), so the whole path is one trace.

The core never sees any of this: it carries ``EventEnvelope.headers`` as an
opaque mapping.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from finbank_core.shared.events import EventEnvelope

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, SpanContext, Tracer

__all__ = [
    "TRACEPARENT",
    "TRACESTATE",
    "TRACE_HEADERS",
    "Creation",
    "active",
    "configure",
    "current_headers",
    "end_send",
    "processing",
    "processing_record",
    "reset_for_tests",
    "span",
    "stamp",
    "start_creation",
    "start_send",
    "tracer_provider",
]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
#: the W3C trace context headers, as carried in envelopes, Kafka records and PIX records
TRACE_HEADERS = (TRACEPARENT, TRACESTATE)
#: ``messaging.system`` of the spans around Kafka (the conventions' well-known value)
MESSAGING_SYSTEM = "kafka"
#: the instrumentation scope of finbank's own spans
SCOPE = "finbank"

_lock = threading.Lock()
_configured = False
_tracer: Tracer | None = None
_provider: Any = None
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    """``FINBANK_TRACING=otel``."""
    env = os.environ if environ is None else environ
    return env.get("FINBANK_TRACING", "").lower() == "otel"


def active() -> bool:
    """True once :func:`configure` turned tracing on in this process."""
    return _tracer is not None


def tracer_provider() -> Any:
    """The provider finbank's spans go to (``None`` while tracing is off)."""
    return _provider


def configure(environ: Mapping[str, str] | None = None, *, tracer_provider: Any = None) -> bool:
    """Turn tracing on for this process if ``FINBANK_TRACING=otel``; once, later calls keep it.

    The spans go to ``tracer_provider`` if given; else to the process's
    global provider if something (``opentelemetry-instrument``, an embedding
    application) installed an SDK one; else to a new SDK provider, made the
    global one, that exports over OTLP/HTTP with a batch processor
    (``OTEL_EXPORTER_OTLP_ENDPOINT`` and the other ``OTEL_*`` variables
    apply; ``OTEL_SERVICE_NAME`` names the process). Returns whether tracing
    is on. Raises ``MissingExtra`` (naming ``finbank[otel]``) when on but
    OpenTelemetry is not installed: asking for traces and getting none
    silently is worse than not starting.
    """
    global _configured, _tracer, _provider
    with _lock:
        if _configured:
            return _tracer is not None
        env = os.environ if environ is None else environ
        if tracer_provider is None and not tracing_requested(env):
            _configured = True
            return False
        from finbank_adapters._extras import require_extra

        require_extra("FINBANK_TRACING=otel", "otel")
        provider = tracer_provider if tracer_provider is not None else _default_provider(env)
        _provider = provider
        _tracer = provider.get_tracer(SCOPE)
        _configured = True
        return True


def reset_for_tests(tracer_provider: Any = None) -> None:
    """Tracing on with ``tracer_provider``, or off and unconfigured (tests)."""
    global _configured, _tracer, _provider
    with _lock:
        _provider = tracer_provider
        _tracer = tracer_provider.get_tracer(SCOPE) if tracer_provider is not None else None
        _configured = tracer_provider is not None


def _default_provider(env: Mapping[str, str]) -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current  # configured by the process (opentelemetry-instrument, an embedder)
    service = env.get("OTEL_SERVICE_NAME") or "finbank"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:  # pragma: no cover - the otel extra installs it
        from finbank_adapters._extras import MissingExtra

        raise MissingExtra(
            "FINBANK_TRACING=otel", ["otel"], ["opentelemetry.exporter.otlp"]
        ) from exc
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # flush what the batch processor holds
    return provider


# -- context in and out ---------------------------------------------------------------


def _inject(context: Context | None = None) -> dict[str, str]:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=context)
    return carrier


def _extract(headers: Mapping[str, str]) -> tuple[Context | None, SpanContext | None]:
    """The context to parent on and the span context to link to; ``(None, None)`` if none."""
    if TRACEPARENT not in headers:
        return None, None
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract(headers)
    remote = trace.get_current_span(context).get_span_context()
    if not remote.is_valid:
        return None, None
    return context, remote


def current_headers() -> dict[str, str]:
    """The current span's W3C headers (``{}`` when off or outside a span).

    What a store writes next to a record so that whatever reads its change
    later (the DynamoDB Streams Lambda) continues the trace.
    """
    if _tracer is None:
        return {}
    from opentelemetry import trace

    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    return _inject()


# -- create: appending events to the outbox ------------------------------------------


class Creation:
    """The create spans of events being appended; :meth:`end` once the append is done."""

    def __init__(self, spans: list[Span]) -> None:
        self._spans = spans

    def end(self, error: BaseException | None = None) -> None:
        for created in self._spans:
            if error is not None:
                _fail(created, error)
            created.end()


def start_creation(
    events: Sequence[EventEnvelope],
) -> tuple[Sequence[EventEnvelope], Creation | None]:
    """``events`` with their creation context in ``headers``, and the spans to end.

    Off: ``(events, None)``, the same objects. An event that already carries
    a ``traceparent`` (a re-published or relayed one) is left as it is.
    """
    tracer = _tracer
    if tracer is None:
        return events, None
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    stamped: list[EventEnvelope] = []
    spans: list[Span] = []
    for event in events:
        if event.header(TRACEPARENT) is not None:
            stamped.append(event)
            continue
        topic = event.topic()
        created = tracer.start_span(
            f"create {topic}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": MESSAGING_SYSTEM,
                "messaging.operation.type": "create",
                "messaging.operation.name": "create",
                "messaging.destination.name": topic,
                "messaging.message.id": str(event.event_id),
                "finbank.event.type": event.type,
            },
        )
        spans.append(created)
        stamped.append(event.with_headers(_inject(trace.set_span_in_context(created))))
    return stamped, Creation(spans) if spans else None


def stamp(events: Sequence[EventEnvelope]) -> Sequence[EventEnvelope]:
    """:func:`start_creation` for a write that is timed elsewhere: the spans end at once."""
    if _tracer is None:
        return events
    stamped, creation = start_creation(events)
    if creation is not None:
        creation.end()
    return stamped


# -- send: the relay ------------------------------------------------------------------


class _Trace(msgspec.Struct):
    """What :func:`start_send` needs of an encoded envelope (decoding skips the rest)."""

    event_id: str = ""
    type: str = ""
    headers: dict[str, str] | None = None


_trace_fields = msgspec.json.Decoder(_Trace)


def start_send(topic: str, envelope: bytes) -> Span | None:
    """A ``send <topic>`` span for one outbox item (``None`` when off); see :func:`end_send`."""
    tracer = _tracer
    if tracer is None:
        return None
    from opentelemetry.trace import Link, SpanKind

    try:
        fields = _trace_fields.decode(envelope)
    except msgspec.DecodeError:
        fields = _Trace()
    parent, creation = _extract(fields.headers or {})
    return tracer.start_span(
        f"send {topic}",
        context=parent,
        kind=SpanKind.CLIENT,
        links=[Link(creation)] if creation is not None else None,
        attributes={
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.type": "publish",
            "messaging.operation.name": "send",
            "messaging.destination.name": topic,
            "messaging.message.id": fields.event_id,
            "finbank.event.type": fields.type,
        },
    )


def end_send(sent: Span | None, delivery: Any) -> None:
    """End ``sent`` when ``delivery`` (the producer's future) resolves; failed if it failed."""
    if sent is None:
        return

    def done(future: Any) -> None:
        if future.cancelled():
            _fail(sent, None, "cancelled")
        elif future.exception() is not None:
            _fail(sent, future.exception())
        sent.end()

    delivery.add_done_callback(done)


def fail_send(sent: Span | None, error: BaseException) -> None:
    """End ``sent`` as failed: the producer refused the record before buffering it."""
    if sent is not None:
        _fail(sent, error)
        sent.end()


# -- process: consumers and the Lambda -----------------------------------------------


def processing(
    event: EventEnvelope,
    record_headers: Sequence[tuple[str, bytes]] = (),
    *,
    topic: str,
    group: str,
    partition: int | None = None,
    offset: int | None = None,
) -> contextlib.AbstractContextManager[Any]:
    """A ``process <topic>`` span around one record's handler call (a no-op when off).

    The creation context is the envelope's (it cannot have been changed on
    the way); a record published by something else may carry it only in its
    Kafka headers, which are read then.
    """
    tracer = _tracer
    if tracer is None:
        return _NOTHING
    headers: Mapping[str, str] = event.headers if event.headers is not msgspec.UNSET else {}
    if TRACEPARENT not in headers:
        headers = {
            name: value.decode("latin-1")
            for name, value in record_headers
            if name in TRACE_HEADERS and value is not None
        }
    attributes: dict[str, Any] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": topic,
        "messaging.consumer.group.name": group,
        "messaging.message.id": str(event.event_id),
        "finbank.event.type": event.type,
    }
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    if offset is not None:
        attributes["messaging.kafka.offset"] = offset
    return _consumer_span(tracer, f"process {topic}", headers, attributes)


def processing_record(
    headers: Mapping[str, Any], *, name: str, attributes: Mapping[str, Any]
) -> contextlib.AbstractContextManager[Any]:
    """A ``CONSUMER`` span around one stream record whose item carried ``headers`` (no-op off)."""
    tracer = _tracer
    if tracer is None:
        return _NOTHING
    carried = {k: str(v) for k, v in headers.items() if k in TRACE_HEADERS and v is not None}
    return _consumer_span(tracer, name, carried, dict(attributes))


def _consumer_span(
    tracer: Tracer, name: str, headers: Mapping[str, str], attributes: dict[str, Any]
) -> contextlib.AbstractContextManager[Any]:
    from opentelemetry.trace import Link, SpanKind

    parent, creation = _extract(headers)
    if parent is None:
        # no creation context: a trace of its own, not a child of whatever polled the record
        from opentelemetry.context import Context

        parent = Context()
    return _current(
        tracer,
        name,
        context=parent,
        kind=SpanKind.CONSUMER,
        links=[Link(creation)] if creation is not None else None,
        attributes=attributes,
    )


@contextlib.contextmanager
def _current(tracer: Tracer, name: str, **options: Any) -> Iterator[Span]:
    """A span made current for the block; an error ends it failed, by type only.

    OpenTelemetry's own handling would record the exception's message and
    stack, and messages may name what a trace must not carry.
    """
    with tracer.start_as_current_span(
        name, record_exception=False, set_status_on_exception=False, **options
    ) as current:
        try:
            yield current
        except BaseException as exc:
            _fail(current, exc)
            raise


# -- the steps in between -------------------------------------------------------------


def span(name: str, attributes: Mapping[str, Any] | None = None) -> Any:
    """An ``INTERNAL`` span around a step (a use case a worker runs); a no-op when off."""
    tracer = _tracer
    if tracer is None:
        return _NOTHING
    return _current(tracer, name, attributes=dict(attributes or {}))


@contextlib.contextmanager
def root_span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[None]:
    """An ``INTERNAL`` span that starts a trace (a scheduler's round); a no-op when off."""
    tracer = _tracer
    if tracer is None:
        yield
        return
    from opentelemetry.context import Context

    with _current(tracer, name, context=Context(), attributes=dict(attributes or {})):
        yield


def _fail(failed: Span, error: BaseException | None, description: str | None = None) -> None:
    """Mark ``failed`` as an error by the error's type (never its message: it may name data)."""
    from opentelemetry.trace import Status, StatusCode

    kind = type(error).__qualname__ if error is not None else (description or "_OTHER")
    failed.set_attribute("error.type", kind)
    failed.set_status(Status(StatusCode.ERROR, kind))
