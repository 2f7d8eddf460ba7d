"""The app served by a real uvicorn on loopback, in a thread, for clients that need a URL
(schemathesis, a generated client, a browser)."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import asyncpg
import uvicorn

from finbank_adapters.containers import build_container
from finbank_adapters.postgres.migrations import migrate, quote_ident
from finbank_adapters.settings import (
    AuthOptions,
    Backends,
    DatabaseBackend,
    JwtOptions,
    PostgresOptions,
    Settings,
)
from finbank_http import create_app
from finbank_http.app import uvicorn_options
from tests.postgres_support import POSTGRES_DSN, require_postgres


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def memory_settings() -> Settings:
    """The memory profile, with a rate limit no generated test run reaches."""
    return Settings(
        jwt=JwtOptions(secret=secrets.token_hex(32)),
        auth=AuthOptions(rate_limit_per_minute=100_000, lockout_max_failures=100_000),
    )


@contextmanager
def migrated_schema() -> Iterator[str]:
    """A PostgreSQL schema of the caller's own, migrated, dropped at the end."""
    require_postgres()
    schema = f"t_{secrets.token_hex(6)}"

    async def run(create: bool) -> None:
        connection = await asyncpg.connect(POSTGRES_DSN)
        try:
            if create:
                await migrate(connection, schema)
            else:
                await connection.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        finally:
            await connection.close()

    asyncio.run(run(create=True))
    try:
        yield schema
    finally:
        asyncio.run(run(create=False))


def postgres_settings(schema: str) -> Settings:
    """:func:`memory_settings` with the ledger, accounts, users and outbox on ``schema``
    (the PostgreSQL side of the local profile, where a driver sees every value)."""
    postgres = DatabaseBackend.POSTGRES
    return Settings(
        jwt=JwtOptions(secret=secrets.token_hex(32)),
        auth=AuthOptions(rate_limit_per_minute=100_000, lockout_max_failures=100_000),
        backends=Backends(ledger=postgres, accounts=postgres, users=postgres, events=postgres),
        postgres=PostgresOptions(dsn=f"{POSTGRES_DSN}?{urlencode({'search_path': schema})}"),
    )


@contextmanager
def live_server(settings: Settings | None = None, *, protocol: type | None = None) -> Iterator[str]:
    """Serve a new app (memory profile unless ``settings``) and yield its base URL.

    ``protocol`` replaces the HTTP protocol class of ``finbank serve``'s options.
    """
    app = create_app(build_container(settings or memory_settings()))
    port = free_port()
    options = uvicorn_options(app.state.container.infra.settings().http)
    if protocol is not None:
        options["http"] = protocol
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level="warning",
        **options,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
