"""The bank's processes: ``finbank relay``, ``finbank worker ...``, and the file store the jobs use.

Each entry point here builds the bank's containers on the settings, opens
them as a :class:`~finbank.bank.Bank` (:func:`~finbank.bank.opened`), resolves
the loop it runs from them (the relay, the settlement handler and its
consumer runner, the Pix Automático use case) and runs it until ``stop`` is
set; the connections are closed on the way out. The loops themselves live in
the adapters (:class:`~finbank_adapters.kafka.relay.OutboxRelay`,
:class:`~finbank_adapters.workers.pix_settlement.PixSettlementHandler`,
:class:`~finbank_adapters.workers.pix_automatic.PixAutomaticWorker`) and
receive what they need; they build nothing.

The settlement worker also runs the MED sweeper (:func:`sweep_med_every`)
every ``FINBANK_PIX_MED_SWEEP_SECONDS``: every replica does, which is safe
(sweeps at once move each amount once) and keeps it running while one is up.

``overrides`` replaces ports as for :func:`~finbank.bank.open_bank` (a fake
clock, a payment network...), so a test can run a worker on the same fakes
as the bank it drives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from finbank.bank import Bank, configure, opened
from finbank.overrides import Overrides
from finbank_adapters import metrics, tracing
from finbank_adapters.containers import build_container, close_container, resolve
from finbank_adapters.settings import Settings
from finbank_core.pix.med.use_cases import SweepMedCommand
from finbank_core.reconciliation.ports import FileStore
from finbank_core.shared.errors import DomainError

if TYPE_CHECKING:
    from finbank_adapters.kafka import KafkaConsumerRunner, KafkaSettings, RetryPolicy
    from finbank_adapters.workers.pix_settlement import PixSettlementHandler

__all__ = [
    "PixSettlementWorker",
    "open_file_store",
    "run_pix_automatic_worker",
    "run_pix_settlement_worker",
    "run_relay",
    "stop_on_signals",
    "sweep_med_every",
]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def stop_on_signals(
    stop: asyncio.Event, signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM)
) -> Iterator[None]:
    """Set ``stop`` on SIGINT/SIGTERM while the block runs (inside a running event loop)."""
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


@contextlib.asynccontextmanager
async def _open(settings: Settings, overrides: Overrides | None) -> AsyncIterator[Bank]:
    container = build_container(settings)
    configure(container, overrides)
    async with opened(container) as bank:
        yield bank


async def _side_tasks_done(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_relay(
    settings: Settings, stop: asyncio.Event, *, overrides: Overrides | None = None
) -> None:
    """``finbank relay``: drain the PostgreSQL outbox to Kafka until ``stop`` is set.

    The outbox, the producer and the relay come from ``container.events``;
    settings that could not work are refused (``SettingsError``) before
    anything connects. The outbox's backlog and age are reported as metrics
    meanwhile (and served on ``FINBANK_METRICS_PORT`` when it is set).
    """
    from finbank_adapters.kafka.config import KafkaSettings
    from finbank_adapters.kafka.relay import (
        OutboxRelay,
        check_relay_settings,
        report_outbox_metrics,
    )

    kafka: KafkaSettings = KafkaSettings.from_settings(settings)
    check_relay_settings(settings, kafka)  # before anything connects
    metrics.configure(settings)
    tracing.configure()  # FINBANK_TRACING=otel: a send span per event (docs/operations.md)
    side_tasks: list[asyncio.Task[None]] = []
    try:
        async with _open(settings, overrides) as bank:
            events = bank.container.events
            outbox = await resolve(events.outbox())
            relay: OutboxRelay = await resolve(events.relay())
            pool = await resolve(bank.container.infra.postgres_pool())
            side_tasks.append(asyncio.create_task(report_outbox_metrics(pool, bank.clock, stop)))
            if settings.metrics.port:
                side_tasks.append(
                    asyncio.create_task(metrics.serve_prometheus(settings.metrics.port, stop))
                )
            log.info("relay %s: publishing to %s", outbox.relay_id, kafka.bootstrap_servers)
            await relay.run(stop)
            log.info("relay %s: stopped after %d events", outbox.relay_id, relay.published)
    finally:
        await _side_tasks_done(side_tasks)


async def sweep_med_every(bank: Bank, seconds: float, stop: asyncio.Event) -> None:
    """Passes of the MED sweeper (``bank.pix.med.sweep``), ``seconds`` apart, until ``stop``.

    A pass whose items failed (they stay due) or that failed whole (the store
    unreachable) is logged with counts and the error's class only, and the next
    pass runs as planned: a sweeper that stopped at the first outage would leave
    the money it is for waiting.
    """
    while not stop.is_set():
        try:
            result = await bank.pix.med.sweep(SweepMedCommand())
        except DomainError as exc:
            log.warning(
                "med sweep: the pass failed (%s); next in %g s", type(exc).__name__, seconds
            )
        else:
            if result.failed_cases or result.failed_blocks:
                log.warning(
                    "med sweep: %d case(s) and %d block(s) failed and stay due",
                    len(result.failed_cases),
                    len(result.failed_blocks),
                )
            elif result.cases or result.blocks:
                log.info("med sweep: %d case(s), %d block(s)", result.cases, result.blocks)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


class PixSettlementWorker:
    """``finbank worker pix-settlement``: the handler and its consumer runner, run until stopped.

    Resolves from the bank's containers, built on ``settings``, the handler
    (over the settle and receive use cases) and the inbox of ``group_id``
    (none on the memory profile, where idempotency alone protects). ``kafka``
    overrides the settings' Kafka slice (tests); ``group_id`` names both the
    consumer group and the inbox's consumer (default: ``settings.kafka.settlement_group``,
    ``FINBANK_KAFKA_SETTLEMENT_GROUP``). :attr:`ready` is set once the
    consumer holds partitions; :attr:`handler` and :attr:`runner` (its
    ``stats``: handled, dead-lettered...) exist once running.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        kafka: KafkaSettings | None = None,
        retry: RetryPolicy | None = None,
        group_id: str | None = None,
        overrides: Overrides | None = None,
    ) -> None:
        from finbank_adapters.kafka.config import KafkaSettings

        self._settings = settings
        self._kafka = kafka or KafkaSettings.from_settings(settings)
        self._retry = retry
        self._overrides = overrides
        self.group_id = group_id or settings.kafka.settlement_group
        self.ready = asyncio.Event()
        self.handler: PixSettlementHandler | None = None
        self.runner: KafkaConsumerRunner | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; ``ServiceUnavailable`` if the bus is unreachable."""
        from finbank_adapters.kafka.lag import report_consumer_metrics
        from finbank_core.shared.events import PIX_TOPIC

        metrics.configure(self._settings)
        tracing.configure()  # FINBANK_TRACING=otel (docs/operations.md, "Traces")
        reporters = [
            asyncio.create_task(
                report_consumer_metrics(
                    self._kafka, group_id=self.group_id, topics=[PIX_TOPIC], stop=stop
                )
            )
        ]
        if self._settings.metrics.port:
            reporters.append(
                asyncio.create_task(metrics.serve_prometheus(self._settings.metrics.port, stop))
            )
        try:
            async with _open(self._settings, self._overrides) as bank:
                container = bank.container
                inbox: Any = await resolve(container.events.inbox(consumer=self.group_id))
                handler: PixSettlementHandler = await resolve(
                    container.workers.pix_settlement_handler(inbox=inbox)
                )
                self.handler = handler
                runner: KafkaConsumerRunner = await resolve(
                    container.workers.pix_settlement_runner(
                        kafka=self._kafka,
                        group_id=self.group_id,
                        handler=handler,
                        retry=self._retry,
                    )
                )
                self.runner = runner
                if self._settings.pix.med_sweep_seconds:
                    reporters.append(
                        asyncio.create_task(
                            self._sweep_once_ready(bank, self._settings.pix.med_sweep_seconds, stop)
                        )
                    )
                await _run_until(runner, stop, self.ready)
                log.info(
                    "pix-settlement: stopped after %d runs %s",
                    handler.runs,
                    dict(handler.runs_by_type),
                )
        finally:
            await _side_tasks_done(reporters)

    async def _sweep_once_ready(self, bank: Bank, seconds: float, stop: asyncio.Event) -> None:
        """The MED sweeper, from when the consumer holds partitions: a worker refused for
        its settings, or that cannot reach the bus, says so alone and exits."""
        await self.ready.wait()
        await sweep_med_every(bank, seconds, stop)


async def _run_until(
    runner: KafkaConsumerRunner, stop: asyncio.Event, ready: asyncio.Event
) -> None:
    task = asyncio.create_task(runner.run())
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(_signal(runner, ready))]
    try:
        await asyncio.wait({task, waiters[0]}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await runner.stop()
        for waiter in waiters:
            waiter.cancel()
    await task  # re-raises what ended the runner early (the bus unreachable...)


async def _signal(runner: KafkaConsumerRunner, ready: asyncio.Event) -> None:
    await runner.assigned.wait()
    ready.set()


async def run_pix_settlement_worker(
    settings: Settings, stop: asyncio.Event, *, overrides: Overrides | None = None
) -> None:
    """``finbank worker pix-settlement``: run the worker until ``stop`` is set."""
    await PixSettlementWorker(settings, overrides=overrides).run(stop)


async def run_pix_automatic_worker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    holder: str | None = None,
    overrides: Overrides | None = None,
) -> None:
    """``finbank worker pix-automatic``: run the scheduler until ``stop`` (ends the round in hand).

    The loop (:class:`~finbank_adapters.workers.pix_automatic.PixAutomaticWorker`,
    ``container.workers.pix_automatic_worker``) runs the ``RunDueDebits`` use case.
    """
    from finbank_adapters.workers.pix_automatic import PixAutomaticWorker

    # its debits' ledger result codes: EMF lines on the aws profile, where the alarm reads them
    metrics.configure(settings)
    async with _open(settings, overrides) as bank:
        tracing.configure()  # FINBANK_TRACING=otel: a trace per round, its events' context in them
        worker: PixAutomaticWorker = await resolve(
            bank.container.workers.pix_automatic_worker(holder=holder)
        )
        log.info("pix-automatic: scheduling as %s", worker.holder)
        await worker.run(stop)


@contextlib.asynccontextmanager
async def open_file_store(settings: Settings) -> AsyncIterator[FileStore]:
    """The file store ``FINBANK_FILES_BACKEND`` names, from a container of its own.

    Only the store is resolved (nothing else connects); its client is closed
    on the way out.
    """
    container = build_container(settings)
    try:
        files: FileStore = await resolve(container.reconciliation.file_store())
        yield files
    finally:
        await close_container(container)
