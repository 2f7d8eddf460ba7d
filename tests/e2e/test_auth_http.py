"""Auth over HTTP: MFA, refresh rotation, logout, TOTP enrolment, rate limit, fail-closed.

The app runs on the memory profile with the container's clock replaced by a
FakeClock, so TOTP steps and TTLs move only when a test says so.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest
import redis
from dependency_injector import providers
from litestar import Litestar
from litestar.testing import TestClient

from finbank_adapters.containers import BankContainer, build_container
from finbank_adapters.memory import FakeClock
from finbank_adapters.settings import (
    AuthOptions,
    Backends,
    CacheBackend,
    DenylistBackend,
    JwtOptions,
    RedisOptions,
    Settings,
)
from finbank_http import create_app
from tests.e2e.conftest import open_account, sign_up_and_log_in
from tests.support_redis import own_redis_server

PROBLEM = "application/problem+json"
PASSWORD = "correct horse battery staple"


def app_client(settings: Settings, clock: FakeClock) -> tuple[BankContainer, TestClient[Litestar]]:
    container = build_container(settings)
    container.infra.clock.override(providers.Object(clock))
    return container, TestClient(create_app(container))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def api(clock: FakeClock) -> Iterator[TestClient[Litestar]]:
    _, client = app_client(Settings(jwt=JwtOptions(secret=secrets.token_hex(32))), clock)
    with client:
        yield client


@dataclass
class MfaUser:
    username: str
    totp: pyotp.TOTP


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(api: TestClient[Litestar], username: str, password: str = PASSWORD) -> Any:
    return api.post("/v1/auth/login", json={"username": username, "password": password})


def enrol_mfa_user(api: TestClient[Litestar], clock: FakeClock, username: str) -> MfaUser:
    assert (
        api.post("/v1/auth/signup", json={"username": username, "password": PASSWORD}).status_code
        == 201
    )
    access = login(api, username).json()["tokens"]["access_token"]
    setup = api.post(
        "/v1/auth/totp/setup",
        headers={**bearer(access), "X-Step-Up-Token": step_up(api, access)},
    )
    assert setup.status_code == 200, setup.text
    assert setup.json()["otpauth_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(setup.json()["secret"])
    verified = api.post(
        "/v1/auth/totp/verify", json={"code": totp.at(clock.now())}, headers=bearer(access)
    )
    assert verified.status_code == 204, verified.text
    clock.advance(30)  # the enrolment code's step is spent
    return MfaUser(username, totp)


def step_up(
    api: TestClient[Litestar], access: str, purpose: str = "mfa_change", **answer: str
) -> str:
    """A step-up token got with the password (or ``code=...``)."""
    response = api.post(
        "/v1/auth/step-up",
        json={"purpose": purpose, **(answer or {"password": PASSWORD})},
        headers=bearer(access),
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["step_up_token"]
    return token


def answer(api: TestClient[Litestar], challenge_id: str, code: str) -> Any:
    return api.post("/v1/auth/mfa", json={"challenge_id": challenge_id, "code": code})


def assert_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code


def test_mfa_login_returns_a_challenge_then_tokens_for_the_right_code(
    api: TestClient[Litestar], clock: FakeClock
) -> None:
    user = enrol_mfa_user(api, clock, "maria")
    body = login(api, "maria").json()
    assert body["mfa_required"] is True
    assert "tokens" not in body
    assert body["challenge_type"] == "SOFTWARE_TOKEN_MFA"
    assert body["expires_in"] == 180
    done = answer(api, body["challenge_id"], user.totp.at(clock.now()))
    assert done.status_code == 200, done.text
    tokens = done.json()["tokens"]
    assert api.get("/v1/accounts", headers=bearer(tokens["access_token"])).status_code == 200


def test_six_wrong_codes_the_sixth_finds_no_challenge(
    api: TestClient[Litestar], clock: FakeClock
) -> None:
    user = enrol_mfa_user(api, clock, "maria")
    challenge_id = login(api, "maria").json()["challenge_id"]
    right = user.totp.at(clock.now())
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert_problem(answer(api, challenge_id, wrong), 401, "incorrect_code")
    assert_problem(answer(api, challenge_id, wrong), 401, "mfa_challenge_invalid")
    assert_problem(answer(api, challenge_id, right), 401, "mfa_challenge_invalid")


def test_an_expired_or_reused_challenge_is_refused(
    api: TestClient[Litestar], clock: FakeClock
) -> None:
    user = enrol_mfa_user(api, clock, "maria")
    expired = login(api, "maria").json()["challenge_id"]
    clock.advance(180)
    assert_problem(answer(api, expired, user.totp.at(clock.now())), 401, "mfa_challenge_invalid")
    used = login(api, "maria").json()["challenge_id"]
    assert answer(api, used, user.totp.at(clock.now())).status_code == 200
    clock.advance(30)
    assert_problem(answer(api, used, user.totp.at(clock.now())), 401, "mfa_challenge_invalid")


def test_a_replayed_totp_code_is_refused(api: TestClient[Litestar], clock: FakeClock) -> None:
    user = enrol_mfa_user(api, clock, "maria")
    code = user.totp.at(clock.now())
    first = login(api, "maria").json()["challenge_id"]
    assert answer(api, first, code).status_code == 200
    second = login(api, "maria").json()["challenge_id"]
    assert_problem(answer(api, second, code), 401, "incorrect_code")


def test_malformed_mfa_requests_are_400_problems(api: TestClient[Litestar]) -> None:
    response = api.post("/v1/auth/mfa", json={"challenge_id": "x" * 500, "code": "123456"})
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM


def test_refresh_rotates_and_reuse_kills_the_session(api: TestClient[Litestar]) -> None:
    api.post("/v1/auth/signup", json={"username": "joao", "password": PASSWORD})
    tokens = login(api, "joao").json()["tokens"]
    renewed = api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert renewed.status_code == 200, renewed.text
    new_refresh = renewed.json()["refresh_token"]
    assert new_refresh != tokens["refresh_token"]
    stolen = api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_problem(stolen, 401, "invalid_token")
    legit = api.post("/v1/auth/refresh", json={"refresh_token": new_refresh})
    assert_problem(legit, 401, "invalid_token")


def test_after_logout_the_token_is_refused_on_every_protected_route(
    api: TestClient[Litestar],
) -> None:
    alice = sign_up_and_log_in(api, "alice")
    account = open_account(api, alice)
    assert api.post("/v1/auth/logout", headers=alice.headers).status_code == 204
    for response in protected_requests(api, alice.headers, account["id"]):
        assert_problem(response, 401, "invalid_token")
    assert_problem(api.post("/v1/auth/logout", headers=alice.headers), 401, "invalid_token")


def protected_requests(
    api: TestClient[Litestar], headers: dict[str, str], account_id: str
) -> list[Any]:
    return [
        api.get("/v1/accounts", headers=headers),
        api.post("/v1/accounts", json={"holder_name": "X"}, headers=headers),
        api.get(f"/v1/accounts/{account_id}", headers=headers),
        api.get(f"/v1/accounts/{account_id}/statement", headers=headers),
        api.post(
            "/v1/transfers",
            json={
                "from_account_id": account_id,
                "to_account_id": str(uuid.uuid4()),
                "amount": "1.00",
            },
            headers={**headers, "Idempotency-Key": "k1"},
        ),
        api.post(
            "/v1/sandbox/deposits",
            json={"account_id": account_id, "amount": "1.00"},
            headers=headers,
        ),
        api.post("/v1/auth/totp/setup", headers=headers),
    ]


def test_a_tampered_token_is_refused_on_every_protected_route(
    api: TestClient[Litestar],
) -> None:
    alice = sign_up_and_log_in(api, "alice")
    account = open_account(api, alice)
    token = alice.headers["Authorization"].removeprefix("Bearer ")
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    for response in protected_requests(api, bearer(forged), account["id"]):
        assert response.status_code == 401, response.text


def test_user_a_token_on_user_b_accounts_is_404_with_no_state_change(
    api: TestClient[Litestar],
) -> None:
    alice = sign_up_and_log_in(api, "alice")
    bob = sign_up_and_log_in(api, "bob")
    victim = open_account(api, bob)
    before = api.get(f"/v1/accounts/{victim['id']}", headers=bob.headers).json()
    for response in protected_requests(api, alice.headers, victim["id"])[2:-1]:
        assert_problem(response, 404, response.json()["code"])
    after = api.get(f"/v1/accounts/{victim['id']}", headers=bob.headers).json()
    assert after == before


def test_unknown_user_and_wrong_password_look_the_same(api: TestClient[Litestar]) -> None:
    api.post("/v1/auth/signup", json={"username": "joao", "password": PASSWORD})
    wrong = login(api, "joao", "not the password!")
    unknown = login(api, "nobody", "not the password!")
    assert_problem(wrong, 401, "invalid_credentials")
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_auth_routes_are_rate_limited_per_client(clock: FakeClock) -> None:
    settings = Settings(
        jwt=JwtOptions(secret=secrets.token_hex(32)), auth=AuthOptions(rate_limit_per_minute=3)
    )
    _, client = app_client(settings, clock)
    with client:
        statuses = [login(client, "x", "whatever-password").status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        assert client.get("/health").status_code == 200  # other routes are not limited


def test_auth_routes_use_redis_for_the_rate_limit_and_fail_closed_when_it_stops(
    clock: FakeClock,
) -> None:
    with own_redis_server() as (server, port):
        settings = Settings(
            jwt=JwtOptions(secret=secrets.token_hex(32)),
            backends=Backends(
                challenges=CacheBackend.REDIS,
                throttle=CacheBackend.REDIS,
                denylist=DenylistBackend.REDIS,
                refresh_tokens=CacheBackend.REDIS,
                rate_limit=CacheBackend.REDIS,
            ),
            redis=RedisOptions(url=f"redis://127.0.0.1:{port}/0", timeout_seconds=0.5),
        )
        _, client = app_client(settings, clock)
        with client:
            user = enrol_mfa_user(client, clock, "maria")
            other = sign_up_and_log_in(client, "joao")
            challenge_id = login(client, "maria").json()["challenge_id"]
            with redis.Redis(host="127.0.0.1", port=port) as direct:
                assert direct.keys("finbank:ratelimit*"), "the rate limiter counts in Redis"

            server.kill()
            server.wait(timeout=10)

            response = answer(client, challenge_id, user.totp.at(clock.now()))
            assert_problem(response, 503, "service_unavailable")
            assert_problem(
                client.get("/v1/accounts", headers=other.headers), 503, "service_unavailable"
            )
