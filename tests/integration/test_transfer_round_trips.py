"""PostgreSQL round trips of one HTTP transfer on the local profile: one.

``POST /v1/transfers`` checks both accounts and applies the transfer in one
call (``ledger_create_checked_transfer_group``, migration 0026) that answers
with its timestamp; the receipt is built from that, and the ledger is asked
for the stored transfer only when it answers ``exists`` (a replay) or refuses.
Every statement sent on any asyncpg connection of this process is counted
(each public query method of ``asyncpg.Connection``, which is one round trip
once its statement is
prepared: the requests are warmed up first, and the pool's own short path for a
statement already prepared on the connection, ``pool._run_cached``), with the
SQL, so a failure says what was sent.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

import asyncpg
import httpx
import pytest

from finbank_adapters.containers import build_container
from finbank_adapters.postgres import pool as postgres_pool
from finbank_adapters.settings import Settings
from finbank_http import create_app
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

pytestmark = pytest.mark.services

QUERY_METHODS = ("execute", "executemany", "fetch", "fetchval", "fetchrow", "fetchmany")


class StatementLog:
    """The statements sent while :attr:`recording` is on."""

    def __init__(self) -> None:
        self.recording = False
        self.statements: list[str] = []

    def take(self) -> list[str]:
        taken, self.statements = self.statements, []
        return taken


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> StatementLog:
    log = StatementLog()

    def counting(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        async def counted(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
            if log.recording:
                log.statements.append(" ".join(query.split()))
            return await method(self, query, *args, **kwargs)

        return counted

    for name in QUERY_METHODS:
        monkeypatch.setattr(asyncpg.Connection, name, counting(getattr(asyncpg.Connection, name)))
    run_cached = postgres_pool._run_cached

    async def counted_cached(con: Any, stmt: Any, query: str, *args: Any) -> Any:
        # the pool sends a statement already prepared straight to the protocol
        if log.recording:
            log.statements.append(" ".join(query.split()))
        return await run_cached(con, stmt, query, *args)

    monkeypatch.setattr(postgres_pool, "_run_cached", counted_cached)
    return log


@asynccontextmanager
async def local_api() -> AsyncIterator[httpx.AsyncClient]:
    """The app on the local profile, entered and left in the test's own task (its lifespan
    needs that)."""
    require_postgres()
    async with (
        isolated_schema() as (_, schema),
        open_test_redis() as (_redis, prefix),
        AsyncExitStack() as stack,
    ):
        settings = Settings.from_env(
            {
                "FINBANK_PROFILE": "local",
                "FINBANK_PIX_BACKEND": "postgres",
                "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
                "FINBANK_REDIS_KEY_PREFIX": prefix,
                "FINBANK_JWT_SECRET": secrets.token_hex(32),
                "FINBANK_SANDBOX": "true",
            }
        )
        app = create_app(build_container(settings))
        await stack.enter_async_context(app.lifespan())
        transport = httpx.ASGITransport(app=cast(Any, app))
        yield await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://finbank.test")
        )


async def two_funded_accounts(api: httpx.AsyncClient) -> tuple[dict[str, str], str, str]:
    body = {"username": f"rt-{secrets.token_hex(4)}", "password": secrets.token_hex(8)}
    assert (await api.post("/v1/auth/signup", json=body)).status_code == 201
    login = await api.post("/v1/auth/login", json=body)
    headers = {"Authorization": f"Bearer {login.json()['tokens']['access_token']}"}
    ids = []
    for name in ("Ana", "Bia"):
        opened = await api.post("/v1/accounts", json={"holder_name": name}, headers=headers)
        assert opened.status_code == 201, opened.text
        ids.append(opened.json()["id"])
    deposit = {"account_id": ids[0], "amount": "100.00"}
    assert (
        await api.post("/v1/sandbox/deposits", json=deposit, headers=headers)
    ).status_code == 201
    return headers, ids[0], ids[1]


async def transfer(
    api: httpx.AsyncClient, headers: dict[str, str], source: str, target: str, key: str
) -> httpx.Response:
    return await api.post(
        "/v1/transfers",
        json={"from_account_id": source, "to_account_id": target, "amount": "1.00"},
        headers={**headers, "Idempotency-Key": key},
    )


async def test_a_new_transfer_takes_one_round_trip_and_a_replay_two(
    statements: StatementLog,
) -> None:
    async with local_api() as api:
        await a_new_transfer_and_its_replay(api, statements)


async def a_new_transfer_and_its_replay(api: httpx.AsyncClient, statements: StatementLog) -> None:
    headers, source, target = await two_funded_accounts(api)
    for n in range(3):  # warm: prepared statements, pooled connections, the token cache
        assert (await transfer(api, headers, source, target, f"warm-{n}")).status_code == 201

    statements.recording = True
    first = await transfer(api, headers, source, target, "rent")
    sent_by_first = statements.take()
    replay = await transfer(api, headers, source, target, "rent")
    sent_by_replay = statements.take()
    statements.recording = False

    assert first.status_code == 201, first.text
    assert len(sent_by_first) == 1, sent_by_first
    assert "ledger_create_checked_transfer_group" in sent_by_first[0]
    # a replay: the ledger answers exists, and the first receipt is read back
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    assert len(sent_by_replay) == 2, sent_by_replay
    assert "ledger_lookup_transfers" in sent_by_replay[1]


async def test_a_refused_transfer_is_not_written_and_is_answered_after_one_look_up(
    statements: StatementLog,
) -> None:
    async with local_api() as api:
        await a_refused_transfer(api, statements)


async def a_refused_transfer(api: httpx.AsyncClient, statements: StatementLog) -> None:
    headers, source, target = await two_funded_accounts(api)
    assert (await transfer(api, headers, source, target, "warm")).status_code == 201

    statements.recording = True
    refused = await api.post(
        "/v1/transfers",
        json={"from_account_id": source, "to_account_id": target, "amount": "5000.00"},
        headers={**headers, "Idempotency-Key": "too-much"},
    )
    sent = statements.take()
    statements.recording = False

    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "insufficient_funds"
    # the refusal is checked against a replay that may have won the race (one look-up)
    assert len(sent) == 2, sent
    assert "ledger_create_checked_transfer_group" in sent[0]
    assert "ledger_lookup_transfers" in sent[1]
    balance = await api.get(f"/v1/accounts/{source}", headers=headers)
    assert balance.json()["balance"]["posted"] == "99.00"
