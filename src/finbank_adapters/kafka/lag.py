"""Consumer lag and dead-letter depth, measured from the broker; DLQ replay.

* :class:`LagProbe` asks the broker for a group's committed offsets and the
  ends of a topic's partitions (without joining the group, so measuring never
  triggers a rebalance). The lag of ``finbank-pix-settlement`` on
  ``finbank.pix.v1`` is the ``ConsumerGroupLag`` metric the worker's autoscaling
  and alarm read; the lag of :data:`REPLAY_GROUP` on ``<topic>.dlq`` is the
  dead-letter depth: records that nobody replayed yet.
* :func:`replay_dead_letters` (``finbank dlq replay``) copies dead-lettered
  records back to their topic, key and headers kept (plus
  ``dlq.replayed``), and commits the replay group's offset after each
  acknowledged copy. Consumers deduplicate on ``event_id`` (the inbox), so a
  record replayed twice after a crash has one effect.
* :func:`report_consumer_metrics` runs in the worker: every ``interval``
  seconds it sets both gauges on the process's metrics recorder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from finbank_adapters import metrics
from finbank_adapters.kafka.clients import new_consumer, open_producer
from finbank_adapters.kafka.config import KafkaSettings
from finbank_adapters.kafka.consumer import dead_letter_topic
from finbank_adapters.kafka.errors import translated
from finbank_core.shared.errors import ServiceUnavailable

log = logging.getLogger(__name__)

#: the consumer group whose offsets on a DLQ mark what was replayed
REPLAY_GROUP = "finbank-dlq-replay"
#: header added to a replayed record (the DLQ headers are kept for the investigation)
HEADER_REPLAYED = "dlq.replayed"
#: polls that return nothing before a read of the DLQ gives up (gaps, an unreachable leader)
_MAX_EMPTY_POLLS = 10


class LagProbe:
    """Measures ``group``'s lag on topics (broker-side names) with a consumer it never joins."""

    def __init__(self, kafka: KafkaSettings, group_id: str) -> None:
        self.group_id = group_id
        # No group id on the consumer that reads the partitions' ends: a consumer
        # built with the measured group's id runs a group coordinator of its own
        # beside the group's real members; the committed offsets come from the
        # admin client's OffsetFetch instead.
        self._consumer: AIOKafkaConsumer = AIOKafkaConsumer(**kafka.client_config())
        self._admin = AIOKafkaAdminClient(**kafka.client_config())
        self._started = False

    async def __aenter__(self) -> LagProbe:
        try:
            with translated():
                await self._consumer.start()
                await self._admin.start()
        except BaseException:
            # a start that failed (the broker unreachable) leaves a client open: close both
            await self.__aexit__()
            raise
        self._started = True
        return self

    async def __aexit__(self, *_: object) -> None:
        try:
            await self._admin.close()
        finally:
            await self._consumer.stop()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        with translated():
            found = self._consumer.partitions_for_topic(topic)
            if found is None:
                await self._consumer._client.force_metadata_update()
                found = self._consumer.partitions_for_topic(topic)
        return [TopicPartition(topic, p) for p in sorted(found or ())]

    async def lag(self, topic: str) -> int:
        """Records from the group's committed offsets (the log start if none) to the ends."""
        tps = await self.partitions(topic)
        if not tps:
            return 0
        with translated():
            ends = await self._consumer.end_offsets(tps)
            starts = await self._consumer.beginning_offsets(tps)
            offsets = await self._admin.list_consumer_group_offsets(self.group_id, partitions=tps)
            total = 0
            for tp in tps:
                found = offsets.get(tp)
                committed = found.offset if found is not None and found.offset >= 0 else None
                position = starts[tp] if committed is None else max(committed, starts[tp])
                total += max(0, ends[tp] - position)
        return total


async def report_consumer_metrics(
    kafka: KafkaSettings,
    *,
    group_id: str,
    topics: Sequence[str],
    stop: asyncio.Event,
    interval_seconds: float = 30.0,
) -> None:
    """Every ``interval_seconds`` until ``stop``: ``ConsumerGroupLag`` of ``group_id`` on each
    topic and ``DeadLetterDepth`` of each topic's DLQ. A broker outage is logged, not fatal."""
    recorder = metrics.recorder()
    while not stop.is_set():
        try:
            async with LagProbe(kafka, group_id) as probe, LagProbe(kafka, REPLAY_GROUP) as dlq:
                while not stop.is_set():
                    for name in topics:
                        topic = kafka.topic(name)
                        recorder.set(
                            metrics.CONSUMER_LAG,
                            await probe.lag(topic),
                            ConsumerGroup=group_id,
                            Topic=name,
                        )
                        recorder.set(
                            metrics.DLQ_DEPTH,
                            await dlq.lag(dead_letter_topic(topic)),
                            Topic=dead_letter_topic(name),
                        )
                    await _wait(stop, interval_seconds)
        except (ServiceUnavailable, KafkaError) as exc:
            log.warning("metrics: consumer lag not measured: %r", exc)
            await _wait(stop, interval_seconds)


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered record as ``finbank dlq list`` shows it (no payload: it may hold PII)."""

    partition: int
    offset: int
    key: str
    reason: str
    error: str
    source: str


@dataclass
class ReplayResult:
    replayed: int = 0
    remaining: int = 0


async def list_dead_letters(kafka: KafkaSettings, topic: str, limit: int = 100) -> list[DeadLetter]:
    """Up to ``limit`` records of ``topic``'s DLQ not replayed yet (``topic``: a logical name)."""
    letters: list[DeadLetter] = []
    async with _dlq_consumer(kafka, topic) as (consumer, tps):
        for record in await _fetch(consumer, tps, limit):
            headers = {k: v.decode(errors="replace") for k, v in record.headers}
            letters.append(
                DeadLetter(
                    partition=record.partition,
                    offset=record.offset,
                    key=(record.key or b"").decode(errors="replace"),
                    reason=headers.get("dlq.reason", ""),
                    error=headers.get("dlq.error", "").split(":", 1)[0],  # the class name only
                    source=headers.get("dlq.source", ""),
                )
            )
    return letters


async def replay_dead_letters(kafka: KafkaSettings, topic: str, limit: int = 1000) -> ReplayResult:
    """Copy up to ``limit`` unreplayed records of ``topic``'s DLQ back to ``topic``.

    Each copy is acknowledged before the replay group's offset moves past it,
    so a crash replays a record again at worst (consumers deduplicate).
    """
    result = ReplayResult()
    target = kafka.topic(topic)
    async with _dlq_consumer(kafka, topic) as (consumer, tps), open_producer(kafka) as producer:
        for record in await _fetch(consumer, tps, limit):
            headers = [(k, v) for k, v in record.headers if k != HEADER_REPLAYED]
            with translated():
                await producer.send_and_wait(
                    target,
                    record.value,
                    key=record.key,
                    headers=[*headers, (HEADER_REPLAYED, b"1")],
                )
                tp = TopicPartition(record.topic, record.partition)
                await consumer.commit({tp: OffsetAndMetadata(record.offset + 1, "")})
            result.replayed += 1
        async with LagProbe(kafka, REPLAY_GROUP) as probe:
            result.remaining = await probe.lag(dead_letter_topic(target))
    return result


@contextlib.asynccontextmanager
async def _dlq_consumer(
    kafka: KafkaSettings, topic: str
) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A consumer of the replay group, assigned ``topic``'s DLQ from its committed offsets."""
    dlq = dead_letter_topic(kafka.topic(topic))
    consumer = new_consumer(kafka, REPLAY_GROUP)
    try:
        with translated():
            await consumer.start()
            await consumer._client.force_metadata_update()
            tps = [TopicPartition(dlq, p) for p in sorted(consumer.partitions_for_topic(dlq) or ())]
            if tps:
                consumer.assign(tps)
                starts = await consumer.beginning_offsets(tps)
                for tp in tps:
                    committed = await consumer.committed(tp)
                    consumer.seek(
                        tp, starts[tp] if committed is None else max(committed, starts[tp])
                    )
        yield consumer, tps
    finally:
        await consumer.stop()


async def _fetch(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], limit: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """Up to ``limit`` records from the consumer's positions to the partitions' current ends,
    in offset order per partition (a key's records stay in order)."""
    if not tps or limit <= 0:
        return []
    with translated():
        ends = await consumer.end_offsets(tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        empty_polls = 0
        while len(records) < limit and empty_polls < _MAX_EMPTY_POLLS:
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= ends[tp] for tp in tps):
                break
            batch = await consumer.getmany(*tps, timeout_ms=1000, max_records=limit - len(records))
            empty_polls = 0 if batch else empty_polls + 1
            for tp_records in batch.values():
                records.extend(
                    r for r in tp_records if r.offset < ends[TopicPartition(r.topic, r.partition)]
                )
    records.sort(key=lambda r: (r.partition, r.offset))
    return records[:limit]


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
