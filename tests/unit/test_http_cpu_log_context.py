"""The access line reads the bound structlog context from structlog's own registry
(``finbank_http.observability.logs._bound_context``): the same values as
``structlog.contextvars.get_contextvars()`` in every case, and context an embedder
bound is still masked in the line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog

from finbank_http.observability import LogConfig, configure_logging, flush_access_lines, logs
from finbank_http.observability.logs import _bound_context, log_access

CPF = "52998224725"


@pytest.fixture(autouse=True)
def clean_context() -> Iterator[None]:
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


def test_nothing_bound_is_an_empty_context() -> None:
    assert _bound_context() == structlog.contextvars.get_contextvars() == {}


def test_bound_values_are_read_and_unbound_ones_left_out() -> None:
    structlog.contextvars.bind_contextvars(request_id="r-1", correlation_id="c-1", user="u")
    assert _bound_context() == structlog.contextvars.get_contextvars()
    assert _bound_context() == {"request_id": "r-1", "correlation_id": "c-1", "user": "u"}
    structlog.contextvars.unbind_contextvars("user")  # sets it to ...
    assert _bound_context() == structlog.contextvars.get_contextvars()
    assert "user" not in _bound_context()
    structlog.contextvars.bind_contextvars(user=None)  # None is a value, ... is not
    assert (
        _bound_context()
        == structlog.contextvars.get_contextvars()
        == {
            "request_id": "r-1",
            "correlation_id": "c-1",
            "user": None,
        }
    )


async def test_each_task_reads_its_own_context() -> None:
    structlog.contextvars.bind_contextvars(request_id="outer")

    async def inner(name: str) -> dict[str, object]:
        structlog.contextvars.bind_contextvars(request_id=name, only_here=name)
        await asyncio.sleep(0)
        return _bound_context()

    seen = list(await asyncio.gather(inner("a"), inner("b")))
    assert seen == [
        {"request_id": "a", "only_here": "a"},
        {"request_id": "b", "only_here": "b"},
    ]
    assert _bound_context() == structlog.contextvars.get_contextvars() == {"request_id": "outer"}


def test_without_the_registry_structlog_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    structlog.contextvars.bind_contextvars(request_id="r-2")
    monkeypatch.setattr(logs, "_STRUCTLOG_VARS", None)
    assert _bound_context() == {"request_id": "r-2"}


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    text = io.StringIO()
    configure_logging(LogConfig(level="INFO", json=True), stream=text)
    try:
        yield text
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if handler.get_name() == "finbank":
                root.removeHandler(handler)
        root.setLevel(logging.WARNING)
        structlog.reset_defaults()


@contextmanager
def finbank_handler_alone() -> Iterator[None]:
    """pytest's capture handlers set aside: the access line then takes the direct path."""
    root = logging.getLogger()
    others = [h for h in root.handlers if h.get_name() != "finbank"]
    for handler in others:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in others:
            root.addHandler(handler)


def test_context_beyond_the_request_ids_is_masked_in_the_line(stream: io.StringIO) -> None:
    access = logging.getLogger("finbank.http.access")
    with finbank_handler_alone():
        assert logs._direct_handler(access) is not None
        structlog.contextvars.bind_contextvars(request_id="r-3", correlation_id="c-3")
        log_access(access, {"route": "/a", "status": 200})
        structlog.contextvars.bind_contextvars(customer=f"document {CPF}")
        log_access(access, {"route": "/b", "status": 200})
        flush_access_lines()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["request_id"], first["correlation_id"], "customer" in first) == (
        "r-3",
        "c-3",
        False,
    )
    assert second["request_id"] == "r-3"
    assert CPF not in second["customer"]  # masked: only the request ids are taken as they are


def test_a_detached_handler_with_a_closed_stream_does_not_fail_the_flush(
    tmp_path: Any,
) -> None:
    with open(tmp_path / "lines", "w") as file:
        handler = logs.FinbankHandler(file)
    assert handler.pending_lines == 0
    # closed, nothing waiting: the app's shutdown flushes every handler's waiting lines
    flush_access_lines()
    del handler  # unnamed and on no logger: gone with its last reference
