"""Kafka client configuration, asserted without a broker (Tansu cannot do SASL; MSK is remote)."""

from __future__ import annotations

import ssl

import pytest
from aiokafka import errors as kafka

from finbank_adapters.kafka import KafkaConfigError, KafkaSettings
from finbank_adapters.kafka.errors import translated
from finbank_adapters.settings import Settings
from finbank_core.shared.errors import InvalidInput, ServiceUnavailable

MSK_ENV = {
    "FINBANK_PROFILE": "aws",
    "FINBANK_KAFKA_BOOTSTRAP": "b-1.msk.example:9096,b-2.msk.example:9096",
    "FINBANK_KAFKA_SASL_USERNAME": "finbank-relay",
    "FINBANK_KAFKA_SASL_PASSWORD": "from-secrets-manager",
}


def test_the_aws_profile_talks_to_msk_over_sasl_ssl_with_scram_sha_512() -> None:
    settings = KafkaSettings.from_settings(Settings.from_env(MSK_ENV))
    config = settings.producer_config()
    assert config["bootstrap_servers"] == ["b-1.msk.example:9096", "b-2.msk.example:9096"]
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_username"] == "finbank-relay"
    assert config["sasl_plain_password"] == "from-secrets-manager"
    context = config["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert config["enable_idempotence"] is True
    assert config["acks"] == "all"


def test_msk_consumers_use_the_same_security_and_commit_by_hand() -> None:
    settings = KafkaSettings.from_settings(Settings.from_env(MSK_ENV))
    config = settings.consumer_config("pix-settlement")
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert isinstance(config["ssl_context"], ssl.SSLContext)
    assert config["group_id"] == "pix-settlement"
    assert config["enable_auto_commit"] is False
    assert config["auto_offset_reset"] == "earliest"


def test_the_local_profile_uses_plaintext_without_idempotence_for_tansu() -> None:
    settings = KafkaSettings.from_settings(
        Settings.from_env({"FINBANK_PROFILE": "local", "FINBANK_KAFKA_BOOTSTRAP": "127.0.0.1:9"})
    )
    config = settings.producer_config()
    assert config["security_protocol"] == "PLAINTEXT"
    assert config["enable_idempotence"] is False
    assert config["acks"] == "all"
    assert not {"ssl_context", "sasl_mechanism", "sasl_plain_password"} & config.keys()


def test_each_choice_can_be_overridden_by_its_variable() -> None:
    settings = KafkaSettings.from_settings(
        Settings.from_env(
            {**MSK_ENV, "FINBANK_KAFKA_IDEMPOTENT_PRODUCER": "false", "FINBANK_KAFKA_ACKS": "1"}
        )
    )
    config = settings.producer_config()
    assert (config["enable_idempotence"], config["acks"]) == (False, 1)


def test_sasl_without_credentials_is_a_configuration_error() -> None:
    settings = KafkaSettings.from_settings(
        Settings.from_env({"FINBANK_PROFILE": "aws", "FINBANK_KAFKA_SASL_USERNAME": "relay"})
    )
    with pytest.raises(KafkaConfigError, match="SASL_PASSWORD"):
        settings.client_config()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"security_protocol": "SASL_PLAINTEXT"}, "security protocol"),
        ({"acks": "0"}, "acks"),
        ({"idempotent_producer": True, "acks": "1"}, "idempotent"),
    ],
)
def test_unsafe_or_unknown_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    settings = KafkaSettings(**overrides)  # type: ignore[arg-type]
    with pytest.raises(KafkaConfigError, match=message):
        settings.producer_config()


def test_the_prefix_namespaces_topic_names() -> None:
    assert (
        KafkaSettings(topic_prefix="staging.").topic("finbank.pix.v1") == "staging.finbank.pix.v1"
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (kafka.KafkaConnectionError(), ServiceUnavailable),
        (kafka.KafkaTimeoutError(), ServiceUnavailable),
        (kafka.NotLeaderForPartitionError(), ServiceUnavailable),
        (kafka.UnknownError(), ServiceUnavailable),
        (kafka.SaslAuthenticationFailed(), ServiceUnavailable),
        (kafka.MessageSizeTooLargeError(), InvalidInput),
    ],
)
def test_kafka_errors_become_core_errors(error: Exception, expected: type[Exception]) -> None:
    with pytest.raises(expected) as raised, translated():
        raise error
    assert raised.value.__cause__ is error


def test_other_errors_pass_through_untranslated() -> None:
    with pytest.raises(KeyError), translated():
        raise KeyError("a bug")
