"""OpenTelemetry tracing, off unless ``FINBANK_TRACING=otel``.

When on, every HTTP request gets a server span from
``opentelemetry-instrumentation-asgi`` (through Litestar's OpenTelemetry
middleware), exported by whatever ``TracerProvider`` the process configured
(for example with ``opentelemetry-exporter-otlp`` and the ``OTEL_*``
variables; no exporter ships with finbank). Log lines carry ``trace_id`` and
``span_id`` while a span is active. When the packages are missing, enabling
tracing is a startup error, not a silent no-op.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("FINBANK_TRACING", "").lower() == "otel"


def tracing_middleware(tracer_provider: Any = None) -> Any:
    """Litestar's OpenTelemetry middleware (needs opentelemetry-instrumentation-asgi);
    spans go to ``tracer_provider``, or to the process's global one."""
    try:
        from litestar.plugins.opentelemetry import OpenTelemetryConfig
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "FINBANK_TRACING=otel needs opentelemetry-instrumentation-asgi installed"
        ) from exc
    config = OpenTelemetryConfig(exclude=["/metrics", "/health"], tracer_provider=tracer_provider)
    return config.middleware


def current_trace_ids() -> dict[str, str]:
    """``trace_id``/``span_id`` of the active span, if OpenTelemetry is importable and tracing."""
    try:
        from opentelemetry import trace
    except ImportError:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
