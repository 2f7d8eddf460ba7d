"""``finbank dev up`` uses a PostgreSQL database and a Redis database of its own, never the tests'.

The database is created when missing and migrated (twice is a no-op); the
exported DSN and Redis URL keep the configured servers and options but name
the stack's database; the test suite's ``test`` database is refused.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from finbank_adapters.settings import Settings
from finbank_cli.devstack import (
    DEV_DATABASE,
    DEV_REDIS_DB,
    DevStack,
    DevStackError,
    check_redis,
    ensure_database,
    with_database,
)
from tests.postgres_support import POSTGRES_DSN, require_postgres
from tests.support_redis import REDIS_HOST, REDIS_PORT, open_test_redis

pytestmark = pytest.mark.services


def settings(dsn: str = POSTGRES_DSN, redis_url: str = "redis://127.0.0.1:6379/0") -> Settings:
    return Settings.from_env(
        {"FINBANK_PROFILE": "local", "FINBANK_POSTGRES_DSN": dsn, "FINBANK_REDIS_URL": redis_url}
    )


def test_the_exported_environment_names_the_stacks_own_databases() -> None:
    configured = settings(
        "postgresql://app:pw@db.example:6543/test?sslmode=disable", "redis://cache:6380/0"
    )
    env = DevStack(kafka_port=1, aws_port=2).environment(configured)
    assert env["FINBANK_POSTGRES_DSN"] == (
        f"postgresql://app:pw@db.example:6543/{DEV_DATABASE}?sslmode=disable"
    )
    assert env["FINBANK_REDIS_URL"] == f"redis://cache:6380/{DEV_REDIS_DB}"
    assert DEV_DATABASE != "test"
    assert DEV_REDIS_DB != 0
    other = DevStack(kafka_port=1, aws_port=2, database="mine", redis_db=7).environment(configured)
    assert other["FINBANK_POSTGRES_DSN"].startswith("postgresql://app:pw@db.example:6543/mine?")
    assert other["FINBANK_REDIS_URL"] == "redis://cache:6380/7"


@pytest.mark.parametrize("name", ["test", "postgres", "template1", ""])
def test_the_test_suites_and_the_servers_databases_are_refused(name: str) -> None:
    with pytest.raises(DevStackError, match="database of its own"):
        DevStack(kafka_port=1, aws_port=2, database=name).environment(settings())


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    """A database name that does not exist yet; dropped afterwards."""
    require_postgres()
    name = f"finbank_dev_t{secrets.token_hex(4)}"
    yield name
    admin = await asyncpg.connect(with_database(POSTGRES_DSN, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_a_missing_database_is_created_and_migrated_once(fresh_database: str) -> None:
    assert await ensure_database(POSTGRES_DSN, fresh_database) is True
    dev = await asyncpg.connect(with_database(POSTGRES_DSN, fresh_database))
    try:
        versions = await dev.fetchval("SELECT count(*) FROM finbank_schema_migrations")
        assert versions >= 12
        assert await dev.fetchval("SELECT to_regclass('pix_payments') IS NOT NULL")
        await dev.execute(
            "INSERT INTO pix_devices (owner_id, device_id, first_seen) VALUES ('a', 'b', 'c')"
        )
    finally:
        await dev.close()
    # a second `dev up` keeps the database and what it holds
    assert await ensure_database(POSTGRES_DSN, fresh_database) is False
    dev = await asyncpg.connect(with_database(POSTGRES_DSN, fresh_database))
    try:
        assert await dev.fetchval("SELECT count(*) FROM pix_devices") == 1
    finally:
        await dev.close()
    # and the test database was not touched: the dev database is another one
    assert fresh_database != "test"


async def test_an_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(DevStackError, match="PostgreSQL is not reachable"):
        await ensure_database("postgresql://postgres@127.0.0.1:9/x", "finbank_dev")


async def test_the_redis_database_number_is_checked() -> None:
    async with open_test_redis():
        await check_redis(f"redis://{REDIS_HOST}:{REDIS_PORT}/{DEV_REDIS_DB}")
        with pytest.raises(DevStackError, match="dev database number"):
            await check_redis(f"redis://{REDIS_HOST}:{REDIS_PORT}/100000")
