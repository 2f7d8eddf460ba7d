"""``finbank worker pix-settlement``: settles the payments ``SendPix`` left ``PENDING``.

Consumes ``finbank.pix.v1`` as consumer group ``finbank-pix-settlement``
with the Kafka consumer runner (manual commits after handling, bounded
retries then ``<topic>.dlq``, unbounded retries while a dependency is
``ServiceUnavailable``), and runs :class:`~finbank_core.pix.settle.SettlePixPayment`
for every ``pix.payment_requested``: the network (``PaymentNetwork``) is
asked, the pending ledger transfer posted or voided, the record (DynamoDB
or memory) marked ``SETTLED`` / ``REJECTED``, the outcome published. Other
event types on the topic are skipped.

Exactly-once effects over at-least-once delivery
------------------------------------------------
A redelivered event (a crash before the commit, a rebalance) must change
nothing. Two layers make sure of it:

1. **The inbox** (:class:`~finbank_adapters.postgres.inbox.PostgresInbox`,
   consumer ``finbank-pix-settlement``): the event id is inserted in a
   transaction that stays open while the use case runs and commits after
   it succeeds. A redelivery after that commit is skipped before touching
   anything; a concurrent duplicate waits on the inbox row, then skips.
   The use case's writes are *not* in that transaction (the ledger uses
   its own transactions, the record lives in DynamoDB), so the inbox alone
   cannot make them atomic with the marker; it only saves the repeat work.
2. **Idempotent effects**, for the window the inbox cannot cover (the use
   case finished, the process died before the inbox commit):
   the ledger steps have ids derived from the EndToEndId (``post`` and
   ``void`` of the same pending transfer exist at most once, and a post
   excludes a void), the network answers the same EndToEndId with its first
   result, and the record moves only from the version it was read at and
   only out of ``PENDING`` (a record already final is returned unchanged).
   Replaying the use case therefore applies no effect twice.

What a replay in that window does *not* redo is publishing the outcome
(``pix.payment_settled``): the use case returns early for a final record.
On DynamoDB the streams Lambda publishes ``pix.payment_status_changed`` from
the record itself, which covers that gap (see ``docs/pix-aws.md``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from finbank_adapters.kafka import KafkaConsumerRunner, KafkaSettings, RetryPolicy
from finbank_adapters.settings import Settings
from finbank_core.pix.events import PAYMENT_REQUESTED
from finbank_core.pix.payments import PixPayment
from finbank_core.shared.events import PIX_TOPIC, EventEnvelope

log = logging.getLogger(__name__)

SETTLEMENT_GROUP = "finbank-pix-settlement"

Settle = Callable[[str], Awaitable[PixPayment]]


class EventInbox(Protocol):
    """What the handler needs of an inbox (``PostgresInbox`` has it)."""

    async def process_once(
        self, event: EventEnvelope, effect: Callable[[Any], Awaitable[None]]
    ) -> bool: ...


class PixSettlementHandler:
    """The consumer runner's handler: ``pix.payment_requested`` -> ``SettlePixPayment``."""

    def __init__(self, settle: Settle, inbox: EventInbox | None = None) -> None:
        self._settle = settle
        self._inbox = inbox
        #: final status per EndToEndId, as this process saw it after settling
        self.outcomes: dict[str, str] = {}
        #: use case runs, and events the inbox had already seen
        self.runs = 0
        self.duplicates = 0

    async def __call__(self, event: EventEnvelope) -> None:
        if event.type != PAYMENT_REQUESTED:
            return
        end_to_end_id = str(event.payload.get("end_to_end_id") or event.aggregate_id)

        async def effect(_conn: Any) -> None:
            payment = await self._settle(end_to_end_id)
            self.runs += 1
            self.outcomes[end_to_end_id] = payment.status.value

        if self._inbox is None:
            await effect(None)
        elif not await self._inbox.process_once(event, effect):
            self.duplicates += 1
            log.info("pix-settlement: event %s already processed", event.event_id)


class PixSettlementWorker:
    """The worker process: its own container, an inbox, a consumer runner.

    Builds a container from ``settings`` (ledger, payment records, network,
    outbox publisher) and an inbox on the container's PostgreSQL pool (none
    on the memory profile, where idempotency alone protects). ``kafka``
    overrides the settings' Kafka slice (tests); ``group_id`` names both the
    consumer group and the inbox's consumer. :attr:`ready` is set once the
    consumer holds partitions; :attr:`handler` exists once running.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        kafka: KafkaSettings | None = None,
        retry: RetryPolicy | None = None,
        group_id: str = SETTLEMENT_GROUP,
    ) -> None:
        self._settings = settings
        self._kafka = kafka or KafkaSettings.from_settings(settings)
        self._retry = retry
        self.group_id = group_id
        self.ready = asyncio.Event()
        self.handler: PixSettlementHandler | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; ``ServiceUnavailable`` if the bus is unreachable."""
        from finbank_adapters.container import (
            build_container,
            close_container,
            open_container,
            resolve,
        )
        from finbank_core.pix.settle import SettlePixPayment

        container = build_container(self._settings)
        await open_container(container)
        try:
            settle: SettlePixPayment = await resolve(container.settle_pix_payment())
            pool = await resolve(container.postgres_pool())
            inbox = None
            if pool is not None:
                from finbank_adapters.postgres.inbox import PostgresInbox

                inbox = PostgresInbox(pool, self.group_id, container.clock())
            self.handler = PixSettlementHandler(settle, inbox)
            runner = KafkaConsumerRunner(
                self._kafka,
                group_id=self.group_id,
                topics=[PIX_TOPIC],
                handler=self.handler,
                retry=self._retry,
            )
            await _run_until(runner, stop, self.ready)
            log.info("pix-settlement: stopped after %d runs", self.handler.runs)
        finally:
            await close_container(container)


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


async def run_pix_settlement_worker(settings: Settings, stop: asyncio.Event) -> None:
    """``finbank worker pix-settlement``: run the worker until ``stop`` is set."""
    await PixSettlementWorker(settings).run(stop)
