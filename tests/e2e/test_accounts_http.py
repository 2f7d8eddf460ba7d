"""Accounts and transfers over HTTP: ownership, idempotency, problem+json."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from tests.e2e.conftest import User, deposit, open_account

PROBLEM = "application/problem+json"


def balance(client: TestClient[Litestar], user: User, account_id: str) -> str:
    response = client.get(f"/v1/accounts/{account_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    posted: str = response.json()["balance"]["posted"]
    return posted


def transfer(
    client: TestClient[Litestar],
    user: User,
    key: str,
    body: dict[str, Any],
) -> Any:
    return client.post("/v1/transfers", json=body, headers={**user.headers, "Idempotency-Key": key})


def test_health_and_readiness(client: TestClient[Litestar]) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}


def test_customer_opens_and_lists_own_accounts(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    first = open_account(client, alice, "Alice Prado")
    second = open_account(client, alice, "Alice Prado")
    open_account(client, bob, "Bob")
    listed = client.get("/v1/accounts", headers=alice.headers).json()
    assert [a["id"] for a in listed] == [first["id"], second["id"]]
    assert first["number"] != second["number"]
    assert balance(client, alice, first["id"]) == "0.00"


def test_transfer_moves_money_and_statement_shows_running_balances(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    source = open_account(client, alice)
    target = open_account(client, bob)
    deposit(client, alice, source["id"], "100.00")
    body = {"from_account_id": source["id"], "to_account_id": target["id"], "amount": "30.25"}
    response = transfer(client, alice, "t-1", {**body, "description": "aluguel"})
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == "30.25"
    assert balance(client, alice, source["id"]) == "69.75"
    assert balance(client, bob, target["id"]) == "30.25"
    statement = client.get(f"/v1/accounts/{source['id']}/statement", headers=alice.headers)
    lines = statement.json()["lines"]
    assert [(line["amount"], line["balance_after"]) for line in lines] == [
        ("100.00", "100.00"),
        ("-30.25", "69.75"),
    ]
    assert lines[1]["description"] == "aluguel"


def test_replayed_transfer_returns_same_body_and_moves_money_once(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    source = open_account(client, alice)
    target = open_account(client, bob)
    deposit(client, alice, source["id"], "100.00")
    body = {"from_account_id": source["id"], "to_account_id": target["id"], "amount": "10.00"}
    first = transfer(client, alice, "same-key", body)
    second = transfer(client, alice, "same-key", body)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert balance(client, alice, source["id"]) == "90.00"


def test_a_replayed_sandbox_deposit_says_so_and_credits_once(
    client: TestClient[Litestar], alice: User
) -> None:
    account = open_account(client, alice)
    body = {"account_id": account["id"], "amount": "10.00"}
    headers = {**alice.headers, "Idempotency-Key": "deposit-1"}

    first = client.post("/v1/sandbox/deposits", json=body, headers=headers)
    second = client.post("/v1/sandbox/deposits", json=body, headers=headers)
    other = client.post("/v1/sandbox/deposits", json={**body, "amount": "99.00"}, headers=headers)

    assert first.status_code == second.status_code == 201, second.text
    assert first.json() == second.json()
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert other.status_code == 422, other.text
    assert "idempotent-replayed" not in other.headers
    assert balance(client, alice, account["id"]) == "10.00"


def test_same_key_with_another_body_is_refused_with_422(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    source = open_account(client, alice)
    target = open_account(client, bob)
    deposit(client, alice, source["id"], "100.00")
    body = {"from_account_id": source["id"], "to_account_id": target["id"], "amount": "10.00"}
    assert transfer(client, alice, "k", body).status_code == 201
    response = transfer(client, alice, "k", {**body, "amount": "11.00"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:finbank:problem:idempotency_key_reused"
    assert balance(client, alice, source["id"]) == "90.00"


def test_transfer_without_idempotency_key_is_a_400_problem(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    source, target = open_account(client, alice), open_account(client, bob)
    body = {"from_account_id": source["id"], "to_account_id": target["id"], "amount": "1.00"}
    response = client.post("/v1/transfers", json=body, headers=alice.headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM


def test_overdraft_is_refused_as_insufficient_funds(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    source, target = open_account(client, alice), open_account(client, bob)
    deposit(client, alice, source["id"], "5.00")
    body = {"from_account_id": source["id"], "to_account_id": target["id"], "amount": "5.01"}
    response = transfer(client, alice, "over", body)
    assert response.status_code == 422
    assert response.json()["code"] == "insufficient_funds"
    assert balance(client, alice, source["id"]) == "5.00"


def test_malformed_amounts_are_refused(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    source, target = open_account(client, alice), open_account(client, bob)
    for amount in ("1.5", "-1.00", "0.00", "1e3", 10):
        body = {"from_account_id": source["id"], "to_account_id": target["id"], "amount": amount}
        response = transfer(client, alice, f"bad-{amount}", body)
        assert response.status_code == 400, amount
        assert response.headers["content-type"] == PROBLEM


def test_other_users_accounts_are_invisible_and_untouchable(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    victim = open_account(client, alice)
    deposit(client, alice, victim["id"], "50.00")
    thief_account = open_account(client, bob)
    attempts = [
        client.get(f"/v1/accounts/{victim['id']}", headers=bob.headers),
        client.get(f"/v1/accounts/{victim['id']}/statement", headers=bob.headers),
        transfer(
            client,
            bob,
            "steal",
            {
                "from_account_id": victim["id"],
                "to_account_id": thief_account["id"],
                "amount": "50.00",
            },
        ),
        client.post(
            "/v1/sandbox/deposits",
            json={"account_id": victim["id"], "amount": "1.00"},
            headers=bob.headers,
        ),
    ]
    for response in attempts:
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == PROBLEM
    assert [a["id"] for a in client.get("/v1/accounts", headers=bob.headers).json()] == [
        thief_account["id"]
    ]
    assert balance(client, alice, victim["id"]) == "50.00"
    assert balance(client, bob, thief_account["id"]) == "0.00"


def test_unknown_account_is_404(client: TestClient[Litestar], alice: User) -> None:
    response = client.get(f"/v1/accounts/{uuid.uuid4()}", headers=alice.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"


def test_account_routes_require_a_valid_bearer_token(client: TestClient[Litestar]) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic x"}):
        response = client.get("/v1/accounts", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"] == "Bearer"


def test_statement_is_paged_and_date_bounded(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    source, target = open_account(client, alice), open_account(client, bob)
    deposit(client, alice, source["id"], "10.00")
    for n in range(4):
        body = {"from_account_id": source["id"], "to_account_id": target["id"], "amount": "1.00"}
        assert transfer(client, alice, f"p-{n}", body).status_code == 201
    url = f"/v1/accounts/{source['id']}/statement"
    page1 = client.get(url, params={"limit": 3}, headers=alice.headers).json()
    page2 = client.get(
        url, params={"limit": 3, "cursor": page1["next_cursor"]}, headers=alice.headers
    ).json()
    balances = [line["balance_after"] for line in page1["lines"] + page2["lines"]]
    assert balances == ["10.00", "9.00", "8.00", "7.00", "6.00"]
    assert page2["next_cursor"] is None
    future = client.get(url, params={"since": "2999-01-01T00:00:00Z"}, headers=alice.headers)
    assert future.json()["lines"] == []
    naive = client.get(
        url,
        params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        headers=alice.headers,
    )
    assert naive.status_code == 400


def test_openapi_lists_every_route_with_problem_responses(client: TestClient[Litestar]) -> None:
    schema = client.get("/schema/openapi.json").json()
    expected = {
        ("post", "/v1/auth/signup"),
        ("post", "/v1/auth/login"),
        ("post", "/v1/accounts"),
        ("get", "/v1/accounts"),
        ("get", "/v1/accounts/{account_id}"),
        ("get", "/v1/accounts/{account_id}/statement"),
        ("post", "/v1/transfers"),
        ("get", "/health"),
        ("get", "/ready"),
    }
    present = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert expected <= present
    for method, path in expected - {("get", "/health")}:
        responses = schema["paths"][path][method]["responses"]
        problem_statuses = [s for s, r in responses.items() if PROBLEM in r.get("content", {})]
        assert problem_statuses, f"{method} {path} documents no problem+json error"
    transfer_params = schema["paths"]["/v1/transfers"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in transfer_params)
    assert "BearerToken" in schema["components"]["securitySchemes"]
    assert client.get("/schema/swagger").status_code == 200
