"""``finbank doctor`` against the real local services (PostgreSQL, Redis, a Tansu broker,
moto for DynamoDB, S3 and Secrets Manager), ready and then broken one way at a time."""

from __future__ import annotations

import io
import json
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import boto3
import pytest

from finbank_adapters.aws_wiring import bootstrap_aws
from finbank_adapters.kafka import KafkaSettings
from finbank_adapters.kafka.clients import create_topics
from finbank_adapters.postgres.migrations import migrate, quote_ident
from finbank_adapters.settings import Settings
from finbank_cli.doctor import Check, Status, report, run_checks, where
from finbank_cli.main import main
from finbank_core.shared.events import AUTH_TOPIC, LEDGER_TOPIC, PIX_TOPIC
from tests.conftest import require_service
from tests.integration.aws_fixtures import aws_endpoint
from tests.integration.kafka_fixtures import kafka_broker, kafka_settings
from tests.postgres_support import POSTGRES_DSN, require_postgres
from tests.support_redis import REDIS_HOST, REDIS_PORT

pytestmark = pytest.mark.services
__all__ = ["aws_endpoint", "kafka_broker", "kafka_settings"]  # fixtures


@dataclass
class Local:
    """A local profile whose every dependency is ready: FINBANK_* variables."""

    env: dict[str, str]
    schema: str

    def settings(self, **changes: str) -> Settings:
        return Settings.from_env({**self.env, **changes})


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    require_postgres()
    name = f"t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        await admin.execute(f"CREATE SCHEMA {quote_ident(name)}")
        yield name
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {quote_ident(name)} CASCADE")
        await admin.close()


async def migrate_schema(name: str) -> None:
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        await migrate(admin, name)
    finally:
        await admin.close()


REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
async def local(schema: str, aws_endpoint: str, kafka_settings: KafkaSettings) -> Local:
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    await migrate_schema(schema)
    table = f"finbank-pix-{uuid.uuid4().hex[:8]}"
    bucket = f"finbank-files-{uuid.uuid4().hex[:8]}"
    secret = f"finbank/test/{uuid.uuid4().hex}"
    env = {
        "FINBANK_PROFILE": "local",
        "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
        "FINBANK_REDIS_URL": REDIS_URL,
        "FINBANK_KAFKA_BOOTSTRAP": kafka_settings.bootstrap_servers,
        "FINBANK_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "FINBANK_AWS_ENDPOINT_URL": aws_endpoint,
        "FINBANK_PIX_BACKEND": "dynamodb",
        "FINBANK_PIX_TABLE_NAME": table,
        "FINBANK_FILES_BACKEND": "s3",
        "FINBANK_FILES_S3_BUCKET": bucket,
        "FINBANK_JWT_SECRET": secrets.token_hex(32),
        "FINBANK_SECRETS_ID": secret,
    }
    settings = Settings.from_env(env)
    await bootstrap_aws(settings)
    await create_topics(kafka_settings, [PIX_TOPIC, LEDGER_TOPIC, AUTH_TOPIC])
    boto3.client("s3", region_name="sa-east-1", endpoint_url=aws_endpoint).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "sa-east-1"}
    )
    boto3.client(
        "secretsmanager", region_name="sa-east-1", endpoint_url=aws_endpoint
    ).create_secret(Name=secret, SecretString=json.dumps({"mfa_max_attempts": "4"}))
    return Local(env, schema)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


async def server_setting(name: str) -> str:
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        value: str = await conn.fetchval("SELECT current_setting($1)", name)
        return value
    finally:
        await conn.close()


async def test_a_local_profile_with_everything_ready_passes_every_check(local: Local) -> None:
    checks = by_name(await run_checks(local.settings(), local.env))

    vacuum = Status.OK if await server_setting("autovacuum") == "on" else Status.WARN
    assert {name: c.status for name, c in checks.items()} == {
        **dict.fromkeys(
            ["settings", "postgres", "postgres-durability", "redis", "kafka", "dynamodb", "s3"],
            Status.OK,
        ),
        "postgres-vacuum": vacuum,
        "secret": Status.OK,
    }
    assert "migrations applied" in checks["postgres"].detail
    assert "NEW_AND_OLD_IMAGES" in checks["dynamodb"].detail
    out = io.StringIO()
    assert report(list(checks.values()), out) == 0
    assert "everything this profile uses is ready" in out.getvalue()


async def test_an_unmigrated_database_is_named_with_the_command_that_fixes_it(
    local: Local, schema: str
) -> None:
    fresh = f"t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        await admin.execute(f"CREATE SCHEMA {quote_ident(fresh)}")
        settings = local.settings(FINBANK_POSTGRES_DSN=f"{POSTGRES_DSN}?search_path={fresh}")
        check = by_name(await run_checks(settings, local.env))["postgres"]
    finally:
        await admin.execute(f"DROP SCHEMA {quote_ident(fresh)} CASCADE")
        await admin.close()

    assert check.status is Status.FAIL
    assert "migrations not applied" in check.detail
    assert check.fix == "run `finbank db migrate`"


async def test_each_unreachable_or_missing_dependency_fails_with_a_fix(local: Local) -> None:
    password = "s3cr3t-" + secrets.token_hex(4)
    broken = local.settings(
        FINBANK_POSTGRES_DSN=f"postgresql://finbank:{password}@127.0.0.1:1/test",
        FINBANK_REDIS_URL=f"redis://:{password}@127.0.0.1:1/0",
        FINBANK_KAFKA_BOOTSTRAP="127.0.0.1:1",
        FINBANK_PIX_TABLE_NAME="no-such-table",
        FINBANK_FILES_S3_BUCKET="no-such-bucket",
    )
    env = {**local.env, "FINBANK_SECRETS_ID": "finbank/test/no-such-secret"}

    checks = by_name(await run_checks(broken, env))

    for name in ("postgres", "redis", "kafka", "dynamodb", "s3", "secret"):
        assert checks[name].status is Status.FAIL, name
        assert checks[name].fix, f"{name}: no fix given"
    assert checks["postgres"].detail.startswith("cannot connect to 127.0.0.1:1")
    assert checks["dynamodb"].fix.startswith("run `finbank aws bootstrap`")
    assert "no-such-secret" in checks["secret"].detail
    out = io.StringIO()
    assert report(list(checks.values()), out) == 1
    assert password not in out.getvalue()  # hosts and ports, never credentials
    assert "6 problem(s)" in out.getvalue()


async def test_missing_topics_and_a_stream_of_the_wrong_view_are_named(
    local: Local, aws_endpoint: str
) -> None:
    table = f"finbank-pix-{uuid.uuid4().hex[:8]}"
    boto3.client("dynamodb", region_name="sa-east-1", endpoint_url=aws_endpoint).create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    settings = local.settings(FINBANK_PIX_TABLE_NAME=table, FINBANK_KAFKA_TOPIC_PREFIX="nothing.")

    checks = by_name(await run_checks(settings, local.env))

    assert checks["dynamodb"].status is Status.FAIL
    assert "stream view is NEW_IMAGE" in checks["dynamodb"].detail
    assert "indexes ['gsi1', 'gsi2'] missing" in checks["dynamodb"].detail
    assert checks["kafka"].status is Status.FAIL
    assert "nothing.finbank.pix.v1" in checks["kafka"].detail


async def test_settings_that_cannot_work_together_are_named(local: Local) -> None:
    env = {k: v for k, v in local.env.items() if k != "FINBANK_JWT_SECRET"}
    checks = await run_checks(Settings.from_env(env), env)
    [settings_check] = [c for c in checks if c.name == "settings"]
    assert settings_check.status is Status.FAIL
    assert "FINBANK_JWT_SECRET is required" in settings_check.detail

    cognito = Settings.from_env({"FINBANK_IDENTITY_BACKEND": "cognito"})
    [cognito_check] = [c for c in await run_checks(cognito, {}) if c.name == "settings"]
    assert "FINBANK_COGNITO_USER_POOL_ID" in cognito_check.detail


def test_the_command_exits_non_zero_on_a_problem_and_zero_on_memory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [k for k in os.environ if k.startswith("FINBANK_") and "TEST" not in k]:
        if name != "FINBANK_REQUIRE_SERVICES":
            monkeypatch.delenv(name)
    assert main(["doctor"]) == 0
    assert "everything this profile uses is ready" in capsys.readouterr().out

    require_postgres()
    monkeypatch.setenv("FINBANK_LEDGER_BACKEND", "postgres")
    monkeypatch.setenv("FINBANK_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:1/test")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  postgres" in out
    assert "fix: check FINBANK_POSTGRES_DSN" in out


async def test_a_server_that_can_lose_a_commit_fails_and_one_without_autovacuum_warns(
    local: Local,
) -> None:
    """The service's sessions are what counts: a DSN (or a role) that turns synchronous
    commits off loses answered transfers in a crash, whatever postgresql.conf says."""
    dsn = local.env["FINBANK_POSTGRES_DSN"]
    for value, status in [("off", Status.FAIL), ("local", Status.OK), ("on", Status.OK)]:
        settings = local.settings(FINBANK_POSTGRES_DSN=f"{dsn}&synchronous_commit={value}")
        checks = by_name(await run_checks(settings, local.env))
        durability = checks["postgres-durability"]
        assert durability.status is status, durability
        assert f"synchronous_commit={value}" in durability.detail
        if status is Status.FAIL:
            assert "synchronous_commit = on" in durability.fix
        out = io.StringIO()
        assert report(list(checks.values()), out) == (1 if status is Status.FAIL else 0)
    # a warning is printed with its fix, and does not fail the run
    warned = [Check("settings", Status.OK, "fine"), Check("vacuum", Status.WARN, "off", "turn on")]
    out = io.StringIO()
    assert report(warned, out) == 0
    assert "warn  vacuum" in out.getvalue()
    assert "fix: turn on" in out.getvalue()
    # the server unreachable: the postgres check reports it, this one is skipped
    down = local.settings(FINBANK_POSTGRES_DSN="postgresql://postgres@127.0.0.1:1/test")
    checks = by_name(await run_checks(down, local.env))
    assert checks["postgres"].status is Status.FAIL
    assert checks["postgres-server"].status is Status.SKIP


def test_where_shows_host_and_port_only() -> None:
    assert where("postgresql://u:p4ss@db.internal:5432/finbank?sslmode=require") == (
        "db.internal:5432"
    )
    assert where("rediss://:t0ken@cache.internal:6379/0") == "cache.internal:6379"


async def test_kafka_settings_that_cannot_make_a_client_are_reported_not_raised() -> None:
    """SASL_SSL (the aws profile's default) without its user and password: the settings
    check names what is missing and how to fix it; the broker is not probed; no traceback."""
    env = {
        "FINBANK_EVENTS_BACKEND": "postgres",
        "FINBANK_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "FINBANK_POSTGRES_DSN": "postgresql://postgres@127.0.0.1:1/test",
    }
    checks = await run_checks(Settings.from_env(env), env)
    settings_checks = [c for c in checks if c.name == "settings"]
    [sasl] = [c for c in settings_checks if "SASL" in c.detail]
    assert sasl.status is Status.FAIL
    assert "FINBANK_KAFKA_SASL_USERNAME and FINBANK_KAFKA_SASL_PASSWORD" in sasl.detail
    assert sasl.fix.startswith("set the FINBANK_KAFKA_* settings")
    [kafka] = [c for c in checks if c.name == "kafka"]
    assert kafka.status is Status.SKIP
    assert kafka.detail.startswith("not probed: FINBANK_KAFKA_SASL_USERNAME")
    out = io.StringIO()
    assert report(checks, out) == 1


async def test_a_check_that_raises_is_a_failure_that_names_only_the_error_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A probe that breaks does not stop the others, and a foreign error's message (which
    may echo a DSN or a password) is not printed: only its class."""
    import finbank_cli.doctor as doctor

    async def broken(settings: Settings) -> Check:
        raise RuntimeError("redis://:hunter2@cache.internal:6379")

    monkeypatch.setattr(doctor, "check_redis", broken)
    checks = await run_checks(Settings.from_env({}), {})
    [redis_check] = [c for c in checks if c.name == "redis"]
    assert redis_check.status is Status.FAIL
    assert redis_check.detail == "the check could not run: RuntimeError"
    assert [c.name for c in checks][-4:] == ["kafka", "dynamodb", "s3", "secret"]
    out = io.StringIO()
    assert report(checks, out) == 1
    assert "hunter2" not in out.getvalue()


async def test_acks_the_producer_cannot_take_are_a_failed_settings_check() -> None:
    env = {"FINBANK_EVENTS_BACKEND": "postgres", "FINBANK_KAFKA_ACKS": "2"}
    checks = await run_checks(Settings.from_env(env), env)
    [acks] = [c for c in checks if c.name == "settings" and "acks" in c.detail]
    assert acks.status is Status.FAIL
    assert acks.detail == "kafka acks must be 'all' or '1', not '2'"
