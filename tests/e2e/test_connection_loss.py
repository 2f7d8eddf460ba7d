"""Lost database connections answer 503 with Retry-After, never 500, and apply nothing by halves.

The HTTP app runs on the local profile, served by uvicorn in the test's event
loop (requests really overlap, which Litestar's test client, one request at a
time, would not allow) (PostgreSQL ledger, accounts, users and
outbox; Redis for the login stores) in a schema of the test's own. Its pool
connects under an ``application_name`` of the test's own, so only its
backends are terminated: the server is shared with other tests.

To terminate backends *while requests are inside a transaction* rather than
between them, a statement trigger on ``ledger_transfers`` (in the test's
schema only) waits on an advisory lock the test holds: the test lets a wave
of transfers pile up on it, terminates every backend of the app, then lets
go. Each wave thus ends the connections of requests half-way through their
transaction, as ``pg_terminate_backend`` under load does.

Afterwards every request answered 503 is sent again with the same
Idempotency-Key until it gets a final answer, and the balances must be what
the successful transfers say: a transfer happened once or not at all.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from finbank_adapters.containers import build_container
from finbank_adapters.settings import Settings
from finbank_cli.devstack import free_port
from finbank_http import create_app
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

pytestmark = pytest.mark.services

WAVES = 4
TRANSFERS_PER_WAVE = 16
DEPOSIT = Decimal("100.00")
#: answers a transfer may get while its connections are being killed
FINAL = {201, 422}


@dataclass
class App:
    client: httpx.AsyncClient
    admin: asyncpg.Connection
    application_name: str
    lock_key: int
    headers: dict[str, str]
    accounts: tuple[str, str]
    #: most ledger transfer calls the app has in flight (group commit queues the others
    #: in the process and sends them together once one ends); 0: no cap
    ledger_in_flight: int = 0

    def reaching_the_gate(self, requests: int) -> int:
        return min(requests, self.ledger_in_flight) if self.ledger_in_flight else requests


@pytest.fixture(params=["group-commit", "no-group-commit"])
async def app(request: pytest.FixtureRequest) -> AsyncIterator[App]:
    """The local profile's app; with the ledger's group commit (the default) or without."""
    require_postgres()
    grouped = request.param == "group-commit"
    application_name = f"finbank-conn-loss-{secrets.token_hex(4)}"
    async with (
        isolated_schema() as (pool, schema),
        open_test_redis() as (_redis, redis_prefix),
    ):
        settings = Settings.from_env(
            {
                "FINBANK_PROFILE": "local",
                "FINBANK_PIX_BACKEND": "memory",
                "FINBANK_POSTGRES_DSN": (
                    f"{POSTGRES_DSN}?search_path={schema}&application_name={application_name}"
                ),
                "FINBANK_POSTGRES_POOL_MAX": "20",
                "FINBANK_REDIS_KEY_PREFIX": redis_prefix,
                "FINBANK_JWT_SECRET": secrets.token_hex(32),
                "FINBANK_SANDBOX": "true",
                **({} if grouped else {"FINBANK_POSTGRES_LEDGER_GROUP_MAX_IN_FLIGHT": "0"}),
            }
        )
        assert (settings.postgres.ledger_group_max_in_flight > 0) == grouped
        admin = await asyncpg.connect(POSTGRES_DSN, server_settings={"search_path": schema})
        try:
            async with serving(create_app(build_container(settings))) as client:
                headers = await log_in(client)
                accounts = (
                    await open_account(client, headers),
                    await open_account(client, headers),
                )
                await deposit(client, headers, accounts[0], DEPOSIT)
                await deposit(client, headers, accounts[1], DEPOSIT)
                lock_key = secrets.randbelow(2**31)
                await gate_ledger_inserts(admin, lock_key)
                yield App(
                    client,
                    admin,
                    application_name,
                    lock_key,
                    headers,
                    accounts,
                    settings.postgres.ledger_group_max_in_flight,
                )
        finally:
            await admin.close()
        del pool


@asynccontextmanager
async def serving(asgi_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(asgi_app, host="127.0.0.1", port=port, lifespan="on", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not server.started:  # readiness polling of the server
            assert not task.done(), "uvicorn exited"
            assert loop.time() < deadline, "uvicorn did not start"
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=60,
            limits=httpx.Limits(max_connections=100),
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await task


async def log_in(client: httpx.AsyncClient) -> dict[str, str]:
    body = {"username": f"ana-{secrets.token_hex(4)}", "password": f"pw-{secrets.token_hex(8)}"}
    response = await client.post("/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    response = await client.post("/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['tokens']['access_token']}"}


async def open_account(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.post("/v1/accounts", json={"holder_name": "Ana"}, headers=headers)
    assert response.status_code == 201, response.text
    account_id: str = response.json()["id"]
    return account_id


async def deposit(
    client: httpx.AsyncClient, headers: dict[str, str], account_id: str, amount: Decimal
) -> None:
    response = await client.post(
        "/v1/sandbox/deposits",
        json={"account_id": account_id, "amount": str(amount)},
        headers=headers,
    )
    assert response.status_code == 201, response.text


async def balance(app: App, account_id: str) -> Decimal:
    response = await app.client.get(f"/v1/accounts/{account_id}", headers=app.headers)
    assert response.status_code == 200, response.text
    return Decimal(response.json()["balance"]["posted"])


async def balance_after_503s(app: App, account_id: str) -> Decimal:
    """:func:`balance`, retrying (a few times) what a lost connection answers: 503."""
    for _ in range(5):
        response = await app.client.get(f"/v1/accounts/{account_id}", headers=app.headers)
        if response.status_code != 503:
            break
        assert response.headers.get("Retry-After") == "1"
        await asyncio.sleep(0.05)
    assert response.status_code == 200, response.text
    return Decimal(response.json()["balance"]["posted"])


async def gate_ledger_inserts(admin: asyncpg.Connection, lock_key: int) -> None:
    """Every insert into ``ledger_transfers`` first waits for the test's advisory lock."""
    await admin.execute(
        f"""
        CREATE FUNCTION wait_for_gate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_lock_shared({lock_key});
            PERFORM pg_advisory_unlock_shared({lock_key});
            RETURN NULL;
        END $$;
        CREATE TRIGGER wait_for_gate BEFORE INSERT ON ledger_transfers
            FOR EACH STATEMENT EXECUTE FUNCTION wait_for_gate();
        """
    )


async def waiting_at_gate(app: App) -> int:
    """The app's backends waiting on a lock: on the gate, or on a row held by one that is."""
    count: int = await app.admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = $1 AND wait_event_type = 'Lock'",
        app.application_name,
    )
    return count


async def terminate_backends(app: App) -> int:
    killed: int = await app.admin.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = $1 AND pid <> pg_backend_pid()",
        app.application_name,
    )
    return killed


@dataclass(frozen=True)
class Attempt:
    key: str
    source: str
    target: str
    response: httpx.Response


async def transfer(app: App, key: str, source: str, target: str) -> Attempt:
    response = await app.client.post(
        "/v1/transfers",
        json={"from_account_id": source, "to_account_id": target, "amount": "1.00"},
        headers={**app.headers, "Idempotency-Key": key},
    )
    return Attempt(key, source, target, response)


async def wave(app: App, number: int) -> list[Attempt]:
    """Transfers both ways, stopped at the gate, their connections terminated, then let go.

    With group commit, the calls beyond the cap wait in the app instead of at the gate;
    once those at the gate lose their connections, they go (as one call) to the gate
    and through it when it opens.
    """
    a, b = app.accounts
    reaching = app.reaching_the_gate(TRANSFERS_PER_WAVE)
    await app.admin.execute("SELECT pg_advisory_lock($1)", app.lock_key)
    tasks = [
        asyncio.create_task(transfer(app, f"w{number}-{i}", *((a, b) if i % 2 else (b, a))))
        for i in range(TRANSFERS_PER_WAVE)
    ]
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        # Readiness polling of the server: until every request is at the gate or answered.
        while await waiting_at_gate(app) + sum(t.done() for t in tasks) < reaching:
            assert loop.time() < deadline, "the transfers never reached the gate"
            await asyncio.sleep(0.01)
        assert await terminate_backends(app) > 0
    finally:
        await app.admin.execute("SELECT pg_advisory_unlock($1)", app.lock_key)
    return list(await asyncio.gather(*tasks))


async def settle(app: App, attempt: Attempt) -> Attempt:
    """Send a 503'd transfer again, same key and body, until it gets a final answer."""
    for _ in range(20):
        if attempt.response.status_code != 503:
            return attempt
        attempt = await transfer(app, attempt.key, attempt.source, attempt.target)
    return attempt


async def test_terminated_backends_give_503_with_retry_after_and_nothing_half_applied(
    app: App,
) -> None:
    attempts = [attempt for number in range(WAVES) for attempt in await wave(app, number)]

    statuses = sorted({a.response.status_code for a in attempts})
    assert set(statuses) <= FINAL | {503}, [
        (a.response.status_code, a.response.text) for a in attempts if a.response.status_code == 500
    ]
    unavailable = [a for a in attempts if a.response.status_code == 503]
    assert unavailable, "no request lost its connection: the test did not test anything"
    for attempt in unavailable:
        assert attempt.response.headers.get("Retry-After") == "1"
        assert attempt.response.headers["content-type"].startswith("application/problem+json")
        assert attempt.response.json()["status"] == 503

    await app.admin.execute("DROP TRIGGER wait_for_gate ON ledger_transfers")
    final = [await settle(app, attempt) for attempt in attempts]
    assert {a.response.status_code for a in final} <= FINAL
    a, b = app.accounts
    moved = {
        a: sum(
            1 if f.target == a else -1
            for f in final
            if f.response.status_code == 201 and a in (f.source, f.target)
        ),
        b: sum(
            1 if f.target == b else -1
            for f in final
            if f.response.status_code == 201 and b in (f.source, f.target)
        ),
    }
    assert await balance(app, a) == DEPOSIT + moved[a]
    assert await balance(app, b) == DEPOSIT + moved[b]
    assert await balance(app, a) + await balance(app, b) == 2 * DEPOSIT
    # A replay after the outage is answered like the first success, and moves nothing.
    for attempt in final:
        if attempt.response.status_code == 201:
            again = await transfer(app, attempt.key, attempt.source, attempt.target)
            assert again.response.status_code == 201
            assert again.response.json() == attempt.response.json()
    assert await balance(app, a) + await balance(app, b) == 2 * DEPOSIT


async def test_backends_terminated_at_random_under_load_never_give_500(app: App) -> None:
    """Backends killed back to back while transfers and reads run: whatever the driver was
    doing when it noticed (mid-query, mid-commit, mid-protocol), the answer is 503."""
    await app.admin.execute("DROP TRIGGER wait_for_gate ON ledger_transfers")
    a, b = app.accounts
    stop = asyncio.Event()

    async def kill_until_stopped() -> int:
        rounds = 0
        while not stop.is_set():  # each round trip to the server paces the next one
            await terminate_backends(app)
            rounds += 1
        return rounds

    async def load(round_number: int) -> list[httpx.Response]:
        transfers = [
            transfer(app, f"r{round_number}-{i}", *((a, b) if i % 2 else (b, a)))
            for i in range(TRANSFERS_PER_WAVE)
        ]
        reads = [app.client.get(f"/v1/accounts/{a}", headers=app.headers) for _ in range(8)]
        done = await asyncio.gather(asyncio.gather(*transfers), asyncio.gather(*reads))
        return [attempt.response for attempt in done[0]] + list(done[1])

    killer = asyncio.create_task(kill_until_stopped())
    try:
        responses = [r for number in range(6) for r in await load(number)]
    finally:
        stop.set()
        assert await killer > 0
    unexpected = [
        (r.status_code, r.text) for r in responses if r.status_code not in {200, 503, *FINAL}
    ]
    assert unexpected == []
    assert any(r.status_code == 503 for r in responses)
    for response in responses:
        if response.status_code == 503:
            assert response.headers.get("Retry-After") == "1"
    # pg_terminate_backend does not wait for the backend to exit: a pooled connection the
    # last round killed can still look open here, and a read on it answers 503 with
    # Retry-After, as during the load. A client retries then; so do the final reads.
    assert await balance_after_503s(app, a) + await balance_after_503s(app, b) == 2 * DEPOSIT
