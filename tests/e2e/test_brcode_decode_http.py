"""POST /v1/pix/brcodes/decode: tolerant by default with the deviations, strict on request."""

from __future__ import annotations

import json
import pathlib

from litestar import Litestar
from litestar.testing import TestClient

from tests.e2e.conftest import User, deposit, open_account

CORPUS = json.loads(
    (pathlib.Path(__file__).parent.parent / "unit" / "pix" / "corpus" / "brcodes.json").read_text(
        encoding="utf-8"
    )
)
PROBLEM = "application/problem+json"


def entry(entry_id: str) -> dict[str, str]:
    found: dict[str, str] = next(e for e in CORPUS["valid"] if e["id"] == entry_id)
    return found


def test_tolerant_decode_returns_the_reading_and_its_deviations(
    client: TestClient[Litestar], alice: User
) -> None:
    code = entry("stone-amount-10-point")["code"]
    response = client.post(
        "/v1/pix/brcodes/decode", json={"br_code": code + "\n"}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["kind"], body["key"], body["amount"], body["txid"]) == (
        "static",
        "11111111111",
        "10.00",
        "b4b4c4",
    )
    assert [(d["code"], d["field"]) for d in body["deviations"]] == [
        ("surrounding_whitespace", "payload"),
        ("amount_trailing_point", "54"),
    ]
    assert all(d["message"] for d in body["deviations"])


def test_strict_decode_refuses_the_same_code_naming_the_field(
    client: TestClient[Litestar], alice: User
) -> None:
    code = entry("stone-amount-10-point")["code"]
    response = client.post(
        "/v1/pix/brcodes/decode", json={"br_code": code, "mode": "strict"}, headers=alice.headers
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["code"] == "invalid_br_code"
    assert problem["detail"].startswith("BR Code field 54:")


def test_recurrence_only_code_decodes_in_both_modes(
    client: TestClient[Litestar], alice: User
) -> None:
    code = entry("bcb-composite-recurrence-only")["code"]
    for mode in ("strict", "tolerant"):
        body = client.post(
            "/v1/pix/brcodes/decode", json={"br_code": code, "mode": mode}, headers=alice.headers
        ).json()
        assert body["kind"] == "recurrence"
        assert body["recurrence_location"] == "pix.example.com/rec/2353c790eefb11eaadc10242ac120002"
        assert (body["key"], body["location"], body["deviations"]) == (None, None, [])


def test_broken_code_and_unknown_mode_answer_400(client: TestClient[Litestar], alice: User) -> None:
    broken = next(e for e in CORPUS["invalid"] if e["id"] == "pix-pendencias-8-crc-zeroed")
    response = client.post(
        "/v1/pix/brcodes/decode", json={"br_code": broken["code"]}, headers=alice.headers
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("BR Code field 63:")
    response = client.post(
        "/v1/pix/brcodes/decode",
        json={"br_code": broken["code"], "mode": "lenient"},
        headers=alice.headers,
    )
    assert response.status_code == 400


def test_a_pasted_static_charge_code_pays_over_http(
    client: TestClient[Litestar], alice: User, bob: User
) -> None:
    shop, payer = open_account(client, bob, "Bob Loja"), open_account(client, alice, "Alice")
    deposit(client, alice, payer["id"], "100.00")
    key = client.post(
        "/v1/pix/keys", json={"account_id": shop["id"], "key_type": "EVP"}, headers=bob.headers
    ).json()["key"]
    charge = client.post(
        "/v1/pix/charges",
        json={"account_id": shop["id"], "key": key, "amount": "42.50"},
        headers=bob.headers,
    ).json()
    static = charge["brcode_static"]
    pasted = "\n" + static[:-4] + static[-4:].lower() + " \r\n"
    paid = client.post(
        "/v1/pix/payments",
        json={"account_id": payer["id"], "br_code": pasted},
        headers={**alice.headers, "Idempotency-Key": "pasted"},
    )
    assert paid.status_code == 201, paid.text
    assert (paid.json()["amount"], paid.json()["status"]) == ("42.50", "SETTLED")
    after = client.get(f"/v1/pix/charges/{charge['txid']}", headers=bob.headers).json()
    assert after["status"] == "CONCLUIDA"
