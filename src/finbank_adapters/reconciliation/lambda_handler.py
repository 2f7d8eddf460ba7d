"""AWS Lambda entry point for the daily reconciliation (e.g. an EventBridge schedule).

Event: ``{"date": "YYYY-MM-DD", "apply": false}``; ``date`` defaults to
yesterday in São Paulo. One event loop is kept across warm invocations.
Returns the run's summary (counts per class, report paths).
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import msgspec

from finbank_adapters.containers import build_container, close_container
from finbank_adapters.reconciliation.job import reconcile_day, yesterday

_loop: asyncio.AbstractEventLoop | None = None


def _event_loop() -> asyncio.AbstractEventLoop:
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop


async def _run(event: dict[str, Any]) -> dict[str, Any]:
    container = build_container()
    raw = event.get("date")
    day = date.fromisoformat(raw) if raw else yesterday(container.infra.clock().now())
    try:
        summary = await reconcile_day(container, day, apply=bool(event.get("apply", False)))
    finally:
        await close_container(container)
    result: dict[str, Any] = msgspec.to_builtins(summary)
    result["discrepancies"] = summary.discrepancies
    return result


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return _event_loop().run_until_complete(_run(event))
