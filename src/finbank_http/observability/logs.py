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
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog

from finbank_http.observability.masking import Masker

#: third-party loggers never allowed below INFO (they log payloads at DEBUG)
QUIET_LOGGERS = ("botocore", "aiobotocore", "boto3", "s3transfer", "urllib3", "aiokafka", "asyncio")
#: loggers that install their own handlers; ours replace them
ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "litestar")


HANDLER_NAME = "finbank"


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


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
    from finbank_http.observability.tracing import current_trace_ids

    event_dict.update(current_trace_ids())
    return event_dict


def _drop_color_message(logger: Any, method_name: str, event_dict: Any) -> Any:
    event_dict.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    return event_dict


def shared_processors() -> list[Any]:
    return [
        _drop_color_message,
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]


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
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, masker, renderer],
    )
    handler = logging.StreamHandler(stream or _CurrentStderr())
    handler.setFormatter(formatter)
    handler.set_name(HANDLER_NAME)

    root = logging.getLogger()
    for existing in list(root.handlers):
        # ours from an earlier call, and plain console handlers (basicConfig) that
        # would print unmasked; other handlers (files, test capture) stay
        if existing.get_name() == HANDLER_NAME or type(existing) is logging.StreamHandler:
            root.removeHandler(existing)
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
