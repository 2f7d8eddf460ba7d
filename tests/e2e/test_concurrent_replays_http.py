"""Concurrent replays over HTTP: the same request sent many times at once is applied once.

``N`` identical requests (same ``Idempotency-Key``, same body, the whole
balance) to ``POST /v1/transfers``, ``POST /v1/pix/payments`` (by key) and
``POST /v1/pix/payments/{e2e}/refunds``, all at once. Every answer is the
first request's answer (``201``, the same body) or, for the PIX flows while
the first request is still in flight, ``409`` with code
``idempotency_request_in_progress`` and a ``Retry-After`` header; never a
false ``422 insufficient_funds``. A ``409`` is retried after the burst and
then gets the first answer too. The final state is checked: money conserved,
one transfer, one payment, one refund.

On the memory profile and on the local one: PostgreSQL ledger, DynamoDB on
(serial) moto for the PIX records and the in-flight claims, Redis for login. On the
local profile the requests go alternately to two apps with containers of
their own (two replicas sharing the stores), so nothing rests on an
in-process lock. No worker runs there: the on-us payment settles in the
request, the refund stays ``EM_PROCESSAMENTO`` with its amount reserved.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import httpx
import pytest

from finbank_adapters.aws.dynamo_schema import create_tables
from finbank_adapters.aws_wiring import open_dynamodb_client
from finbank_adapters.containers import BankContainer, build_container
from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_adapters.settings import JwtOptions, Settings
from finbank_core.shared.idempotency import claim_id_for
from finbank_http import create_app
from tests.integration.dynamo_support import serial_moto_endpoint
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

__all__ = ["serial_moto_endpoint"]  # fixture

#: identical requests sent at once
N = 20
IN_PROGRESS = "idempotency_request_in_progress"


@dataclass
class Bank:
    """One or more app replicas sharing their stores; request ``i`` goes to replica ``i % n``."""

    profile: str
    replicas: list[httpx.AsyncClient]
    #: the local profile's PostgreSQL schema (the ledger), for holding a lock in a test
    pool: asyncpg.Pool | None = None
    #: most transfer calls a replica's ledger has in flight at once (group commit
    #: queues the rest in the process and sends them together); 0: no cap
    ledger_in_flight: int = 0

    def reaching_the_database(self, requests: int) -> int:
        """How many of ``requests`` spread over the replicas reach the ledger's locks at once."""
        if not self.ledger_in_flight:
            return requests
        return min(requests, self.ledger_in_flight * len(self.replicas))

    def at(self, i: int) -> httpx.AsyncClient:
        return self.replicas[i % len(self.replicas)]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.replicas[0]


async def replica(
    stack: AsyncExitStack, settings: Settings, container: BankContainer | None = None
) -> httpx.AsyncClient:
    """An app of its own, its requests run on this event loop, truly side by side.

    (Litestar's test clients run the app behind a blocking portal: one request
    at a time, which would hide every race.)
    """
    app = create_app(container or build_container(settings))
    await stack.enter_async_context(app.lifespan())
    transport = httpx.ASGITransport(app=cast(Any, app))
    client = httpx.AsyncClient(transport=transport, base_url="http://finbank.test")
    return await stack.enter_async_context(client)


def local_settings(
    schema: str, redis_prefix: str, endpoint: str | None, table: str, *, group_commit: bool = True
) -> Settings:
    """The local profile, its PIX stores on moto at ``endpoint`` or, without one, PostgreSQL.

    ``group_commit=False`` turns the ledger's group commit off (it is on by default).
    """
    pix: dict[str, str] = (
        {"FINBANK_PIX_BACKEND": "postgres"}
        if endpoint is None
        else {
            "FINBANK_AWS_ENDPOINT_URL": endpoint,
            "FINBANK_AWS_REGION": "sa-east-1",
            "FINBANK_PIX_BACKEND": "dynamodb",
            "FINBANK_PIX_TABLE_NAME": table,
        }
    )
    return Settings.from_env(
        {
            "FINBANK_PROFILE": "local",
            "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
            "FINBANK_REDIS_KEY_PREFIX": redis_prefix,
            **pix,
            "FINBANK_JWT_SECRET": secrets.token_hex(32),
            "FINBANK_SANDBOX": "true",
            "FINBANK_POSTGRES_POOL_MAX": str(N),  # per replica: every request gets a connection
            **({} if group_commit else {"FINBANK_POSTGRES_LEDGER_GROUP_MAX_IN_FLIGHT": "0"}),
        }
    )


@dataclass
class Profile:
    name: str
    aws_endpoint: str | None = None
    group_commit: bool = True


@pytest.fixture(
    params=[
        "memory",
        pytest.param("local", marks=pytest.mark.services),
        pytest.param("local-postgres", marks=pytest.mark.services),
    ]
)
def profile(request: pytest.FixtureRequest) -> Profile:
    if request.param == "memory":
        return Profile("memory")
    require_postgres()
    if request.param == "local-postgres":  # the local profile's default: PIX on PostgreSQL
        return Profile("local")
    # moto serving one request at a time: DynamoDB serializes conditional writes per item,
    # moto's threaded server does not (see tests/integration/dynamo_support.py)
    return Profile("local", request.getfixturevalue("serial_moto_endpoint"))


@asynccontextmanager
async def open_bank(profile: Profile) -> AsyncIterator[Bank]:
    """The apps, entered and left in the test's own task (their lifespans need that)."""
    if profile.name == "memory":
        async with AsyncExitStack() as stack:
            settings = Settings(jwt=JwtOptions(secret=secrets.token_hex(32)))
            yield Bank("memory", [await replica(stack, settings)])
        return
    table = f"pix-{uuid.uuid4().hex[:12]}"
    async with (
        isolated_schema() as (pool, schema),
        open_test_redis() as (_redis, redis_prefix),
        AsyncExitStack() as stack,
    ):
        settings = local_settings(
            schema, redis_prefix, profile.aws_endpoint, table, group_commit=profile.group_commit
        )
        assert settings.pix.inline_settlement is False
        if profile.aws_endpoint is not None:
            assert settings.backends.pix == "dynamodb"
            async with open_dynamodb_client(settings) as dynamodb:
                await create_tables(dynamodb, table)
        else:
            assert settings.backends.pix == "postgres"
        replicas = [await replica(stack, settings), await replica(stack, settings)]
        yield Bank("local", replicas, pool, settings.postgres.ledger_group_max_in_flight)


# -- helpers ------------------------------------------------------------------------


async def log_in(bank: Bank, name: str) -> dict[str, str]:
    body = {"username": f"{name}-{secrets.token_hex(4)}", "password": secrets.token_hex(8)}
    response = await bank.client.post("/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    response = await bank.client.post("/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['tokens']['access_token']}"}


async def open_account(bank: Bank, headers: dict[str, str], deposit: str | None = None) -> str:
    response = await bank.client.post("/v1/accounts", json={"holder_name": "Ana"}, headers=headers)
    assert response.status_code == 201, response.text
    account_id: str = response.json()["id"]
    if deposit is not None:
        response = await bank.client.post(
            "/v1/sandbox/deposits",
            json={"account_id": account_id, "amount": deposit},
            headers=headers,
        )
        assert response.status_code == 201, response.text
    return account_id


async def balance(bank: Bank, headers: dict[str, str], account_id: str) -> dict[str, str]:
    response = await bank.client.get(f"/v1/accounts/{account_id}", headers=headers)
    assert response.status_code == 200, response.text
    figures: dict[str, str] = response.json()["balance"]
    return figures


async def statement_lines(bank: Bank, headers: dict[str, str], account_id: str) -> list[Any]:
    response = await bank.client.get(f"/v1/accounts/{account_id}/statement", headers=headers)
    assert response.status_code == 200, response.text
    lines: list[Any] = response.json()["lines"]
    return lines


async def burst(
    bank: Bank, path: str, body: dict[str, Any], headers: dict[str, str]
) -> list[httpx.Response]:
    """``N`` identical requests at once, spread over the replicas."""
    return list(
        await asyncio.gather(*(bank.at(i).post(path, json=body, headers=headers) for i in range(N)))
    )


async def answers_of(
    bank: Bank, path: str, body: dict[str, Any], headers: dict[str, str]
) -> list[httpx.Response]:
    """The burst's answers, each 409 (checked) retried once the burst is over."""
    responses = await burst(bank, path, body, headers)
    final = []
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == IN_PROGRESS, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert int(response.headers["Retry-After"]) >= 1
            response = await bank.client.post(path, json=body, headers=headers)
        final.append(response)
    return final


def assert_answered_as_the_first(responses: list[httpx.Response]) -> dict[str, Any]:
    """Every answer 201 with one body; exactly one was not a replay. Returns the body."""
    assert [r.status_code for r in responses] == [201] * len(responses), [
        r.text for r in responses if r.status_code != 201
    ]
    bodies = [r.json() for r in responses]
    assert all(b == bodies[0] for b in bodies), bodies
    firsts = [r for r in responses if r.headers.get("Idempotent-Replayed") != "true"]
    assert len(firsts) == 1
    first: dict[str, Any] = bodies[0]
    return first


# -- transfers ----------------------------------------------------------------------


async def test_concurrent_identical_transfers_move_the_money_once(profile: Profile) -> None:
    async with open_bank(profile) as bank:
        await transfers_move_the_money_once(bank)


@pytest.mark.services
async def test_without_group_commit_every_replay_reaches_the_lock_and_moves_the_money_once() -> (
    None
):
    """All ``N`` requests wait at the account lock at once, none queued in the process."""
    require_postgres()
    async with open_bank(Profile("local", group_commit=False)) as bank:
        assert bank.ledger_in_flight == 0
        assert bank.reaching_the_database(N) == N
        await transfers_move_the_money_once(bank)


async def transfers_move_the_money_once(bank: Bank) -> None:
    ana = await log_in(bank, "ana")
    bia = await log_in(bank, "bia")
    source = await open_account(bank, ana, deposit="100.00")
    target = await open_account(bank, bia)
    body = {"from_account_id": source, "to_account_id": target, "amount": "100.00"}
    headers = {**ana, "Idempotency-Key": f"rent-{uuid.uuid4()}"}

    if bank.pool is None:
        responses = await burst(bank, "/v1/transfers", body, headers)
    else:
        responses = await burst_behind_a_lock(bank, bank.pool, source, body, headers)

    # A transfer is one ledger call: never in flight for a replay, so never a 409.
    receipt = assert_answered_as_the_first(responses)
    assert receipt["amount"] == "100.00"
    again = await bank.at(1).post("/v1/transfers", json=body, headers=headers)
    assert (again.status_code, again.json()) == (201, receipt)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await balance(bank, ana, source))["posted"] == "0.00"
    assert (await balance(bank, bia, target))["posted"] == "100.00"
    debits = [line for line in await statement_lines(bank, ana, source) if line["amount"][0] == "-"]
    assert [d["transfer_id"] for d in debits] == [receipt["transfer_id"]]


#: backends transitively waiting for the given backend's locks
BLOCKED_BY = """
WITH RECURSIVE blocked(pid) AS (
    SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))
    UNION
    SELECT a.pid FROM pg_stat_activity a JOIN blocked b ON b.pid = ANY(pg_blocking_pids(a.pid))
)
SELECT count(*) FROM blocked
"""


async def burst_behind_a_lock(
    bank: Bank, pool: asyncpg.Pool, account_id: str, body: dict[str, Any], headers: dict[str, str]
) -> list[httpx.Response]:
    """The burst, every request held at the ledger's account lock, then let go at once.

    So every request that reaches the database has checked that the transfer id
    is new before any of them moved money: the race of the issue, every time,
    not by luck. With group commit (the default) a replica keeps at most
    ``ledger_group_max_in_flight`` ledger calls in flight; the others wait in it
    and go together as one call (one transaction: the first applies the
    transfer, the replays in it answer ``exists``) once the lock is let go.
    """
    expected = bank.reaching_the_database(N)
    async with pool.acquire() as holder, pool.acquire() as watcher, holder.transaction():
        await holder.execute(
            "SELECT 1 FROM ledger_accounts WHERE id = $1 FOR UPDATE", uuid.UUID(account_id)
        )
        pid = await holder.fetchval("SELECT pg_backend_pid()")
        requests = asyncio.gather(
            *(bank.at(i).post("/v1/transfers", json=body, headers=headers) for i in range(N))
        )
        # (watched from another connection: a transaction sees one snapshot of the stats)
        async with asyncio.timeout(30):
            while not requests.done():
                if await watcher.fetchval(BLOCKED_BY, pid) >= expected:
                    break
                await asyncio.sleep(0.01)  # polling a condition, not waiting for luck
    return list(await requests)


# -- PIX payments by key -------------------------------------------------------------


async def pix_key_of(bank: Bank, headers: dict[str, str], account_id: str) -> str:
    response = await bank.client.post(
        "/v1/pix/keys", json={"account_id": account_id, "key_type": "EVP"}, headers=headers
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


async def paid(bank: Bank) -> tuple[dict[str, str], str, dict[str, str], str, dict[str, Any]]:
    """Ana pays Bia R$ 100.00 by key (all she has) with ``N`` identical requests at once."""
    ana = await log_in(bank, "ana")
    bia = await log_in(bank, "bia")
    source = await open_account(bank, ana, deposit="100.00")
    target = await open_account(bank, bia)
    key = await pix_key_of(bank, bia, target)
    body = {"account_id": source, "key": key, "amount": "100.00", "description": "aluguel"}
    headers = {**ana, "Idempotency-Key": f"pix-{uuid.uuid4()}"}

    responses = await answers_of(bank, "/v1/pix/payments", body, headers)

    payment = assert_answered_as_the_first(responses)
    assert (payment["status"], payment["amount"]) == ("SETTLED", "100.00")  # on-us: in the call
    again = await bank.at(1).post("/v1/pix/payments", json=body, headers=headers)
    assert (again.status_code, again.json()) == (201, payment)
    return ana, source, bia, target, payment


async def test_concurrent_identical_pix_payments_pay_once(profile: Profile) -> None:
    async with open_bank(profile) as bank:
        await pix_payments_pay_once(bank)


async def pix_payments_pay_once(bank: Bank) -> None:
    ana, source, bia, target, payment = await paid(bank)

    assert await balance(bank, ana, source) == {
        "posted": "0.00",
        "available": "0.00",
        "pending_debits": "0.00",
        "pending_credits": "0.00",
    }
    assert (await balance(bank, bia, target))["posted"] == "100.00"
    debits = [line for line in await statement_lines(bank, ana, source) if line["amount"][0] == "-"]
    assert [d["amount"] for d in debits] == ["-100.00"]
    response = await bank.client.get(f"/v1/pix/payments/{payment['end_to_end_id']}", headers=ana)
    assert response.json()["status"] == "SETTLED"


# -- PIX refunds ---------------------------------------------------------------------


async def test_concurrent_identical_refunds_refund_once(profile: Profile) -> None:
    async with open_bank(profile) as bank:
        await refunds_refund_once(bank)


async def refunds_refund_once(bank: Bank) -> None:
    ana, source, bia, target, payment = await paid(bank)
    e2e = payment["end_to_end_id"]
    path = f"/v1/pix/payments/{e2e}/refunds"
    body = {"amount": "100.00", "description": "devolvido"}  # all Bia has
    headers = {**bia, "Idempotency-Key": f"refund-{uuid.uuid4()}"}

    responses = await answers_of(bank, path, body, headers)

    refund = assert_answered_as_the_first(responses)
    assert refund["end_to_end_id"] == e2e
    again = await bank.at(1).post(path, json=body, headers=headers)
    assert (again.status_code, again.json()) == (201, refund)
    stored = (await bank.client.get(f"/v1/pix/payments/{e2e}", headers=bia)).json()
    assert [r["return_id"] for r in stored["refunds"]] == [refund["return_id"]]
    if bank.profile == "memory":  # settled in the request: Ana has her money back
        assert refund["status"] == "DEVOLVIDO"
        assert (await balance(bank, bia, target))["posted"] == "0.00"
        assert (await balance(bank, ana, source))["posted"] == "100.00"
    else:  # the worker would settle it: reserved once meanwhile
        assert refund["status"] == "EM_PROCESSAMENTO"
        assert await balance(bank, bia, target) == {
            "posted": "100.00",
            "available": "0.00",
            "pending_debits": "100.00",
            "pending_credits": "0.00",
        }
        assert (await balance(bank, ana, source))["posted"] == "0.00"


# -- documentation ---------------------------------------------------------------------


async def test_the_409_is_documented_in_the_openapi_responses() -> None:
    async with open_bank(Profile("memory")) as bank:
        schema = (await bank.client.get("/schema/openapi.json")).json()
    for path in ("/v1/pix/payments", "/v1/pix/payments/{e2e_id}/refunds"):
        conflict = schema["paths"][path]["post"]["responses"]["409"]
        assert IN_PROGRESS in conflict["description"]
        assert "Retry-After" in conflict["description"]
        assert "application/problem+json" in conflict["content"]


async def test_a_request_in_flight_answers_409_with_retry_after() -> None:
    """A claim held by another request (here: one that crashed) is a 409 problem."""
    settings = Settings(jwt=JwtOptions(secret=secrets.token_hex(32)))
    container = build_container(settings)
    async with AsyncExitStack() as stack:
        bank = Bank("memory", [await replica(stack, settings, container)])
        ana = await log_in(bank, "ana")
        source = await open_account(bank, ana, deposit="10.00")
        body = {"account_id": source, "key": PEER_KEY_EMAIL, "amount": "1.00"}
        subject = jwt_subject(ana)
        now = datetime.now(UTC)
        claim = claim_id_for("pix-send", subject, "in-flight")
        claims = container.pix.request_claims()
        assert await claims.acquire(claim, "crashed", now=now, until=now + timedelta(minutes=5))

        response = await bank.client.post(
            "/v1/pix/payments", json=body, headers={**ana, "Idempotency-Key": "in-flight"}
        )

        assert response.status_code == 409
        assert response.headers["Retry-After"] == "1"
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["code"] == IN_PROGRESS
        assert problem["type"] == f"urn:finbank:problem:{IN_PROGRESS}"
        await claims.release(claim, "crashed")
        response = await bank.client.post(
            "/v1/pix/payments", json=body, headers={**ana, "Idempotency-Key": "in-flight"}
        )
        assert response.status_code == 201, response.text


def jwt_subject(headers: dict[str, str]) -> str:
    """The ``sub`` of the bearer token (the owner id the claim is keyed on)."""
    token = headers["Authorization"].removeprefix("Bearer ")
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    subject: str = claims["sub"]
    return subject
