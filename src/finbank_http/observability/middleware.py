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

import contextvars
import logging
import os
import random
import re
import time
from typing import Any

import structlog

from finbank_http.observability import metrics
from finbank_http.observability.logs import is_plain, log_request, read_request_ids_directly
from finbank_http.observability.masking import Masker

REQUEST_ID_HEADER = "x-request-id"
CORRELATION_ID_HEADER = "x-correlation-id"
_WELL_FORMED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "proxy-authorization"})

_REQUEST_ID = REQUEST_ID_HEADER.encode()
_CORRELATION_ID = CORRELATION_ID_HEADER.encode()
_ID_HEADER_LENGTHS = frozenset({len(_REQUEST_ID), len(_CORRELATION_ID)})
_STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
_MASKER = Masker()
#: where the outermost response wrapper (``finbank_http.security.SecurityHeaders``) leaves
#: a :class:`ResponseStart` for this middleware: one send wrapper per request, not two
RESPONSE_START = "finbank.response_start"
#: request ids: 128 random bits as 32 hex digits (an identifier, not a secret: a
#: generator seeded from the OS at startup and in each forked child, not a system
#: call per request)
_ids = random.Random()  # noqa: S311
os.register_at_fork(after_in_child=_ids.seed)

access_log = logging.getLogger("finbank.http.access")
#: ``metrics.observe_http_request`` without its one extra call
_observe = metrics.HTTP_REQUEST_METRICS.observe


def _structlog_var(key: str) -> contextvars.ContextVar[Any] | None:
    """The ``ContextVar`` structlog's ``bind_contextvars(key=...)`` sets (made by binding
    once), or None if this structlog keeps it elsewhere (then its functions are used)."""
    structlog.contextvars.reset_contextvars(**structlog.contextvars.bind_contextvars(**{key: ""}))
    known = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
    prefix = getattr(structlog.contextvars, "STRUCTLOG_KEY_PREFIX", None)
    found = known.get(f"{prefix}{key}") if isinstance(known, dict) and prefix else None
    return found if isinstance(found, contextvars.ContextVar) else None


#: the ids' structlog context variables, set and reset directly: what
#: ``bind_contextvars``/``reset_contextvars`` do, without their loops and name building
_request_id_var = _structlog_var("request_id")
_correlation_id_var = _structlog_var("correlation_id")
_ID_VARS = (
    (_request_id_var, _correlation_id_var)
    if _request_id_var is not None and _correlation_id_var is not None
    else None
)
if _ID_VARS is not None:
    read_request_ids_directly(*_ID_VARS)


class ResponseStart:
    """What the outermost send wrapper adds to the response's start, and the status it saw."""

    __slots__ = ("headers", "status")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.status = 500


def new_request_id() -> str:
    return f"{_ids.getrandbits(128):032x}"


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
            if len(key) in _ID_HEADER_LENGTHS:  # few headers have either length
                name = key.lower()
                if name == _REQUEST_ID:
                    request_header = value
                elif name == _CORRELATION_ID:
                    correlation_header = value
        incoming_request_id = None if request_header is None else _incoming_id(request_header)
        incoming_correlation_id = (
            None if correlation_header is None else _incoming_id(correlation_header)
        )
        request_id = incoming_request_id or new_request_id()
        correlation_id = incoming_correlation_id or request_id
        method = scope.get("method", "GET")
        ids = [(_REQUEST_ID, request_id.encode()), (_CORRELATION_ID, correlation_id.encode())]
        start: ResponseStart | None = scope.get(RESPONSE_START)
        if start is not None:  # the outer wrapper adds them and records the status
            start.headers += ids
            send_with_ids = send
        else:
            start = ResponseStart(ids)

            async def send_with_ids(message: Any) -> None:
                if message["type"] == "http.response.start":
                    start.status = int(message["status"])
                    message = {**message, "headers": [*message.get("headers", []), *ids]}
                await send(message)

        # ids the client chose are masked in the logs (and echoed as they came)
        logged_request_id = _MASKER.mask_text(request_id) if incoming_request_id else request_id
        logged_correlation_id = (
            _MASKER.mask_text(correlation_id) if incoming_correlation_id else logged_request_id
        )
        # generated ids are hex digits; masked ones plain if is_plain says so: the access
        # line does not test them again while the context holds these very strings
        bound: tuple[str, str] | tuple[()] = (
            (logged_request_id, logged_correlation_id)
            if (not incoming_request_id and not incoming_correlation_id)
            or is_plain(f"{logged_request_id}{logged_correlation_id}")
            else ()
        )
        id_vars = _ID_VARS
        if id_vars is not None:
            tokens: Any = (
                id_vars[0].set(logged_request_id),
                id_vars[1].set(logged_correlation_id),
            )
        else:
            tokens = structlog.contextvars.bind_contextvars(
                request_id=logged_request_id, correlation_id=logged_correlation_id
            )
        started = time.perf_counter()
        try:
            if access_log.isEnabledFor(logging.DEBUG):
                _log_headers(scope)
            await self.app(scope, receive, send_with_ids)
        finally:
            duration = time.perf_counter() - started
            status = start.status
            # read now: when this wraps the whole app, routing sets it after we are called
            route = scope.get("path_template") or "unmatched"
            try:
                _observe(route, method, status, duration)
                _log_access(scope, route, method, status, duration, bound)
            finally:
                if id_vars is not None:
                    id_vars[1].reset(tokens[1])
                    id_vars[0].reset(tokens[0])
                else:
                    structlog.contextvars.reset_contextvars(**tokens)


def _log_access(
    scope: Any,
    route: str,
    method: str,
    status: int,
    duration: float,
    bound: tuple[str, str] | tuple[()],
) -> None:
    if access_log.isEnabledFor(logging.INFO):
        query = scope.get("query_string", b"")
        log_request(
            access_log,
            method if method in _STANDARD_METHODS else "OTHER",
            route,
            _logged_path(scope.get("path", ""), route, query.decode("latin-1") if query else ""),
            status,
            duration,
            bound,
        )


def _log_headers(scope: Any) -> None:
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
