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

import contextvars
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


#: where OpenTelemetry keeps the current span (:func:`_span_slot`): its context module,
#: the runtime context, the ``ContextVar`` of the current context and the span's key in
#: it; ``False`` when it keeps it otherwise (or is not installed); ``None``: not looked yet
_slot: Any = None


def _span_slot() -> Any:
    """Where the current span is, if OpenTelemetry runs on its default runtime context
    (``contextvars``): the current context is a ``ContextVar``'s value, a mapping in
    which ``get_current_span`` looks the span up by its key. Else ``False``."""
    try:
        from opentelemetry import context as otel_context
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
        from opentelemetry.trace.propagation import _SPAN_KEY
    except ImportError:
        return False
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if (
        type(runtime) is not ContextVarsRuntimeContext
        or not isinstance(variable, contextvars.ContextVar)
        or not isinstance(_SPAN_KEY, str)
    ):
        return False
    return otel_context, runtime, variable, _SPAN_KEY


def current_trace_ids() -> dict[str, str]:
    """``trace_id``/``span_id`` of the active span, if OpenTelemetry is importable and tracing.

    Called for every access line: the module is imported once, and no span
    (OpenTelemetry's ``INVALID_SPAN``) answers at once: when the current context
    holds no span at all, read from OpenTelemetry's context variable (what
    ``get_current_span`` reads, through three calls), the public API is not called."""
    global _slot
    trace = _trace_api()
    if trace is False:
        return {}
    slot = _slot
    if slot is None:
        slot = _slot = _span_slot()
    if (
        slot is not False
        and slot[0]._RUNTIME_CONTEXT is slot[1]
        and slot[2].get().get(slot[3]) is None
    ):
        return {}  # no span in the current context: get_current_span's INVALID_SPAN
    span = trace.get_current_span()
    if span is trace.INVALID_SPAN:
        return {}
    context = span.get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
