"""Concurrent PIX requests over HTTP, on the memory profile and on the local profile.

Many callers at once on the same charge, the same key, the same account's
key allowance and the same limit period; each test checks the final state:
one payer per charge and the receiver credited once, one holder per key, an
account never past its key limit, a limit period never passed, money
conserved, and no reservation left behind by a refused request.

The local profile is the real thing minus Kafka: PostgreSQL (ledger,
accounts, users, outbox; a schema of the test's own), Redis (a key prefix of
its own) and the PIX stores on DynamoDB (moto serving one request at a time,
as DynamoDB serializes the writes of an item; a table of its own), behind two
app replicas that share them. On-us payments settle in the request, so no
worker is needed; the outbox just fills up. The requests are concurrent
tasks on one event loop (``httpx.ASGITransport``: Litestar's test clients run
one request at a time), which interleave at every I/O call, as requests do
on servers.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest
from dependency_injector import providers

from finbank_adapters.aws.dynamo_schema import create_tables
from finbank_adapters.aws_wiring import open_dynamodb_client
from finbank_adapters.containers import build_container
from finbank_adapters.memory import FakeClock
from finbank_adapters.settings import JwtOptions, Settings
from finbank_http import create_app
from tests.integration.dynamo_support import serial_moto_endpoint
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

__all__ = ["serial_moto_endpoint"]  # fixture

PAYERS = 8
CALLERS = 16
REPLICAS = 2
#: 09:00 in São Paulo: the daytime figures apply
DAYTIME = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

Client = httpx.AsyncClient


#: the ``profile`` of the local profile with its PIX stores on PostgreSQL (no AWS endpoint)
LOCAL_POSTGRES = "postgres"


def local_settings(schema: str, redis_prefix: str, endpoint: str, table: str) -> Settings:
    """The local profile; ``endpoint`` is moto's (PIX on DynamoDB) or ``LOCAL_POSTGRES``."""
    if endpoint == LOCAL_POSTGRES:
        return Settings.from_env(
            {
                "FINBANK_PROFILE": "local",
                "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
                "FINBANK_REDIS_KEY_PREFIX": redis_prefix,
                "FINBANK_PIX_BACKEND": "postgres",
                "FINBANK_JWT_SECRET": secrets.token_hex(32),
                "FINBANK_SANDBOX": "true",
                "FINBANK_POSTGRES_POOL_MAX": str(CALLERS),  # per replica
            }
        )
    return Settings.from_env(
        {
            "FINBANK_PROFILE": "local",
            "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
            "FINBANK_REDIS_KEY_PREFIX": redis_prefix,
            "FINBANK_AWS_ENDPOINT_URL": endpoint,
            "FINBANK_AWS_REGION": "sa-east-1",
            "FINBANK_PIX_BACKEND": "dynamodb",
            "FINBANK_PIX_TABLE_NAME": table,
            "FINBANK_JWT_SECRET": secrets.token_hex(32),
            "FINBANK_SANDBOX": "true",
            "FINBANK_POSTGRES_POOL_MAX": str(CALLERS),  # per replica
        }
    )


@dataclass
class Bank:
    """App replicas sharing their stores; request ``i`` goes to replica ``i % n``."""

    replicas: list[Client]

    def at(self, i: int) -> Client:
        return self.replicas[i % len(self.replicas)]

    @property
    def client(self) -> Client:
        return self.replicas[0]


@pytest.fixture(
    params=[
        "memory",
        pytest.param("local", marks=pytest.mark.services),
        pytest.param("local-postgres", marks=pytest.mark.services),
    ]
)
def profile(request: pytest.FixtureRequest) -> str | None:
    """``None`` for the memory profile, else the local profile's PIX store: moto's endpoint
    (DynamoDB) or ``LOCAL_POSTGRES``."""
    if request.param == "memory":
        return None
    require_postgres()
    if request.param == "local-postgres":
        return LOCAL_POSTGRES
    # moto serving one request at a time: DynamoDB serializes conditional writes per item,
    # moto's threaded server does not (see tests/integration/dynamo_support.py)
    endpoint: str = request.getfixturevalue("serial_moto_endpoint")
    return endpoint


@asynccontextmanager
async def bank(
    aws_endpoint: str | None,
    clock: FakeClock | None = None,
    *,
    unnamed_device_is_new: bool = False,
) -> AsyncIterator[Bank]:
    """One app (memory profile) or two replicas of the local profile sharing every store.

    With ``clock``, every replica runs on it instead of the system clock;
    ``unnamed_device_is_new`` is ``FINBANK_PIX_UNNAMED_DEVICE_IS_NEW``.
    """

    def with_pix(settings: Settings) -> Settings:
        pix = msgspec.structs.replace(settings.pix, unnamed_device_is_new=unnamed_device_is_new)
        return msgspec.structs.replace(settings, pix=pix)

    async with AsyncExitStack() as stack:
        if aws_endpoint is None:
            settings = with_pix(Settings(jwt=JwtOptions(secret=secrets.token_hex(32))))
            yield Bank([await replica(stack, settings, clock)])
            return
        table = f"pix-{uuid.uuid4().hex[:12]}"
        _pool, schema = await stack.enter_async_context(isolated_schema())
        _redis, prefix = await stack.enter_async_context(open_test_redis())
        settings = with_pix(local_settings(schema, prefix, aws_endpoint, table))
        if aws_endpoint != LOCAL_POSTGRES:
            assert settings.backends.pix == "dynamodb"
            async with open_dynamodb_client(settings) as dynamodb:
                await create_tables(dynamodb, table)
        yield Bank([await replica(stack, settings, clock) for _ in range(REPLICAS)])


async def replica(stack: AsyncExitStack, settings: Settings, clock: FakeClock | None) -> Client:
    """An app of its own whose requests run on this event loop, truly side by side."""
    container = build_container(settings)
    if clock is not None:
        container.infra.clock.override(providers.Object(clock))
    app = create_app(container)
    await stack.enter_async_context(app.lifespan())
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar's own ASGI types
    client = httpx.AsyncClient(transport=transport, base_url="http://finbank.test")
    return await stack.enter_async_context(client)


async def log_in(client: Client, username: str) -> dict[str, str]:
    body = {"username": username, "password": f"pw-{secrets.token_hex(8)}"}
    response = await client.post("/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    response = await client.post("/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['tokens']['access_token']}"}


async def customer(
    client: Client, name: str, deposit: str | None = None
) -> tuple[dict[str, str], str]:
    """A new user with one account (funded with ``deposit``): its headers and account id."""
    [first] = await customers(client, name, 1, deposit)
    return first


async def customers(
    client: Client, name: str, accounts: int, deposit: str | None = None
) -> list[tuple[dict[str, str], str]]:
    """A new user with ``accounts`` accounts: (headers, account id) for each.

    One user for many accounts keeps the test fast (a login hashes a password).
    """
    headers = await log_in(client, f"{name}-{secrets.token_hex(3)}")
    opened = []
    for i in range(accounts):
        response = await client.post(
            "/v1/accounts", json={"holder_name": f"{name} {i}"}, headers=headers
        )
        assert response.status_code == 201, response.text
        account_id: str = response.json()["id"]
        if deposit is not None:
            response = await client.post(
                "/v1/sandbox/deposits",
                json={"account_id": account_id, "amount": deposit},
                headers=headers,
            )
            assert response.status_code == 201, response.text
        opened.append((headers, account_id))
    return opened


async def balances(client: Client, headers: dict[str, str], account_id: str) -> dict[str, Decimal]:
    response = await client.get(f"/v1/accounts/{account_id}", headers=headers)
    assert response.status_code == 200, response.text
    return {name: Decimal(value) for name, value in response.json()["balance"].items()}


async def register_key(
    client: Client, headers: dict[str, str], account_id: str, key_type: str, key: str | None
) -> Any:
    body: dict[str, Any] = {"account_id": account_id, "key_type": key_type}
    if key is not None:
        body["key"] = key
    return await client.post("/v1/pix/keys", json=body, headers=headers)


async def pay(client: Client, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return await client.post(
        "/v1/pix/payments",
        json=body,
        headers={**headers, "Idempotency-Key": f"idem-{uuid.uuid4()}"},
    )


def codes(responses: list[Any]) -> list[int]:
    return sorted(r.status_code for r in responses)


async def test_a_charge_is_paid_by_exactly_one_of_many_concurrent_payers(
    profile: str | None,
) -> None:
    async with bank(profile) as b:
        client = b.client
        shop_headers, shop = await customer(client, "Loja")
        key = (await register_key(client, shop_headers, shop, "EVP", None)).json()["key"]
        created = await client.post(
            "/v1/pix/charges",
            json={"account_id": shop, "key": key, "amount": "10.00"},
            headers=shop_headers,
        )
        assert created.status_code == 201, created.text
        charge = created.json()
        payers = [  # different payers: users, and accounts of a user
            payer
            for i in range(2)
            for payer in await customers(client, f"Payer{i}", PAYERS // 2, "100.00")
        ]

        responses = await asyncio.gather(
            *(
                pay(b.at(i), headers, {"account_id": account, "br_code": charge["brcode"]})
                for i, (headers, account) in enumerate(payers)
            )
        )

        assert codes(responses) == [201] + [422] * (PAYERS - 1), [r.text for r in responses]
        [winner] = [r.json() for r in responses if r.status_code == 201]
        for refused in (r for r in responses if r.status_code != 201):
            assert refused.json()["code"] == "pix_charge_not_payable"
        assert (winner["status"], winner["amount"]) == ("SETTLED", "10.00")
        after = (await client.get(f"/v1/pix/charges/{charge['txid']}", headers=shop_headers)).json()
        assert (after["status"], after["end_to_end_id"]) == ("CONCLUIDA", winner["end_to_end_id"])
        assert (await balances(client, shop_headers, shop))["posted"] == Decimal("10.00")
        paid = Decimal(0)
        for headers, account in payers:  # nothing left reserved by a refused payer
            balance = await balances(client, headers, account)
            assert balance["available"] == balance["posted"]
            paid += Decimal("100.00") - balance["posted"]
        assert paid == Decimal("10.00")
        late_headers, late_account = payers[-1]  # and afterwards, as before: refused
        late = await pay(
            client, late_headers, {"account_id": late_account, "br_code": charge["brcode"]}
        )
        assert late.status_code == 422
        assert late.json()["code"] == "pix_charge_not_payable"


async def test_one_of_many_concurrent_registrations_of_a_key_wins(profile: str | None) -> None:
    async with bank(profile) as b:
        owners = [
            owner for i in range(2) for owner in await customers(b.client, f"Dono{i}", CALLERS // 2)
        ]
        key = f"shared-{secrets.token_hex(4)}@example.com"

        responses = await asyncio.gather(
            *(
                register_key(b.at(i), headers, account, "EMAIL", key)
                for i, (headers, account) in enumerate(owners)
            )
        )

        assert codes(responses) == [201] + [409] * (CALLERS - 1), [r.text for r in responses]
        assert all(
            r.json()["code"] == "pix_key_already_registered"
            for r in responses
            if r.status_code == 409
        )
        holders: list[str] = []
        for headers, account in owners:
            listed = await b.client.get(
                "/v1/pix/keys", params={"account_id": account}, headers=headers
            )
            keys = listed.json()
            holders.extend(account for k in keys if k["key"] == key)
        [winner] = [r.json() for r in responses if r.status_code == 201]
        assert holders == [winner["account_id"]]


async def test_concurrent_registrations_never_pass_the_accounts_key_limit(
    profile: str | None,
) -> None:
    async with bank(profile) as b:
        headers, account = await customer(b.client, "Cheia")
        limit = 5  # FINBANK_PIX_MAX_KEYS_INDIVIDUAL's default

        responses = await asyncio.gather(
            *(register_key(b.at(i), headers, account, "EVP", None) for i in range(CALLERS))
        )

        assert codes(responses) == [201] * limit + [422] * (CALLERS - limit), [
            r.text for r in responses
        ]
        assert all(
            r.json()["code"] == "pix_key_limit_reached" for r in responses if r.status_code == 422
        )
        keys = (await b.client.get("/v1/pix/keys", headers=headers)).json()
        assert sorted(k["key"] for k in keys) == sorted(
            r.json()["key"] for r in responses if r.status_code == 201
        )


async def test_concurrent_payments_from_a_new_device_never_pass_its_daily_limit(
    profile: str | None,
) -> None:
    """R$ 1,000.00 a day for a device new to PIX: 5 payments of R$ 200.00 pass, not 16."""
    async with bank(profile, FakeClock(DAYTIME)) as b:
        shop_headers, shop = await customer(b.client, "Loja")
        key = (await register_key(b.client, shop_headers, shop, "EVP", None)).json()["key"]
        headers, account = await customer(b.client, "Ana", "5000.00")
        device = {**headers, "X-Device-Id": f"phone-{secrets.token_hex(4)}"}
        body = {"account_id": account, "key": key, "amount": "200.00"}

        responses = await asyncio.gather(*(pay(b.at(i), device, body) for i in range(CALLERS)))

        assert codes(responses) == [201] * 5 + [422] * (CALLERS - 5), [r.text for r in responses]
        for refused in (r for r in responses if r.status_code == 422):
            assert refused.json()["code"] == "pix_limit_exceeded"
        balance = await balances(b.client, headers, account)
        assert balance["posted"] == balance["available"] == Decimal("4000.00")
        assert (await balances(b.client, shop_headers, shop))["posted"] == Decimal("1000.00")


async def test_concurrent_payments_naming_no_device_are_held_as_from_a_new_one(
    profile: str | None,
) -> None:
    """Without ``X-Device-Id`` (a stolen token used outside the app, say), with
    ``FINBANK_PIX_UNNAMED_DEVICE_IS_NEW`` on (the aws profile's default), a payment is
    held to the new-device figures: R$ 200.00 each, 5 a day."""
    async with bank(profile, FakeClock(DAYTIME), unnamed_device_is_new=True) as b:
        shop_headers, shop = await customer(b.client, "Loja")
        key = (await register_key(b.client, shop_headers, shop, "EVP", None)).json()["key"]
        headers, account = await customer(b.client, "Ana", "5000.00")
        body = {"account_id": account, "key": key, "amount": "200.00"}

        over = await pay(b.client, headers, {**body, "amount": "200.01"})
        responses = await asyncio.gather(*(pay(b.at(i), headers, body) for i in range(CALLERS)))

        assert over.status_code == 422, over.text
        assert over.json()["limit"] == "new_device_per_transaction", over.text
        assert codes(responses) == [201] * 5 + [422] * (CALLERS - 5), [r.text for r in responses]
        for refused in (r for r in responses if r.status_code == 422):
            assert refused.json()["limit"] == "new_device_per_day", refused.text
        balance = await balances(b.client, headers, account)
        assert balance["posted"] == balance["available"] == Decimal("4000.00")
        assert (await balances(b.client, shop_headers, shop))["posted"] == Decimal("1000.00")


async def test_concurrent_payments_never_pass_the_daytime_period_limit(
    profile: str | None,
) -> None:
    """R$ 20,000.00 a day for an individual: 4 payments of R$ 5,000.00 pass, not 8."""
    async with bank(profile, FakeClock(DAYTIME)) as b:
        shop_headers, shop = await customer(b.client, "Loja")
        key = (await register_key(b.client, shop_headers, shop, "EVP", None)).json()["key"]
        headers, account = await customer(b.client, "Bia", "50000.00")
        body = {"account_id": account, "key": key, "amount": "5000.00"}

        responses = await asyncio.gather(*(pay(b.at(i), headers, body) for i in range(PAYERS)))

        assert codes(responses) == [201] * 4 + [422] * (PAYERS - 4), [r.text for r in responses]
        for refused in (r for r in responses if r.status_code == 422):
            assert refused.json()["code"] == "pix_limit_exceeded"
        balance = await balances(b.client, headers, account)
        spent = Decimal("20000.00")
        assert balance["posted"] == balance["available"] == Decimal("50000.00") - spent
        assert (await balances(b.client, shop_headers, shop))["posted"] == spent


async def refund(client: Client, headers: dict[str, str], e2e: str, amount: str) -> Any:
    return await client.post(
        f"/v1/pix/payments/{e2e}/refunds",
        json={"amount": amount},
        headers={**headers, "Idempotency-Key": f"devolucao-{uuid.uuid4()}"},
    )


async def test_concurrent_refunds_of_one_payment_are_answered_as_in_turn(
    profile: str | None,
) -> None:
    """Different refunds of one payment at once, on both replicas: those that fit all pass,
    then of those that together pass the original, what fits passes and the rest are
    refused for exceeding it (never a version conflict, never insufficient_funds)."""
    async with bank(profile) as b:
        shop_headers, shop = await customer(b.client, "Loja")
        key = (await register_key(b.client, shop_headers, shop, "EVP", None)).json()["key"]
        headers, account = await customer(b.client, "Bia", "100.00")
        paid = await pay(b.client, headers, {"account_id": account, "key": key, "amount": "100.00"})
        assert paid.status_code == 201, paid.text
        e2e = paid.json()["end_to_end_id"]

        small = await asyncio.gather(
            *(refund(b.at(i), shop_headers, e2e, "5.00") for i in range(CALLERS // 2))
        )
        assert codes(small) == [201] * (CALLERS // 2), [r.text for r in small]
        # R$ 60,00 left of the payment, and in the shop's account: 3 of these fit
        large = await asyncio.gather(
            *(refund(b.at(i), shop_headers, e2e, "20.00") for i in range(CALLERS // 2))
        )

        assert codes(large) == [201] * 3 + [422] * (CALLERS // 2 - 3), [r.text for r in large]
        for refused in (r for r in large if r.status_code == 422):
            assert refused.json()["code"] == "pix_refund_exceeds_original"
        payment = await b.client.get(f"/v1/pix/payments/{e2e}", headers=shop_headers)
        refunds = payment.json()["refunds"]
        assert sorted(r["return_id"] for r in refunds) == sorted(
            r.json()["return_id"] for r in (*small, *large) if r.status_code == 201
        )
        assert sum(Decimal(r["amount"]) for r in refunds) == Decimal("100.00")
        # every refund reserved or paid back; nothing held for a refused one
        assert (await balances(b.client, shop_headers, shop))["available"] == Decimal("0.00")
