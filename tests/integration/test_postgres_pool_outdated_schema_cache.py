"""A cached statement whose composite result type was altered on the server: the pool's
short path (``pool._run_cached``) does what asyncpg's ``Connection._do_execute`` does,
reloads the connection's schema state and raises ``OutdatedSchemaCacheError``; the next
call prepares the statement again and answers with the new type. The same as asyncpg's
own path on a connection of its own, for ``fetch``, ``fetchrow`` and ``fetchval``."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from asyncpg.exceptions import OutdatedSchemaCacheError

from finbank_adapters.postgres import pool as pool_module
from finbank_adapters.postgres.migrations import quote_ident
from finbank_adapters.postgres.pool import Pool, create_pool
from tests.postgres_support import require_postgres

pytestmark = pytest.mark.services


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    """A schema of its own with a composite type and a table of it."""
    name = f"t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(require_postgres())
    try:
        await admin.execute(f"CREATE SCHEMA {quote_ident(name)}")
        yield name
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {quote_ident(name)} CASCADE")
        await admin.close()


async def make_shape(conn: Any) -> None:
    await conn.execute("CREATE TYPE shape AS (x int, y int)")
    await conn.execute("CREATE TABLE shapes (id int, s shape)")
    await conn.execute("INSERT INTO shapes VALUES (1, (2, 3))")


QUERY = "SELECT s FROM shapes WHERE id = $1"


def runs_of(pool: Any, method: str) -> Callable[[], Awaitable[Any]]:
    def run() -> Awaitable[Any]:
        call: Any = getattr(pool, method)
        return call(QUERY, 1)  # type: ignore[no-any-return]

    return run


def values(answer: Any) -> Any:
    """The composite's fields, whichever method answered."""
    if isinstance(answer, list):
        answer = answer[0]
    if isinstance(answer, asyncpg.Record) and len(answer) == 1 and "s" in answer:
        answer = answer["s"]
    return tuple(answer)


@pytest.mark.parametrize("method", ["fetch", "fetchrow", "fetchval"])
async def test_an_altered_composite_reloads_the_schema_and_raises_as_asyncpg_does(
    schema: str, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    short_runs: list[str] = []
    real = pool_module._run_cached

    async def counted(con: Any, stmt: Any, query: str, args: tuple[Any, ...], limit: int) -> Any:
        short_runs.append(query)
        return await real(con, stmt, query, args, limit)

    monkeypatch.setattr(pool_module, "_run_cached", counted)
    dsn = require_postgres()
    settings = {"search_path": schema}
    pool = await create_pool(dsn, min_size=1, max_size=1, server_settings=settings)
    reference = await asyncpg.connect(dsn, server_settings=settings)
    try:
        assert isinstance(pool, Pool)
        await make_shape(pool)
        ours, theirs = runs_of(pool, method), runs_of(reference, method)
        assert values(await ours()) == values(await theirs()) == (2, 3)
        assert values(await ours()) == (2, 3)  # cached: the short path
        assert short_runs == [QUERY]

        await reference.execute("ALTER TYPE shape DROP ATTRIBUTE x")
        with pytest.raises(OutdatedSchemaCacheError) as on_ours:
            await ours()
        with pytest.raises(OutdatedSchemaCacheError) as on_theirs:
            await theirs()
        assert str(on_ours.value) == str(on_theirs.value)
        assert short_runs == [QUERY, QUERY]

        # the schema state was reloaded: prepared again, the new type's one field
        assert values(await ours()) == values(await theirs()) == (3,)
        assert values(await ours()) == (3,)
        assert len(short_runs) == 3  # cached again
        async with pool.acquire() as conn:
            raw: Any = conn
            assert raw._con._stmt_exclusive_section._acquired == 0
            assert not conn.is_in_transaction()
    finally:
        await reference.close()
        await pool.close()
