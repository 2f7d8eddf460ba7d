"""Migrations: from an empty database, idempotent, refusing edited history."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from finbank_adapters.postgres.migrations import (
    MigrationChecksumMismatch,
    load_migrations,
    migrate,
    migrate_dsn,
    quote_ident,
)
from tests.postgres_support import isolated_schema, require_postgres

pytestmark = pytest.mark.services


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    """A brand-new database (dropped afterwards); yields its DSN."""
    dsn = require_postgres()
    name = f"finbank_migrate_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
        try:
            yield urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))
        finally:
            await admin.execute(f"DROP DATABASE {quote_ident(name)} WITH (FORCE)")
    finally:
        await admin.close()


async def test_an_empty_database_is_migrated_from_scratch_and_twice_is_a_no_op(
    empty_database: str,
) -> None:
    every_version = [m.version for m in load_migrations()]
    assert await migrate_dsn(empty_database) == every_version
    assert await migrate_dsn(empty_database) == []
    conn = await asyncpg.connect(empty_database)
    try:
        recorded = await conn.fetch("SELECT version, checksum FROM finbank_schema_migrations")
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    finally:
        await conn.close()
    assert sorted(r["version"] for r in recorded) == every_version
    assert {m.checksum for m in load_migrations()} == {r["checksum"] for r in recorded}
    assert {"ledger_accounts", "ledger_transfers", "ledger_entries", "outbox"} <= tables


async def test_migrations_can_target_a_schema_of_their_own() -> None:
    async with isolated_schema() as (pool, schema):
        found = await pool.fetchval(
            "SELECT count(*) FROM pg_tables"
            " WHERE schemaname = $1 AND tablename = 'ledger_accounts'",
            schema,
        )
        assert found == 1
        async with pool.acquire() as conn:
            assert await migrate(conn, schema) == []


async def test_the_ledger_batch_functions_keep_generic_plans_on_their_indexes() -> None:
    """0029 and 0030: PL/pgSQL re-planned these functions' large statements on every
    call (custom plans looked cheaper), and a generic plan cached while the tables were
    small would scan them whole as they grew. Each function carries both settings
    itself, so they hold whatever the connection's own settings are."""
    async with isolated_schema() as (pool, schema):
        rows = await pool.fetch(
            "SELECT p.proname, p.proconfig FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = $1 AND p.proname LIKE 'ledger_create%'",
            schema,
        )
    wanted = {"plan_cache_mode=force_generic_plan", "enable_seqscan=off"}
    generic = {r["proname"] for r in rows if wanted <= set(r["proconfig"] or [])}
    assert generic == {
        "ledger_create_transfers",
        "ledger_create_transfers_grouped",
        "ledger_create_checked_transfer_group",
    }


async def test_an_applied_migration_that_changed_is_refused(empty_database: str) -> None:
    await migrate_dsn(empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute(
            "UPDATE finbank_schema_migrations SET checksum = 'edited' WHERE version = $1",
            load_migrations()[0].version,
        )
        with pytest.raises(MigrationChecksumMismatch):
            await migrate(conn)
    finally:
        await conn.close()


def test_the_sql_files_are_shipped_inside_the_package() -> None:
    """They load through importlib.resources, which is what a wheel install offers."""
    migrations = load_migrations()
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    assert all(m.sql.strip() for m in migrations)
