"""MED as the payer's bank over HTTP: one scenario, run on the memory and the local profiles.

Our customer pays the sandbox's peer bank and contests the payment (a case
on the ``PAYER`` side: the report goes to that bank). What that bank answers
arrives through the back-office routes (``fraud_analyst``): its analysis
(``receiveMedAnalysis``), then its returns (``receiveMedReturn``). Checked:
only the bank we paid answers (422 naming the field, nothing credited);
replays answer like the first; the same return delivered many times at once
credits once, and the ledger moves exactly what was returned, from
settlement to our customer.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import msgspec
from litestar.testing import AsyncTestClient

from finbank_adapters.containers import BankContainer, resolve
from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_core.accounts.ports import Ledger
from finbank_core.accounts.use_cases import BankAccounts
from finbank_core.auth.users import UserStore
from finbank_core.pix.codes.identifiers import ReturnId

BACK_OFFICE = "/v1/backoffice/pix"
#: the sandbox's peer bank (``FINBANK_PIX_SANDBOX_PEER_ISPB``'s default): the bank we pay
PEER_ISPB = "88888888"
OTHER_ISPB = "77777777"
#: how many copies of one return the network delivers at once
DUPLICATES = 8


@dataclass
class PayerSide:
    client: AsyncTestClient[Any]
    container: BankContainer
    victim: dict[str, str]
    analyst: dict[str, str]
    #: settles a payment still pending (the local profile's worker's step); no-op inline
    settle: Callable[[str], Awaitable[None]]


async def member(
    client: AsyncTestClient[Any], container: BankContainer, name: str, role: str | None = None
) -> dict[str, str]:
    """A user signed up and logged in (with ``role`` given in the user store, as an admin would)."""
    password = f"pw-{secrets.token_hex(8)}"
    created = await client.post("/v1/auth/signup", json={"username": name, "password": password})
    assert created.status_code == 201, created.text
    if role is not None:

        async def grant() -> None:  # in the app's loop, where its pool lives
            store: UserStore = await resolve(container.auth.user_store())
            record = await store.get_by_username(name)
            assert record is not None
            await store.update(msgspec.structs.replace(record, roles=(role,)))

        client.blocking_portal.call(grant)
    logged = await client.post("/v1/auth/login", json={"username": name, "password": password})
    assert logged.status_code == 200, logged.text
    return {"Authorization": f"Bearer {logged.json()['tokens']['access_token']}"}


def at_once(
    w: PayerSide, url: str, bodies: list[dict[str, Any]], headers: dict[str, str]
) -> list[httpx.Response]:
    """POST each body at the same time, through the app's whole ASGI stack, in its loop.

    (The test client's own async calls go through a blocking portal one at a time.)
    On the local profile the requests interleave at every database call (up to 8
    were inside ``ReceiveMedReturn`` at once when this was written); the memory
    profile's stores do not yield, so there they run one after another.
    """

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=w.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return list(
                await asyncio.gather(*(http.post(url, json=b, headers=headers) for b in bodies))
            )

    return w.client.blocking_portal.call(send)


def rtr_id(now: datetime, ispb: str = PEER_ISPB) -> str:
    return ReturnId.generate(ispb, now).value


def _moved(w: PayerSide, account_id: uuid.UUID) -> tuple[int, int, int]:
    """(settlement's debits posted, the customer's credits posted, available), from the ledger."""

    async def look() -> tuple[int, int, int]:
        ledger: Ledger = await resolve(w.container.accounts.ledger())
        settlement, customer = await ledger.lookup_accounts(
            [BankAccounts.PIX_SETTLEMENT, account_id]
        )
        return settlement.debits_posted, customer.credits_posted, customer.balance_available

    return w.client.blocking_portal.call(look)  # in the app's loop, where its pool lives


async def contested_payment_to_the_peer(w: PayerSide, amount: str) -> tuple[str, str, str]:
    """(account id, EndToEndId, report id): a settled PIX to the peer bank, contested."""
    client = w.client
    opened = await client.post("/v1/accounts", json={"holder_name": "Vitoria"}, headers=w.victim)
    assert opened.status_code == 201, opened.text
    account = opened.json()["id"]
    deposited = await client.post(
        "/v1/sandbox/deposits", json={"account_id": account, "amount": amount}, headers=w.victim
    )
    assert deposited.status_code == 201, deposited.text
    paid = await client.post(
        "/v1/pix/payments",
        json={"account_id": account, "key": PEER_KEY_EMAIL, "amount": amount},
        headers={**w.victim, "Idempotency-Key": secrets.token_hex(8)},
    )
    assert paid.status_code == 201, paid.text
    e2e: str = paid.json()["end_to_end_id"]
    await w.settle(e2e)
    seen = await client.get(f"/v1/pix/payments/{e2e}", headers=w.victim)
    assert seen.json()["status"] == "SETTLED", seen.text
    contested = await client.post(
        f"/v1/pix/payments/{e2e}/contestations", json={"situation": "SCAM"}, headers=w.victim
    )
    assert contested.status_code == 201, contested.text
    assert (contested.json()["side"], contested.json()["status"]) == ("PAYER", "OPEN")
    return account, e2e, contested.json()["report_id"]


def assert_refused(answer: Any, status: int, code: str, field: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == code, answer.text
    if field is not None:
        assert answer.json()["field"] == field, answer.text


async def the_peer_answers_and_returns_once(w: PayerSide, now: datetime) -> None:
    """The whole payer-side flow over HTTP (module doc)."""
    client = w.client
    account, e2e, report_id = await contested_payment_to_the_peer(w, "200.00")
    account_id = uuid.UUID(account)
    analysis = f"{BACK_OFFICE}/payments/{e2e}/med/peer-analysis"
    returns = f"{BACK_OFFICE}/payments/{e2e}/med/incoming-returns"
    agreed = {"report_id": report_id, "decision": "AGREED", "analysed_by": PEER_ISPB}

    # the back office's routes: not the customer's, not anonymous
    assert_refused(
        await client.post(analysis, json=agreed, headers=w.victim), 403, "permission_denied"
    )
    assert (await client.post(analysis, json=agreed)).status_code == 401
    # only the bank we paid answers, about the report we sent
    assert_refused(
        await client.post(analysis, json={**agreed, "analysed_by": OTHER_ISPB}, headers=w.analyst),
        422,
        "med_not_allowed",
        "analysed_by",
    )
    assert_refused(
        await client.post(analysis, json={**agreed, "report_id": "x"}, headers=w.analyst),
        422,
        "med_not_allowed",
        "report_id",
    )
    early = {"return_id": rtr_id(now), "amount": "50.00", "from_ispb": PEER_ISPB}
    assert_refused(  # nothing was asked back yet
        await client.post(returns, json=early, headers=w.analyst), 422, "med_not_allowed"
    )

    answered = await client.post(analysis, json=agreed, headers=w.analyst)
    assert answered.status_code == 200, answered.text
    case = answered.json()["case"]
    assert (case["side"], case["status"]) == ("PAYER", "REFUND_REQUESTED")
    replayed = await client.post(analysis, json=agreed, headers=w.analyst)
    assert (replayed.status_code, replayed.json()["case"]) == (200, case)
    assert_refused(
        await client.post(analysis, json={**agreed, "decision": "DISAGREED"}, headers=w.analyst),
        409,
        "med_already_decided",
        "decision",
    )
    before = _moved(w, account_id)
    assert before[2] == 0  # all of it went to the peer bank

    # a return from a bank we did not pay: refused naming the field, nothing credited
    stranger = {"return_id": rtr_id(now, OTHER_ISPB), "amount": "50.00", "from_ispb": OTHER_ISPB}
    assert_refused(
        await client.post(returns, json=stranger, headers=w.analyst),
        422,
        "med_not_allowed",
        "from_ispb",
    )
    for bad_id in ("D" + "1" * 20, "E" + PEER_ISPB + "202604061400" + "a" * 11):
        refused = await client.post(returns, json={**early, "return_id": bad_id}, headers=w.analyst)
        assert (refused.status_code, refused.json()["field"]) == (400, "return_id")
    not_a_date = {**early, "return_id": "D" + PEER_ISPB + "202613011200" + "a" * 11}
    assert_refused(
        await client.post(returns, json=not_a_date, headers=w.analyst), 400, "invalid_identifier"
    )
    anothers_id = {**early, "return_id": rtr_id(now, OTHER_ISPB)}  # from the peer, by its ISPB
    assert_refused(
        await client.post(returns, json=anothers_id, headers=w.analyst),
        422,
        "med_not_allowed",
        "return_id",
    )
    for amount in ("0.00", "-5.00"):
        refused = await client.post(returns, json={**early, "amount": amount}, headers=w.analyst)
        assert (refused.status_code, refused.json()["field"]) == (400, "amount")
    over = {**early, "amount": "200.01"}
    assert_refused(
        await client.post(returns, json=over, headers=w.analyst), 422, "med_not_allowed", "amount"
    )
    assert _moved(w, account_id) == before

    # the network delivers one return many times at once: credited once
    first = {"return_id": rtr_id(now), "amount": "120.00", "from_ispb": PEER_ISPB, "final": False}
    answers = at_once(w, returns, [first] * DUPLICATES, w.analyst)
    assert [a.status_code for a in answers] == [200] * DUPLICATES, [a.text for a in answers]
    assert {a.json()["case"]["returned_amount"] for a in answers} == {"120.00"}
    assert {a.json()["case"]["status"] for a in answers} == {"REFUND_REQUESTED"}  # more to come
    moved = _moved(w, account_id)
    assert moved == (before[0] + 120_00, before[1] + 120_00, 120_00)
    changed = await client.post(returns, json={**first, "amount": "100.00"}, headers=w.analyst)
    assert_refused(changed, 422, "med_not_allowed", "amount")  # the same rtrId, another amount

    # the rest, delivered twice at once: the case closes, the whole payment is back
    rest = {"return_id": rtr_id(now), "amount": "80.00", "from_ispb": PEER_ISPB, "final": False}
    closing = at_once(w, returns, [rest, rest], w.analyst)
    assert [a.status_code for a in closing] == [200, 200], [a.text for a in closing]
    closed = closing[0].json()["case"]
    assert (closed["status"], closed["returned_amount"]) == ("CLOSED", "200.00")
    assert sorted((r["amount"], r["status"]) for r in closed["returns"]) == [
        ("120.00", "DEVOLVIDO"),
        ("80.00", "DEVOLVIDO"),
    ]
    assert _moved(w, account_id) == (before[0] + 200_00, before[1] + 200_00, 200_00)
    late = await client.post(returns, json=first, headers=w.analyst)  # a replay after closing
    assert (late.status_code, late.json()["case"]["returned_amount"]) == (200, "200.00")
    assert_refused(  # a closed case takes no new return
        await client.post(returns, json={**early, "return_id": rtr_id(now)}, headers=w.analyst),
        422,
        "med_not_allowed",
    )
    assert _moved(w, account_id) == (before[0] + 200_00, before[1] + 200_00, 200_00)

    seen = (await client.get(f"/v1/pix/payments/{e2e}", headers=w.victim)).json()
    assert seen["med"]["case"]["status"] == "CLOSED"
    assert seen["med"]["case"]["returns"] is None  # the back office's detail
    assert sorted((r["nature"], r["amount"]) for r in seen["refunds"]) == [
        ("MED_FRAUDE", "120.00"),
        ("MED_FRAUDE", "80.00"),
    ]
