"""Kafka settings that cannot make a client (SASL_SSL, the aws profile's default, without
its user and password) end a process with one line naming what to set: never a
traceback, never a hang.

The consumer runner used to build its client before the ``try`` whose ``finally``
marks it finished, so ``stop()`` waited forever and ``finbank worker
pix-settlement`` did not exit, even on SIGTERM.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from finbank.runtime import PixSettlementWorker
from finbank_adapters.kafka import KafkaConfigError, KafkaSettings
from finbank_adapters.kafka.consumer import KafkaConsumerRunner
from finbank_adapters.settings import Settings, SettingsError
from finbank_cli.main import main
from finbank_core.shared.events import PIX_TOPIC, EventEnvelope
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

SASL_WITHOUT_CREDENTIALS = "FINBANK_KAFKA_SASL_USERNAME and FINBANK_KAFKA_SASL_PASSWORD"


async def ignore(event: EventEnvelope) -> None:
    raise AssertionError("no event can arrive without a client")


def test_a_kafka_settings_error_is_a_settings_error() -> None:
    assert issubclass(KafkaConfigError, SettingsError)
    with pytest.raises(SettingsError, match=SASL_WITHOUT_CREDENTIALS):
        KafkaSettings(security_protocol="SASL_SSL").client_config()


async def test_a_runner_that_cannot_make_its_client_raises_and_stop_returns() -> None:
    runner = KafkaConsumerRunner(
        KafkaSettings(security_protocol="SASL_SSL"),
        group_id="g",
        topics=[PIX_TOPIC],
        handler=ignore,
    )
    with pytest.raises(KafkaConfigError, match=SASL_WITHOUT_CREDENTIALS):
        await asyncio.wait_for(runner.run(), 5)
    await asyncio.wait_for(runner.stop(), 5)  # returned at once: the run is over
    assert not runner.assigned.is_set()


@pytest.fixture
async def env() -> AsyncIterator[dict[str, str]]:
    """The local profile on a migrated schema and a Redis prefix, Kafka over SASL_SSL
    with no user or password."""
    require_postgres()
    async with isolated_schema() as (_, schema), open_test_redis() as (_, prefix):
        yield {
            "FINBANK_PROFILE": "local",
            "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
            "FINBANK_REDIS_URL": "redis://127.0.0.1:6379/0",
            "FINBANK_REDIS_KEY_PREFIX": prefix,
            "FINBANK_PIX_BACKEND": "postgres",
            "FINBANK_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        }


async def test_the_settlement_worker_stops_with_the_error_instead_of_hanging(
    env: dict[str, str],
) -> None:
    worker = PixSettlementWorker(Settings.from_env(env))
    stop = asyncio.Event()
    with pytest.raises(KafkaConfigError, match=SASL_WITHOUT_CREDENTIALS):
        await asyncio.wait_for(worker.run(stop), 30)
    assert not worker.ready.is_set()


@pytest.mark.parametrize("command", [["relay"], ["worker", "pix-settlement"]])
def test_the_commands_name_the_missing_settings_in_one_line(
    command: list[str],
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err == f"finbank: {SASL_WITHOUT_CREDENTIALS} are required with SASL_SSL\n"
