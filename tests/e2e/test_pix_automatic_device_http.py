"""Journey 3's first payment is under the device caps like any PIX payment, over HTTP.

``POST /v1/pix/automatic/authorisations/pay`` pays the immediate charge with
``SendPix``. With ``FINBANK_PIX_UNNAMED_DEVICE_IS_NEW`` on (the aws profile's
default), a payment that names no device is held to the new-device figures
(R$ 200.00 a payment), so the route takes ``X-Device-Id`` as ``POST
/v1/pix/payments`` does: a customer on a trusted device pays a R$ 300.00 plan.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import httpx
import jwt
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from finbank.bank import configure
from finbank_adapters.containers import BankContainer, build_container, resolve
from finbank_adapters.memory import FakeClock
from finbank_adapters.settings import JwtOptions, Settings
from tests.e2e.conftest import deposit, open_account
from tests.e2e.test_pix_automatic_http import (  # client: an app on this module's container
    Member,
    balance,
    client,
    join,
    recurrence_body,
)

__all__ = ["client"]  # fixture


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def container(clock: FakeClock) -> BankContainer:
    settings = Settings(jwt=JwtOptions(secret=secrets.token_hex(32)))
    pix = msgspec.structs.replace(settings.pix, unnamed_device_is_new=True)
    built = build_container(msgspec.structs.replace(settings, pix=pix))
    configure(built, clock=clock)
    return built


def subject_of(member: Member) -> str:
    token = member.headers["Authorization"].removeprefix("Bearer ")
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def journey_three(client: TestClient[Litestar], gym: Member, amount: str) -> str:
    """A recurrence of ``amount`` a month and its Journey 3 code (immediate charge too)."""
    shop = open_account(client, gym, "Academia Forte Ltda")
    key = client.post(
        "/v1/pix/keys", json={"account_id": shop["id"], "key_type": "EVP"}, headers=gym.headers
    ).json()["key"]
    charge = client.post(
        "/v1/pix/charges",
        json={"account_id": shop["id"], "key": key, "amount": amount},
        headers=gym.headers,
    ).json()
    rec_id = client.post(
        "/v1/pix/automatic/recurrences",
        json=recurrence_body(shop["id"], fixed_amount=amount),
        headers=gym.headers,
    ).json()["recurrence_id"]
    brcode: str = client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/codes",
        json={"journey": "JORNADA_3", "charge_txid": charge["txid"]},
        headers=gym.headers,
    ).json()["brcode"]
    return brcode


async def test_journey_three_pays_from_a_trusted_device_and_is_capped_without_one(
    client: TestClient[Litestar], container: BankContainer, clock: FakeClock
) -> None:
    gym, ana = join(client, "gym"), join(client, "ana")
    wallet = open_account(client, ana, "Ana Souza")
    deposit(client, ana, wallet["id"], "1000.00")
    devices = await resolve(container.pix.device_registry())
    await devices.record_use(subject_of(ana), "ana-phone", clock.now() - timedelta(days=2))

    def pay(brcode: str, key: str, device: str | None) -> httpx.Response:
        headers = {**ana.headers, "Idempotency-Key": key}
        if device is not None:
            headers["X-Device-Id"] = device
        body = {"account_id": wallet["id"], "br_code": brcode}
        return client.post("/v1/pix/automatic/authorisations/pay", json=body, headers=headers)

    unnamed = pay(journey_three(client, gym, "300.00"), "no-device", None)
    trusted = pay(journey_three(client, gym, "300.00"), "on-her-phone", "ana-phone")

    assert unnamed.status_code == 422, unnamed.text
    assert unnamed.json()["limit"] == "new_device_per_transaction"
    assert trusted.status_code == 201, trusted.text
    assert trusted.json()["authorised"] is True
    assert balance(client, ana, wallet["id"]) == "700.00"  # paid once, from the phone
