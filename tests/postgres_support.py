"""PostgreSQL plumbing shared by the contract and integration suites.

Each test works in a schema of its own (``t_<random>``), migrated from
scratch and dropped afterwards; the pool puts it on ``search_path``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

import asyncpg

from finbank_adapters.postgres.migrations import migrate, quote_ident
from finbank_adapters.settings import Backends, DatabaseBackend, PostgresOptions, Settings
from finbank_adapters.settings.backends import PixBackend
from tests.conftest import require_service

POSTGRES_DSN = os.environ.get(
    "FINBANK_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


def require_postgres(dsn: str = POSTGRES_DSN) -> str:
    """Skip (or fail under FINBANK_REQUIRE_SERVICES=1) when the server is unreachable."""
    parts = urlsplit(dsn)
    require_service("PostgreSQL", parts.hostname or "127.0.0.1", parts.port or 5432)
    return dsn


def all_postgres_settings(schema: str, dsn: str = POSTGRES_DSN, **fields: Any) -> Settings:
    """Settings whose every store (ledger, accounts, users, events, PIX) is PostgreSQL at
    ``dsn``, in ``schema`` (:func:`isolated_schema`'s); ``fields`` are more of
    ``Settings``'s own (``jwt=...``)."""
    return Settings(
        backends=Backends(
            ledger=DatabaseBackend.POSTGRES,
            accounts=DatabaseBackend.POSTGRES,
            users=DatabaseBackend.POSTGRES,
            events=DatabaseBackend.POSTGRES,
            pix=PixBackend.POSTGRES,
        ),
        postgres=PostgresOptions(dsn=f"{dsn}?{urlencode({'search_path': schema})}"),
        **fields,
    )


@asynccontextmanager
async def isolated_schema(
    dsn: str = POSTGRES_DSN, *, min_size: int = 1, max_size: int = 4, **pool_kwargs: Any
) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    """A migrated schema of its own and a pool whose ``search_path`` is that schema."""
    schema = f"t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(dsn)
    try:
        await migrate(admin, schema)
        server_settings = {"search_path": schema, **pool_kwargs.pop("server_settings", {})}
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            server_settings=server_settings,
            **pool_kwargs,
        )
        try:
            yield pool, schema
        finally:
            await pool.close()
    finally:
        try:
            await admin.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        finally:
            await admin.close()


#: the ledger's and the outbox's tables, each with an order that makes its rows comparable
_LEDGER_TABLES = {
    "outbox": "id",
    "ledger_transfers": "seq",
    "ledger_entries": "sequence",
    "ledger_accounts": "id",
    "ledger_account_balances": "seq, account_id",
}


async def ledger_rows(pool: asyncpg.Pool) -> dict[str, list[dict[str, Any]]]:
    """Every column of every row the ledger and the outbox hold, in a stable order (to compare
    what two ways of writing the same transfers stored)."""
    return {
        table: [dict(row) for row in await pool.fetch(f"SELECT * FROM {table} ORDER BY {order}")]  # noqa: S608
        for table, order in _LEDGER_TABLES.items()
    }


class GatedPool:
    """The pool, logging each ``fetch`` and ``fetchval`` as ``("sent", n)`` and
    ``("returned", n)`` (n counts both from 1); a call whose number was :meth:`gate`\\ d
    waits, after the server answered, until the test lets it return.

    For tests of the order in which statements go out and callers resume (the group
    commit's and the coalesced reads' slot); anything else passes through.
    """

    def __init__(self, pool: asyncpg.Pool, log: list[tuple[str, object]]) -> None:
        self._pool = pool
        self.log = log
        self.calls = 0
        self._answered: dict[int, asyncio.Event] = {}
        self._let_go: dict[int, asyncio.Event] = {}

    def gate(self, number: int) -> tuple[asyncio.Event, asyncio.Event]:
        """(answered, let go) of call ``number``: set when the server answered it; set it
        to let the call return."""
        self._answered[number], self._let_go[number] = asyncio.Event(), asyncio.Event()
        return self._answered[number], self._let_go[number]

    async def _logged(self, call: Any) -> Any:
        self.calls += 1
        number = self.calls
        self.log.append(("sent", number))
        value = await call
        if number in self._let_go:
            self._answered[number].set()
            await asyncio.wait_for(self._let_go[number].wait(), GATE_SECONDS)
        self.log.append(("returned", number))
        return value

    async def fetch(self, query: str, *args: Any) -> Any:
        return await self._logged(self._pool.fetch(query, *args))

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._logged(self._pool.fetchval(query, *args))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


#: the longest a gated call waits to be let go before its test fails instead of hanging
GATE_SECONDS = 60.0


async def wait_until(condition: Any, what: str) -> None:
    """Until ``condition()`` is true (polled every 2 ms); fails after a second, saying
    ``what`` it waited for. For a state that follows from the calls the test made
    (a queue formed behind a held call), not for anything a server does in its time."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"timed out waiting until {what}")
