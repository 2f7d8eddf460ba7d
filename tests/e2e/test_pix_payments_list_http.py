"""``GET /v1/pix/payments`` (``listPixPayments``) on the memory profile.

The caller's payments on one account, sent and received, newest first, with
filters; cursors are opaque and sealed: altered or reused with other filters
they answer 400 problem+json naming ``cursor``, never a driver's text.
Another customer's account answers 404.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from finbank_adapters.sandbox import PEER_CLOSED_KEY, PEER_KEY_EMAIL
from tests.e2e.conftest import User, deposit, open_account

PROBLEM = "application/problem+json"


def pay(client: TestClient[Litestar], user: User, n: int, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/v1/pix/payments", json=body, headers={**user.headers, "Idempotency-Key": f"k-{n}"}
    )
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    return payment


def listing(client: TestClient[Litestar], user: User, account_id: str, **params: Any) -> list[str]:
    """Every page of the listing: the EndToEndIds, newest first."""
    seen: list[str] = []
    query: dict[str, Any] = {"account_id": account_id, **params}
    while True:
        response = client.get("/v1/pix/payments", params=query, headers=user.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= int(params.get("limit", 20))
        seen.extend(p["end_to_end_id"] for p in page["items"])
        if page["next_cursor"] is None:
            return seen
        query["cursor"] = page["next_cursor"]


def test_the_caller_lists_sent_and_received_payments_with_filters(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    ana = open_account(client, alice, "Alice")["id"]
    deposit(client, alice, ana, "100.00")
    bia = open_account(client, bob, "Bob")["id"]
    key = client.post(
        "/v1/pix/keys",
        json={"account_id": bia, "key_type": "EMAIL", "key": "bob@example.com"},
        headers=bob.headers,
    )
    assert key.status_code == 201, key.text
    settled = [
        pay(client, alice, n, {"account_id": ana, "key": PEER_KEY_EMAIL, "amount": "1.00"})
        for n in range(3)
    ]
    rejected = pay(client, alice, 9, {"account_id": ana, "key": PEER_CLOSED_KEY, "amount": "1.00"})
    on_us = pay(client, alice, 10, {"account_id": ana, "key": "bob@example.com", "amount": "2.00"})
    assert {p["status"] for p in settled} == {"SETTLED"}
    assert rejected["status"] == "REJECTED"

    everything = listing(client, alice, ana, limit=2)
    newest_first = [on_us, rejected, *reversed(settled)]
    assert everything == [p["end_to_end_id"] for p in newest_first]
    assert listing(client, alice, ana, status="REJECTED") == [rejected["end_to_end_id"]]
    assert listing(client, alice, ana, status="rejected,SETTLED", limit=1) == [
        p["end_to_end_id"] for p in newest_first
    ]
    assert listing(client, alice, ana, direction="RECEIVED") == []
    assert listing(client, bob, bia, direction="RECEIVED") == [on_us["end_to_end_id"]]
    page = client.get("/v1/pix/payments", params={"account_id": bia}, headers=bob.headers).json()
    assert page["items"][0]["direction"] == "received"


def test_cursors_and_parameters_are_checked_as_problems(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    ana = open_account(client, alice, "Alice")["id"]
    deposit(client, alice, ana, "100.00")
    for n in range(3):
        pay(client, alice, n, {"account_id": ana, "key": PEER_KEY_EMAIL, "amount": "1.00"})
    first = client.get(
        "/v1/pix/payments", params={"account_id": ana, "limit": 1}, headers=alice.headers
    ).json()
    cursor = first["next_cursor"]
    body, _, tag = cursor.partition(".")
    for params, field in [
        ({"cursor": f"{body}.{tag[::-1]}"}, "cursor"),
        ({"cursor": body[:-3] + "AAA." + tag}, "cursor"),
        ({"cursor": "9" * 40}, "cursor"),
        ({"cursor": cursor, "status": "SETTLED"}, "cursor"),  # another listing
        ({"status": "PAID"}, "status"),
        ({"since": "2026-01-02T00:00:00+00:00", "until": "2026-01-01T00:00:00+00:00"}, "until"),
    ]:
        response = client.get(
            "/v1/pix/payments", params={"account_id": ana, **params}, headers=alice.headers
        )
        assert response.status_code == 400, (params, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
        problem = response.json()
        assert problem.get("field") == field, problem
        assert "asyncpg" not in response.text
        assert "Traceback" not in response.text
    for params in ({"limit": 0}, {"limit": 101}):
        response = client.get(
            "/v1/pix/payments", params={"account_id": ana, **params}, headers=alice.headers
        )
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
    # someone else's account: 404, as if it did not exist; no token: 401
    response = client.get("/v1/pix/payments", params={"account_id": ana}, headers=bob.headers)
    assert response.status_code == 404, response.text
    assert client.get("/v1/pix/payments", params={"account_id": ana}).status_code == 401
    # the genuine cursor still works
    response = client.get(
        "/v1/pix/payments",
        params={"account_id": ana, "limit": 5, "cursor": cursor},
        headers=alice.headers,
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 2


def test_the_route_is_in_the_openapi_document(client: TestClient[Litestar]) -> None:
    document = client.get("/schema/openapi.json").json()
    operation = document["paths"]["/v1/pix/payments"]["get"]
    assert operation["operationId"] == "listPixPayments"
    assert {"400", "401", "404"} <= set(operation["responses"])
    names = {p["name"] for p in operation["parameters"]}
    assert {"account_id", "since", "until", "status", "direction", "limit", "cursor"} <= names
