"""AWS Lambda entry points, built on the bank's containers.

* :func:`pix_stream_handler`: the PIX table's DynamoDB stream ->
  ``pix.payment_status_changed`` events (the processor, its guarantees and
  metrics: :mod:`finbank_adapters.aws.lambda_handlers`). Deployed by
  ``deploy/terraform/modules/stream_lambda`` (needs ``finbank[aws]``).
* :func:`reconciliation_handler`: the daily reconciliation, e.g. on an
  EventBridge schedule. Event: ``{"date": "YYYY-MM-DD", "apply": false}``;
  ``date`` defaults to yesterday in São Paulo, ``apply`` to ``false`` and must
  be a JSON boolean (anything else is refused with ``InvalidInput``). Returns the run's summary
  (counts per class, report paths).

Each execution environment keeps one event loop across warm invocations
(and, for the stream, the container and its clients, opened once). The
handlers choose no adapter: the settings do, through the containers.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import msgspec

from finbank.bank import open_bank
from finbank_adapters.containers import BankContainer, build_container, resolve
from finbank_adapters.quiet_logs import quiet_third_party_loggers
from finbank_core.reconciliation.use_cases import ReconcileCommand
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.events import EventPublisher

if TYPE_CHECKING:
    from finbank_adapters.aws.lambda_handlers import EffectLog, PixStreamProcessor

__all__ = [
    "StreamRuntime",
    "current_runtime",
    "open_runtime",
    "pix_stream_handler",
    "reconciliation_handler",
    "reset_runtime",
]


# -- the PIX table's stream -----------------------------------------------------------


@dataclass
class StreamRuntime:
    """What one execution environment keeps between invocations."""

    loop: asyncio.AbstractEventLoop
    container: BankContainer
    publisher: EventPublisher
    processor: PixStreamProcessor

    def close(self) -> None:
        result = self.container.shutdown_resources()
        if result is not None:
            self.loop.run_until_complete(result)
        self.loop.close()


_runtime: StreamRuntime | None = None


def open_runtime() -> StreamRuntime:
    """Build the container from the environment's settings and resolve what the handler uses.

    Only the publisher and the effect log are resolved (with the clients they
    need): the stream Lambda opens no other connection.
    """
    from finbank_adapters import tracing
    from finbank_adapters.aws.lambda_handlers import SERVICE
    from finbank_adapters.aws.secrets import export_secret_settings
    from finbank_adapters.settings import SettingsError

    # the Lambda runtime sets the root logger (AWS_LAMBDA_LOG_LEVEL) and nothing of ours
    # sets up logging here: botocore at DEBUG would log the records' payloads
    quiet_third_party_loggers()
    # cold start: the application secret's values (DSN, Kafka credentials...) become
    # FINBANK_* variables before anything reads the settings (docs/operations.md)
    export_secret_settings()
    tracing.configure()  # FINBANK_TRACING=otel: a process span per record (docs/operations.md)
    loop = asyncio.new_event_loop()
    container = build_container()
    settings = container.infra.settings()
    if settings.backends.pix != "dynamodb":
        loop.close()
        raise SettingsError("the PIX stream handler needs FINBANK_PIX_BACKEND=dynamodb")

    async def build() -> tuple[EventPublisher, PixStreamProcessor]:
        publisher: EventPublisher = await resolve(container.events.publisher())
        effects: EffectLog = await resolve(container.pix.effect_log(consumer=SERVICE))
        processor: PixStreamProcessor = await resolve(
            container.workers.pix_stream_processor(effects=effects, loop=loop)
        )
        return publisher, processor

    publisher, processor = loop.run_until_complete(build())
    return StreamRuntime(loop, container, publisher, processor)


def current_runtime() -> StreamRuntime:
    """The warm runtime, opened on first use."""
    global _runtime
    if _runtime is None or _runtime.loop.is_closed():
        _runtime = open_runtime()
    return _runtime


def reset_runtime() -> None:
    """Close the warm runtime (tests; a new environment starts cold anyway)."""
    global _runtime
    if _runtime is not None:
        _runtime.close()
        _runtime = None


def pix_stream_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the PIX table's stream -> ``pix.payment_status_changed`` events."""
    return current_runtime().processor.process_batch(event, context)


# -- the daily reconciliation ----------------------------------------------------------

_loop: asyncio.AbstractEventLoop | None = None


def _event_loop() -> asyncio.AbstractEventLoop:
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _reconcile_options(event: object) -> tuple[date | None, bool]:
    """The event's ``date`` (``None``: yesterday) and ``apply``, checked before anything runs.

    ``apply`` must be a JSON boolean: read with ``bool()``, ``"false"`` (a string, as
    a console or a template may send it) meant *apply*, and a run meant as a dry run
    voided the orphan holds it found.
    """
    if not isinstance(event, dict):
        raise InvalidInput("the event must be a JSON object", field="event")
    raw_day = event.get("date")
    day: date | None = None
    if raw_day is not None:
        if not isinstance(raw_day, str) or not _ISO_DAY.fullmatch(raw_day):
            raise InvalidInput("date must be a YYYY-MM-DD string", field="date")
        try:
            day = date.fromisoformat(raw_day)
        except ValueError:
            raise InvalidInput(
                f"date {raw_day} is not a day of the calendar", field="date"
            ) from None
    apply = event.get("apply", False)
    if not isinstance(apply, bool):
        raise InvalidInput("apply must be true or false (a JSON boolean)", field="apply")
    return day, apply


async def _reconcile(event: dict[str, Any]) -> dict[str, Any]:
    day, apply = _reconcile_options(event)
    quiet_third_party_loggers()  # see open_runtime
    async with open_bank() as bank:
        command = ReconcileCommand(business_day=day or bank.reconciliation.yesterday(), apply=apply)
        summary = await bank.reconciliation.reconcile_day(command)
    result: dict[str, Any] = msgspec.to_builtins(summary)
    result["discrepancies"] = summary.discrepancies
    return result


def reconciliation_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda handler: reconcile ``event["date"]`` (default: yesterday), a summary back."""
    return _event_loop().run_until_complete(_reconcile(event))
