"""Observability of the finbank HTTP service and CLI processes.

- logs: :func:`configure_logging` (structlog JSON on stderr, masked, request ids);
- metrics: :mod:`finbank_http.observability.metrics` and the ``/metrics`` route
  (:func:`metrics_app`, on its own port);
- tracing: OpenTelemetry, opt-in (``FINBANK_TRACING=otel``).

:class:`ObservabilityPlugin` adds the middleware and the ``/metrics`` route to
a Litestar app. It does not configure logging: the process's entry point owns
it (``finbank`` calls :func:`configure_logging`); an embedding application can
call it too, or put :class:`Masker` in its own structlog pipeline. At the
app's shutdown it writes the access lines still waiting in finbank's handler
(:func:`flush_access_lines`).
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Response, get
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

from finbank_http.observability import metrics
from finbank_http.observability.logs import LogConfig, configure_logging, flush_access_lines
from finbank_http.observability.masking import Masker
from finbank_http.observability.middleware import RequestContextMiddleware
from finbank_http.observability.tracing import tracing_enabled, tracing_middleware

__all__ = [
    "LogConfig",
    "Masker",
    "ObservabilityPlugin",
    "RequestContextMiddleware",
    "configure_logging",
    "flush_access_lines",
    "metrics",
    "metrics_app",
]


@get(
    "/metrics",
    operation_id="getMetrics",
    tags=["ops"],
    summary="Prometheus metrics",
    media_type="text/plain",
    exclude_from_auth=True,
    sync_to_thread=False,
)
def metrics_endpoint() -> Response[bytes]:
    body, content_type = metrics.exposition()
    return Response(content=body, media_type=content_type)


def metrics_app() -> Litestar:
    """An app answering ``/metrics`` only: ``finbank serve`` runs it on its own port
    (``FINBANK_HTTP_METRICS_PORT``), so metrics stay off the public API port."""
    return Litestar(route_handlers=[metrics_endpoint], openapi_config=None, logging_config=None)


class ObservabilityPlugin(InitPluginProtocol):
    """Request ids, access log and HTTP metrics on every route; optional tracing.

    ``metrics_route``: also answer ``/metrics`` on the app itself (off by
    default: it belongs on :func:`metrics_app`'s port, not the public API).
    ``wraps_app``: the app puts :meth:`wrap` around its ASGI handler (what
    :func:`finbank_http.create_app` does) instead of the route middleware.
    """

    def __init__(
        self,
        *,
        tracing: bool | None = None,
        tracer_provider: Any = None,
        metrics_route: bool = False,
        wraps_app: bool = False,
    ) -> None:
        self.tracing = tracing_enabled() if tracing is None else tracing
        self.tracer_provider = tracer_provider
        self.metrics_route = metrics_route
        self.wraps_app = wraps_app

    @property
    def request_context_outside(self) -> bool:
        """Whether the app is to wrap its whole ASGI handler in :class:`RequestContextMiddleware`
        (:meth:`wrap`) rather than have it as route middleware: asked for (``wraps_app``),
        and tracing off (a span must start before the ids are bound and end after the
        access line, so with tracing the ids stay inside the route's span)."""
        return self.wraps_app and not self.tracing

    def wrap(self, app: Any) -> Any:
        """``app`` (a Litestar app's ``asgi_handler``) inside the request context, when
        :attr:`request_context_outside`: no route middleware then, so Litestar adds no
        second exception handler per route, and unmatched paths (404) are logged too."""
        return RequestContextMiddleware(app) if self.request_context_outside else app

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        extra: list[Any] = [tracing_middleware(self.tracer_provider)] if self.tracing else []
        # outermost first: the span starts before the ids are bound, so logs carry both
        inner = [] if self.request_context_outside else [RequestContextMiddleware]
        app_config.middleware = [*extra, *inner, *app_config.middleware]
        if self.metrics_route:
            app_config.route_handlers = [*app_config.route_handlers, metrics_endpoint]
        # Litestar's default logging config would put its own, unmasked handler on the
        # root logger at startup; logging belongs to configure_logging (module doc).
        app_config.logging_config = None
        # the access lines still waiting in finbank's handler (logs.FinbankHandler)
        app_config.on_shutdown = [*app_config.on_shutdown, flush_access_lines]
        return app_config
