"""Pix Automático over HTTP on the memory profile, with a fake clock moved to the due dates.

The receiver (a gym) creates recurrences and schedules charges; the payer
reads the codes, authorises, rejects and cancels; the sandbox route runs the
scheduler's round. Someone else's recurrence or charge is 404; bad input is
problem+json naming the field.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from finbank.bank import configure
from finbank_adapters.containers import BankContainer, build_container
from finbank_adapters.memory import FakeClock
from finbank_adapters.settings import JwtOptions, Settings
from finbank_core.pix.automatic.model import start_of_day
from finbank_http import create_app
from tests.e2e.conftest import User, deposit, open_account

PROBLEM = "application/problem+json"
TODAY = "2026-01-05"  # FakeClock's first day, in Brasília too
CPF = "52998224725"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def container(clock: FakeClock) -> BankContainer:
    built = build_container(Settings(jwt=JwtOptions(secret=secrets.token_hex(32))))
    configure(built, clock=clock)
    return built


@pytest.fixture
def client(container: BankContainer) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(container)) as test_client:
        yield test_client


@dataclass
class Member(User):
    password: str = ""


def join(client: TestClient[Litestar], username: str) -> Member:
    password = f"pw-{secrets.token_hex(8)}"
    signed = client.post("/v1/auth/signup", json={"username": username, "password": password})
    assert signed.status_code == 201, signed.text
    member = Member(username, {}, password)
    log_in(client, member)
    return member


def log_in(client: TestClient[Litestar], member: Member) -> None:
    """Tokens expire on the bank's clock: log in again after moving it."""
    answer = client.post(
        "/v1/auth/login", json={"username": member.username, "password": member.password}
    )
    assert answer.status_code == 200, answer.text
    member.headers = {"Authorization": f"Bearer {answer.json()['tokens']['access_token']}"}


def move_to(
    client: TestClient[Litestar], clock: FakeClock, when: datetime, *members: Member
) -> None:
    clock.set(when)
    for member in members:
        log_in(client, member)


@pytest.fixture
def gym(client: TestClient[Litestar]) -> Member:
    return join(client, "gym")


@pytest.fixture
def ana(client: TestClient[Litestar]) -> Member:
    return join(client, "ana")


def day(offset: int) -> str:
    return (date.fromisoformat(TODAY) + timedelta(days=offset)).isoformat()


def midnight(text: str) -> datetime:
    """00:00 in Brasília of the day ``text``."""
    return start_of_day(date.fromisoformat(text))


def recurrence_body(account_id: str, **terms: Any) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "contract": "PLANO-2026-7",
        "purpose": "Mensalidade academia",
        "debtor_name": "Ana Souza",
        "debtor_document": CPF,
        "periodicity": "MENSAL",
        "start": TODAY,
        "retry_policy": "PERMITE_3R_7D",
        "fixed_amount": "30.00",
        **terms,
    }


def balance(client: TestClient[Litestar], user: User, account_id: str) -> str:
    body = client.get(f"/v1/accounts/{account_id}", headers=user.headers).json()
    posted: str = body["balance"]["posted"]
    return posted


def test_a_recurrence_from_its_qr_code_to_the_debit_on_the_due_date(
    client: TestClient[Litestar], clock: FakeClock, gym: Member, ana: Member
) -> None:
    shop = open_account(client, gym, "Academia Forte Ltda")
    wallet = open_account(client, ana, "Ana Souza")
    deposit(client, ana, wallet["id"], "100.00")

    created = client.post(
        "/v1/pix/automatic/recurrences", json=recurrence_body(shop["id"]), headers=gym.headers
    )
    assert created.status_code == 201, created.text
    recurrence = created.json()
    assert (recurrence["status"], recurrence["journey"]) == ("CRIADA", "AGUARDANDO_DEFINICAO")
    assert recurrence["debtor_document"] == "***.982.247-**"
    assert CPF not in created.text
    rec_id = recurrence["recurrence_id"]

    code = client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/codes", json={}, headers=gym.headers
    ).json()
    assert code["journey"] == "JORNADA_2"
    decoded = client.post(
        "/v1/pix/brcodes/decode",
        json={"br_code": code["brcode"], "mode": "strict"},
        headers=ana.headers,
    ).json()
    assert (decoded["kind"], decoded["recurrence_location"]) == ("recurrence", code["location"])

    offer = client.post(
        "/v1/pix/automatic/authorisations/read",
        json={"br_code": code["brcode"]},
        headers=ana.headers,
    )
    assert offer.status_code == 200, offer.text
    assert (offer.json()["journey"], offer.json()["recurrence"]["fixed_amount"]) == (
        "JORNADA_2",
        "30.00",
    )
    authorised = client.post(
        "/v1/pix/automatic/authorisations",
        json={"account_id": wallet["id"], "br_code": code["brcode"]},
        headers=ana.headers,
    )
    assert authorised.status_code == 201, authorised.text
    assert authorised.json()["status"] == "APROVADA"
    assert authorised.json()["authorisation"]["account_id"] == wallet["id"]
    seen_by_gym = client.get(f"/v1/pix/automatic/recurrences/{rec_id}", headers=gym.headers)
    assert seen_by_gym.json()["authorisation"]["account_id"] is None  # the payer's account

    too_soon = client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/charges",
        json={"amount": "30.00", "due_date": day(1)},
        headers=gym.headers,
    )
    assert too_soon.status_code == 422
    assert too_soon.headers["content-type"].startswith(PROBLEM)
    assert too_soon.json()["code"] == "pix_recurring_charge_outside_window"
    body = {"amount": "30.00", "due_date": day(3), "txid": "plano2026janeiro0000000001"}
    scheduled = client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/charges", json=body, headers=gym.headers
    )
    assert scheduled.status_code == 201, scheduled.text
    assert (scheduled.json()["status"], scheduled.json()["next_attempt_on"]) == ("ATIVA", day(3))
    again = client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/charges", json=body, headers=gym.headers
    )
    assert (again.status_code, again.json()["txid"]) == (200, body["txid"])

    move_to(client, clock, midnight(day(3)) - timedelta(seconds=1), gym, ana)
    assert client.post("/v1/sandbox/pix/automatic/run-due", headers=gym.headers).json() == {
        "charges": []
    }
    move_to(client, clock, midnight(day(3)), gym, ana)
    ran = client.post("/v1/sandbox/pix/automatic/run-due", headers=gym.headers)
    assert ran.status_code == 200, ran.text
    [charge] = ran.json()["charges"]
    assert (charge["status"], len(charge["attempts"])) == ("CONCLUIDA", 1)
    assert balance(client, ana, wallet["id"]) == "70.00"
    assert balance(client, gym, shop["id"]) == "30.00"
    assert client.post("/v1/sandbox/pix/automatic/run-due", headers=gym.headers).json() == {
        "charges": []
    }

    by_payer = client.get(f"/v1/pix/automatic/charges/{body['txid']}", headers=ana.headers)
    assert by_payer.json()["attempts"][0]["status"] == "SETTLED"
    listed = client.get("/v1/pix/automatic/authorisations", headers=ana.headers).json()
    assert [r["recurrence_id"] for r in listed] == [rec_id]

    cancelled = client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/cancel",
        json={"reason": "mudei"},
        headers=ana.headers,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["ended_by"]) == (
        "CANCELADA",
        "USUARIO_PAGADOR",
    )
    twice = client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/cancel", json={}, headers=gym.headers
    )
    assert (twice.status_code, twice.json()["code"]) == (422, "pix_recurrence_not_active")


def test_short_funds_are_retried_over_http_then_the_charge_expires(
    client: TestClient[Litestar], clock: FakeClock, gym: Member, ana: Member
) -> None:
    shop = open_account(client, gym, "Academia Forte Ltda")
    wallet = open_account(client, ana, "Ana Souza")
    deposit(client, ana, wallet["id"], "10.00")
    rec_id = client.post(
        "/v1/pix/automatic/recurrences", json=recurrence_body(shop["id"]), headers=gym.headers
    ).json()["recurrence_id"]
    brcode = client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/codes", json={}, headers=gym.headers
    ).json()["brcode"]
    client.post(
        "/v1/pix/automatic/authorisations",
        json={"account_id": wallet["id"], "br_code": brcode},
        headers=ana.headers,
    )
    txid = client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/charges",
        json={"amount": "30.00", "due_date": day(2)},
        headers=gym.headers,
    ).json()["txid"]

    statuses = []
    for offset in range(2, 8):
        move_to(client, clock, midnight(day(offset)) + timedelta(hours=1), gym, ana)
        client.post("/v1/sandbox/pix/automatic/run-due", headers=gym.headers)
        charge = client.get(f"/v1/pix/automatic/charges/{txid}", headers=gym.headers).json()
        statuses.append((charge["status"], len(charge["attempts"])))
    # runs at 01:00 only: each day's same-day retry (18:00-21:00) is missed, so the
    # last retry day's evening is still open when the 01:00 run of that day fails
    assert statuses == [
        ("ATIVA", 1),
        ("ATIVA", 2),
        ("ATIVA", 3),
        ("ATIVA", 4),
        ("EXPIRADA", 4),
        ("EXPIRADA", 4),
    ]
    assert balance(client, ana, wallet["id"]) == "10.00"


def test_journey_three_pays_the_immediate_charge_and_authorises(
    client: TestClient[Litestar], gym: Member, ana: Member
) -> None:
    shop = open_account(client, gym, "Academia Forte Ltda")
    wallet = open_account(client, ana, "Ana Souza")
    deposit(client, ana, wallet["id"], "100.00")
    key = client.post(
        "/v1/pix/keys", json={"account_id": shop["id"], "key_type": "EVP"}, headers=gym.headers
    ).json()["key"]
    first = client.post(
        "/v1/pix/charges",
        json={"account_id": shop["id"], "key": key, "amount": "30.00"},
        headers=gym.headers,
    ).json()
    rec_id = client.post(
        "/v1/pix/automatic/recurrences", json=recurrence_body(shop["id"]), headers=gym.headers
    ).json()["recurrence_id"]
    code = client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/codes",
        json={"journey": "JORNADA_3", "charge_txid": first["txid"]},
        headers=gym.headers,
    )
    assert code.status_code == 200, code.text
    brcode = code.json()["brcode"]
    decoded = client.post("/v1/pix/brcodes/decode", json={"br_code": brcode}, headers=ana.headers)
    assert (decoded.json()["kind"], decoded.json()["location"]) == ("dynamic", first["location"])

    paid = client.post(
        "/v1/pix/payments",
        json={"account_id": wallet["id"], "br_code": brcode},
        headers={**ana.headers, "Idempotency-Key": "first-month"},
    )
    assert paid.status_code == 201, paid.text
    authorised = client.post(
        "/v1/pix/automatic/authorisations",
        json={"account_id": wallet["id"], "br_code": brcode},
        headers=ana.headers,
    ).json()
    assert (authorised["status"], authorised["journey"]) == ("APROVADA", "JORNADA_3")
    assert balance(client, gym, shop["id"]) == "30.00"


def test_journey_three_in_one_request_pays_once_and_authorises(
    client: TestClient[Litestar], gym: Member, ana: Member
) -> None:
    shop = open_account(client, gym, "Academia Forte Ltda")
    wallet = open_account(client, ana, "Ana Souza")
    deposit(client, ana, wallet["id"], "100.00")
    key = client.post(
        "/v1/pix/keys", json={"account_id": shop["id"], "key_type": "EVP"}, headers=gym.headers
    ).json()["key"]
    first = client.post(
        "/v1/pix/charges",
        json={"account_id": shop["id"], "key": key, "amount": "30.00"},
        headers=gym.headers,
    ).json()
    rec_id = client.post(
        "/v1/pix/automatic/recurrences", json=recurrence_body(shop["id"]), headers=gym.headers
    ).json()["recurrence_id"]
    brcode = client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/codes",
        json={"journey": "JORNADA_3", "charge_txid": first["txid"]},
        headers=gym.headers,
    ).json()["brcode"]
    body = {"account_id": wallet["id"], "br_code": brcode}
    no_key = client.post("/v1/pix/automatic/authorisations/pay", json=body, headers=ana.headers)
    assert no_key.status_code == 400, no_key.text

    answers = [
        client.post(
            "/v1/pix/automatic/authorisations/pay",
            json=body,
            headers={**ana.headers, "Idempotency-Key": "adesao"},
        )
        for _ in range(2)
    ]

    assert [a.status_code for a in answers] == [201, 201], answers[0].text
    first_answer, again = (a.json() for a in answers)
    assert first_answer["authorised"] is True
    assert first_answer["recurrence"]["status"] == "APROVADA"
    assert first_answer["payment"]["status"] == "SETTLED"
    assert again["payment"]["end_to_end_id"] == first_answer["payment"]["end_to_end_id"]
    assert balance(client, ana, wallet["id"]) == "70.00"  # paid once
    assert balance(client, gym, shop["id"]) == "30.00"


def test_journey_one_request_is_listed_and_answered_by_the_payer_named(
    client: TestClient[Litestar], gym: Member, ana: Member, bob: User
) -> None:
    shop = open_account(client, gym, "Academia Forte Ltda")
    wallet = open_account(client, ana, "Ana Souza")
    rec_id = client.post(
        "/v1/pix/automatic/recurrences",
        json=recurrence_body(shop["id"], fixed_amount=None, min_amount="20.00"),
        headers=gym.headers,
    ).json()["recurrence_id"]
    sent = client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/request",
        json={"payer_branch": wallet["branch"], "payer_account_number": wallet["number"]},
        headers=gym.headers,
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["journey"] == "JORNADA_1"
    pending = client.get("/v1/pix/automatic/authorisations", headers=ana.headers).json()
    assert [(r["recurrence_id"], r["status"]) for r in pending] == [(rec_id, "CRIADA")]
    assert client.get("/v1/pix/automatic/authorisations", headers=bob.headers).json() == []
    assert (
        client.get(f"/v1/pix/automatic/recurrences/{rec_id}", headers=bob.headers).status_code
        == 404
    )

    under_minimum = client.post(
        "/v1/pix/automatic/authorisations",
        json={"account_id": wallet["id"], "recurrence_id": rec_id, "max_amount": "19.99"},
        headers=ana.headers,
    )
    assert under_minimum.status_code == 400
    assert under_minimum.json()["field"] == "max_amount"
    answered = client.post(
        "/v1/pix/automatic/authorisations",
        json={"account_id": wallet["id"], "recurrence_id": rec_id, "max_amount": "45.00"},
        headers=ana.headers,
    )
    assert answered.status_code == 201, answered.text
    assert answered.json()["authorisation"]["max_amount"] == "45.00"


def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    client: TestClient[Litestar], gym: Member
) -> None:
    shop = open_account(client, gym, "Academia Forte Ltda")
    both = client.post(
        "/v1/pix/automatic/recurrences",
        json=recurrence_body(shop["id"], min_amount="10.00"),
        headers=gym.headers,
    )
    assert both.status_code == 400
    assert both.headers["content-type"].startswith(PROBLEM)
    assert both.json()["field"] == "min_amount"
    bad_document = client.post(
        "/v1/pix/automatic/recurrences",
        json=recurrence_body(shop["id"], debtor_document="52998224724"),
        headers=gym.headers,
    )
    assert bad_document.status_code == 400
    assert bad_document.json()["code"] == "invalid_document"
    assert "52998224724" not in bad_document.text
    past = client.post(
        "/v1/pix/automatic/recurrences",
        json=recurrence_body(shop["id"], start=day(-1)),
        headers=gym.headers,
    )
    assert (past.status_code, past.json()["code"]) == (400, "invalid_pix_recurrence")
    bad_period = client.post(
        "/v1/pix/automatic/recurrences",
        json=recurrence_body(shop["id"], periodicity="DIARIA"),
        headers=gym.headers,
    )
    assert bad_period.status_code == 400
    assert client.get("/v1/pix/automatic/recurrences", headers=gym.headers).json() == []


def test_openapi_names_every_pix_automatic_route_and_its_problems(
    client: TestClient[Litestar],
) -> None:
    schema = client.get("/schema/openapi.json").json()
    expected = {
        ("post", "/v1/pix/automatic/recurrences"): "createPixRecurrence",
        ("get", "/v1/pix/automatic/recurrences"): "listPixRecurrences",
        ("get", "/v1/pix/automatic/recurrences/{recurrence_id}"): "getPixRecurrence",
        (
            "post",
            "/v1/pix/automatic/recurrences/{recurrence_id}/request",
        ): "requestPixRecurrenceAuthorisation",
        ("post", "/v1/pix/automatic/recurrences/{recurrence_id}/codes"): "issuePixRecurrenceCode",
        (
            "post",
            "/v1/pix/automatic/recurrences/{recurrence_id}/charges",
        ): "schedulePixRecurringCharge",
        (
            "get",
            "/v1/pix/automatic/recurrences/{recurrence_id}/charges",
        ): "listPixRecurringCharges",
        ("post", "/v1/pix/automatic/recurrences/{recurrence_id}/cancel"): "cancelPixRecurrence",
        ("get", "/v1/pix/automatic/charges/{txid}"): "getPixRecurringCharge",
        ("post", "/v1/pix/automatic/charges/{txid}/cancel"): "cancelPixRecurringCharge",
        ("post", "/v1/pix/automatic/authorisations/read"): "readPixRecurrenceCode",
        ("post", "/v1/pix/automatic/authorisations"): "authorisePixRecurrence",
        ("post", "/v1/pix/automatic/authorisations/reject"): "rejectPixRecurrence",
        ("post", "/v1/pix/automatic/authorisations/pay"): "payAndAuthorisePixRecurrence",
        ("get", "/v1/pix/automatic/authorisations"): "listPixAuthorisations",
        ("get", "/v1/pix/automatic/limit"): "getPixAutomaticLimit",
        ("put", "/v1/pix/automatic/limit"): "setPixAutomaticLimit",
        ("post", "/v1/sandbox/pix/automatic/run-due"): "runPixAutomaticDueDebits",
    }
    for (method, path), operation_id in expected.items():
        operation = schema["paths"][path][method]
        assert operation["operationId"] == operation_id
        responses = operation["responses"]
        assert any(PROBLEM in r.get("content", {}) for r in responses.values()), (method, path)


def test_the_payer_cancels_one_charge_until_the_day_before_it_is_due(
    client: TestClient[Litestar], clock: FakeClock, gym: Member, ana: Member
) -> None:
    shop = open_account(client, gym, "Academia Forte Ltda")
    wallet = open_account(client, ana, "Ana Souza")
    deposit(client, ana, wallet["id"], "100.00")
    rec_id = client.post(
        "/v1/pix/automatic/recurrences",
        json=recurrence_body(shop["id"], periodicity="SEMANAL"),
        headers=gym.headers,
    ).json()["recurrence_id"]
    brcode = client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/codes", json={}, headers=gym.headers
    ).json()["brcode"]
    client.post(
        "/v1/pix/automatic/authorisations",
        json={"account_id": wallet["id"], "br_code": brcode},
        headers=ana.headers,
    )
    first, second = (
        client.post(
            f"/v1/pix/automatic/recurrences/{rec_id}/charges",
            json={"amount": "30.00", "due_date": day(offset)},
            headers=gym.headers,
        ).json()["txid"]
        for offset in (3, 10)
    )

    move_to(client, clock, midnight(day(3)) - timedelta(seconds=1), gym, ana)
    cancelled = client.post(f"/v1/pix/automatic/charges/{first}/cancel", headers=ana.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["reason"]) == (
        "CANCELADA",
        "cancelled_by_payer",
    )
    move_to(client, clock, midnight(day(10)), gym, ana)
    too_late = client.post(f"/v1/pix/automatic/charges/{second}/cancel", headers=ana.headers)
    assert (too_late.status_code, too_late.json()["code"]) == (
        422,
        "pix_recurring_charge_not_cancellable",
    )
    ran = client.post("/v1/sandbox/pix/automatic/run-due", headers=gym.headers).json()
    assert [(c["txid"], c["status"]) for c in ran["charges"]] == [(second, "CONCLUIDA")]
    assert balance(client, ana, wallet["id"]) == "70.00"
    recurrence = client.get(f"/v1/pix/automatic/recurrences/{rec_id}", headers=ana.headers)
    assert recurrence.json()["status"] == "APROVADA"  # the recurrence goes on
