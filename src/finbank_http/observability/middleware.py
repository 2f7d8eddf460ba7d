"""ASGI middleware: request and correlation ids, an access log line, HTTP metrics.

``X-Request-ID`` identifies one request, ``X-Correlation-ID`` the business
flow it belongs to (a client retry keeps the correlation id). Both are taken
from the request when well-formed (1-128 characters of ``A-Za-z0-9._:-``),
generated otherwise, bound to the log context for the request's duration and
echoed in the response headers.

One access line per request (``finbank serve`` turns uvicorn's own off), and
it skips the pattern masker: its fields are masked here, only where one can
carry what a client sent (a path that is not its route's template, a query
string, ids the client chose, a method outside the standard ones); the
route template, status and duration cannot (``observability.logs``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import structlog

from finbank_http.observability import metrics
from finbank_http.observability.logs import log_access
from finbank_http.observability.masking import Masker

REQUEST_ID_HEADER = "x-request-id"
CORRELATION_ID_HEADER = "x-correlation-id"
_WELL_FORMED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "proxy-authorization"})

_REQUEST_ID = REQUEST_ID_HEADER.encode()
_CORRELATION_ID = CORRELATION_ID_HEADER.encode()
_STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
_MASKER = Masker()

access_log = logging.getLogger("finbank.http.access")


def _incoming_id(value: bytes | None) -> str | None:
    if value is None:
        return None
    text = value.decode("latin-1")
    return text if _WELL_FORMED_ID.match(text) else None


def _logged_path(path: str, route: str, query: str) -> str:
    """The path (and query) for the access line: masked unless it is the route's template."""
    if not query and path == route:
        return path
    return _MASKER.mask_text(path + (f"?{query}" if query else ""))


class RequestContextMiddleware:
    """Wraps one Litestar route's ASGI app (Litestar applies middleware per route)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_header: bytes | None = None
        correlation_header: bytes | None = None
        for key, value in scope.get("headers", ()):
            name = key.lower()
            if name == _REQUEST_ID:
                request_header = value
            elif name == _CORRELATION_ID:
                correlation_header = value
        incoming_request_id = _incoming_id(request_header)
        incoming_correlation_id = _incoming_id(correlation_header)
        request_id = incoming_request_id or uuid.uuid4().hex
        correlation_id = incoming_correlation_id or request_id
        route = str(scope.get("path_template") or "unmatched")
        method = str(scope.get("method", "GET"))
        status = 500
        started = time.perf_counter()
        extra_headers = [
            (_REQUEST_ID, request_id.encode()),
            (_CORRELATION_ID, correlation_id.encode()),
        ]

        async def send_with_ids(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), *extra_headers]}
            await send(message)

        # ids the client chose are masked in the logs (and echoed as they came)
        logged_request_id = _MASKER.mask_text(request_id) if incoming_request_id else request_id
        logged_correlation_id = (
            _MASKER.mask_text(correlation_id) if incoming_correlation_id else logged_request_id
        )
        with structlog.contextvars.bound_contextvars(
            request_id=logged_request_id, correlation_id=logged_correlation_id
        ):
            if access_log.isEnabledFor(logging.DEBUG):
                access_log.debug(
                    "http.request.headers",
                    extra={
                        "headers": {
                            k.decode("latin-1").lower(): (
                                "[REDACTED]"
                                if k.decode("latin-1").lower() in _SENSITIVE_HEADERS
                                else v.decode("latin-1")
                            )
                            for k, v in scope.get("headers", ())
                        }
                    },
                )
            try:
                await self.app(scope, receive, send_with_ids)
            finally:
                duration = time.perf_counter() - started
                metrics.observe_http_request(route, method, status, duration)
                if access_log.isEnabledFor(logging.INFO):
                    query = scope.get("query_string", b"").decode("latin-1")
                    log_access(
                        access_log,
                        {
                            "method": method if method in _STANDARD_METHODS else "OTHER",
                            "route": route,
                            "path": _logged_path(str(scope.get("path", "")), route, query),
                            "status": status,
                            "duration_ms": round(duration * 1000, 2),
                        },
                    )
