"""MED and precautionary blocks over HTTP, on the memory profile with a fake clock.

A customer contests a PIX they paid; an analyst (``fraud_analyst`` role)
accepts the report, which blocks the money, and the return reaches the
customer; a precautionary block is released at exactly 72 hours; deadlines
refuse with problem+json naming the deadline; the back office is closed to
customers (403) and to anonymous callers (401).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from dependency_injector import providers
from litestar import Litestar
from litestar.testing import AsyncTestClient, TestClient

from finbank_adapters.containers import BankContainer, build_container, resolve
from finbank_adapters.memory import FakeClock
from finbank_adapters.settings import JwtOptions, Settings
from finbank_core.auth.users import UserStore
from finbank_http import create_app
from finbank_http.routes.pix_med import ANALYST_ROLE
from tests.e2e.conftest import User, deposit, open_account
from tests.e2e.med_payer_side_http import PayerSide, member, the_peer_answers_and_returns_once

START = datetime(2026, 4, 6, 14, 0, tzinfo=UTC)
BACK_OFFICE = "/v1/backoffice/pix"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def med_container(clock: FakeClock) -> BankContainer:
    container = build_container(Settings(jwt=JwtOptions(secret=secrets.token_hex(32))))
    container.infra.clock.override(providers.Object(clock))
    return container


@pytest.fixture
def api(med_container: BankContainer) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(med_container)) as test_client:
        yield test_client


def analyst(client: TestClient[Litestar], container: BankContainer, name: str) -> User:
    """A user with the fraud analyst role (given in the user store, as an admin would)."""
    created = client.post("/v1/auth/signup", json={"username": name, "password": PASSWORD})
    assert created.status_code == 201, created.text

    async def grant() -> None:
        store: UserStore = await resolve(container.auth.user_store())
        record = await store.get_by_username(name)
        assert record is not None
        await store.update(msgspec.structs.replace(record, roles=(ANALYST_ROLE,)))

    client.blocking_portal.call(grant)
    return log_in(client, name)


PASSWORD = f"pw-{secrets.token_hex(8)}"


def customer(client: TestClient[Litestar], name: str) -> User:
    created = client.post("/v1/auth/signup", json={"username": name, "password": PASSWORD})
    assert created.status_code == 201, created.text
    return log_in(client, name)


def log_in(client: TestClient[Litestar], name: str) -> User:
    """A fresh session (tokens issued days ago on the fake clock have expired)."""
    logged = client.post("/v1/auth/login", json={"username": name, "password": PASSWORD})
    assert logged.status_code == 200, logged.text
    token = logged.json()["tokens"]["access_token"]
    return User(name, {"Authorization": f"Bearer {token}"})


def available(client: TestClient[Litestar], user: User, account_id: str) -> str:
    got: str = client.get(f"/v1/accounts/{account_id}", headers=user.headers).json()["balance"][
        "available"
    ]
    return got


def pay_on_us(
    client: TestClient[Litestar], payer: User, source: str, payee: User, target: str, amount: str
) -> str:
    key = client.post(
        "/v1/pix/keys", json={"account_id": target, "key_type": "EVP"}, headers=payee.headers
    ).json()["key"]
    paid = client.post(
        "/v1/pix/payments",
        json={"account_id": source, "key": key, "amount": amount},
        headers={**payer.headers, "Idempotency-Key": secrets.token_hex(8)},
    )
    assert paid.status_code == 201, paid.text
    e2e: str = paid.json()["end_to_end_id"]
    return e2e


def test_a_contested_pix_is_blocked_by_an_analyst_and_returned_to_the_customer(
    api: TestClient[Litestar], med_container: BankContainer
) -> None:
    victim, mule = customer(api, "victim"), customer(api, "mule")
    ana = analyst(api, med_container, "ana")
    source, target = (
        open_account(api, victim, "Vitoria")["id"],
        open_account(api, mule, "Mula")["id"],
    )
    deposit(api, victim, source, "300.00")
    e2e = pay_on_us(api, victim, source, mule, target, "300.00")

    by_payee = api.post(
        f"/v1/pix/payments/{e2e}/contestations", json={"situation": "SCAM"}, headers=mule.headers
    )
    assert by_payee.status_code == 422
    assert by_payee.json()["code"] == "med_not_allowed"
    contested = api.post(
        f"/v1/pix/payments/{e2e}/contestations", json={"situation": "SCAM"}, headers=victim.headers
    )
    assert contested.status_code == 201, contested.text
    assert (contested.json()["status"], contested.json()["side"]) == ("OPEN", "ON_US")
    again = api.post(
        f"/v1/pix/payments/{e2e}/contestations", json={"situation": "SCAM"}, headers=victim.headers
    )
    assert again.json()["report_id"] == contested.json()["report_id"]

    analysis = f"{BACK_OFFICE}/payments/{e2e}/med/analysis"
    refused = api.post(analysis, json={"decision": "AGREED"}, headers=victim.headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert api.post(analysis, json={"decision": "AGREED"}).status_code == 401
    accepted = api.post(analysis, json={"decision": "AGREED"}, headers=ana.headers)
    assert accepted.status_code == 200, accepted.text
    case = accepted.json()["case"]
    assert case["status"] == "AGREED"
    assert [(b["account_id"], b["amount"]) for b in case["blocks"]] == [(target, "300.00")]
    assert available(api, mule, target) == "0.00"

    over = api.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/refund-request",
        json={"requested_by": "ana", "amount": "300.01"},
        headers=ana.headers,
    )
    assert over.status_code == 422
    assert over.json()["code"] == "med_not_allowed"
    returned = api.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/refund-request",
        json={"requested_by": "ana", "amount": "120.00"},
        headers=ana.headers,
    )
    assert returned.status_code == 200, returned.text
    assert returned.json()["case"]["status"] == "CLOSED"
    assert returned.json()["case"]["returned_amount"] == "120.00"
    assert available(api, victim, source) == "120.00"
    assert available(api, mule, target) == "180.00"

    seen: dict[str, Any] = api.get(f"/v1/pix/payments/{e2e}", headers=victim.headers).json()
    assert seen["med"]["case"]["status"] == "CLOSED"
    assert seen["med"]["case"]["blocks"] is None  # where the money was held is the bank's
    assert [(r["nature"], r["amount"], r["status"]) for r in seen["refunds"]] == [
        ("MED_FRAUDE", "120.00", "DEVOLVIDO")
    ]
    assert (
        api.get(f"/v1/pix/payments/{e2e}/med", headers=victim.headers).json()["case"][
            "returned_amount"
        ]
        == "120.00"
    )


def test_a_precautionary_block_ends_at_exactly_72_hours(
    api: TestClient[Litestar], med_container: BankContainer, clock: FakeClock
) -> None:
    mule = customer(api, "mule")
    ana = analyst(api, med_container, "ana")
    account = open_account(api, mule, "Mula")["id"]
    incoming = api.post(
        "/v1/sandbox/pix/incoming",
        json={"account_id": account, "amount": "50.00"},
        headers=mule.headers,
    )
    assert incoming.status_code in (200, 201), incoming.text
    e2e = incoming.json()["end_to_end_id"]
    clock.advance(minutes=10)
    placed = api.post(f"{BACK_OFFICE}/payments/{e2e}/precautionary-block", headers=ana.headers)
    assert placed.status_code == 201, placed.text
    assert placed.json()["status"] == "ACTIVE"
    expires = datetime.fromisoformat(placed.json()["expires_at"])
    assert expires == START + timedelta(hours=72)
    assert available(api, mule, account) == "0.00"
    seen = api.get(f"/v1/pix/payments/{e2e}", headers=mule.headers).json()
    assert seen["med"]["block"]["status"] == "ACTIVE"

    clock.set(expires)
    mule = log_in(api, "mule")
    seen = api.get(f"/v1/pix/payments/{e2e}", headers=mule.headers).json()
    assert seen["med"]["block"]["status"] == "RELEASED"
    assert seen["med"]["block"]["resolution"] == "expired"
    assert available(api, mule, account) == "50.00"


def test_a_report_analysed_after_7_days_is_refused_naming_the_deadline(
    api: TestClient[Litestar], med_container: BankContainer, clock: FakeClock
) -> None:
    mule = customer(api, "mule")
    account = open_account(api, mule, "Mula")["id"]
    e2e = api.post(
        "/v1/sandbox/pix/incoming",
        json={"account_id": account, "amount": "20.00"},
        headers=mule.headers,
    ).json()["end_to_end_id"]
    ana = analyst(api, med_container, "ana")
    reported = api.post(
        f"{BACK_OFFICE}/infraction-reports",
        json={
            "end_to_end_id": e2e,
            "report_id": "dict-1",
            "situation": "ACCOUNT_TAKEOVER",
            "reporter_ispb": e2e[1:9],
        },
        headers=ana.headers,
    )
    assert reported.status_code == 201, reported.text
    assert reported.json()["case"]["side"] == "RECEIVER"
    clock.set(START + timedelta(days=7, seconds=1))
    ana = log_in(api, "ana")
    late = api.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/analysis",
        json={"decision": "AGREED"},
        headers=ana.headers,
    )
    assert late.status_code == 422
    assert late.json()["code"] == "med_deadline_passed"
    assert late.json()["field"] == "decision"
    assert "7 days" in late.json()["detail"]
    assert available(api, log_in(api, "mule"), account) == "20.00"


async def test_as_the_payers_bank_the_peer_bank_answers_and_returns_once_over_http(
    med_container: BankContainer, clock: FakeClock
) -> None:
    async with AsyncTestClient(create_app(med_container)) as client:

        async def inline(_e2e: str) -> None:  # the memory profile settles in the request
            return None

        side = PayerSide(
            client=client,
            container=med_container,
            victim=await member(client, med_container, "victim"),
            analyst=await member(client, med_container, "ana", ANALYST_ROLE),
            settle=inline,
        )
        await the_peer_answers_and_returns_once(side, clock.now())


def test_openapi_names_the_payer_side_med_routes_for_the_back_office(
    api: TestClient[Litestar],
) -> None:
    paths = api.get("/schema/openapi.json").json()["paths"]
    for path, operation_id in (
        ("/v1/backoffice/pix/payments/{e2e_id}/med/peer-analysis", "receiveMedAnalysis"),
        ("/v1/backoffice/pix/payments/{e2e_id}/med/incoming-returns", "receiveMedReturn"),
    ):
        operation = paths[path]["post"]
        assert operation["operationId"] == operation_id
        assert operation["tags"] == ["pix-med-backoffice"]
        assert operation["security"] == [{"BearerToken": []}]
        assert {"403", "404", "409", "422"} <= set(operation["responses"])
