"""Settings of the aws profile from Secrets Manager, against a moto server."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest

from finbank_adapters.aws.secrets import (
    SecretsManagerLoader,
    load_aws_settings,
    secrets_manager_loader,
    settings_with_secrets,
)
from finbank_adapters.memory.clock import FakeClock
from finbank_adapters.settings import AwsOptions, Profile, Settings, SettingsError
from tests.integration.aws_fixtures import aws_endpoint

__all__ = ["aws_endpoint"]  # the fixture is used by name

pytestmark = pytest.mark.services

DB_PASSWORD = "s3nh4-d0-b4nc0-" + uuid.uuid4().hex
SECRET = {
    "postgres_dsn": f"postgresql://finbank_app:{DB_PASSWORD}@aurora.internal:5432/finbank",
    "redis_url": "rediss://cache.internal:6379/0",
    "redis_auth": "t0ken/with+symbols",
    "kafka_bootstrap": "b-1.msk.internal:9096",
    "kafka_sasl_username": "finbank-app",
    "kafka_sasl_password": "kafka-" + uuid.uuid4().hex,
    "legacy_password": "old-" + uuid.uuid4().hex,  # no such setting: ignored
    "jwt_secret": "jwt-" + uuid.uuid4().hex,
    "cognito_client_secret": "client-" + uuid.uuid4().hex,
    "mfa_max_attempts": "3",
}


def admin(endpoint: str) -> Any:
    return boto3.client("secretsmanager", region_name="sa-east-1", endpoint_url=endpoint)


def create_secret(endpoint: str, value: str) -> str:
    name = f"finbank/test/{uuid.uuid4().hex}"
    admin(endpoint).create_secret(Name=name, SecretString=value)
    return name


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def aws_settings(aws_endpoint: str) -> Settings:
    return Settings(
        profile=Profile.AWS, aws=AwsOptions(endpoint_url=aws_endpoint, region="sa-east-1")
    )


@pytest.fixture
async def client(aws_endpoint: str) -> AsyncIterator[Any]:
    import aioboto3

    async with aioboto3.Session().client(
        "secretsmanager", region_name="sa-east-1", endpoint_url=aws_endpoint
    ) as secretsmanager:
        yield secretsmanager


async def test_the_secret_fills_the_settings_env_did_not_set(
    aws_endpoint: str, aws_settings: Settings, client: Any, clock: FakeClock
) -> None:
    loader = SecretsManagerLoader(client, create_secret(aws_endpoint, json.dumps(SECRET)), clock)

    settings = await settings_with_secrets(aws_settings, loader, environ={})

    assert settings.postgres.dsn == SECRET["postgres_dsn"]
    assert settings.jwt.secret == SECRET["jwt_secret"]
    assert settings.cognito.client_secret == SECRET["cognito_client_secret"]
    assert settings.kafka.bootstrap == SECRET["kafka_bootstrap"]
    assert settings.kafka.sasl_username == "finbank-app"
    assert settings.kafka.sasl_password == SECRET["kafka_sasl_password"]
    assert settings.auth.mfa_max_attempts == 3  # converted to the field's type
    # the AUTH token becomes the password of the TLS URL, percent-encoded
    assert settings.redis.url == "rediss://:t0ken%2Fwith%2Bsymbols@cache.internal:6379/0"
    assert settings.aws.endpoint_url == aws_endpoint  # untouched fields stay


async def test_an_explicit_environment_variable_wins_over_the_secret(
    aws_endpoint: str, aws_settings: Settings, client: Any, clock: FakeClock
) -> None:
    loader = SecretsManagerLoader(client, create_secret(aws_endpoint, json.dumps(SECRET)), clock)
    env = {
        "FINBANK_POSTGRES_DSN": "postgresql://restored.internal/finbank",
        "FINBANK_REDIS_URL": "rediss://other.internal:6379/0",
    }
    settings = aws_settings.replace_variables(
        {name: env[name] for name in ("FINBANK_POSTGRES_DSN", "FINBANK_REDIS_URL")}
    )

    merged = await settings_with_secrets(settings, loader, environ=env)

    assert merged.postgres.dsn == "postgresql://restored.internal/finbank"
    assert merged.redis.url == "rediss://other.internal:6379/0"  # no token spliced in either
    assert merged.jwt.secret == SECRET["jwt_secret"]


async def test_the_secret_is_cached_until_its_ttl_passes_on_the_injected_clock(
    aws_endpoint: str, client: Any, clock: FakeClock
) -> None:
    name = create_secret(aws_endpoint, json.dumps({"jwt_secret": "first"}))
    loader = SecretsManagerLoader(client, name, clock, ttl_seconds=300)

    assert (await loader.values())["jwt_secret"] == "first"
    admin(aws_endpoint).put_secret_value(SecretId=name, SecretString='{"jwt_secret": "rotated"}')
    clock.advance(seconds=299)
    assert (await loader.values())["jwt_secret"] == "first"
    assert loader.fetches == 1

    clock.advance(seconds=1)
    assert (await loader.values())["jwt_secret"] == "rotated"
    assert loader.fetches == 2


async def test_a_missing_secret_is_a_settings_error_naming_only_the_secret(
    client: Any, clock: FakeClock
) -> None:
    loader = SecretsManagerLoader(client, "finbank/test/absent", clock)
    with pytest.raises(SettingsError, match=r"finbank/test/absent: ResourceNotFoundException"):
        await loader.values()


async def test_a_secret_that_is_not_a_json_object_is_refused(
    aws_endpoint: str, client: Any, clock: FakeClock
) -> None:
    for text in ("not json", '["a list"]'):
        loader = SecretsManagerLoader(client, create_secret(aws_endpoint, text), clock)
        with pytest.raises(SettingsError, match=r"is not (JSON|a JSON object)"):
            await loader.values()


async def test_no_secret_value_reaches_the_logs(
    aws_endpoint: str, aws_settings: Settings, client: Any, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    loader = SecretsManagerLoader(client, create_secret(aws_endpoint, json.dumps(SECRET)), clock)
    await settings_with_secrets(aws_settings, loader, environ={})
    # botocore itself logs response bodies at DEBUG: finbank_http.observability caps
    # it at INFO (tests/e2e/test_observability.py); here, our own records only.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("finbank"))
    assert "legacy_password" in ours  # the ignored key is named...
    for value in (DB_PASSWORD, SECRET["legacy_password"], SECRET["jwt_secret"], "t0ken"):
        assert value not in ours  # ...but no value is


async def test_load_aws_settings_reads_the_secret_named_by_the_environment(
    aws_endpoint: str, aws_settings: Settings, clock: FakeClock
) -> None:
    name = create_secret(aws_endpoint, json.dumps(SECRET))
    settings = await load_aws_settings(aws_settings, clock, environ={"FINBANK_SECRETS_ID": name})
    assert settings.postgres.dsn == SECRET["postgres_dsn"]
    assert await load_aws_settings(aws_settings, clock, environ={}) == aws_settings


async def test_a_loader_without_a_secret_id_is_a_clear_error(
    aws_settings: Settings, clock: FakeClock
) -> None:
    with pytest.raises(SettingsError, match="FINBANK_SECRETS_ID is required"):
        async with secrets_manager_loader(aws_settings, clock, secret_id=""):
            pass


def secret_env(aws_endpoint: str) -> dict[str, str]:
    """An entry point's environment on the aws profile, naming a new secret of SECRET."""
    return {
        "FINBANK_PROFILE": "aws",
        "FINBANK_AWS_ENDPOINT_URL": aws_endpoint,
        "FINBANK_AWS_REGION": "sa-east-1",
        "FINBANK_SECRETS_ID": create_secret(aws_endpoint, json.dumps(SECRET)),
    }


def test_an_entry_point_exports_the_secret_as_settings_the_env_did_not_set(
    aws_endpoint: str,
) -> None:
    from finbank_adapters.aws.secrets import export_secret_settings

    env = {**secret_env(aws_endpoint), "FINBANK_JWT_SECRET": "set-by-the-operator"}
    written = export_secret_settings(env)

    assert "FINBANK_POSTGRES_DSN" in written
    assert "FINBANK_JWT_SECRET" not in written  # the environment wins
    settings = Settings.from_env(env)
    assert settings.postgres.dsn == SECRET["postgres_dsn"]
    assert settings.jwt.secret == "set-by-the-operator"
    assert settings.auth.mfa_max_attempts == 3
    assert settings.redis.url.startswith("rediss://:t0ken")
    assert export_secret_settings({"FINBANK_PROFILE": "aws"}) == []  # no secret id: nothing


def test_a_process_logging_at_debug_never_logs_the_secret_it_loads(aws_endpoint: str) -> None:
    # A Lambda at AWS_LAMBDA_LOG_LEVEL=DEBUG exports the secret at cold start before any
    # logging setup of ours: botocore logged the response body, SecretString and all.
    from finbank_adapters.aws.secrets import export_secret_settings
    from finbank_adapters.quiet_logs import QUIET_LOGGERS

    env = secret_env(aws_endpoint)
    root = logging.getLogger()
    levels = {n: logging.getLogger(n).level for n in (*QUIET_LOGGERS, "")}
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    root.addHandler(handler)
    try:
        for n in QUIET_LOGGERS:
            logging.getLogger(n).setLevel(logging.NOTSET)  # as a fresh process has them
        root.setLevel(logging.DEBUG)
        assert "FINBANK_POSTGRES_DSN" in export_secret_settings(env)
    finally:
        root.removeHandler(handler)
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)
    logged = captured.getvalue()
    assert "settings from secret" in logged  # the capture saw the process's lines
    assert DB_PASSWORD not in logged
    assert "t0ken" not in logged
