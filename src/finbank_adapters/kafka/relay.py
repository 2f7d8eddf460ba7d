"""The outbox relay: drains the PostgreSQL outbox to Kafka, at least once, in order per aggregate.

One round (:meth:`OutboxRelay.relay_batch`) claims a batch (a lease; an
aggregate's items are never leased to two relays at once), hands the items
to the producer in outbox order, awaits every acknowledgement and marks the
acknowledged ones published; an aggregate's items after its first failed
one are kept back and re-sent, in order, within the lease or by the next
claim. :meth:`OutboxRelay.run` overlaps up to ``max_in_flight`` rounds. A
crash before the mark re-sends items: consumers deduplicate on
``event_id``. Several relays may run (the stack runs two): a relay sends a
claimed batch only while 80 % of its lease, counted from the claim, remains,
so it never sends an aggregate that another relay may have claimed since.

With tracing on, each item's delivery is a ``send`` span, a child of (and
linked to) the creation context its envelope carries, which also goes out
in the record's headers (``finbank_adapters.tracing``).

The process (``finbank relay``: the relay resolved from the bank's
containers, run until stopped) is :func:`finbank.runtime.run_relay`; this
module only holds the loop, which receives its outbox and producer.

The algorithm step by step: ``docs/architecture.md``, "The outbox relay";
the guarantees end to end: ``docs/events.md``, "Delivery guarantees".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer

from finbank_adapters import metrics, tracing
from finbank_adapters.kafka.config import KafkaSettings
from finbank_adapters.kafka.publisher import send_envelope
from finbank_adapters.settings import Settings, SettingsError
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.outbox import Outbox, OutboxItem

log = logging.getLogger(__name__)

#: share of the lease a relay may spend re-sending a batch before letting it lapse
_LEASE_BUDGET = 0.8

#: a claimed batch and the loop time its lease began at the latest
_Claim = tuple[list[OutboxItem], float]


class OutboxRelay:
    """Publishes claimed outbox items with an already-started producer."""

    def __init__(
        self,
        outbox: Outbox,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 500,
        lease_seconds: float = 30.0,
        idle_seconds: float = 0.2,
        linger_seconds: float = 0.0,
        retry_delay_seconds: float = 0.2,
        topic_prefix: str = "",
        max_in_flight: int = 2,
        lease_clock: Callable[[], float] | None = None,
    ) -> None:
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        if max_in_flight <= 0:
            raise ValueError("max_in_flight must be positive")
        if linger_seconds < 0:
            raise ValueError("linger_seconds must not be negative")
        self._max_in_flight = max_in_flight
        #: seconds, monotonic: when a claim's lease budget runs out (default: the loop's clock)
        self._lease_clock = lease_clock
        self._outbox = outbox
        self._producer = producer
        self._batch_size = batch_size
        self._lease_seconds = lease_seconds
        self._idle_seconds = idle_seconds
        #: after a claim that found fewer than ``batch_size`` items, the next claim waits
        #: this long, so that what is appended meanwhile goes in one batch (see run)
        self._linger_seconds = linger_seconds
        self._retry_delay_seconds = retry_delay_seconds
        self._topic_prefix = topic_prefix
        self._stop = asyncio.Event()
        #: items acknowledged by the broker and marked published, since start
        self.published = 0
        #: deliveries the broker did not acknowledge (each such item is sent again)
        self.unacknowledged = 0
        #: claimed items left unsent because their lease's budget was spent before publishing
        self.lapsed = 0

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Relay until ``stop`` is set; the batches in hand are finished first.

        Rounds overlap: up to ``max_in_flight`` batches are produced and
        acknowledged at once, and the next batch is claimed meanwhile, so
        the relay never sits idle waiting for acknowledgements. That keeps
        per-aggregate order, because a claim never takes an aggregate whose
        head is leased, and every aggregate of a batch in flight is (its
        items stay leased until they are marked published).

        With ``linger_seconds``, the claim that follows a batch of fewer than
        ``batch_size`` items starts that long after it (Kafka's ``linger.ms``
        for the outbox): under a steady trickle, claims back to back take one
        or two items each, and each claim and mark costs the database about
        the same whatever it carries. A backlog (full batches) is claimed
        without pause. An item waits at most about ``linger_seconds`` more.
        """
        stop = stop or self._stop
        self._stop = stop
        next_claim: asyncio.Task[_Claim] | None = None
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                # a claim made while batches were in flight could not take their
                # aggregates: if it found nothing, claim again once they are free
                # before concluding there is no work
                overlapped = next_claim is not None
                try:
                    items, claimed_at = await (next_claim or self._claim())
                except ServiceUnavailable as exc:  # the database (claim/mark) or the bus is down
                    next_claim = None
                    log.warning("relay: %s; retrying", exc)
                    await _wait(stop, max(self._idle_seconds, self._retry_delay_seconds))
                    continue
                next_claim = None
                if not items:
                    if in_flight:
                        await self._finish(in_flight, all_of_them=False)
                    elif not overlapped:
                        await _wait(stop, self._idle_seconds)
                    continue
                # the claim first: it sends its query and yields, and the database
                # works on it while the publish task hands the batch to the producer
                # (after the linger when this batch was not full)
                linger = self._linger_seconds if len(items) < self._batch_size else 0.0
                next_claim = asyncio.create_task(self._claim(linger))
                in_flight.add(asyncio.create_task(self._publish(items, claimed_at)))
                if len(in_flight) >= self._max_in_flight:
                    await self._finish(in_flight, all_of_them=False)
        except BaseException:
            # A crash (or cancellation): claimed items are left to their lease.
            for task in (next_claim, *in_flight):
                if task is not None:
                    task.cancel()
            raise
        if next_claim is not None:
            # Stopping with a claimed batch in hand: publish it rather than let
            # its lease lapse and delay it.
            with contextlib.suppress(ServiceUnavailable):
                leftover, claimed_at = await next_claim
                if leftover:
                    in_flight.add(asyncio.create_task(self._publish(leftover, claimed_at)))
        await self._finish(in_flight, all_of_them=True)

    async def _finish(self, in_flight: set[asyncio.Task[None]], *, all_of_them: bool) -> None:
        """Wait for one (or every) batch in flight; an unavailable dependency is waited out."""
        while in_flight:
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            in_flight.difference_update(done)
            for task in done:
                exc = task.exception()
                if isinstance(exc, ServiceUnavailable):
                    # the mark failed (database down): the lease lapses and those
                    # items are sent again, duplicates but never losses
                    log.warning("relay: %s; retrying", exc)
                    await _wait(self._stop, max(self._idle_seconds, self._retry_delay_seconds))
                elif exc is not None:
                    raise exc
            if not all_of_them:
                return

    async def relay_batch(self) -> int:
        """One claim -> produce -> acknowledge -> mark round; returns how many items it claimed."""
        items, claimed_at = await self._claim()
        if items:
            await self._publish(items, claimed_at)
        return len(items)

    async def _claim(self, linger: float = 0.0) -> _Claim:
        """A batch and when its lease began at the latest (the loop's clock, read before
        the claim: the lease the outbox grants starts after that); ``linger`` seconds
        after the call, or at once when the relay is stopping."""
        if linger:
            await _wait(self._stop, linger)
        claimed_at = self._now()
        return await self._outbox.claim_batch(self._batch_size), claimed_at

    def _now(self) -> float:
        return self._lease_clock() if self._lease_clock else asyncio.get_running_loop().time()

    async def _publish(self, items: Sequence[OutboxItem], claimed_at: float) -> None:
        """Produce ``items``, await their acks, mark them published; re-send within the lease.

        The budget runs from the claim, not from this call: a batch claimed ahead
        while others were in flight may wait before it is published, and once its
        lease lapses another relay may take its aggregates. Sending (or re-sending)
        after that point would put two relays' copies of one aggregate on the bus at
        once, so a batch whose budget is spent is left to the next claim unsent.
        """
        deadline = claimed_at + self._lease_seconds * _LEASE_BUDGET
        if self._now() >= deadline:
            log.warning(
                "relay: a batch of %d waited past its lease; left to a later claim", len(items)
            )
            self.lapsed += len(items)
            return
        pending: Sequence[OutboxItem] = items
        while True:
            delivered, pending = await self._deliver(pending)
            if delivered:
                # raises ServiceUnavailable if the database is down: the lease lapses
                # and the items are sent again (duplicates, never losses)
                marked = await self._outbox.mark_published([i.id for i in delivered])
                self.published += marked  # after the await: batches in flight share the counter
            if not pending:
                return
            if self._now() + self._retry_delay_seconds >= deadline or self._stop.is_set():
                log.warning("relay: %d items left to a later claim", len(pending))
                return
            await _wait(self._stop, self._retry_delay_seconds)

    async def _deliver(
        self, items: Sequence[OutboxItem]
    ) -> tuple[list[OutboxItem], list[OutboxItem]]:
        """Send ``items``; returns (acknowledged, to send again), both in outbox order.

        An aggregate's items from its first unacknowledged one on are all sent
        again, so a consumer always gets them in order after the duplicates.
        """
        prefix = self._topic_prefix
        futures: list[asyncio.Future[object]] = []
        for item in items:
            topic = f"{prefix}{item.topic}"
            # tracing on: a send span per item, from hand-off to acknowledgement
            sent = tracing.start_send(topic, item.envelope)
            try:
                futures.append(
                    await send_envelope(self._producer, topic, item.aggregate_id, item.envelope)
                )
            except Exception as exc:  # refused before buffering: metadata timeout, closed
                tracing.fail_send(sent, exc)
                log.warning("relay: could not hand items to the producer: %r", exc)
                break  # the rest counts as not acknowledged
            tracing.end_send(sent, futures[-1])
        results = await asyncio.gather(*futures, return_exceptions=True)
        failed_aggregates: set[str] = set()
        delivered: list[OutboxItem] = []
        again: list[OutboxItem] = []
        for index, item in enumerate(items):
            aggregate = item.aggregate_id
            ok = index < len(results) and not isinstance(results[index], BaseException)
            if ok and aggregate not in failed_aggregates:
                delivered.append(item)
            else:
                failed_aggregates.add(aggregate)
                again.append(item)
        self.unacknowledged += len(again)
        if again:
            errors = {type(r).__name__ for r in results if isinstance(r, BaseException)}
            log.warning("relay: %d of %d not acknowledged %s", len(again), len(items), errors)
        return delivered, again


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


class OutboxStatus(NamedTuple):
    """What is waiting in the outbox: ``finbank outbox status`` and the lag metrics."""

    backlog: int
    #: of the oldest unpublished event (its ``occurred_at``, on the injected clock); 0 if empty
    oldest_age_seconds: float
    #: items leased to a relay right now
    leased: int
    #: most delivery attempts of one waiting item (a stuck item keeps being retried)
    max_attempts: int


_STATUS = """
SELECT count(*) AS backlog,
       min(occurred_at) AS oldest,
       count(*) FILTER (WHERE claimed_until > $1) AS leased,
       coalesce(max(attempts), 0) AS max_attempts
  FROM outbox
"""


async def outbox_status(pool: Any, clock: Clock) -> OutboxStatus:
    """Measure the outbox on ``pool`` (``ServiceUnavailable`` when the database is down)."""
    from finbank_adapters.postgres.errors import translated

    now = clock.now()
    with translated():
        row = await pool.fetchrow(_STATUS, now)
    oldest = row["oldest"]
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return OutboxStatus(row["backlog"], age, row["leased"], row["max_attempts"])


async def report_outbox_metrics(
    pool: Any, clock: Clock, stop: asyncio.Event, interval_seconds: float = 15.0
) -> None:
    """Every ``interval_seconds`` until ``stop``: ``OutboxWaitingEvents`` and
    ``OutboxOldestEventAge``."""
    recorder = metrics.recorder()
    while not stop.is_set():
        try:
            status = await outbox_status(pool, clock)
        except ServiceUnavailable as exc:
            log.warning("metrics: outbox not measured: %s", exc)
        else:
            recorder.set(metrics.OUTBOX_BACKLOG, status.backlog)
            recorder.set(metrics.OUTBOX_OLDEST_AGE, status.oldest_age_seconds)
        await _wait(stop, interval_seconds)


def check_relay_settings(settings: Settings, kafka: KafkaSettings) -> None:
    """Refuse relay settings that could not work (``SettingsError`` naming the variables)."""
    if settings.relay.batch_size < 1 or settings.relay.max_in_flight < 1:
        raise SettingsError(
            "FINBANK_RELAY_BATCH_SIZE and FINBANK_RELAY_MAX_IN_FLIGHT must be at least 1"
        )
    if kafka.request_timeout_ms / 1000 >= settings.relay.lease_seconds * _LEASE_BUDGET:
        raise SettingsError(
            "FINBANK_RELAY_LEASE_SECONDS must comfortably exceed the Kafka request timeout"
            f" ({kafka.request_timeout_ms} ms)"
        )
