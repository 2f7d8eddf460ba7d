"""The consumer runner: at-least-once delivery of events to one handler, with a DLQ.

``KafkaConsumerRunner`` joins a consumer group, decodes each record into an
:class:`EventEnvelope` and awaits ``handler(event)``: one record at a time
per partition, in offset order, the partitions of a fetched batch side by
side (handlers must accept calls for different aggregates at once). Offsets
are committed by hand, only for records whose handling finished: after each
fetched batch, on graceful stop, and in the rebalance listener. A handled
but uncommitted record is delivered again, so handlers must be idempotent
(:class:`~finbank_adapters.postgres.inbox.PostgresInbox` makes them so).

Undecodable records and *permanent* handler errors go to ``<topic>.dlq`` at
once; other handler errors after ``RetryPolicy.attempts`` tries with
backoff; *transient* errors (default ``ServiceUnavailable``) are retried
without a bound. ``run()`` opens a consumer and a DLQ producer and closes
them when it returns; ``stop()`` finishes the records in flight, commits and
closes; cancelling ``run()`` is an abort, like a crash.

With tracing on, each handler call is a ``process`` span, a child of (and
linked to) the event's creation context (``finbank_adapters.tracing``).

The delivery guarantees end to end: ``docs/events.md``, "Delivery guarantees".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from finbank_adapters import tracing
from finbank_adapters.kafka.clients import new_consumer, open_producer
from finbank_adapters.kafka.config import KafkaSettings
from finbank_adapters.kafka.errors import translated
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.events import EventEnvelope, decode_event

log = logging.getLogger(__name__)

Handler = Callable[[EventEnvelope], Awaitable[None]]

DLQ_SUFFIX = ".dlq"
#: headers added to a dead-lettered record (the original headers are kept)
HEADER_DLQ_REASON = "dlq.reason"
HEADER_DLQ_ERROR = "dlq.error"
HEADER_DLQ_ATTEMPTS = "dlq.attempts"
HEADER_DLQ_SOURCE = "dlq.source"
HEADER_DLQ_CONSUMER = "dlq.consumer"
REASON_MALFORMED = "malformed"
REASON_HANDLER_FAILED = "handler_failed"
REASON_REJECTED = "rejected"
_MAX_ERROR_CHARS = 1000

_random = secrets.SystemRandom()


def dead_letter_topic(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts per record, exponential backoff with jitter between them."""

    attempts: int = 5
    base_delay_seconds: float = 0.1
    max_delay_seconds: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        cap = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 1))
        return _random.uniform(cap / 2, cap)


@dataclass
class ConsumerStats:
    """What a runner did so far (for logs, metrics and tests)."""

    handled: int = 0
    dead_lettered: int = 0
    retries: int = 0
    commits: int = 0
    commit_failures: int = 0
    revocations: int = 0


class _Gate:
    """Records in flight (any number, ``shared``) vs a rebalance or commit (``exclusive``).

    ``exclusive`` waits for the records in flight to finish and keeps new
    ones out while its block runs.
    """

    def __init__(self) -> None:
        self._condition = asyncio.Condition()
        self._active = 0
        self._draining = False

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._condition:
            await self._condition.wait_for(lambda: not self._draining)
            self._active += 1
        try:
            yield
        finally:
            async with self._condition:
                self._active -= 1
                self._condition.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._condition:
            self._draining = True
            try:
                await self._condition.wait_for(lambda: self._active == 0)
                yield
            finally:
                self._draining = False
                self._condition.notify_all()


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: KafkaConsumerRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._runner._on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._runner._on_partitions_assigned(assigned)


@dataclass
class _State:
    consumer: AIOKafkaConsumer
    dlq_producer: AIOKafkaProducer
    #: next offset to commit per partition: records below it are handled or dead-lettered
    processed: dict[TopicPartition, int] = field(default_factory=dict)
    #: bumped on every revocation: records fetched before it belong to an old assignment
    generation: int = 0


class KafkaConsumerRunner:
    """Runs ``handler`` over the events of ``topics`` as member ``group_id`` of a consumer group.

    ``topics`` are logical names (``finbank.pix.v1``); ``settings.topic_prefix``
    is applied to them and the DLQ is the broker-side topic plus ``.dlq``.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        group_id: str,
        topics: Sequence[str],
        handler: Handler,
        retry: RetryPolicy | None = None,
        transient: tuple[type[BaseException], ...] = (ServiceUnavailable,),
        permanent: tuple[type[BaseException], ...] = (),
        poll_timeout_ms: int = 200,
        commit_timeout_seconds: float = 10.0,
    ) -> None:
        if not topics:
            raise ValueError("a consumer needs at least one topic")
        self._settings = settings
        self.group_id = group_id
        self._topics = [settings.topic(name) for name in topics]
        self._handler = handler
        self._retry = retry or RetryPolicy()
        self._transient = transient
        self._permanent = permanent
        self._poll_timeout_ms = poll_timeout_ms
        self._commit_timeout_seconds = commit_timeout_seconds
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        self._gate = _Gate()
        self._state: _State | None = None
        self._aborted = False
        self._started = False
        self.stats = ConsumerStats()
        #: set while the runner holds at least one partition
        self.assigned = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until :meth:`stop`; raises ``ServiceUnavailable`` if the bus is unreachable."""
        if self._started:
            raise RuntimeError("a runner runs once; build a new one")
        self._started = True
        try:
            # may raise (KafkaConfigError: settings that cannot make a client): stop()
            # still returns, as _finished is set on every way out
            consumer = new_consumer(self._settings, self.group_id)
            try:
                async with open_producer(self._settings) as dlq_producer:
                    with translated():
                        await consumer.start()
                    self._state = _State(consumer, dlq_producer)
                    consumer.subscribe(self._topics, listener=_CommitOnRevoke(self))
                    await self._consume(self._state)
                    await self._commit_processed(self._state)
            except asyncio.CancelledError:
                self._aborted = True  # a crash commits nothing more, not even on the way out
                raise
            finally:
                try:
                    await consumer.stop()
                finally:
                    self.assigned.clear()
        finally:
            self._finished.set()

    def request_stop(self) -> None:
        """Ask :meth:`run` to return after the records in flight; does not wait."""
        self._stopping.set()

    async def stop(self) -> None:
        """Finish the records in flight, commit what was processed, close, and return."""
        self.request_stop()
        if self._started:
            await self._finished.wait()

    # -- the loop -------------------------------------------------------------------

    async def _consume(self, state: _State) -> None:
        while not self._stopping.is_set():
            try:
                batch = await state.consumer.getmany(timeout_ms=self._poll_timeout_ms)
            except KafkaError as exc:  # the client reconnects by itself; wait and poll again
                log.warning("consumer %s: fetch failed: %r", self.group_id, exc)
                await self._pause(self._retry.max_delay_seconds)
                continue
            generation = state.generation
            await asyncio.gather(
                *(
                    self._consume_partition(state, tp, records, generation)
                    for tp, records in batch.items()
                )
            )
            await self._commit_processed(state)

    async def _consume_partition(
        self,
        state: _State,
        tp: TopicPartition,
        records: list[ConsumerRecord[Any, Any]],
        generation: int,
    ) -> None:
        for record in records:
            if self._stopping.is_set() or state.generation != generation:
                return
            async with self._gate.shared():
                # a rebalance may have run while we waited to enter
                if state.generation != generation:
                    return
                if not await self._process(state, record):
                    return  # stopping: left uncommitted, it will be delivered again
                state.processed[tp] = record.offset + 1

    async def _process(self, state: _State, record: ConsumerRecord[Any, Any]) -> bool:
        """Handle or dead-letter ``record``; False only when stopping cut it short."""
        try:
            if record.value is None:
                raise msgspec.DecodeError("the record has no value")
            event = decode_event(record.value)
        except msgspec.DecodeError as exc:
            log.warning("consumer %s: malformed record %s", self.group_id, _where(record))
            return await self._dead_letter(state, record, REASON_MALFORMED, exc, attempts=0)
        attempt = 0
        while True:
            attempt += 1
            try:
                # tracing on: a process span per attempt, a child of the creation context
                with tracing.processing(
                    event,
                    record.headers,
                    topic=record.topic,
                    group=self.group_id,
                    partition=record.partition,
                    offset=record.offset,
                ):
                    await self._handler(event)
            except self._transient as exc:
                delay = self._retry.delay(min(attempt, self._retry.attempts))
                log.warning(
                    "consumer %s: %s unavailable, retrying: %r", self.group_id, event.event_id, exc
                )
            except self._permanent as exc:
                log.error("consumer %s: %s rejected: %r", self.group_id, event.event_id, exc)
                return await self._dead_letter(
                    state, record, REASON_REJECTED, exc, attempts=attempt
                )
            except Exception as exc:
                if attempt >= self._retry.attempts:
                    log.error(
                        "consumer %s: %s failed %d times: %r",
                        self.group_id,
                        event.event_id,
                        attempt,
                        exc,
                    )
                    return await self._dead_letter(
                        state, record, REASON_HANDLER_FAILED, exc, attempts=attempt
                    )
                delay = self._retry.delay(attempt)
            else:
                self.stats.handled += 1
                return True
            self.stats.retries += 1
            if not await self._pause(delay):
                return False

    async def _dead_letter(
        self,
        state: _State,
        record: ConsumerRecord[Any, Any],
        reason: str,
        error: BaseException,
        *,
        attempts: int,
    ) -> bool:
        """Copy ``record`` to its DLQ and wait for the ack; retried until it lands or we stop."""
        headers = [
            *record.headers,
            (HEADER_DLQ_REASON, reason.encode()),
            (HEADER_DLQ_ERROR, f"{type(error).__name__}: {error}"[:_MAX_ERROR_CHARS].encode()),
            (HEADER_DLQ_ATTEMPTS, str(attempts).encode()),
            (HEADER_DLQ_SOURCE, _where(record).encode()),
            (HEADER_DLQ_CONSUMER, self.group_id.encode()),
        ]
        attempt = 0
        while True:
            attempt += 1
            try:
                with translated():
                    await state.dlq_producer.send_and_wait(
                        dead_letter_topic(record.topic),
                        record.value or b"",
                        key=record.key,
                        headers=headers,
                    )
            except ServiceUnavailable as exc:
                log.warning("consumer %s: DLQ unavailable, retrying: %r", self.group_id, exc)
                if not await self._pause(self._retry.delay(min(attempt, self._retry.attempts))):
                    return False
            else:
                self.stats.dead_lettered += 1
                return True

    async def _pause(self, seconds: float) -> bool:
        """Sleep, but wake up on stop; False when stopping."""
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            return True
        return False

    # -- commits and rebalances -----------------------------------------------------

    async def _commit_processed(self, state: _State) -> None:
        async with self._gate.exclusive():
            assigned = state.consumer.assignment()
            offsets = {tp: off for tp, off in state.processed.items() if tp in assigned}
        await self._commit(state, offsets)

    async def _commit(self, state: _State, offsets: dict[TopicPartition, int]) -> None:
        if not offsets or self._aborted:
            return
        try:
            async with asyncio.timeout(self._commit_timeout_seconds):
                await state.consumer.commit(
                    {tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()}
                )
        except (KafkaError, TimeoutError) as exc:
            # not fatal: those records are delivered again and the handler's inbox skips them
            self.stats.commit_failures += 1
            log.warning("consumer %s: commit failed: %r", self.group_id, exc)
            return
        self.stats.commits += 1
        for tp, offset in offsets.items():
            if state.processed.get(tp) == offset:
                del state.processed[tp]

    async def _on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        state = self._state
        if state is None or not revoked:  # the first join revokes nothing
            return
        self.stats.revocations += 1
        async with self._gate.exclusive():  # waits for the records in flight
            state.generation += 1
            offsets = {tp: off for tp, off in state.processed.items() if tp in revoked}
            for tp in revoked:
                state.processed.pop(tp, None)
            self.assigned.clear()
            await self._commit(state, offsets)

    def _on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if assigned:
            self.assigned.set()


def _where(record: ConsumerRecord[Any, Any]) -> str:
    return f"{record.topic}:{record.partition}:{record.offset}"
