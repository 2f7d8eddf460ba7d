"""Logging of a finbank process: structlog, JSON lines on stderr, masked.

:func:`configure_logging` routes *everything* through one stdlib handler whose
``structlog.stdlib.ProcessorFormatter`` masks and renders: structlog loggers,
our stdlib loggers, Litestar's and uvicorn's (``finbank serve`` starts uvicorn
with ``log_config=None`` so it installs no handler of its own). Request and
correlation ids bound by the HTTP middleware (``structlog.contextvars``) are
added to every line logged while a request is handled.

Environment: ``FINBANK_LOG_LEVEL`` (``INFO``), ``FINBANK_LOG_FORMAT`` (``json``
or ``console``), ``FINBANK_LOG_MASK_AMOUNTS`` (``1`` to mask amounts too).
The AWS SDK loggers stay at ``INFO`` or above even when the level is
``DEBUG``: at ``DEBUG`` botocore logs whole response bodies, secrets included.

The HTTP access lines (one a request) are written in batches, not one write
a request: they wait in finbank's handler (:class:`FinbankHandler`) at most
:data:`ACCESS_FLUSH_SECONDS` and :data:`ACCESS_BUFFER_BYTES`, are written
before any other line, and all of them on a clean shutdown.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import select
import sys
import time
import weakref
from asyncio import _get_running_loop
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec
import structlog

from finbank_adapters.quiet_logs import QUIET_LOGGERS
from finbank_http.observability.masking import Masker
from finbank_http.observability.tracing import current_trace_ids

#: loggers that install their own handlers; ours replace them
ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "litestar")


HANDLER_NAME = "finbank"

#: an ``extra`` key: whoever logged the line masked the fields a client can fill (the HTTP
#: access line, :mod:`finbank_http.observability.middleware`), so the pattern masker runs
#: only on fields outside :data:`PREMASKED_FIELDS` (say, context an embedder bound)
PREMASKED = "finbank_premasked"
PREMASKED_FIELDS = frozenset(
    {
        "event", "level", "logger", "timestamp", "trace_id", "span_id", "request_id",
        "correlation_id", "method", "route", "path", "status", "duration_ms",
    }
)  # fmt: skip


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


#: how long an access line may wait in finbank's handler before it is written (seconds)
ACCESS_FLUSH_SECONDS = 0.05
#: the most bytes of access lines that wait, and so the most one write carries: POSIX's
#: ``PIPE_BUF``, so a write to a pipe (a container's stderr, shared by ``serve --workers N``)
#: is never interleaved with another process's and every line stays whole
ACCESS_BUFFER_BYTES = getattr(select, "PIPE_BUF", 512)


class FinbankHandler(logging.StreamHandler[Any]):
    """finbank's handler: a ``StreamHandler`` that also takes the access lines
    :func:`log_access` renders, and writes them in batches.

    One write per access line was one system call per request; instead the
    lines wait in the handler, up to :data:`ACCESS_BUFFER_BYTES` of them, and
    are written in one write when the next would not fit, when a timer of
    :data:`ACCESS_FLUSH_SECONDS` started by the first of them fires (on the
    running event loop), before any other line the handler writes (so the
    stream keeps the order lines were logged in), and when the handler is
    flushed or closed: ``logging.shutdown`` at a clean exit, the app's
    shutdown, a fork. Outside an event loop a line is written at once. A
    process killed without a clean exit loses at most the last
    :data:`ACCESS_FLUSH_SECONDS` of access lines.
    """

    def __init__(self, stream: Any = None, flush_seconds: float = ACCESS_FLUSH_SECONDS) -> None:
        super().__init__(stream)
        self.flush_seconds = flush_seconds
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        _handlers.add(self)

    def write_line(self, line: str, size: int) -> None:
        """Queue ``line`` (rendered, ending in a newline; ``size``: its length in bytes)."""
        with self.lock:  # type: ignore[union-attr]
            if self._pending_bytes + size > ACCESS_BUFFER_BYTES:
                self._write_pending()
            self._pending.append(line)
            self._pending_bytes += size
            if self._pending_bytes >= ACCESS_BUFFER_BYTES:
                self._write_pending()
                return
            timer_loop = self._timer_loop
            if self._timer is not None and timer_loop is not None and not timer_loop.is_closed():
                return  # the timer set for the first of the waiting lines writes this one too
            # looked up only here: asyncio's running-loop lookup is a getpid system call
            loop = _get_running_loop()
            if loop is None:  # no loop to run a timer on
                self._write_pending()
            else:
                self._timer = loop.call_later(self.flush_seconds, self._on_timer)
                self._timer_loop = loop

    @property
    def pending_lines(self) -> int:
        """How many access lines are waiting to be written."""
        return len(self._pending)

    def _on_timer(self) -> None:
        self.acquire()
        try:
            self._timer = None
            self._timer_loop = None
            self._write_pending()
        finally:
            self.release()

    def _write_pending(self) -> None:
        """Write the waiting lines in one write (the lock held)."""
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # as logging does: a failed write never fails the request
            self.handleError(logging.makeLogRecord({"msg": "access lines", "args": None}))

    def _forget_pending(self) -> None:
        """In a forked child: the parent writes its own lines (and its timer is not ours)."""
        self._pending.clear()
        self._pending_bytes = 0
        self._timer = None
        self._timer_loop = None

    def emit(self, record: logging.LogRecord) -> None:
        self._write_pending()  # the access lines logged before it come first
        super().emit(record)

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_pending()
        finally:
            self.release()
        super().flush()

    def close(self) -> None:
        self.flush()
        super().close()


#: every FinbankHandler, flushed before a fork and emptied in the child after it
_handlers: weakref.WeakSet[FinbankHandler] = weakref.WeakSet()


def _flush_before_fork() -> None:
    for handler in list(_handlers):
        handler.flush()


def _forget_after_fork() -> None:
    for handler in list(_handlers):
        handler._forget_pending()


os.register_at_fork(before=_flush_before_fork, after_in_child=_forget_after_fork)


def flush_access_lines() -> None:
    """Write the access lines waiting in finbank's handler now (the app's shutdown calls it;
    so do tests before they read the stream). A handler with none waiting is left alone:
    its stream has every line already, and may be closed by now (a handler taken off the
    root logger whose file was closed), which must not fail the app's shutdown."""
    for handler in list(_handlers):
        if handler.pending_lines:
            handler.flush()


class LogConfig:
    """What :func:`configure_logging` was asked for (read from env by :meth:`from_env`)."""

    def __init__(
        self, *, level: str = "INFO", json: bool = True, mask_amounts: bool = False
    ) -> None:
        self.level = level.upper()
        self.json = json
        self.mask_amounts = mask_amounts

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LogConfig:
        env = os.environ if environ is None else environ
        return cls(
            level=env.get("FINBANK_LOG_LEVEL", "INFO"),
            json=env.get("FINBANK_LOG_FORMAT", "json").lower() != "console",
            mask_amounts=env.get("FINBANK_LOG_MASK_AMOUNTS", "").lower() in {"1", "true", "yes"},
        )


def _add_trace_ids(logger: Any, method_name: str, event_dict: Any) -> Any:
    event_dict.update(current_trace_ids())
    return event_dict


def _drop_color_message(logger: Any, method_name: str, event_dict: Any) -> Any:
    event_dict.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    return event_dict


def shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,  # after ExtraAdder: uvicorn passes it as an extra
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]


#: finbank's handler and masker when the format is JSON (:func:`configure_logging`), for
#: :func:`log_access`'s direct path
_direct: tuple[logging.Handler, Masker] | None = None


def _direct_handler(logger: logging.Logger) -> tuple[logging.Handler, Masker] | None:
    """finbank's handler if an INFO line of ``logger`` would reach it and nothing else."""
    direct = _direct
    if direct is None or logger.filters:
        return None
    handler = direct[0]
    current: logging.Logger | None = logger
    while current is not None:
        if current.handlers:
            if current.handlers != [handler] or current.parent is not None:
                return None  # another handler on the way, or ours below the root
            break
        if not current.propagate:
            return None
        current = current.parent
    if current is None or handler.filters or handler.level > logging.INFO:
        return None
    return direct


_seconds: tuple[int, str] = (-1, "")


def _utc_timestamp() -> str:
    """``datetime.now(UTC).isoformat()`` with ``Z`` for ``+00:00`` (structlog's
    ``TimeStamper(fmt="iso", utc=True)``), the date and time formatted once a second."""
    global _seconds
    now = time.time_ns()
    whole, nanos = divmod(now, 1_000_000_000)
    cached, text = _seconds
    if whole != cached:
        text = datetime.fromtimestamp(whole, UTC).isoformat()[: -len("+00:00")]
        _seconds = (whole, text)
    micros = nanos // 1000
    # ".000042": the six digits of 1_000_000 + micros but its "1"
    return text + "." + str(1_000_000 + micros)[1:] + "Z" if micros else text + "Z"


def listing_order(first: contextvars.ContextVar[Any], second: contextvars.ContextVar[Any]) -> bool:
    """Whether a context lists ``first`` before ``second`` when both are set in it.

    A context iterates its variables in the order of their hashes (a hash array
    mapped trie: five bits of the hash at each level, the lowest first), whatever
    else it holds and whenever they were set; two variables whose hashes agree in
    all those bits are listed in the order they were set, here ``first`` first (as
    the HTTP middleware sets the request id before the correlation id)."""
    context = contextvars.Context()
    context.run(lambda: (first.set(None), second.set(None)))
    return next(k for k in context if k is first or k is second) is first


#: structlog's variables by name (``bind_contextvars`` adds one per new key), if this
#: structlog keeps them there
_STRUCTLOG_VARS: dict[str, contextvars.ContextVar[Any]] | None = (
    known if isinstance(known := getattr(structlog.contextvars, "_CONTEXT_VARS", None), dict)
    else None
)  # fmt: skip
#: the two structlog variables of the request ids and their keys, in the order
#: ``get_contextvars`` lists them (:func:`read_request_ids_directly`)
_id_vars: tuple[contextvars.ContextVar[Any], str, contextvars.ContextVar[Any], str] | None = None


def read_request_ids_directly(
    request_id: contextvars.ContextVar[Any], correlation_id: contextvars.ContextVar[Any]
) -> None:
    """The HTTP middleware's request and correlation id variables (structlog's, made by
    ``bind_contextvars``): while they are the only structlog variables there are,
    :func:`log_access` reads the context from them instead of listing every variable of
    the context (``get_contextvars``): the same keys, values and order."""
    global _id_vars
    registry = _STRUCTLOG_VARS
    prefix = structlog.contextvars.STRUCTLOG_KEY_PREFIX
    first, second = (
        (request_id, correlation_id)
        if listing_order(request_id, correlation_id)
        else (correlation_id, request_id)
    )
    if (
        registry is None
        or registry.get(first.name) is not first
        or registry.get(second.name) is not second
        or not first.name.startswith(prefix)
        or not second.name.startswith(prefix)
    ):
        _id_vars = None
        return
    _id_vars = (first, first.name[len(prefix) :], second, second.name[len(prefix) :])


def _request_context() -> dict[str, Any]:
    """``structlog.contextvars.get_contextvars()``, without listing the whole context while
    the request ids' variables are structlog's only ones (none other was ever bound): then
    the context holds those two or fewer, and the ids are read from them directly."""
    ids = _id_vars
    registry = _STRUCTLOG_VARS
    if ids is not None and registry is not None and len(registry) == 2:
        first = ids[0].get(Ellipsis)
        second = ids[2].get(Ellipsis)
        if first is not Ellipsis and second is not Ellipsis:
            return {ids[1]: first, ids[3]: second}
    return structlog.contextvars.get_contextvars()


def log_access(logger: logging.Logger, fields: dict[str, Any]) -> None:
    """Log the HTTP access line (``event`` ``http.request``) with ``fields``, which the
    caller masked where a client can fill them (:data:`PREMASKED_FIELDS`).

    When the line would reach finbank's JSON handler and nothing else, it is
    rendered here, with the fields, names and format the pipeline would give it
    (the request context, trace ids, an ISO timestamp in UTC), and written to
    the handler's stream: one request, one line, a few microseconds. Otherwise
    (console format, another handler or a filter in the way) it goes through
    ``logging`` as any line does.
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    direct = _direct_handler(logger)
    if direct is None:
        logger.info("http.request", extra={**fields, PREMASKED: True})
        return
    handler, masker = direct
    context = _request_context()
    event: dict[str, Any] = {
        "event": "http.request",
        **context,
        "level": "info",
        "logger": logger.name,
        **fields,
        "timestamp": _utc_timestamp(),
    }
    trace_ids = current_trace_ids()
    if trace_ids:
        event.update(trace_ids)
    if not context.keys() <= PREMASKED_FIELDS:  # the request ids alone, as a rule
        rest = {k: v for k, v in context.items() if k not in PREMASKED_FIELDS}
        event.update(masker.mask_mapping(rest))
    encoded = msgspec.json.encode(event)
    assert isinstance(handler, FinbankHandler)
    handler.write_line(encoded.decode() + "\n", len(encoded) + 1)


#: strings known to be written in JSON as they are (printable ASCII, no quote, no
#: backslash): the method names, route templates and logger names :func:`log_request`
#: has met (at most :data:`_PLAIN_LIMIT` of them; a path is one only if it is its route)
_plain_strings: set[str] = set()
_PLAIN_LIMIT = 1024


def is_plain(text: str) -> bool:
    """Whether JSON writes ``text`` as it is between its quotes: printable ASCII, with no
    quote and no backslash (a stricter test than the encoder's: nothing it escapes passes)."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def _known_plain(text: str) -> bool:
    if text in _plain_strings:
        return True
    if not is_plain(text):
        return False
    if len(_plain_strings) < _PLAIN_LIMIT:
        _plain_strings.add(text)
    return True


def milliseconds(seconds: float) -> float:
    """The access line's ``duration_ms``: ``seconds`` in milliseconds, to two decimals."""
    return round(seconds * 1000, 2)


def _milliseconds_text(seconds: float) -> str:
    """``repr(milliseconds(seconds))`` (what JSON writes), from one formatting: both round
    correctly to two decimals, and below 10^13 ms the shortest form of that number is its
    two decimals without trailing zeros (one kept after the point)."""
    text = f"{seconds * 1000:.2f}".rstrip("0")
    return text + "0" if text[-1] == "." else text


def log_request(
    logger: logging.Logger,
    method: str,
    route: str,
    path: str,
    status: int,
    seconds: float,
    bound: tuple[str, str] | tuple[()] = (),
) -> None:
    """:func:`log_access` with the fields ``method``, ``route``, ``path``, ``status`` and
    ``duration_ms`` (:func:`milliseconds` of ``seconds``): the same line, byte for byte.

    In the usual case (finbank's JSON handler alone, the request ids the only
    context, no span, every string printable ASCII without a quote or backslash,
    so that JSON writes it as it is) the line is formatted from its pieces
    instead of a dictionary encoded. ``bound``: the two id strings the caller
    bound to the context and knows to be plain (:func:`is_plain`), so that, if the
    context still holds those very objects, they are not tested again. Anything
    else goes through :func:`log_access`."""
    if not logger.isEnabledFor(logging.INFO):
        return
    ids = _id_vars
    registry = _STRUCTLOG_VARS
    direct = _direct_handler(logger)
    if (
        direct is not None
        and ids is not None
        and registry is not None
        and len(registry) == 2
        and type(status) is int
        and type(seconds) is float
        and 0.0 <= seconds < 1e9  # under 10^13 ms: see _milliseconds_text
    ):
        first = ids[0].get(Ellipsis)
        second = ids[2].get(Ellipsis)
        name = logger.name
        if (
            type(first) is str
            and type(second) is str
            and type(method) is str
            and type(route) is str
            and type(path) is str
            and (
                (bound and first is bound[0] and second is bound[1])
                or (bound and first is bound[1] and second is bound[0])
                or is_plain(f"{first}{second}")
            )
            and _known_plain(name)
            and _known_plain(method)
            and _known_plain(route)
            and (path == route or is_plain(path))
            and not current_trace_ids()
        ):  # fmt: skip
            line = (
                f'{{"event":"http.request","{ids[1]}":"{first}","{ids[3]}":"{second}",'
                f'"level":"info","logger":"{name}","method":"{method}","route":"{route}",'
                f'"path":"{path}","status":{status},"duration_ms":{_milliseconds_text(seconds)},'
                f'"timestamp":"{_utc_timestamp()}"}}\n'
            )
            handler = direct[0]
            assert isinstance(handler, FinbankHandler)
            handler.write_line(line, len(line))  # ASCII: as many bytes as characters
            return
    log_access(
        logger,
        {
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": milliseconds(seconds),
        },
    )


def _masking(masker: Masker) -> Any:
    """The masker as a processor, skipping the fields of a :data:`PREMASKED` line."""

    def mask(logger: Any, method_name: str, event_dict: Any) -> Any:
        if event_dict.pop(PREMASKED, False) is not True:
            return masker(logger, method_name, event_dict)
        rest = {k: v for k, v in event_dict.items() if k not in PREMASKED_FIELDS}
        if rest:
            event_dict.update(masker.mask_mapping(rest))
        return event_dict

    return mask


def configure_logging(config: LogConfig | None = None, stream: TextIO | None = None) -> Masker:
    """Install the masked structlog pipeline on the root logger; returns the masker."""
    config = config or LogConfig.from_env()
    masker = Masker(mask_amounts=config.mask_amounts)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if config.json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    pre_chain = shared_processors()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _masking(masker),
            renderer,
        ],
    )
    handler = FinbankHandler(stream or _CurrentStderr())
    handler.setFormatter(formatter)
    handler.set_name(HANDLER_NAME)

    global _direct
    _direct = (handler, masker) if config.json else None
    root = logging.getLogger()
    for existing in list(root.handlers):
        # ours from an earlier call, and plain console handlers (basicConfig) that
        # would print unmasked; other handlers (files, test capture) stay
        if existing.get_name() == HANDLER_NAME or type(existing) is logging.StreamHandler:
            root.removeHandler(existing)
            if isinstance(existing, FinbankHandler):
                existing.flush()  # its waiting access lines, to its own stream
    root.addHandler(handler)
    level = logging.getLevelName(config.level)
    root.setLevel(level if isinstance(level, int) else logging.INFO)

    for name in ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        for existing in list(routed.handlers):
            routed.removeHandler(existing)
        routed.propagate = True
    for name in QUIET_LOGGERS:
        quiet = logging.getLogger(name)
        quiet.setLevel(max(root.level, logging.INFO))

    structlog.configure(
        processors=[*pre_chain, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return masker
