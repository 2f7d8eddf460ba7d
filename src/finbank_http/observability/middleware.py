"""ASGI middleware: request and correlation ids, an access log line, HTTP metrics.

``X-Request-ID`` identifies one request, ``X-Correlation-ID`` the business
flow it belongs to (a client retry keeps the correlation id). Both are taken
from the request when well-formed (1-128 characters of ``A-Za-z0-9._:-``),
generated otherwise, bound to the log context for the request's duration and
echoed in the response headers.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import structlog

from finbank_http.observability import metrics

REQUEST_ID_HEADER = "x-request-id"
CORRELATION_ID_HEADER = "x-correlation-id"
_WELL_FORMED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "proxy-authorization"})

access_log = logging.getLogger("finbank.http.access")


def _incoming_id(headers: dict[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None and _WELL_FORMED_ID.match(value):
        return value
    return None


class RequestContextMiddleware:
    """Wraps one Litestar route's ASGI app (Litestar applies middleware per route)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope.get("headers", [])
        }
        request_id = _incoming_id(headers, REQUEST_ID_HEADER) or uuid.uuid4().hex
        correlation_id = _incoming_id(headers, CORRELATION_ID_HEADER) or request_id
        route = str(scope.get("path_template") or "unmatched")
        method = str(scope.get("method", "GET"))
        status = 500
        started = time.perf_counter()

        async def send_with_ids(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                extra = [
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                    (CORRELATION_ID_HEADER.encode(), correlation_id.encode()),
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        with structlog.contextvars.bound_contextvars(
            request_id=request_id, correlation_id=correlation_id
        ):
            if access_log.isEnabledFor(logging.DEBUG):
                access_log.debug(
                    "http.request.headers",
                    extra={
                        "headers": {
                            k: ("[REDACTED]" if k in _SENSITIVE_HEADERS else v)
                            for k, v in headers.items()
                        }
                    },
                )
            try:
                await self.app(scope, receive, send_with_ids)
            finally:
                duration = time.perf_counter() - started
                metrics.observe_http_request(route, method, status, duration)
                query = scope.get("query_string", b"").decode("latin-1")
                access_log.info(
                    "http.request",
                    extra={
                        "method": method,
                        "route": route,
                        "path": scope.get("path", "") + (f"?{query}" if query else ""),
                        "status": status,
                        "duration_ms": round(duration * 1000, 2),
                    },
                )
