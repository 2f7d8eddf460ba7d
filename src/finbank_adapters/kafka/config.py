"""Kafka client configuration: local broker (PLAINTEXT) or MSK (SASL_SSL + SCRAM-SHA-512).

:class:`KafkaSettings` is the Kafka slice of :class:`~finbank_adapters.settings.Settings`;
its ``*_config`` methods return the keyword arguments for aiokafka's
producer and consumer, so the configuration can be asserted without a
broker (the local Tansu broker cannot do SASL, MSK is not reachable from
tests). Nothing here connects.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

import msgspec

from finbank_adapters.settings import SettingsError

if TYPE_CHECKING:
    from finbank_adapters.settings import Settings

PLAINTEXT = "PLAINTEXT"
SASL_SSL = "SASL_SSL"
SCRAM_SHA_512 = "SCRAM-SHA-512"
_PROTOCOLS = frozenset({PLAINTEXT, "SSL", SASL_SSL})
_ACKS: dict[str, int | str] = {"all": "all", "-1": "all", "1": 1}


class KafkaConfigError(SettingsError):
    """The Kafka settings are inconsistent; raised when clients are configured.

    A :class:`~finbank_adapters.settings.SettingsError` (so a ``ValueError``): a
    command that meets it says what to set in one line, as for any bad setting.
    """


class KafkaSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Connection and delivery settings shared by the publisher, the relay and consumers.

    ``idempotent_producer`` must stay off against Tansu, which rejects
    aiokafka's ``InitProducerId`` handshake; MSK turns it on. ``acks="all"``
    is accepted by both (one broker: same as ``1``) and is what at-least-once
    needs; ``acks=0`` is refused.
    """

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "finbank"
    security_protocol: str = PLAINTEXT
    sasl_mechanism: str = SCRAM_SHA_512
    sasl_username: str = ""
    sasl_password: str = ""
    idempotent_producer: bool = False
    acks: str = "all"
    #: how long the producer keeps retrying a batch before failing it
    request_timeout_ms: int = 30_000
    linger_ms: int = 5
    max_batch_size: int = 256 * 1024
    #: consumer group liveness. Tansu (measured, 0.6.0) completes a join round after
    #: ~session_timeout/2 and holds a follower's SyncGroup ~0.8 x session_timeout for the
    #: leader's; a SIGKILLed member stays in the group, and may be elected leader, until
    #: its session times out (see tests/e2e/test_crash_recovery.py)
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    max_poll_records: int = 200
    #: prepended to every topic name (e.g. ``staging.`` or a test's namespace)
    topic_prefix: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaSettings:
        """The Kafka slice of ``settings``; the ``aws`` profile defaults to MSK's SASL_SSL."""
        from finbank_adapters.settings import Profile

        on_aws = settings.profile is Profile.AWS
        protocol = settings.kafka.security_protocol or (SASL_SSL if on_aws else PLAINTEXT)
        idempotent = settings.kafka.idempotent_producer
        return cls(
            bootstrap_servers=settings.kafka.bootstrap,
            client_id=settings.kafka.client_id,
            security_protocol=protocol.upper(),
            sasl_mechanism=settings.kafka.sasl_mechanism,
            sasl_username=settings.kafka.sasl_username,
            sasl_password=settings.kafka.sasl_password,
            idempotent_producer=on_aws if idempotent is None else idempotent,
            acks=settings.kafka.acks,
            topic_prefix=settings.kafka.topic_prefix,
        )

    def topic(self, name: str) -> str:
        """The broker-side name of topic ``name``."""
        return f"{self.topic_prefix}{name}"

    def client_config(self) -> dict[str, Any]:
        """What every aiokafka client takes: servers, client id, security."""
        if self.security_protocol not in _PROTOCOLS:
            raise KafkaConfigError(
                f"kafka security protocol must be one of {sorted(_PROTOCOLS)}:"
                f" {self.security_protocol!r}"
            )
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.security_protocol in (SASL_SSL, "SSL"):
            # verifies the broker's certificate and host name against the system CAs
            config["ssl_context"] = ssl.create_default_context()
        if self.security_protocol == SASL_SSL:
            if not self.sasl_username or not self.sasl_password:
                raise KafkaConfigError(
                    "FINBANK_KAFKA_SASL_USERNAME and FINBANK_KAFKA_SASL_PASSWORD are required"
                    " with SASL_SSL"
                )
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = self.sasl_password
        return config

    def producer_config(self) -> dict[str, Any]:
        """``AIOKafkaProducer`` keyword arguments."""
        acks = _ACKS.get(self.acks.lower())
        if acks is None:
            raise KafkaConfigError(f"kafka acks must be 'all' or '1', not {self.acks!r}")
        if self.idempotent_producer and acks != "all":
            raise KafkaConfigError("the idempotent producer needs acks='all'")
        return {
            **self.client_config(),
            "acks": acks,
            "enable_idempotence": self.idempotent_producer,
            "linger_ms": self.linger_ms,
            "max_batch_size": self.max_batch_size,
        }

    def consumer_config(self, group_id: str) -> dict[str, Any]:
        """``AIOKafkaConsumer`` keyword arguments: a group, manual commits, from the start."""
        return {
            **self.client_config(),
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "max_poll_records": self.max_poll_records,
        }
