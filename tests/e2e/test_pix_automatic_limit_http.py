"""The payer's daily Pix Automático limit over HTTP, on the memory profile and on PostgreSQL.

``GET``/``PUT /v1/pix/automatic/limit``: the payer sets a limit (no step-up
from none), lowers it at once; raising or removing it needs a step-up token
for ``pix_limit_raise`` (none, one for another purpose, or one already spent:
403 ``step_up_required`` and nothing changes); zero or less is refused naming
the field; someone else's account is 404. Then the scheduler's round: a debit
that would pass the limit fails ``automatic_limit_exceeded`` and takes
nothing; once the limit is removed (stepped up) the retry goes through.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from finbank.bank import configure
from finbank_adapters.containers import build_container
from finbank_adapters.memory import FakeClock
from finbank_adapters.settings import (
    JwtOptions,
    Settings,
)
from finbank_core.pix.automatic import BRASILIA
from finbank_http import create_app
from tests.postgres_support import (
    all_postgres_settings,
    isolated_schema,
    require_postgres,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=BRASILIA)
DUE = date(2026, 3, 5)
CPF = "52998224725"
LIMIT = "/v1/pix/automatic/limit"
PROBLEM = "application/problem+json"


@dataclass
class Member:
    username: str
    password: str
    headers: dict[str, str]


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.services)])
async def settings(request: pytest.FixtureRequest) -> AsyncIterator[Settings]:
    jwt = JwtOptions(secret=secrets.token_hex(32))
    if request.param == "memory":
        yield Settings(jwt=jwt)
        return
    require_postgres()
    async with isolated_schema() as (_, schema):
        yield all_postgres_settings(schema, jwt=jwt)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def client(settings: Settings, clock: FakeClock) -> AsyncIterator[AsyncTestClient[Litestar]]:
    container = build_container(settings)
    configure(container, clock=clock)
    async with AsyncTestClient(create_app(container)) as test_client:
        yield test_client


async def log_in(client: AsyncTestClient[Litestar], member: Member) -> None:
    """Tokens expire on the bank's clock: log in again after moving it."""
    answer = await client.post(
        "/v1/auth/login", json={"username": member.username, "password": member.password}
    )
    assert answer.status_code == 200, answer.text
    member.headers = {"Authorization": f"Bearer {answer.json()['tokens']['access_token']}"}


async def join(client: AsyncTestClient[Litestar], username: str) -> Member:
    password = f"pw-{secrets.token_hex(8)}"
    signed = await client.post("/v1/auth/signup", json={"username": username, "password": password})
    assert signed.status_code == 201, signed.text
    member = Member(username, password, {})
    await log_in(client, member)
    return member


async def open_account(
    client: AsyncTestClient[Litestar], member: Member, name: str, cash: str | None = None
) -> str:
    opened = await client.post("/v1/accounts", json={"holder_name": name}, headers=member.headers)
    assert opened.status_code == 201, opened.text
    account_id: str = opened.json()["id"]
    if cash is not None:
        put = await client.post(
            "/v1/sandbox/deposits",
            json={"account_id": account_id, "amount": cash},
            headers=member.headers,
        )
        assert put.status_code == 201, put.text
    return account_id


async def stepped_up(
    client: AsyncTestClient[Litestar], member: Member, purpose: str = "pix_limit_raise"
) -> dict[str, str]:
    """``member``'s headers with a fresh step-up token (the password typed again)."""
    answer = await client.post(
        "/v1/auth/step-up",
        json={"purpose": purpose, "password": member.password},
        headers=member.headers,
    )
    assert answer.status_code == 201, answer.text
    return {**member.headers, "X-Step-Up-Token": answer.json()["step_up_token"]}


async def limit_of(client: AsyncTestClient[Litestar], member: Member, account: str) -> object:
    shown = await client.get(f"{LIMIT}?account_id={account}", headers=member.headers)
    assert shown.status_code == 200, shown.text
    assert shown.json()["account_id"] == account
    return shown.json()["daily_limit"]


async def posted(client: AsyncTestClient[Litestar], member: Member, account_id: str) -> str:
    body = (await client.get(f"/v1/accounts/{account_id}", headers=member.headers)).json()
    value: str = body["balance"]["posted"]
    return value


async def test_the_payer_sets_lowers_and_with_a_step_up_raises_or_removes_the_limit(
    client: AsyncTestClient[Litestar],
) -> None:
    ana, bob = await join(client, "ana"), await join(client, "bob")
    wallet = await open_account(client, ana, "Ana Souza", "200.00")
    assert await limit_of(client, ana, wallet) is None

    def body(daily: str | None) -> dict[str, object]:
        return {"account_id": wallet, "daily_limit": daily}

    # someone else's account: as if it did not exist, and nothing changes
    for answer in (
        await client.get(f"{LIMIT}?account_id={wallet}", headers=bob.headers),
        await client.put(LIMIT, json=body("10.00"), headers=bob.headers),
        await client.put(LIMIT, json=body("10.00"), headers=await stepped_up(client, bob)),
    ):
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"].startswith(PROBLEM)
    # zero, negative, malformed: refused naming the field, before a token is spent
    for bad in ("0.00", "-1.00", "-0.01", "10", "1e3"):
        refused = await client.put(LIMIT, json=body(bad), headers=ana.headers)
        assert refused.status_code == 400, (bad, refused.text)
        assert refused.json()["field"] == "daily_limit", bad
    missing = await client.put(LIMIT, json={"account_id": wallet}, headers=ana.headers)
    assert missing.status_code == 400  # explicit: null removes, absent is a mistake
    assert await limit_of(client, ana, wallet) is None

    first = await client.put(LIMIT, json=body("80.00"), headers=ana.headers)  # from none
    assert first.status_code == 200, first.text
    assert first.json() == {"account_id": wallet, "daily_limit": "80.00"}
    # a stolen bearer token alone cannot widen what automatic debits can take
    for wider in ("80.01", None):
        refused = await client.put(LIMIT, json=body(wider), headers=ana.headers)
        assert refused.status_code == 403, refused.text
        assert (refused.json()["code"], refused.json()["purpose"]) == (
            "step_up_required",
            "pix_limit_raise",
        )
    wrong_purpose = await stepped_up(client, ana, purpose="mfa_change")
    refused = await client.put(LIMIT, json=body("120.00"), headers=wrong_purpose)
    assert (refused.status_code, refused.json()["code"]) == (403, "step_up_required")
    forged = {**ana.headers, "X-Step-Up-Token": "A" * 43}
    refused = await client.put(LIMIT, json=body("120.00"), headers=forged)
    assert refused.status_code == 403
    assert await limit_of(client, ana, wallet) == "80.00"

    with_step_up = await stepped_up(client, ana)
    raised = await client.put(LIMIT, json=body("120.00"), headers=with_step_up)
    assert raised.status_code == 200, raised.text
    assert raised.json()["daily_limit"] == "120.00"
    again = await client.put(LIMIT, json=body("150.00"), headers=with_step_up)  # single use
    assert (again.status_code, again.json()["code"]) == (403, "step_up_required")
    lowered = await client.put(LIMIT, json=body("40.00"), headers=ana.headers)  # at once
    assert (lowered.status_code, lowered.json()["daily_limit"]) == (200, "40.00")
    assert await limit_of(client, ana, wallet) == "40.00"
    removed = await client.put(LIMIT, json=body(None), headers=await stepped_up(client, ana))
    assert (removed.status_code, removed.json()["daily_limit"]) == (200, None)
    assert await limit_of(client, ana, wallet) is None


async def test_a_debit_past_the_limit_fails_then_goes_through_once_the_limit_is_removed(
    client: AsyncTestClient[Litestar], clock: FakeClock
) -> None:
    gym, ana = await join(client, "gym"), await join(client, "ana")
    shop = await open_account(client, gym, "Academia Forte Ltda")
    wallet = await open_account(client, ana, "Ana Souza", "200.00")
    created = await client.post(
        "/v1/pix/automatic/recurrences",
        json={
            "account_id": shop,
            "contract": "PLANO-2026-7",
            "debtor_name": "Ana Souza",
            "debtor_document": CPF,
            "periodicity": "MENSAL",
            "start": DUE.isoformat(),
            "retry_policy": "PERMITE_3R_7D",
            "fixed_amount": "50.00",
        },
        headers=gym.headers,
    )
    assert created.status_code == 201, created.text
    rec_id = created.json()["recurrence_id"]
    brcode = (
        await client.post(
            f"/v1/pix/automatic/recurrences/{rec_id}/codes", json={}, headers=gym.headers
        )
    ).json()["brcode"]
    authorised = await client.post(
        "/v1/pix/automatic/authorisations",
        json={"account_id": wallet, "br_code": brcode},
        headers=ana.headers,
    )
    assert authorised.status_code == 201, authorised.text
    scheduled = await client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/charges",
        json={"amount": "50.00", "due_date": DUE.isoformat()},
        headers=gym.headers,
    )
    assert scheduled.status_code == 201, scheduled.text
    txid = scheduled.json()["txid"]
    limited = await client.put(
        LIMIT, json={"account_id": wallet, "daily_limit": "40.00"}, headers=ana.headers
    )
    assert limited.status_code == 200, limited.text

    clock.set(datetime(DUE.year, DUE.month, DUE.day, 1, 0, tzinfo=BRASILIA))
    await log_in(client, gym)
    await log_in(client, ana)
    ran = await client.post("/v1/sandbox/pix/automatic/run-due", headers=gym.headers)
    assert ran.status_code == 200, ran.text
    [charge] = ran.json()["charges"]
    assert charge["status"] == "ATIVA"  # retried as the policy allows
    assert [(a["status"], a["reason"]) for a in charge["attempts"]] == [
        ("FAILED", "automatic_limit_exceeded")
    ]
    assert await posted(client, ana, wallet) == "200.00"
    assert await posted(client, gym, shop) == "0.00"

    removed = await client.put(
        LIMIT,
        json={"account_id": wallet, "daily_limit": None},
        headers=await stepped_up(client, ana),
    )
    assert removed.status_code == 200, removed.text
    clock.advance(days=1)
    await log_in(client, gym)
    await log_in(client, ana)
    ran = await client.post("/v1/sandbox/pix/automatic/run-due", headers=gym.headers)
    assert [(c["txid"], c["status"]) for c in ran.json()["charges"]] == [(txid, "CONCLUIDA")]
    assert await posted(client, ana, wallet) == "150.00"
    assert await posted(client, gym, shop) == "50.00"
