"""The HTTP access lines are written in batches by finbank's handler (``logs.FinbankHandler``):

held at most ``flush_seconds`` (a timer on the running loop) and
``ACCESS_BUFFER_BYTES`` (each write at most that much, whole lines: atomic on a
pipe shared by workers), written before any other line, on flush, close, the
app's shutdown and before a fork (a child forgets the parent's), and at once
outside an event loop.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient
from tests.logging_support import finbank_handler_alone, finbank_logging_to

from finbank_adapters.containers import build_container
from finbank_adapters.settings import JwtOptions, Settings
from finbank_http import create_app
from finbank_http.observability import logs
from finbank_http.observability.logs import (
    ACCESS_BUFFER_BYTES,
    ACCESS_FLUSH_SECONDS,
    FinbankHandler,
    _direct_handler,
    log_access,
)
from finbank_http.observability.tracing import current_trace_ids

ACCESS = logging.getLogger("finbank.http.access")


class Writes(io.StringIO):
    """A stream that remembers each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def fields(n: int = 0) -> dict[str, Any]:
    return {
        "method": "POST",
        "route": "/v1/transfers",
        "path": "/v1/transfers",
        "status": 201,
        "duration_ms": float(n),
    }


@pytest.fixture
def stream() -> Iterator[Writes]:
    """finbank's handler, writing to a ``Writes``."""
    with finbank_logging_to(Writes()) as writes:
        yield writes


@contextmanager
def alone() -> Iterator[None]:
    """Only finbank's handler on the root logger (pytest's capture set aside), as in
    ``finbank serve``: the access line takes the direct path."""
    with finbank_handler_alone():
        assert _direct_handler(ACCESS) is not None
        yield


def handler_of() -> FinbankHandler:
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == "finbank"]
    assert isinstance(handler, FinbankHandler)
    return handler


def events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


async def until_written(stream: Writes) -> None:
    """Let the loop run until the handler's timer wrote (iterations, not time)."""
    for _ in range(1000):
        if stream.writes:
            return
        await asyncio.sleep(0)
    raise AssertionError("the timer never wrote the waiting lines")


def test_outside_an_event_loop_a_line_is_written_at_once(stream: Writes) -> None:
    with alone():
        log_access(ACCESS, fields())
        assert len(stream.writes) == 1
        [line] = events(stream.getvalue())
        assert line["event"] == "http.request"
        assert handler_of().pending_lines == 0


async def test_in_a_loop_lines_wait_for_the_timer_and_go_out_in_one_write(stream: Writes) -> None:
    with alone():
        handler = handler_of()
        handler.flush_seconds = 0.0
        for n in range(3):
            log_access(ACCESS, fields(n))
        assert stream.writes == []
        assert handler.pending_lines == 3
        await until_written(stream)
        assert len(stream.writes) == 1
        assert [line["duration_ms"] for line in events(stream.writes[0])] == [0.0, 1.0, 2.0]
        assert handler.pending_lines == 0


async def test_the_timer_is_set_for_the_flush_interval(stream: Writes) -> None:
    with alone():
        handler = handler_of()
        assert handler.flush_seconds == ACCESS_FLUSH_SECONDS
        loop = asyncio.get_running_loop()
        log_access(ACCESS, fields())
        timer = handler._timer
        assert timer is not None
        assert 0 < timer.when() - loop.time() <= ACCESS_FLUSH_SECONDS
        log_access(ACCESS, fields())
        assert handler._timer is timer  # one timer for the lines waiting together
        handler.flush()
        assert len(events(stream.getvalue())) == 2


async def test_no_write_is_over_the_buffer_and_every_write_holds_whole_lines(
    stream: Writes,
) -> None:
    with alone():
        handler = handler_of()
        count = 3 * ACCESS_BUFFER_BYTES // 200
        for n in range(count):
            log_access(ACCESS, fields(n))
        assert stream.writes, "the buffer's bound wrote some before the timer"
        handler.flush()
        assert len(stream.writes) > 1
        for text in stream.writes:
            assert len(text.encode()) <= ACCESS_BUFFER_BYTES
            assert text.endswith("\n")
            events(text)  # whole JSON lines
        assert [line["duration_ms"] for line in events(stream.getvalue())] == [
            float(n) for n in range(count)
        ]


async def test_a_line_longer_than_the_buffer_is_written_alone(stream: Writes) -> None:
    with alone():
        long = {**fields(), "path": "/v1/" + "a" * ACCESS_BUFFER_BYTES}
        log_access(ACCESS, fields(1))
        log_access(ACCESS, long)
        assert [len(events(text)) for text in stream.writes] == [1, 1]
        assert events(stream.writes[1])[0]["path"] == long["path"]


async def test_another_line_is_written_after_the_access_lines_logged_before_it(
    stream: Writes,
) -> None:
    with alone():
        log_access(ACCESS, fields())
        logging.getLogger("finbank.test").warning("after.the.request")
        assert [line["event"] for line in events(stream.getvalue())] == [
            "http.request",
            "after.the.request",
        ]


async def test_close_writes_the_waiting_lines(stream: Writes) -> None:
    with alone():
        handler = handler_of()
        log_access(ACCESS, fields())
        handler.close()
        assert [line["event"] for line in events(stream.getvalue())] == ["http.request"]


def test_the_apps_shutdown_writes_the_waiting_lines(
    stream: Writes, monkeypatch: pytest.MonkeyPatch
) -> None:
    with alone():
        handler = handler_of()
        handler.flush_seconds = 3600.0  # only the shutdown can write it
        # the test client's own INFO line would write it first (lines keep their order)
        monkeypatch.setattr(logging.getLogger("httpx"), "level", logging.WARNING)
        settings = Settings(jwt=JwtOptions(secret=secrets.token_hex(32)))
        with TestClient(create_app(build_container(settings))) as client:
            assert client.get("/health").status_code == 200
            # logged on the client's loop, as in ``finbank serve``: it waits
            assert handler.pending_lines == 1
            assert "http.request" not in stream.getvalue()
        assert [e["route"] for e in events(stream.getvalue()) if e["event"] == "http.request"] == [
            "/health"
        ]
        assert handler.pending_lines == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
# Python 3.12+ warns at every fork of a process with threads (earlier tests of the run leave
# some). The child touches only the handler this test made, which no other thread holds, and
# leaves with os._exit.
@pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning"
)
async def test_a_fork_writes_the_waiting_lines_once_and_the_child_forgets_them() -> None:
    with tempfile.TemporaryFile("w+") as file:
        handler = FinbankHandler(file)
        handler.write_line('{"event":"http.request"}\n', 25)
        assert handler.pending_lines == 1
        pid = os.fork()
        if pid == 0:  # the child: nothing waits; a flush at its exit writes nothing again
            code = 0 if handler.pending_lines == 0 else 1
            handler.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)  # noqa: ASYNC222 (a child that exits at once)
        assert os.waitstatus_to_exitcode(status) == 0
        handler.flush()
        file.seek(0)
        assert file.read() == '{"event":"http.request"}\n'


def test_trace_ids_are_empty_without_a_span_and_those_of_the_active_span_within_one() -> None:
    assert current_trace_ids() == {}
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    tracer = sdk.TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        context = span.get_span_context()
        assert current_trace_ids() == {
            "trace_id": f"{context.trace_id:032x}",
            "span_id": f"{context.span_id:016x}",
        }
    assert current_trace_ids() == {}


@pytest.mark.parametrize(
    "now_ns",
    [
        0,
        1_764_900_000_000_000_000,  # a whole second: no fraction, as isoformat
        1_764_900_000_000_042_000,
        1_764_900_000_999_999_999,
        1_764_900_001_000_999_000,
        1_764_900_001_123_456_789,
    ],
)
def test_the_timestamp_is_structlogs_iso_utc_form(
    now_ns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "_seconds", (-1, ""))
    monkeypatch.setattr(time, "time_ns", lambda: now_ns)
    whole, nanos = divmod(now_ns, 1_000_000_000)
    moment = datetime.fromtimestamp(whole, UTC).replace(microsecond=nanos // 1000)
    assert logs._utc_timestamp() == moment.isoformat().replace("+00:00", "Z")
    assert logs._utc_timestamp() == moment.isoformat().replace("+00:00", "Z")  # cached second


def test_a_timer_left_on_a_closed_loop_does_not_hold_the_next_lines(stream: Writes) -> None:
    with alone():
        handler = handler_of()

        async def first() -> None:
            handler.flush_seconds = 3600.0  # never fires: its loop closes first
            log_access(ACCESS, fields(1))

        async def second() -> None:
            handler.flush_seconds = 0.0
            log_access(ACCESS, fields(2))
            await until_written(stream)

        asyncio.run(first())
        assert handler.pending_lines == 1
        asyncio.run(second())  # a timer on this loop writes both
        assert [line["duration_ms"] for line in events(stream.getvalue())] == [1.0, 2.0]
