"""Processes that never touch auth secrets run without their settings.

The envelope cipher of TOTP secrets and MFA sessions is opened on demand, by
the first store that seals or opens one. On the local profile the relay, the
PIX settlement worker and the Pix Automático worker therefore start, work and
stop without ``FINBANK_JWT_SECRET`` (from which the cipher's key is derived when
no key is configured); asking for the cipher in such a process is what fails,
naming the setting. On the aws profile the cipher needs a KMS key id (or
explicit keys): never a key derived from the JWT secret, and ``finbank serve``
refuses to start without one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from finbank import open_bank
from finbank.runtime import PixSettlementWorker, run_pix_automatic_worker, run_relay
from finbank_adapters.containers import build_container, close_container, resolve
from finbank_adapters.crypto import EnvelopeCipher
from finbank_adapters.kafka import KafkaSettings
from finbank_adapters.postgres import PostgresEventPublisher
from finbank_adapters.settings import Settings, SettingsError
from finbank_core.accounts.use_cases import OpenAccountCommand
from finbank_core.shared.events import EventEnvelope
from tests.integration.kafka_fixtures import kafka_broker, kafka_settings
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

__all__ = ["kafka_broker", "kafka_settings"]  # fixtures


@pytest.fixture
async def schema_pool() -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    require_postgres()
    async with isolated_schema(max_size=4) as (pool, schema):
        yield pool, schema


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    async with open_test_redis() as (_, prefix):
        yield prefix


def local_settings(schema: str, prefix: str, **extra: str) -> Settings:
    """The local profile on the test's schema and Redis prefix, with no JWT secret."""
    settings = Settings.from_env(
        {
            "FINBANK_PROFILE": "local",
            "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
            "FINBANK_REDIS_URL": "redis://127.0.0.1:6379/0",
            "FINBANK_REDIS_KEY_PREFIX": prefix,
            **extra,
        }
    )
    assert settings.jwt.secret == ""
    return settings


async def test_the_local_bank_opens_and_works_without_a_jwt_secret_until_a_secret_is_sealed(
    schema_pool: tuple[asyncpg.Pool, str], redis_prefix: str
) -> None:
    _, schema = schema_pool
    async with open_bank(local_settings(schema, redis_prefix)) as bank:
        account = await bank.accounts.open(
            OpenAccountCommand(owner_id="owner-1", holder_name="Olga Souza")
        )
        assert account.owner_id == "owner-1"
        # the cipher was never opened; asking for it is what needs the secret
        with pytest.raises(SettingsError, match="FINBANK_JWT_SECRET"):
            await resolve(bank.container.auth.secrets_cipher())
        with pytest.raises(SettingsError, match="FINBANK_JWT_SECRET"):
            await resolve(bank.container.auth.user_store())


async def test_the_pix_automatic_worker_runs_and_stops_without_a_jwt_secret(
    schema_pool: tuple[asyncpg.Pool, str], redis_prefix: str
) -> None:
    _, schema = schema_pool
    stop = asyncio.Event()
    stop.set()  # one opening of the bank and the worker, then out
    await asyncio.wait_for(
        run_pix_automatic_worker(local_settings(schema, redis_prefix), stop, holder="t"), 60
    )


async def test_the_relay_publishes_without_a_jwt_secret(
    schema_pool: tuple[asyncpg.Pool, str], redis_prefix: str, kafka_settings: KafkaSettings
) -> None:
    pool, schema = schema_pool
    settings = local_settings(
        schema,
        redis_prefix,
        FINBANK_KAFKA_BOOTSTRAP=kafka_settings.bootstrap_servers,
        FINBANK_KAFKA_TOPIC_PREFIX=kafka_settings.topic_prefix,
    )
    envelope = EventEnvelope(
        event_id=uuid.uuid4(),
        type="ledger.deposit_made",
        version=1,
        occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
        aggregate_id="acc-1",
        payload={"n": 1},
    )
    await PostgresEventPublisher(pool).publish([envelope])
    stop = asyncio.Event()

    async def stop_when_drained() -> None:
        # polling the table: the relay has no event to wait on from outside
        for _ in range(2400):
            if await pool.fetchval("SELECT count(*) FROM outbox") == 0:
                break
            await asyncio.sleep(0.05)
        stop.set()

    await asyncio.wait_for(
        asyncio.gather(run_relay(settings, stop), stop_when_drained()), timeout=120
    )
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_the_settlement_worker_joins_its_group_without_a_jwt_secret(
    schema_pool: tuple[asyncpg.Pool, str], redis_prefix: str, kafka_settings: KafkaSettings
) -> None:
    _, schema = schema_pool
    worker = PixSettlementWorker(
        local_settings(schema, redis_prefix),
        kafka=kafka_settings,
        group_id=f"no-jwt-{uuid.uuid4().hex[:8]}",
    )
    stop = asyncio.Event()

    async def stop_when_assigned() -> None:
        await worker.ready.wait()
        stop.set()

    await asyncio.wait_for(asyncio.gather(worker.run(stop), stop_when_assigned()), timeout=120)
    assert worker.ready.is_set()


# -- the aws profile: a KMS key, or explicit keys ------------------------------------------


def aws_env(**extra: str) -> dict[str, str]:
    return {"FINBANK_PROFILE": "aws", "FINBANK_JWT_SECRET": "j" * 40, **extra}


async def test_on_aws_the_cipher_needs_a_kms_key_and_is_never_derived_from_the_jwt_secret() -> None:
    settings = Settings.from_env(aws_env())  # the relay's and workers' settings: accepted
    with pytest.raises(SettingsError, match="FINBANK_AUTH_SECRETS_KMS_KEY_ID"):
        settings.require_auth_secrets_key()
    container = build_container(settings)
    try:
        with pytest.raises(SettingsError, match="FINBANK_AUTH_SECRETS_KMS_KEY_ID"):
            await resolve(container.auth.secrets_cipher())
    finally:
        await close_container(container)


async def test_on_aws_explicit_keys_are_enough() -> None:
    import base64

    key = base64.b64encode(bytes(range(32))).decode()
    settings = Settings.from_env(aws_env(FINBANK_AUTH_SECRETS_KEYS=f"k1:{key}"))
    settings.require_auth_secrets_key()
    container = build_container(settings)
    try:
        cipher: EnvelopeCipher = await resolve(container.auth.secrets_cipher())
        assert cipher.current_key_id == "k1"
    finally:
        await close_container(container)


def test_the_other_profiles_may_derive_the_key() -> None:
    Settings.from_env({"FINBANK_PROFILE": "local"}).require_auth_secrets_key()
    Settings.from_env({}).require_auth_secrets_key()


def test_finbank_serve_refuses_to_start_on_aws_without_the_kms_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from finbank_cli import main as cli

    for name, value in aws_env().items():
        monkeypatch.setenv(name, value)
    started: list[str] = []
    monkeypatch.setattr("finbank_http.app.serve", lambda *a, **k: started.append("served"))
    assert cli.main(["serve"]) == 2
    assert "FINBANK_AUTH_SECRETS_KMS_KEY_ID" in capsys.readouterr().err
    assert started == []
    monkeypatch.setenv("FINBANK_AUTH_SECRETS_KMS_KEY_ID", "alias/finbank-test-auth-secrets")
    assert cli.main(["serve"]) == 0
    assert started == ["served"]
