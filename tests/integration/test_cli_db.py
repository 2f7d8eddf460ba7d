"""``finbank db migrate`` against a fresh database, twice."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.postgres_support import POSTGRES_DSN, require_postgres


def _with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def test_db_migrate_twice_on_a_fresh_database() -> None:
    require_postgres()
    name = f"finbank_cli_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(POSTGRES_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {**os.environ, "FINBANK_POSTGRES_DSN": _with_database(POSTGRES_DSN, name)}
        command = [sys.executable, "-m", "finbank_cli", "db", "migrate"]
        runs = [
            await asyncio.to_thread(
                subprocess.run, command, capture_output=True, text=True, env=env, timeout=120
            )
            for _ in range(2)
        ]
        assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
        assert "applied 0 migration(s)" not in runs[0].stdout
        assert "applied 0 migration(s): none (up to date)" in runs[1].stdout
        conn = await asyncpg.connect(_with_database(POSTGRES_DSN, name))
        try:
            tables = {
                r["tablename"]
                for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname='public'"
                )
            }
        finally:
            await conn.close()
        assert {"ledger_accounts", "outbox"} <= tables
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
