"""Versioned plain-SQL migrations and the small runner that applies them.

The files beside this module (``NNNN_name.sql``) are applied in version
order. The runner is hand-rolled on asyncpg rather than yoyo-migrations,
which needs a second, synchronous driver (psycopg) next to asyncpg. It keeps
what such a tool is for:

* a versions table (``finbank_schema_migrations``) in the target schema;
* a session advisory lock per schema, so concurrent runners (several app
  instances starting at once) apply each file once;
* one transaction per file, together with its row in the versions table;
* a sha256 checksum per file: if a file that was already applied has
  changed, nothing runs and :class:`MigrationChecksumMismatch` is raised
  (write a new migration instead of editing an old one).

Applying twice is a no-op. ``schema`` targets another schema than the
connection's current one (created if missing); objects are created there,
and the pool that uses them must put it first on its ``search_path``.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from finbank_adapters.postgres.errors import translated

if TYPE_CHECKING:
    from finbank_adapters.settings import Settings

VERSIONS_TABLE = "finbank_schema_migrations"
_LOCK_NAMESPACE = 1179534669  # first key of the advisory lock; the second is the schema's hash


class MigrationError(RuntimeError):
    """The migrations cannot be applied as they are."""


class MigrationChecksumMismatch(MigrationError):
    """An applied migration file was changed afterwards."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """The packaged migration files, in version order."""
    found: list[Migration] = []
    for entry in importlib.resources.files(__name__).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        version, _, rest = entry.name.partition("_")
        if not version.isdigit() or not rest:
            raise MigrationError(f"migration file names look like 0001_name.sql: {entry.name}")
        found.append(Migration(version, rest.removesuffix(".sql"), entry.read_text("utf-8")))
    found.sort(key=lambda m: int(m.version))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {versions}")
    return found


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def migrate(
    dsn_or_conn: str | asyncpg.Connection | PoolConnectionProxy, schema: str | None = None
) -> list[str]:
    """Apply the pending migrations; returns the versions applied now (empty if none)."""
    with translated():
        if isinstance(dsn_or_conn, str):
            conn = await asyncpg.connect(dsn_or_conn)
            try:
                return await _migrate(conn, schema)
            finally:
                await conn.close()
        return await _migrate(dsn_or_conn, schema)


async def migrate_dsn(dsn: str, schema: str | None = None) -> list[str]:
    """``finbank db migrate``: apply the pending migrations to the database at ``dsn``."""
    return await migrate(dsn, schema)


async def run_migrations(settings: Settings) -> list[str]:
    """Apply the pending migrations to ``settings.postgres.dsn``."""
    return await migrate_dsn(settings.postgres.dsn)


async def _migrate(conn: asyncpg.Connection | PoolConnectionProxy, schema: str | None) -> list[str]:
    migrations = load_migrations()
    target: str = schema or await conn.fetchval("SELECT coalesce(current_schema(), 'public')")
    quoted = quote_ident(target)
    await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", _LOCK_NAMESPACE, target)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {quoted}.{VERSIONS_TABLE} ("
            " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await conn.fetch(
            f"SELECT version, checksum FROM {quoted}.{VERSIONS_TABLE}"  # noqa: S608 - quoted identifier
        )
        applied = {row["version"]: row["checksum"] for row in rows}
        for migration in migrations:
            recorded = applied.get(migration.version)
            if recorded is not None and recorded != migration.checksum:
                raise MigrationChecksumMismatch(
                    f"migration {migration.version}_{migration.name} changed after it was applied"
                )
        done: list[str] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {quoted}")
                await conn.execute(migration.sql)
                await conn.execute(
                    f"INSERT INTO {quoted}.{VERSIONS_TABLE} (version, name, checksum)"  # noqa: S608
                    " VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LOCK_NAMESPACE, target)
