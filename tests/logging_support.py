"""finbank's logging in tests: its handler on a stream, and alone on the root logger.

``finbank serve`` configures logging once, with finbank's handler the only one on
the root logger, so the access line takes its direct path (``log_access``). In a
test, pytest's capture handlers sit beside it; these helpers set them aside and
put everything back afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO, TypeVar

import structlog

from finbank_http.observability.logs import LogConfig, configure_logging

S = TypeVar("S", bound=TextIO)


@contextmanager
def finbank_logging_to(stream: S) -> Iterator[S]:
    """finbank's JSON pipeline at INFO writing to ``stream``; removed (and structlog reset)
    on the way out."""
    configure_logging(LogConfig(level="INFO", json=True), stream=stream)
    try:
        yield stream
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if handler.get_name() == "finbank":
                root.removeHandler(handler)
        root.setLevel(logging.WARNING)
        structlog.reset_defaults()


@contextmanager
def finbank_handler_alone() -> Iterator[None]:
    """Only finbank's handler on the root logger (pytest's capture handlers set aside),
    as in ``finbank serve``: the access line then takes the direct path."""
    root = logging.getLogger()
    others = [h for h in root.handlers if h.get_name() != "finbank"]
    for handler in others:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in others:
            root.addHandler(handler)
