"""PIX over HTTP: keys, payments, refunds, charges and QR codes; other users' data is 404."""

from __future__ import annotations

import secrets
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from finbank_adapters.containers import BankContainer, build_container, resolve
from finbank_adapters.memory import InMemoryEventPublisher
from finbank_adapters.sandbox import PEER_CLOSED_KEY, PEER_KEY_EMAIL
from finbank_adapters.settings import JwtOptions, PixOptions, Settings
from finbank_adapters.workers.pix_settlement import PixSettlementHandler
from finbank_http import create_app
from tests.e2e.conftest import User, deposit, open_account, sign_up_and_log_in

PROBLEM = "application/problem+json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def balance(client: TestClient[Litestar], user: User, account_id: str) -> str:
    posted: str = client.get(f"/v1/accounts/{account_id}", headers=user.headers).json()["balance"][
        "posted"
    ]
    return posted


def register_key(
    client: TestClient[Litestar],
    user: User,
    account_id: str,
    key_type: str = "EVP",
    key: str | None = None,
) -> Any:
    body: dict[str, Any] = {"account_id": account_id, "key_type": key_type}
    if key is not None:
        body["key"] = key
    return client.post("/v1/pix/keys", json=body, headers=user.headers)


def pay(client: TestClient[Litestar], user: User, idem: str, body: dict[str, Any]) -> Any:
    return client.post(
        "/v1/pix/payments", json=body, headers={**user.headers, "Idempotency-Key": idem}
    )


def test_key_lifecycle(client: TestClient[Litestar], alice: User, bob: User) -> None:
    account = open_account(client, alice, "Alice")
    created = register_key(client, alice, account["id"])
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["key_type"] == "EVP"
    assert len(key["key"]) == 36
    email = register_key(client, alice, account["id"], "EMAIL", "Alice@Example.com")
    assert email.json()["key"] == "alice@example.com"
    listed = client.get("/v1/pix/keys", headers=alice.headers).json()
    assert {k["id"] for k in listed} == {key["id"], email.json()["id"]}
    duplicate = register_key(client, alice, account["id"], "EMAIL", "alice@example.com")
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "pix_key_already_registered"
    assert "alice@example.com" not in duplicate.text
    deleted = client.delete(f"/v1/pix/keys/{key['id']}", headers=alice.headers)
    assert deleted.status_code == 200
    assert len(client.get("/v1/pix/keys", headers=alice.headers).json()) == 1


def test_key_limit_for_individuals_is_five(client: TestClient[Litestar], alice: User) -> None:
    account = open_account(client, alice)
    for _ in range(5):
        assert register_key(client, alice, account["id"]).status_code == 201
    sixth = register_key(client, alice, account["id"])
    assert sixth.status_code == 422
    assert sixth.json()["code"] == "pix_key_limit_reached"


def test_payment_by_key_on_us_replays_and_refunds(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    source, target = open_account(client, alice, "Alice"), open_account(client, bob, "Bob")
    deposit(client, alice, source["id"], "100.00")
    bob_key = register_key(client, bob, target["id"]).json()["key"]
    body = {"account_id": source["id"], "key": bob_key, "amount": "30.00", "description": "rent"}
    first = pay(client, alice, "p-1", body)
    assert first.status_code == 201, first.text
    payment = first.json()
    assert (payment["status"], payment["flow"], payment["direction"]) == (
        "SETTLED",
        "ON_US",
        "sent",
    )
    again = pay(client, alice, "p-1", body)
    assert again.json() == payment
    assert again.headers["idempotent-replayed"] == "true"
    reused = pay(client, alice, "p-1", {**body, "amount": "31.00"})
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert balance(client, alice, source["id"]) == "70.00"
    assert balance(client, bob, target["id"]) == "30.00"

    e2e = payment["end_to_end_id"]
    seen_by_bob = client.get(f"/v1/pix/payments/{e2e}", headers=bob.headers).json()
    assert seen_by_bob["direction"] == "received"
    refund_url = f"/v1/pix/payments/{e2e}/refunds"
    by_payer = client.post(
        refund_url, json={"amount": "1.00"}, headers={**alice.headers, "Idempotency-Key": "r"}
    )
    assert by_payer.status_code == 422
    refund = client.post(
        refund_url, json={"amount": "10.00"}, headers={**bob.headers, "Idempotency-Key": "r"}
    )
    assert refund.status_code == 201, refund.text
    assert refund.json()["status"] == "DEVOLVIDO"
    assert refund.json()["reason"] == "MD06"
    assert refund.json()["return_id"].startswith("D")
    too_much = client.post(
        refund_url, json={"amount": "20.01"}, headers={**bob.headers, "Idempotency-Key": "r2"}
    )
    assert too_much.json()["code"] == "pix_refund_exceeds_original"
    assert balance(client, alice, source["id"]) == "80.00"
    assert balance(client, bob, target["id"]) == "20.00"


def test_payments_to_the_peer_bank_settle_or_are_rejected(
    client: TestClient[Litestar], alice: User
) -> None:
    source = open_account(client, alice)
    deposit(client, alice, source["id"], "100.00")
    ok = pay(
        client, alice, "a", {"account_id": source["id"], "key": PEER_KEY_EMAIL, "amount": "10.00"}
    )
    assert (ok.json()["status"], ok.json()["flow"]) == ("SETTLED", "OUTGOING")
    assert ok.json()["payee"]["document"] == "***.982.247-**"
    closed = pay(
        client, alice, "b", {"account_id": source["id"], "key": PEER_CLOSED_KEY, "amount": "10.00"}
    )
    assert (closed.json()["status"], closed.json()["reject_reason"]) == ("REJECTED", "AC07")
    timeout = pay(
        client, alice, "c", {"account_id": source["id"], "key": PEER_KEY_EMAIL, "amount": "10.03"}
    )
    assert timeout.json()["reject_reason"] == "AB03"
    assert balance(client, alice, source["id"]) == "90.00"


def test_payment_errors_are_problems(client: TestClient[Litestar], alice: User) -> None:
    source = open_account(client, alice)
    deposit(client, alice, source["id"], "5.00")
    cases = [
        (
            {"account_id": source["id"], "key": PEER_KEY_EMAIL, "amount": "5.01"},
            422,
            "insufficient_funds",
        ),
        (
            {"account_id": source["id"], "key": "nobody@example.com", "amount": "1.00"},
            404,
            "pix_key_not_found",
        ),
        (
            {"account_id": source["id"], "key": "12345678900", "amount": "1.00"},
            400,
            "invalid_pix_key",
        ),
        (
            {"account_id": source["id"], "br_code": "000201", "amount": "1.00"},
            400,
            "invalid_br_code",
        ),
        ({"account_id": source["id"], "amount": "1.00"}, 400, "invalid_input"),
    ]
    for n, (body, status, code) in enumerate(cases):
        response = pay(client, alice, f"e-{n}", body)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == code
    assert "12345678900" not in pay(client, alice, "e-9", cases[2][0]).text


def test_charge_paid_by_its_br_code_with_qr_images(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    shop, payer = open_account(client, bob, "Bob Loja"), open_account(client, alice, "Alice")
    deposit(client, alice, payer["id"], "100.00")
    key = register_key(client, bob, shop["id"]).json()["key"]
    created = client.post(
        "/v1/pix/charges",
        json={"account_id": shop["id"], "key": key, "amount": "42.50", "description": "pedido 7"},
        headers=bob.headers,
    )
    assert created.status_code == 201, created.text
    charge = created.json()
    assert charge["status"] == "ATIVA"
    decoded = client.post(
        "/v1/pix/brcodes/decode", json={"br_code": charge["brcode"]}, headers=alice.headers
    ).json()
    assert (decoded["kind"], decoded["location"]) == ("dynamic", charge["location"])
    static = client.post(
        "/v1/pix/brcodes/decode", json={"br_code": charge["brcode_static"]}, headers=alice.headers
    ).json()
    assert (static["amount"], static["txid"]) == ("42.50", charge["txid"][:25])

    png = client.get(f"/v1/pix/charges/{charge['txid']}/qr.png", headers=bob.headers)
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(PNG_SIGNATURE)
    svg = client.get(
        f"/v1/pix/charges/{charge['txid']}/qr.svg", params={"kind": "static"}, headers=bob.headers
    )
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert ET.fromstring(svg.content).tag.endswith("svg")  # noqa: S314

    paid = pay(client, alice, "charge", {"account_id": payer["id"], "br_code": charge["brcode"]})
    assert paid.status_code == 201, paid.text
    assert (paid.json()["amount"], paid.json()["txid"]) == ("42.50", charge["txid"])
    after = client.get(f"/v1/pix/charges/{charge['txid']}", headers=bob.headers).json()
    assert after["status"] == "CONCLUIDA"
    assert after["end_to_end_id"] == paid.json()["end_to_end_id"]
    assert balance(client, bob, shop["id"]) == "42.50"


def test_other_users_keys_payments_and_charges_are_404(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    mine = open_account(client, alice, "Alice")
    theirs = open_account(client, bob, "Bob")
    deposit(client, alice, mine["id"], "50.00")
    key = register_key(client, alice, mine["id"]).json()
    charge = client.post(
        "/v1/pix/charges",
        json={"account_id": mine["id"], "key": key["key"], "amount": "1.00"},
        headers=alice.headers,
    ).json()
    payment = pay(
        client, alice, "x", {"account_id": mine["id"], "key": PEER_KEY_EMAIL, "amount": "1.00"}
    ).json()
    attempts = [
        client.delete(f"/v1/pix/keys/{key['id']}", headers=bob.headers),
        client.get("/v1/pix/keys", params={"account_id": mine["id"]}, headers=bob.headers),
        register_key(client, bob, mine["id"]),
        client.get(f"/v1/pix/payments/{payment['end_to_end_id']}", headers=bob.headers),
        client.post(
            f"/v1/pix/payments/{payment['end_to_end_id']}/refunds",
            json={"amount": "1.00"},
            headers={**bob.headers, "Idempotency-Key": "r"},
        ),
        client.get(f"/v1/pix/charges/{charge['txid']}", headers=bob.headers),
        client.get(f"/v1/pix/charges/{charge['txid']}/qr.png", headers=bob.headers),
        client.get(f"/v1/pix/charges/{charge['txid']}/qr.svg", headers=bob.headers),
        client.post(
            "/v1/pix/charges",
            json={"account_id": theirs["id"], "key": key["key"], "amount": "1.00"},
            headers=bob.headers,
        ),
        pay(
            client,
            bob,
            "steal",
            {"account_id": mine["id"], "key": PEER_KEY_EMAIL, "amount": "1.00"},
        ),
        client.post(
            "/v1/sandbox/pix/incoming",
            json={"account_id": mine["id"], "amount": "1.00"},
            headers=bob.headers,
        ),
    ]
    for response in attempts:
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == PROBLEM
    assert client.get("/v1/pix/keys", headers=bob.headers).json() == []
    assert balance(client, alice, mine["id"]) == "49.00"


def test_sandbox_incoming_pix_is_refundable_and_pays_charges(
    client: TestClient[Litestar], alice: User
) -> None:
    account = open_account(client, alice)
    key = register_key(client, alice, account["id"]).json()["key"]
    charge = client.post(
        "/v1/pix/charges",
        json={"account_id": account["id"], "key": key, "amount": "15.00"},
        headers=alice.headers,
    ).json()
    incoming = client.post(
        "/v1/sandbox/pix/incoming",
        json={"account_id": account["id"], "amount": "15.00", "txid": charge["txid"]},
        headers=alice.headers,
    )
    assert incoming.status_code == 201, incoming.text
    received = incoming.json()
    assert (received["flow"], received["direction"]) == ("INCOMING", "received")
    assert received["payer"]["ispb"] == "88888888"
    assert balance(client, alice, account["id"]) == "15.00"
    charge_now = client.get(f"/v1/pix/charges/{charge['txid']}", headers=alice.headers).json()
    assert charge_now["status"] == "CONCLUIDA"
    refund = client.post(
        f"/v1/pix/payments/{received['end_to_end_id']}/refunds",
        json={"amount": "15.00", "nature": "ORIGINAL"},
        headers={**alice.headers, "Idempotency-Key": "back"},
    )
    assert refund.json()["status"] == "DEVOLVIDO"
    assert balance(client, alice, account["id"]) == "0.00"
    med = client.post(
        f"/v1/pix/payments/{received['end_to_end_id']}/refunds",
        json={"amount": "1.00", "nature": "MED_FRAUDE"},
        headers={**alice.headers, "Idempotency-Key": "med"},
    )
    assert med.status_code == 400


class InProcessWorker:
    """The settlement worker's handler over the app's own container and published events.

    On the memory profile without inline settlement nothing consumes the
    events; this plays the worker, in the app's event loop.
    """

    def __init__(self, client: TestClient[Litestar], container: BankContainer) -> None:
        self._client = client
        self._container = container
        self._done = 0

    def run_pending(self) -> PixSettlementHandler:
        async def run() -> PixSettlementHandler:
            container = self._container
            handler = PixSettlementHandler(
                await resolve(container.pix.settle_pix_payment()),
                await resolve(container.pix.settle_pix_refund()),
                await resolve(container.pix.receive_pix()),
            )
            events: InMemoryEventPublisher = await resolve(container.events.publisher())
            while self._done < len(events.published):
                self._done += 1
                await handler(events.published[self._done - 1])
            return handler

        return self._client.blocking_portal.call(run)


@pytest.fixture
def worker_container() -> BankContainer:
    return build_container(
        Settings(
            jwt=JwtOptions(secret=secrets.token_hex(32)), pix=PixOptions(inline_settlement=False)
        )
    )


@pytest.fixture
def worker_client(worker_container: BankContainer) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(worker_container)) as test_client:
        yield test_client


def test_without_inline_settlement_incoming_is_202_and_refunds_stay_in_progress(
    worker_client: TestClient[Litestar], worker_container: BankContainer
) -> None:
    client = worker_client
    worker = InProcessWorker(client, worker_container)
    carol = sign_up_and_log_in(client, "carol")
    account = open_account(client, carol)

    incoming = client.post(
        "/v1/sandbox/pix/incoming",
        json={"account_id": account["id"], "amount": "40.00"},
        headers=carol.headers,
    )

    assert incoming.status_code == 202, incoming.text
    e2e = incoming.json()["end_to_end_id"]
    location = f"/v1/pix/payments/{e2e}"
    assert incoming.json() == {"end_to_end_id": e2e, "status": "ACCEPTED", "location": location}
    assert incoming.headers["location"] == location
    assert client.get(location, headers=carol.headers).status_code == 404  # not credited yet
    assert balance(client, carol, account["id"]) == "0.00"
    worker.run_pending()
    credited = client.get(location, headers=carol.headers)
    assert (credited.status_code, credited.json()["status"]) == (200, "SETTLED")
    assert balance(client, carol, account["id"]) == "40.00"

    refund = client.post(
        f"{location}/refunds",
        json={"amount": "15.00"},
        headers={**carol.headers, "Idempotency-Key": "back"},
    )

    assert refund.status_code == 201, refund.text
    assert (refund.json()["status"], refund.json()["completed_at"]) == ("EM_PROCESSAMENTO", None)
    assert balance(client, carol, account["id"]) == "40.00"  # reserved, not posted
    handler = worker.run_pending()
    [done] = client.get(location, headers=carol.headers).json()["refunds"]
    assert (done["return_id"], done["status"]) == (refund.json()["return_id"], "DEVOLVIDO")
    assert balance(client, carol, account["id"]) == "25.00"
    assert handler.outcomes == {refund.json()["return_id"]: "DEVOLVIDO"}


def test_unknown_payment_and_charge_are_404(client: TestClient[Litestar], alice: User) -> None:
    for url in (f"/v1/pix/payments/E{uuid.uuid4().hex}", "/v1/pix/charges/nope"):
        response = client.get(url, headers=alice.headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM


def test_openapi_documents_the_pix_routes_with_problems(client: TestClient[Litestar]) -> None:
    schema = client.get("/schema/openapi.json").json()
    expected = {
        ("post", "/v1/pix/keys"),
        ("get", "/v1/pix/keys"),
        ("delete", "/v1/pix/keys/{key_id}"),
        ("post", "/v1/pix/payments"),
        ("get", "/v1/pix/payments/{e2e_id}"),
        ("post", "/v1/pix/payments/{e2e_id}/refunds"),
        ("post", "/v1/pix/charges"),
        ("get", "/v1/pix/charges/{txid}"),
        ("get", "/v1/pix/charges/{txid}/qr.png"),
        ("get", "/v1/pix/charges/{txid}/qr.svg"),
        ("post", "/v1/pix/brcodes/decode"),
        ("post", "/v1/sandbox/pix/incoming"),
    }
    present = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert expected <= present
    for method, path in expected:
        responses = schema["paths"][path][method]["responses"]
        assert any(PROBLEM in r.get("content", {}) for r in responses.values()), (method, path)
    params = schema["paths"]["/v1/pix/payments"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in params)
    incoming = schema["paths"]["/v1/sandbox/pix/incoming"]["post"]
    assert {"201", "202"} <= set(incoming["responses"])
    assert "202" in incoming["description"]
    assert "Location" in incoming["description"]
