"""MED over HTTP on the local profile: PostgreSQL (ledger, accounts, outbox, and the PIX and
MED stores, or the PIX and MED stores in DynamoDB on moto), Redis, a fake clock.

A customer contests an on-us PIX, an analyst accepts it (the money is
blocked where it went), the refund returns it; the MED steps land in the
PostgreSQL outbox, once each; the analysis deadline refuses a late
decision. No relay or worker is needed: on-us payments and MED steps
complete in the request.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from dependency_injector import providers
from litestar.testing import AsyncTestClient

from finbank_adapters.containers import BankContainer, build_container, resolve
from finbank_adapters.memory import FakeClock
from finbank_adapters.settings import Settings
from finbank_core.auth.users import UserStore
from finbank_core.pix.med import events as med_events
from finbank_core.pix.use_cases import SettlePixPayment, SettlePixPaymentCommand
from finbank_http import create_app
from finbank_http.routes.pix_med import ANALYST_ROLE
from tests.e2e.med_payer_side_http import PayerSide, member, the_peer_answers_and_returns_once
from tests.integration.aws_fixtures import aws_endpoint
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

pytestmark = pytest.mark.services
__all__ = ["aws_endpoint"]  # fixture

START = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)
PASSWORD = f"pw-{secrets.token_hex(8)}"
BACK_OFFICE = "/v1/backoffice/pix"


class Local(msgspec.Struct, frozen=True):
    client: AsyncTestClient[Any]
    container: BankContainer
    pool: asyncpg.Pool
    clock: FakeClock


@pytest.fixture(params=["postgres", "dynamodb"])
async def local(request: pytest.FixtureRequest) -> AsyncIterator[Local]:
    require_postgres()
    env = {"FINBANK_PROFILE": "local", "FINBANK_PIX_BACKEND": request.param}
    async with isolated_schema() as (pool, schema), open_test_redis() as (_redis, prefix):
        env |= {
            "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
            "FINBANK_REDIS_KEY_PREFIX": prefix,
            "FINBANK_JWT_SECRET": secrets.token_hex(32),
            "FINBANK_SANDBOX": "true",
        }
        if request.param == "dynamodb":
            from finbank_adapters.aws.dynamo_schema import create_tables
            from tests.integration.dynamo_support import dynamodb_client, table_name

            endpoint: str = request.getfixturevalue("aws_endpoint")
            table = table_name()
            async with dynamodb_client(endpoint) as client:
                await create_tables(client, table)
            env |= {
                "FINBANK_AWS_ENDPOINT_URL": endpoint,
                "FINBANK_AWS_REGION": "sa-east-1",
                "FINBANK_PIX_TABLE_NAME": table,
            }
        container = build_container(Settings.from_env(env))
        clock = FakeClock(START)
        container.infra.clock.override(providers.Object(clock))
        async with AsyncTestClient(create_app(container)) as client:
            yield Local(client, container, pool, clock)


async def customer(local: Local, name: str, *, role: str | None = None) -> dict[str, str]:
    client = local.client
    created = await client.post("/v1/auth/signup", json={"username": name, "password": PASSWORD})
    assert created.status_code == 201, created.text
    if role is not None:

        async def grant() -> None:  # in the app's loop, where its pool lives
            store: UserStore = await resolve(local.container.auth.user_store())
            record = await store.get_by_username(name)
            assert record is not None
            await store.update(msgspec.structs.replace(record, roles=(role,)))

        local.client.blocking_portal.call(grant)
    return await log_in(local, name)


async def log_in(local: Local, name: str) -> dict[str, str]:
    logged = await local.client.post(
        "/v1/auth/login", json={"username": name, "password": PASSWORD}
    )
    assert logged.status_code == 200, logged.text
    return {"Authorization": f"Bearer {logged.json()['tokens']['access_token']}"}


async def account(local: Local, headers: dict[str, str], name: str) -> str:
    opened = await local.client.post("/v1/accounts", json={"holder_name": name}, headers=headers)
    assert opened.status_code == 201, opened.text
    account_id: str = opened.json()["id"]
    return account_id


async def available(local: Local, headers: dict[str, str], account_id: str) -> str:
    got = await local.client.get(f"/v1/accounts/{account_id}", headers=headers)
    value: str = got.json()["balance"]["available"]
    return value


async def pay(
    local: Local,
    payer: dict[str, str],
    source: str,
    payee: dict[str, str],
    target: str,
    amount: str,
) -> str:
    client = local.client
    key = await client.post(
        "/v1/pix/keys", json={"account_id": target, "key_type": "EVP"}, headers=payee
    )
    assert key.status_code == 201, key.text
    paid = await client.post(
        "/v1/pix/payments",
        json={"account_id": source, "key": key.json()["key"], "amount": amount},
        headers={**payer, "Idempotency-Key": secrets.token_hex(8)},
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["status"] == "SETTLED"
    e2e: str = paid.json()["end_to_end_id"]
    return e2e


async def test_contested_accepted_traced_and_returned_on_the_local_profile(local: Local) -> None:
    client = local.client
    victim, mule, other = (
        await customer(local, "victim"),
        await customer(local, "mule"),
        await customer(local, "other"),
    )
    analyst = await customer(local, "analyst", role=ANALYST_ROLE)
    source = await account(local, victim, "Vitoria")
    target = await account(local, mule, "Mula")
    onward = await account(local, other, "Outra")
    deposited = await client.post(
        "/v1/sandbox/deposits", json={"account_id": source, "amount": "500.00"}, headers=victim
    )
    assert deposited.status_code == 201, deposited.text
    e2e = await pay(local, victim, source, mule, target, "500.00")
    local.clock.advance(minutes=1)
    moved = await client.post(
        "/v1/transfers",
        json={"from_account_id": target, "to_account_id": onward, "amount": "350.00"},
        headers={**mule, "Idempotency-Key": "move-1"},
    )
    assert moved.status_code == 201, moved.text

    contested = await client.post(
        f"/v1/pix/payments/{e2e}/contestations", json={"situation": "SCAM"}, headers=victim
    )
    assert contested.status_code == 201, contested.text
    accepted = await client.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/analysis", json={"decision": "AGREED"}, headers=analyst
    )
    assert accepted.status_code == 200, accepted.text
    held = {b["account_id"]: b["amount"] for b in accepted.json()["case"]["blocks"]}
    assert held == {target: "150.00", onward: "350.00"}
    assert await available(local, mule, target) == "0.00"
    assert await available(local, other, onward) == "0.00"

    returned = await client.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/refund-request",
        json={"requested_by": "analyst"},
        headers=analyst,
    )
    assert returned.status_code == 200, returned.text
    assert returned.json()["case"]["status"] == "CLOSED"
    assert await available(local, victim, source) == "500.00"
    seen = (await client.get(f"/v1/pix/payments/{e2e}", headers=victim)).json()
    assert seen["med"]["case"]["returned_amount"] == "500.00"
    assert sorted(r["amount"] for r in seen["refunds"]) == ["150.00", "350.00"]

    rows = await local.pool.fetch(
        "SELECT type, count(*) AS n FROM outbox WHERE aggregate_id = $1 AND type LIKE 'pix.med.%'"
        " GROUP BY type",
        e2e,
    )
    assert {r["type"]: r["n"] for r in rows} == {
        med_events.REPORT_OPENED: 1,
        med_events.REPORT_ANALYSED: 1,
        med_events.FUNDS_BLOCKED: 1,
        med_events.REFUND_REQUESTED: 1,
        med_events.RETURN_COMPLETED: 2,
    }


async def test_a_late_analysis_is_refused_on_the_local_profile(local: Local) -> None:
    client = local.client
    victim, mule = await customer(local, "victim"), await customer(local, "mule")
    source, target = await account(local, victim, "Vitoria"), await account(local, mule, "Mula")
    await client.post(
        "/v1/sandbox/deposits", json={"account_id": source, "amount": "40.00"}, headers=victim
    )
    e2e = await pay(local, victim, source, mule, target, "40.00")
    contested = await client.post(
        f"/v1/pix/payments/{e2e}/contestations", json={"situation": "COERCION"}, headers=victim
    )
    assert contested.status_code == 201, contested.text
    await customer(local, "analyst", role=ANALYST_ROLE)
    local.clock.set(START + timedelta(days=7, seconds=1))
    analyst = await log_in(local, "analyst")
    late = await client.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/analysis", json={"decision": "AGREED"}, headers=analyst
    )
    assert late.status_code == 422
    assert late.json()["code"] == "med_deadline_passed"
    assert await available(local, await log_in(local, "mule"), target) == "40.00"


async def test_as_the_payers_bank_the_peer_bank_answers_and_returns_once_on_the_local_profile(
    local: Local,
) -> None:
    async def settle(e2e: str) -> None:  # what the settlement worker does, in the app's loop
        async def run() -> None:
            settle_payment: SettlePixPayment = await resolve(
                local.container.pix().settle_pix_payment()
            )
            await settle_payment(SettlePixPaymentCommand(end_to_end_id=e2e))

        local.client.blocking_portal.call(run)

    side = PayerSide(
        client=local.client,
        container=local.container,
        victim=await member(local.client, local.container, "victim"),
        analyst=await member(local.client, local.container, "analyst", ANALYST_ROLE),
        settle=settle,
    )
    await the_peer_answers_and_returns_once(side, local.clock.now())
    rows = await local.pool.fetch(
        "SELECT type, count(*) AS n FROM outbox WHERE type = $1 GROUP BY type",
        med_events.RETURN_RECEIVED,
    )
    assert [r["n"] for r in rows] == [2]  # one per rtrId, however often it was delivered
