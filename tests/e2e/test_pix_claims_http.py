"""Key claims, key look-ups and devices over HTTP, on the memory and local profiles.

The local profile runs on the machine's PostgreSQL (a schema of its own; PIX
stores on PostgreSQL, its default) and Redis (look-up buckets, a key prefix
of its own). The app's clock is a ``FakeClock`` moved across each deadline;
tokens are issued on it too, so a user logs in again after a long move.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from dependency_injector import providers
from litestar.testing import AsyncTestClient

from finbank_adapters.containers import build_container
from finbank_adapters.memory import FakeClock
from finbank_adapters.settings import JwtOptions, Settings
from finbank_http import create_app
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

EMAIL = "ana.souza@example.com"


@dataclass
class Api:
    client: AsyncTestClient[Any]
    clock: FakeClock
    passwords: dict[str, str]

    async def log_in(self, username: str) -> dict[str, str]:
        if username not in self.passwords:
            self.passwords[username] = f"pw-{secrets.token_hex(8)}"
            body = {"username": username, "password": self.passwords[username]}
            response = await self.client.post("/v1/auth/signup", json=body)
            assert response.status_code == 201, response.text
        body = {"username": username, "password": self.passwords[username]}
        response = await self.client.post("/v1/auth/login", json=body)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['tokens']['access_token']}"}

    async def step_up(
        self, username: str, headers: dict[str, str], purpose: str = "pix_limit_raise"
    ) -> dict[str, str]:
        """``headers`` with a fresh step-up token for ``purpose`` (the password re-entered)."""
        response = await self.client.post(
            "/v1/auth/step-up",
            json={"purpose": purpose, "password": self.passwords[username]},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        return {**headers, "X-Step-Up-Token": response.json()["step_up_token"]}

    async def account(self, headers: dict[str, str]) -> str:
        response = await self.client.post(
            "/v1/accounts", json={"holder_name": "Holder"}, headers=headers
        )
        assert response.status_code == 201, response.text
        account_id: str = response.json()["id"]
        return account_id


def _local_settings(schema: str, redis_prefix: str) -> Settings:
    return Settings.from_env(
        {
            "FINBANK_PROFILE": "local",
            "FINBANK_PIX_BACKEND": "postgres",
            "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
            "FINBANK_REDIS_KEY_PREFIX": redis_prefix,
            "FINBANK_JWT_SECRET": secrets.token_hex(32),
            "FINBANK_SANDBOX": "true",
        }
    )


@pytest.fixture(params=["memory", "local"])
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    clock = FakeClock()
    if request.param == "memory":
        container = build_container(Settings(jwt=JwtOptions(secret=secrets.token_hex(32))))
        container.infra.clock.override(providers.Object(clock))
        async with AsyncTestClient(app=create_app(container)) as client:
            yield Api(client, clock, {})
        return
    require_postgres()
    async with isolated_schema() as (_pool, schema), open_test_redis() as (_redis, prefix):
        settings = _local_settings(schema, prefix)
        assert (settings.backends.pix, settings.backends.throttle) == ("postgres", "redis")
        container = build_container(settings)
        container.infra.clock.override(providers.Object(clock))
        async with AsyncTestClient(app=create_app(container)) as client:
            yield Api(client, clock, {})


async def _holder_and_claimer(api: Api) -> tuple[dict[str, str], str, dict[str, str], str]:
    alice = await api.log_in("alice")
    alice_account = await api.account(alice)
    response = await api.client.post(
        "/v1/pix/keys",
        json={"account_id": alice_account, "key_type": "EMAIL", "key": EMAIL},
        headers=alice,
    )
    assert response.status_code == 201, response.text
    bob = await api.log_in("bob")
    return alice, alice_account, bob, await api.account(bob)


async def _open(api: Api, bob: dict[str, str], account: str) -> dict[str, Any]:
    response = await api.client.post(
        "/v1/pix/claims",
        json={"account_id": account, "claim_type": "OWNERSHIP", "key_type": "EMAIL", "key": EMAIL},
        headers=bob,
    )
    assert response.status_code == 201, response.text
    claim: dict[str, Any] = response.json()
    return claim


async def test_an_ownership_claim_moves_the_key_between_two_customers(api: Api) -> None:
    alice, alice_account, bob, bob_account = await _holder_and_claimer(api)
    claim = await _open(api, bob, bob_account)
    assert (claim["status"], claim["role"], claim["account_id"]) == (
        "WAITING_RESOLUTION",
        "CLAIMER",
        bob_account,
    )
    listed = (await api.client.get("/v1/pix/claims", headers=alice)).json()
    assert [(c["id"], c["role"], c["account_id"]) for c in listed] == [
        (claim["id"], "DONOR", alice_account)
    ]
    path = f"/v1/pix/claims/{claim['id']}"
    refused = await api.client.post(f"{path}/confirm", headers=bob)  # not the holder
    assert refused.status_code == 422
    assert refused.json()["code"] == "pix_key_claim_not_allowed"
    early = await api.client.post(f"{path}/complete", headers=bob)  # not confirmed yet
    assert early.status_code == 409
    confirmed = await api.client.post(f"{path}/confirm", headers=alice)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "CONFIRMED"
    done = await api.client.post(f"{path}/complete", headers=bob)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "COMPLETED"
    assert (await api.client.get("/v1/pix/keys", headers=alice)).json() == []
    [key] = (await api.client.get("/v1/pix/keys", headers=bob)).json()
    assert (key["key"], key["account_id"]) == (EMAIL, bob_account)
    carol = await api.log_in("carol")
    assert (await api.client.get(path, headers=carol)).status_code == 404


async def test_the_holders_period_ends_on_the_clock(api: Api) -> None:
    alice, _alice_account, bob, bob_account = await _holder_and_claimer(api)
    claim = await _open(api, bob, bob_account)
    path = f"/v1/pix/claims/{claim['id']}"
    api.clock.advance(days=7)  # exactly at the end of the resolution period
    alice = await api.log_in("alice")
    late = await api.client.post(f"{path}/cancel", json={}, headers=alice)
    assert late.status_code == 422
    assert late.json()["code"] == "pix_key_claim_period_ended"
    seen = (await api.client.get(path, headers=alice)).json()
    assert (seen["status"], seen["confirmed_by"]) == ("CONFIRMED", "DIRECTORY")


async def test_a_holder_contests_within_the_period(api: Api) -> None:
    alice, alice_account, bob, bob_account = await _holder_and_claimer(api)
    claim = await _open(api, bob, bob_account)
    api.clock.advance(days=7, microseconds=-1)
    alice = await api.log_in("alice")
    cancelled = await api.client.post(
        f"/v1/pix/claims/{claim['id']}/cancel", json={"reason": "USER_REQUESTED"}, headers=alice
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    [key] = (await api.client.get("/v1/pix/keys", headers=alice)).json()
    assert key["account_id"] == alice_account


async def test_bad_claim_input_is_a_problem_naming_the_field(api: Api) -> None:
    bob = await api.log_in("bob")
    account = await api.account(bob)
    response = await api.client.post(
        "/v1/pix/claims",
        json={"account_id": account, "claim_type": "THEFT", "key_type": "EMAIL", "key": EMAIL},
        headers=bob,
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "claim_type" in response.text
    unknown = await api.client.post(
        "/v1/pix/claims",
        json={"account_id": account, "claim_type": "OWNERSHIP", "key_type": "EMAIL", "key": EMAIL},
        headers=bob,
    )
    assert unknown.status_code == 422  # nobody holds the key: register it instead
    assert (await api.client.get("/v1/pix/claims", headers=bob)).json() == []


async def test_key_look_ups_over_the_bucket_get_429_with_retry_after(api: Api) -> None:
    alice, alice_account, bob, bob_account = await _holder_and_claimer(api)
    found = await api.client.post(
        "/v1/pix/key-lookups", json={"account_id": bob_account, "key": EMAIL}, headers=bob
    )
    assert found.status_code == 200, found.text
    assert found.json()["owner_name"] == "Holder"
    assert found.json()["key_type"] == "EMAIL"
    for n in range(5):  # 99 tokens left: five misses of 20 empty the bucket
        miss = await api.client.post(
            "/v1/pix/key-lookups",
            json={"account_id": bob_account, "key": f"nobody{n}@example.com"},
            headers=bob,
        )
        assert miss.status_code == 404
    limited = await api.client.post(
        "/v1/pix/key-lookups", json={"account_id": bob_account, "key": EMAIL}, headers=bob
    )
    assert limited.status_code == 429
    assert limited.json()["code"] == "pix_key_lookup_rate_limited"
    assert limited.headers["retry-after"] == "30"
    # another customer's bucket is their own
    other = await api.client.post(
        "/v1/pix/key-lookups", json={"account_id": alice_account, "key": EMAIL}, headers=alice
    )
    assert other.status_code == 200
    api.clock.advance(30)
    bob = await api.log_in("bob")
    again = await api.client.post(
        "/v1/pix/key-lookups", json={"account_id": bob_account, "key": EMAIL}, headers=bob
    )
    assert again.status_code == 200, again.text


def _tier(day_tx: str, day: str, night_tx: str, night: str) -> dict[str, str]:
    return {
        "day_per_transaction": day_tx,
        "day_per_period": day,
        "night_per_transaction": night_tx,
        "night_per_period": night,
    }


async def test_limits_lower_at_once_and_raise_after_24_hours(api: Api) -> None:
    alice = await api.log_in("alice")
    account = await api.account(alice)
    url = f"/v1/pix/limits?account_id={account}"
    shown = (await api.client.get(url, headers=alice)).json()
    assert shown["in_force"] == _tier("5000.00", "20000.00", "1000.00", "1000.00")
    assert shown["pending_raise"] is None
    lowered = await api.client.put(
        "/v1/pix/limits",
        json={"account_id": account, "limits": _tier("100.00", "500.00", "50.00", "200.00")},
        headers=alice,
    )
    assert lowered.status_code == 200, lowered.text
    assert lowered.json()["in_force"] == _tier("100.00", "500.00", "50.00", "200.00")
    asked_at = api.clock.now()
    raised = await api.client.put(
        "/v1/pix/limits",
        json={"account_id": account, "limits": _tier("6000.00", "500.00", "50.00", "200.00")},
        headers=await api.step_up("alice", alice),
    )
    assert raised.status_code == 200, raised.text
    body = raised.json()
    assert body["in_force"] == _tier("100.00", "500.00", "50.00", "200.00")  # not yet
    assert body["pending_raise"] == _tier("6000.00", "500.00", "50.00", "200.00")
    effective_at = asked_at + timedelta(hours=24)
    assert body["pending_effective_at"].replace("Z", "+00:00") == effective_at.isoformat()
    api.clock.set(effective_at - timedelta(microseconds=1))
    alice = await api.log_in("alice")
    still = (await api.client.get(url, headers=alice)).json()
    assert still["in_force"]["day_per_transaction"] == "100.00"
    assert still["pending_raise"] is not None
    api.clock.set(effective_at)  # exactly 24 hours after the request
    alice = await api.log_in("alice")
    applied = (await api.client.get(url, headers=alice)).json()
    assert applied["in_force"]["day_per_transaction"] == "6000.00"
    assert applied["pending_raise"] is None


async def test_a_pending_raise_is_withdrawn(api: Api) -> None:
    alice = await api.log_in("alice")
    account = await api.account(alice)
    raised = await api.client.put(
        "/v1/pix/limits",
        json={"account_id": account, "limits": _tier("9000.00", "20000.00", "1000.00", "1000.00")},
        headers=await api.step_up("alice", alice),
    )
    assert raised.json()["pending_raise"] is not None
    withdrawn = await api.client.delete(
        f"/v1/pix/limits/pending-raise?account_id={account}", headers=alice
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["pending_raise"] is None
    api.clock.advance(hours=25)
    alice = await api.log_in("alice")
    shown = (await api.client.get(f"/v1/pix/limits?account_id={account}", headers=alice)).json()
    assert shown["in_force"]["day_per_transaction"] == "5000.00"


async def test_bad_limits_input_and_someone_elses_account(api: Api) -> None:
    alice = await api.log_in("alice")
    account = await api.account(alice)
    bad = await api.client.put(
        "/v1/pix/limits",
        json={"account_id": account, "limits": _tier("12.5", "500.00", "50.00", "200.00")},
        headers=alice,
    )
    assert bad.status_code == 400
    assert "day_per_transaction" in bad.text
    bob = await api.log_in("bob")
    other = await api.client.get(f"/v1/pix/limits?account_id={account}", headers=bob)
    assert other.status_code == 404


async def test_devices_used_for_pix_are_listed(api: Api) -> None:
    alice = await api.log_in("alice")
    account = await api.account(alice)
    deposit = await api.client.post(
        "/v1/sandbox/deposits", json={"account_id": account, "amount": "100.00"}, headers=alice
    )
    assert deposit.status_code == 201, deposit.text
    bob = await api.log_in("bob")
    bob_account = await api.account(bob)
    key = await api.client.post(
        "/v1/pix/keys", json={"account_id": bob_account, "key_type": "EVP"}, headers=bob
    )
    assert key.status_code == 201, key.text
    assert (await api.client.get("/v1/pix/devices", headers=alice)).json() == []
    paid = await api.client.post(
        "/v1/pix/payments",
        json={"account_id": account, "amount": "10.00", "key": key.json()["key"]},
        headers={**alice, "Idempotency-Key": "pay-1", "X-Device-Id": "phone-1"},
    )
    assert paid.status_code == 201, paid.text
    [device] = (await api.client.get("/v1/pix/devices", headers=alice)).json()
    assert device["device_id"] == "phone-1"
    assert device["new_device"] is True
    assert (await api.client.get("/v1/pix/devices", headers=bob)).json() == []


async def test_the_routes_are_in_the_openapi_document(api: Api) -> None:
    document = (await api.client.get("/schema/openapi.json")).json()
    expected = {
        ("/v1/pix/claims", "post"): ("openPixKeyClaim", {"400", "401", "404", "409", "422"}),
        ("/v1/pix/claims", "get"): ("listPixKeyClaims", {"401"}),
        ("/v1/pix/claims/{claim_id}", "get"): ("getPixKeyClaim", {"404"}),
        ("/v1/pix/claims/{claim_id}/confirm", "post"): ("confirmPixKeyClaim", {"404", "422"}),
        ("/v1/pix/claims/{claim_id}/cancel", "post"): ("cancelPixKeyClaim", {"404", "422"}),
        ("/v1/pix/claims/{claim_id}/complete", "post"): ("completePixKeyClaim", {"409", "422"}),
        ("/v1/pix/key-lookups", "post"): ("lookupPixKey", {"404", "429"}),
        ("/v1/pix/limits", "get"): ("getPixLimits", {"404"}),
        ("/v1/pix/limits", "put"): ("setPixLimits", {"400", "403", "422"}),
        ("/v1/pix/limits/pending-raise", "delete"): ("cancelPixLimitRaise", {"404"}),
        ("/v1/pix/devices", "get"): ("listPixDevices", {"401"}),
    }
    for (path, method), (operation_id, statuses) in expected.items():
        operation = document["paths"][path][method]
        assert operation["operationId"] == operation_id
        assert statuses <= set(operation["responses"]), operation_id
    codes = document["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
    assert {"pix_key_claim_period_ended", "pix_key_lookup_rate_limited"} <= set(codes)


async def test_a_raise_without_a_step_up_is_refused_and_changes_nothing(api: Api) -> None:
    """A stolen access token alone cannot raise a limit; it can still lower one."""
    alice = await api.log_in("alice")
    account = await api.account(alice)
    body = {"account_id": account, "limits": _tier("9000.00", "20000.00", "1000.00", "1000.00")}
    refused = await api.client.put("/v1/pix/limits", json=body, headers=alice)
    assert refused.status_code == 403
    assert refused.json()["code"] == "step_up_required"
    wrong_purpose = await api.step_up("alice", alice, purpose="mfa_change")
    refused = await api.client.put("/v1/pix/limits", json=body, headers=wrong_purpose)
    assert refused.status_code == 403
    stepped_up = await api.step_up("alice", alice)
    accepted = await api.client.put("/v1/pix/limits", json=body, headers=stepped_up)
    assert accepted.status_code == 200, accepted.text
    again = await api.client.put("/v1/pix/limits", json=body, headers=stepped_up)  # single use
    assert again.status_code == 403
    shown = (await api.client.get(f"/v1/pix/limits?account_id={account}", headers=alice)).json()
    assert shown["in_force"]["day_per_transaction"] == "5000.00"
    assert shown["pending_raise"]["day_per_transaction"] == "9000.00"
    lowered = await api.client.put(
        "/v1/pix/limits",
        json={"account_id": account, "limits": _tier("10.00", "10.00", "10.00", "10.00")},
        headers=alice,
    )
    assert lowered.status_code == 200, lowered.text
    assert lowered.json()["in_force"] == _tier("10.00", "10.00", "10.00", "10.00")


async def test_a_later_night_without_a_step_up_is_refused_and_an_earlier_one_applies(
    api: Api,
) -> None:
    """Moving the night's start to 22:00 puts two hours of every night under the day's
    figures: a raise, so a stolen access token alone cannot do it; moving it back can."""
    alice = await api.log_in("alice")
    account = await api.account(alice)
    shown = (await api.client.get(f"/v1/pix/limits?account_id={account}", headers=alice)).json()
    body = {"account_id": account, "limits": shown["in_force"], "late_night": True}
    refused = await api.client.put("/v1/pix/limits", json=body, headers=alice)
    assert (refused.status_code, refused.json()["code"]) == (403, "step_up_required")
    after = (await api.client.get(f"/v1/pix/limits?account_id={account}", headers=alice)).json()
    assert after == shown
    assert after["late_night"] is False

    stepped_up = await api.step_up("alice", alice)
    accepted = await api.client.put("/v1/pix/limits", json=body, headers=stepped_up)
    assert accepted.status_code == 200, accepted.text
    pending = accepted.json()
    assert pending["late_night"] is False  # not yet: it waits like any raise
    assert pending["pending_late_night"] is True
    assert pending["pending_effective_at"] is not None

    back = await api.client.put("/v1/pix/limits", json={**body, "late_night": False}, headers=alice)
    assert back.status_code == 200, back.text
    assert back.json()["late_night"] is False
    assert back.json()["pending_late_night"] is None  # the newer request replaced it
