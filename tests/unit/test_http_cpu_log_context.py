"""The access line: context an embedder bound beyond the request ids is still masked
(the masking is entered only for such keys), and flushing the waiting lines leaves alone
a handler with none, whose stream may be closed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from tests.logging_support import finbank_handler_alone, finbank_logging_to

from finbank_http.observability import flush_access_lines, logs
from finbank_http.observability.logs import log_access

CPF = "52998224725"


@pytest.fixture(autouse=True)
def clean_context() -> Iterator[None]:
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    with finbank_logging_to(io.StringIO()) as text:
        yield text


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
