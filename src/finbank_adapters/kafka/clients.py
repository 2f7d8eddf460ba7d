"""Opening and closing aiokafka clients from :class:`KafkaSettings`.

The only place the Kafka adapters construct clients; they are opened by a
CLI command, a worker or the container, never at import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from finbank_adapters.kafka.config import KafkaSettings
from finbank_adapters.kafka.errors import translated


@asynccontextmanager
async def open_producer(settings: KafkaSettings) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer, flushed and stopped on exit; ``ServiceUnavailable`` if unreachable."""
    producer = AIOKafkaProducer(**settings.producer_config())
    try:
        with translated():
            await producer.start()
        yield producer
    finally:
        await producer.stop()


def new_consumer(settings: KafkaSettings, group_id: str) -> AIOKafkaConsumer:
    """A consumer of ``group_id`` with manual commits; not started and not subscribed."""
    return AIOKafkaConsumer(**settings.consumer_config(group_id))


async def create_topics(
    settings: KafkaSettings, names: Iterable[str], *, partitions: int = 3
) -> None:
    """Create the topics (prefixed per settings) that do not exist yet; for dev and tests.

    Production topics (partitions, replication, retention) belong to the
    infrastructure code; brokers that auto-create topics make this optional.
    """
    admin = AIOKafkaAdminClient(**settings.client_config())
    with translated():
        await admin.start()
    try:
        for name in names:
            topic = NewTopic(settings.topic(name), num_partitions=partitions, replication_factor=1)
            with translated():
                try:
                    response = await admin.create_topics([topic])
                except TopicAlreadyExistsError:
                    continue
            for _, code, *_rest in response.topic_errors:
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise RuntimeError(f"creating topic {topic.name} failed with error {code}")
    finally:
        await admin.close()
