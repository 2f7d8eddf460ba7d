"""OpenTelemetry tracing, off unless ``FINBANK_TRACING=otel``.

When on, every HTTP request gets a server span from
``opentelemetry-instrumentation-asgi`` (through Litestar's OpenTelemetry
middleware); the events a request appends to the outbox carry its trace on
through the relay, Kafka, the workers and the stream Lambda
(:mod:`finbank_adapters.tracing`). Spans go to the ``TracerProvider`` the
process configured, or else to one that exports over OTLP/HTTP
(``OTEL_EXPORTER_OTLP_ENDPOINT`` and the other ``OTEL_*`` variables). Log
lines carry ``trace_id`` and ``span_id`` while a span is active. When the
packages are missing, enabling tracing is a startup error, not a silent no-op.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("FINBANK_TRACING", "").lower() == "otel"


def tracing_middleware(tracer_provider: Any = None) -> Any:
    """Litestar's OpenTelemetry middleware (needs opentelemetry-instrumentation-asgi).

    Spans go to ``tracer_provider`` if given, else to the provider of the
    process's event tracing (:func:`finbank_adapters.tracing.configure`,
    which sets one up, exporting over OTLP, unless the process has its own),
    so that a request and the events it appends are one trace.
    """
    try:
        from litestar.plugins.opentelemetry import OpenTelemetryConfig
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "FINBANK_TRACING=otel needs opentelemetry-instrumentation-asgi installed"
        ) from exc
    if tracer_provider is None:
        from finbank_adapters import tracing

        tracing.configure({"FINBANK_TRACING": "otel"})
        tracer_provider = tracing.tracer_provider()
    config = OpenTelemetryConfig(exclude=["/metrics", "/health"], tracer_provider=tracer_provider)
    return config.middleware


#: ``opentelemetry.trace`` once imported (``False``: not installed; ``None``: not tried yet)
_trace: Any = None


def _trace_api() -> Any:
    global _trace
    if _trace is None:
        try:
            from opentelemetry import trace
        except ImportError:
            _trace = False
        else:
            _trace = trace
    return _trace


def current_trace_ids() -> dict[str, str]:
    """``trace_id``/``span_id`` of the active span, if OpenTelemetry is importable and tracing.

    Called for every access line: the module is imported once, and no span
    (OpenTelemetry's ``INVALID_SPAN``) answers at once."""
    trace = _trace_api()
    if trace is False:
        return {}
    span = trace.get_current_span()
    if span is trace.INVALID_SPAN:
        return {}
    context = span.get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
