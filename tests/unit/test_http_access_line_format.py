"""The access line formatted from its pieces (``logs.log_request``) is, byte for byte
(the timestamp aside), the line ``log_access`` encodes from a dictionary, which is the
line logging's pipeline writes (tests/e2e/test_http_fast_path.py); and its shortcuts
(the request ids read from their two variables, the span looked up in OpenTelemetry's
context variable) answer what the general way answers."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog
from tests.logging_support import finbank_handler_alone, finbank_logging_to

from finbank_http.observability import logs, middleware, tracing
from finbank_http.observability.logs import (
    _milliseconds_text,
    flush_access_lines,
    is_plain,
    listing_order,
    log_access,
    log_request,
    milliseconds,
)

ACCESS = logging.getLogger("finbank.http.access")


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """finbank's handler writing to a ``StringIO``; structlog's variables limited to the
    request ids' (as in ``finbank serve``: none other bound)."""
    assert middleware._ID_VARS is not None
    request_var, correlation_var = middleware._ID_VARS
    monkeypatch.setattr(
        logs,
        "_STRUCTLOG_VARS",
        {request_var.name: request_var, correlation_var.name: correlation_var},
    )
    with finbank_logging_to(io.StringIO()) as writes:
        yield writes


@contextmanager
def alone() -> Iterator[None]:
    """Only finbank's handler on the root logger (pytest's capture set aside, within a
    test), as in ``finbank serve``: the access line takes the direct path."""
    with finbank_handler_alone():
        assert logs._direct_handler(ACCESS) is not None
        yield


def _bound(request_id: str, correlation_id: str) -> tuple[Any, Any]:
    assert middleware._ID_VARS is not None
    request_var, correlation_var = middleware._ID_VARS
    return request_var.set(request_id), correlation_var.set(correlation_id)


def _unbind(tokens: tuple[Any, Any]) -> None:
    assert middleware._ID_VARS is not None
    middleware._ID_VARS[1].reset(tokens[1])
    middleware._ID_VARS[0].reset(tokens[0])


def _pairs(text: str) -> list[tuple[str, str]]:
    """Consecutive lines, without their timestamps (the one field that moves)."""
    lines = [line.rsplit(',"timestamp":', 1)[0] for line in text.splitlines()]
    return list(zip(lines[::2], lines[1::2], strict=True))


CASES: list[tuple[str, str, str, str, str, int, float]] = [
    ("r" * 32, "r" * 32, "POST", "/v1/transfers", "/v1/transfers", 201, 0.00123),
    ("req-1", "flow:2", "GET", "/a", "/a?x=1", 200, 0.0),
    ("req-1", "flow-2", "OTHER", "/v1/docs/{d:str}", '/v1/docs/a"b', 418, 12.3456),
    ("req-1", "flow-2", "GET", "/a", "/a/é", 200, 1.0),
    ("req-1", "flow-2", "GET", "/a", "/a/\\x", 200, 0.005),
    ("req-\x01", "flow-2", "GET", "/a", "/a", 200, 0.015),
    ('re"q', "fl\\ow", "GET", "/a", "/a", 404, 0.025),
    ("req", "flow", "GET", "/a\x7f", "/a\x7f", 500, 2.5),
    ("req", "flow", "PATCH", "/b", "/b", 204, 1e-7),
    ("req", "flow", "PUT", "/b", "/b", 200, 86_400.0),
]


@pytest.mark.parametrize("case", CASES)
def test_the_formatted_line_is_the_encoded_line(
    stream: io.StringIO, case: tuple[str, str, str, str, str, int, float]
) -> None:
    with alone():
        _formatted_and_encoded(stream, case)


def _formatted_and_encoded(
    stream: io.StringIO, case: tuple[str, str, str, str, str, int, float]
) -> None:
    request_id, correlation_id, method, route, path, status, seconds = case
    tokens = _bound(request_id, correlation_id)
    try:
        log_request(ACCESS, method, route, path, status, seconds)
        log_access(
            ACCESS,
            {
                "method": method,
                "route": route,
                "path": path,
                "status": status,
                "duration_ms": milliseconds(seconds),
            },
        )
        # the ids the caller bound, if it may vouch for them (plain): not tested again
        vouched: tuple[str, str] | tuple[()] = (
            (request_id, correlation_id) if is_plain(request_id + correlation_id) else ()
        )
        log_request(ACCESS, method, route, path, status, seconds, vouched)
    finally:
        _unbind(tokens)
    flush_access_lines()
    text = stream.getvalue()
    formatted, encoded, formatted_vouched = (
        line.rsplit(',"timestamp":', 1)[0] for line in text.splitlines()
    )
    assert formatted == encoded
    assert formatted_vouched == encoded
    line = json.loads(text.splitlines()[0])
    assert line["request_id"] == request_id
    assert line["path"] == path
    assert line["duration_ms"] == milliseconds(seconds)


def test_random_lines_are_the_encoded_ones(stream: io.StringIO) -> None:
    with alone():
        _random_lines(stream)


def _random_lines(stream: io.StringIO) -> None:
    chooser = random.Random(16)
    alphabet = 'abcXYZ019._:-/?=&%"\\\x00\x1f\x7fé '
    for _ in range(300):
        ids = ["".join(chooser.choices(alphabet, k=chooser.randint(1, 12))) for _ in "rc"]
        path = "/" + "".join(chooser.choices(alphabet, k=chooser.randint(0, 20)))
        seconds = chooser.random() * 10 ** chooser.randint(-7, 4)
        tokens = _bound(ids[0], ids[1])
        try:
            log_request(ACCESS, "GET", "/r", path, 200, seconds)
            log_access(
                ACCESS,
                {
                    "method": "GET",
                    "route": "/r",
                    "path": path,
                    "status": 200,
                    "duration_ms": milliseconds(seconds),
                },
            )
        finally:
            _unbind(tokens)
    flush_access_lines()
    pairs = _pairs(stream.getvalue())
    assert len(pairs) == 300
    for formatted, encoded in pairs:
        assert formatted == encoded


def test_the_usual_line_is_formatted_not_encoded(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: object) -> None:
        raise AssertionError("the usual line went through log_access")

    monkeypatch.setattr(logs, "log_access", refused)
    tokens = _bound("a" * 32, "a" * 32)
    try:
        with alone():
            log_request(ACCESS, "POST", "/v1/transfers", "/v1/transfers", 201, 0.002)
    finally:
        _unbind(tokens)
    flush_access_lines()
    assert json.loads(stream.getvalue())["duration_ms"] == 2.0


def test_context_bound_beyond_the_ids_is_masked_and_not_skipped(stream: io.StringIO) -> None:
    # the registry is the real one again: a new structlog variable joins it
    logs_vars: Any = structlog.contextvars._CONTEXT_VARS
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logs, "_STRUCTLOG_VARS", logs_vars)
        tokens = _bound("r-1", "c-1")
        try:
            with structlog.contextvars.bound_contextvars(password="s3cr3t-pass"), alone():
                log_request(ACCESS, "GET", "/health", "/health", 200, 0.0001)
        finally:
            _unbind(tokens)
    flush_access_lines()
    line = json.loads(stream.getvalue())
    assert line["password"] == "[REDACTED]"
    assert "s3cr3t-pass" not in stream.getvalue()
    assert line["request_id"] == "r-1"


def test_ids_rebound_after_the_caller_bound_them_are_tested_again(stream: io.StringIO) -> None:
    tokens = _bound("r-1", "c-1")
    try:
        inner = _bound('r"2', "c-2")  # a handler binding an id of its own
        try:
            with alone():
                log_request(ACCESS, "GET", "/a", "/a", 200, 0.001, ("r-1", "c-1"))
        finally:
            _unbind(inner)
    finally:
        _unbind(tokens)
    flush_access_lines()
    assert json.loads(stream.getvalue())["request_id"] == 'r"2'


def test_no_ids_in_the_context_gives_the_line_without_them(stream: io.StringIO) -> None:
    with alone():
        log_request(ACCESS, "GET", "/a", "/a", 200, 0.001)
    flush_access_lines()
    line = json.loads(stream.getvalue())
    assert "request_id" not in line
    assert line["route"] == "/a"


def test_milliseconds_text_is_what_json_writes_for_the_rounded_duration() -> None:
    chooser = random.Random(7)
    values = [0.0, 0.000005, 0.000015, 0.0001, 0.001, 0.0125, 0.1, 1.0, 999_999.999]
    values += [chooser.random() * 10 ** chooser.randint(-8, 8) for _ in range(20_000)]
    values += [n / 100_000 for n in range(2_000)]  # ties of the second decimal
    for seconds in values:
        assert _milliseconds_text(seconds) == repr(milliseconds(seconds)), seconds


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("abc-1._:/?=&%", True),
        ("", True),
        ('a"b', False),
        ("a\\b", False),
        ("a\x00b", False),
        ("a\x1fb", False),
        ("a\x7fb", False),
        ("é", False),
    ],
)
def test_plain_is_only_what_json_writes_unchanged(text: str, plain: bool) -> None:
    assert is_plain(text) is plain
    if plain:
        assert json.dumps(text, ensure_ascii=False) == f'"{text}"'


def test_the_listing_order_is_the_order_a_context_lists_them_in() -> None:
    chooser = random.Random(3)
    for _ in range(300):
        first: contextvars.ContextVar[int] = contextvars.ContextVar("first")
        second: contextvars.ContextVar[int] = contextvars.ContextVar("second")
        others = [contextvars.ContextVar[int](f"other{n}") for n in range(chooser.randint(0, 40))]
        order = listing_order(first, second)
        context = contextvars.Context()

        def fill(
            first: contextvars.ContextVar[int] = first,
            second: contextvars.ContextVar[int] = second,
            others: list[contextvars.ContextVar[int]] = others,
        ) -> None:
            chooser.shuffle(others)
            for index, other in enumerate(others):
                other.set(index)
                if index == len(others) // 2:
                    first.set(1)
            if not others:
                first.set(1)
            second.set(2)

        context.run(fill)
        listed = [var for var in context if var is first or var is second]
        assert (listed[0] is first) is order


def test_the_request_ids_are_read_directly_only_from_structlogs_own_variables() -> None:
    assert middleware._ID_VARS is not None
    _, correlation_var = middleware._ID_VARS
    assert logs._id_vars is not None
    assert {logs._id_vars[1], logs._id_vars[3]} == {"request_id", "correlation_id"}
    stranger: contextvars.ContextVar[Any] = contextvars.ContextVar("structlog_request_id")
    kept = logs._id_vars
    try:
        logs.read_request_ids_directly(stranger, correlation_var)
        assert logs._id_vars is None  # not the variable structlog binds
    finally:
        logs._id_vars = kept


def test_without_a_span_in_the_context_no_trace_ids_either_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert tracing.current_trace_ids() == {}
    assert tracing._slot not in (None, False)  # the shortcut is taken here
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    tracer = sdk.TracerProvider().get_tracer("test")
    for slot in (tracing._slot, False):
        monkeypatch.setattr(tracing, "_slot", slot)
        assert tracing.current_trace_ids() == {}
        with tracer.start_as_current_span("request") as span:
            ids = tracing.current_trace_ids()
            assert ids["span_id"] == f"{span.get_span_context().span_id:016x}"
        assert tracing.current_trace_ids() == {}
