"""Step-up, password change, confirm and holder validation over HTTP (memory profile).

The issue's scenario: with MFA on, a stolen access token alone swapped the
authenticator through ``/v1/auth/totp/setup`` then ``/totp/verify``. Now the
swap needs a step-up token (``X-Step-Up-Token``), which needs the password
or the current code.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from finbank_adapters.memory import FakeClock
from finbank_adapters.settings import JwtOptions, Settings
from tests.e2e.conftest import sign_up_and_log_in
from tests.e2e.test_auth_http import (
    PASSWORD,
    MfaUser,
    answer,
    app_client,
    assert_problem,
    bearer,
    enrol_mfa_user,
    login,
    step_up,
)

NEW_PASSWORD = "another long passphrase 7"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def api(clock: FakeClock) -> Iterator[TestClient[Litestar]]:
    _, client = app_client(Settings(jwt=JwtOptions(secret=secrets.token_hex(32))), clock)
    with client:
        yield client


def mfa_access(api: TestClient[Litestar], clock: FakeClock, user: MfaUser) -> str:
    challenge_id = login(api, user.username).json()["challenge_id"]
    response = answer(api, challenge_id, user.totp.at(clock.now()))
    assert response.status_code == 200, response.text
    clock.advance(30)
    token: str = response.json()["tokens"]["access_token"]
    return token


@pytest.fixture
def victim(api: TestClient[Litestar], clock: FakeClock) -> tuple[MfaUser, str]:
    user = enrol_mfa_user(api, clock, "victim")
    return user, mfa_access(api, clock, user)


def test_a_stolen_access_token_cannot_swap_or_remove_the_authenticator(
    api: TestClient[Litestar], clock: FakeClock, victim: tuple[MfaUser, str]
) -> None:
    user, stolen = victim
    assert_problem(api.post("/v1/auth/totp/setup", headers=bearer(stolen)), 403, "step_up_required")
    forged = {**bearer(stolen), "X-Step-Up-Token": "A" * 43}
    assert_problem(api.post("/v1/auth/totp/setup", headers=forged), 403, "step_up_required")
    assert_problem(api.delete("/v1/auth/totp", headers=bearer(stolen)), 403, "step_up_required")
    wrong_password = api.post(
        "/v1/auth/step-up",
        json={"purpose": "mfa_change", "password": "a guessed passphrase"},
        headers=bearer(stolen),
    )
    assert_problem(wrong_password, 401, "invalid_credentials")
    wrong_code = f"{(int(user.totp.at(clock.now())) + 1) % 1_000_000:06d}"
    assert_problem(
        api.post(
            "/v1/auth/step-up",
            json={"purpose": "mfa_change", "code": wrong_code},
            headers=bearer(stolen),
        ),
        401,
        "incorrect_code",
    )
    # The victim's authenticator still logs in.
    assert mfa_access(api, clock, user)


def test_the_owner_steps_up_with_the_current_code_once(
    api: TestClient[Litestar], clock: FakeClock, victim: tuple[MfaUser, str]
) -> None:
    user, access = victim
    token = step_up(api, access, code=user.totp.at(clock.now()))
    headers = {**bearer(access), "X-Step-Up-Token": token}
    setup = api.post("/v1/auth/totp/setup", headers=headers)
    assert setup.status_code == 200, setup.text
    assert setup.headers["cache-control"] == "no-store"
    assert_problem(api.post("/v1/auth/totp/setup", headers=headers), 403, "step_up_required")
    new = pyotp.TOTP(setup.json()["secret"])
    clock.advance(30)  # the step-up spent this step's code: a step is accepted once per user
    verified = api.post(
        "/v1/auth/totp/verify", json={"code": new.at(clock.now())}, headers=bearer(access)
    )
    assert verified.status_code == 204, verified.text


def test_a_step_up_token_for_another_purpose_is_refused(
    api: TestClient[Litestar], victim: tuple[MfaUser, str]
) -> None:
    _, access = victim
    token = step_up(api, access, purpose="pix_limit_raise")
    assert_problem(
        api.delete("/v1/auth/totp", headers={**bearer(access), "X-Step-Up-Token": token}),
        403,
        "step_up_required",
    )


def test_removing_the_authenticator_with_a_step_up(
    api: TestClient[Litestar], victim: tuple[MfaUser, str]
) -> None:
    user, access = victim
    headers = {**bearer(access), "X-Step-Up-Token": step_up(api, access)}
    assert api.delete("/v1/auth/totp", headers=headers).status_code == 204
    assert "tokens" in login(api, user.username).json()  # no MFA challenge any more


def test_a_step_up_needs_a_bearer_token_before_its_body_is_read(
    api: TestClient[Litestar],
) -> None:
    assert_problem(api.post("/v1/auth/step-up", json={"nonsense": 1}), 401, "invalid_token")


def test_changing_the_password_needs_the_current_one(
    api: TestClient[Litestar], victim: tuple[MfaUser, str]
) -> None:
    user, access = victim
    wrong = api.post(
        "/v1/auth/password",
        json={"current_password": "not the password", "new_password": NEW_PASSWORD},
        headers=bearer(access),
    )
    assert_problem(wrong, 401, "invalid_credentials")
    short = api.post(
        "/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(access),
    )
    assert short.status_code == 400
    changed = api.post(
        "/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(access),
    )
    assert changed.status_code == 204, changed.text
    assert_problem(login(api, user.username), 401, "invalid_credentials")
    assert login(api, user.username, NEW_PASSWORD).status_code == 200


def test_confirm_answers_alike_for_an_existing_and_an_unknown_user(
    api: TestClient[Litestar],
) -> None:
    assert (
        api.post("/v1/auth/signup", json={"username": "known", "password": PASSWORD}).status_code
        == 201
    )
    answers: list[Any] = [
        api.post("/v1/auth/confirm", json={"username": name, "code": code})
        for name, code in (("known", "123456"), ("unknown-user", "123456"), ("known", "000000"))
    ]
    for response in answers:
        assert_problem(response, 401, "authentication_failed")
    bodies = [{k: v for k, v in r.json().items() if k != "instance"} for r in answers]
    assert bodies[0] == bodies[1] == bodies[2]


@pytest.mark.parametrize(
    ("holder", "field"),
    [
        ({"holder_name": "Ana", "holder_document": "hello"}, "holder_document"),
        ({"holder_name": "Ana", "holder_document": "529.982.247-26"}, "holder_document"),
        (
            {"holder_name": "Acme", "holder_type": "company", "holder_document": "52998224725"},
            "holder_document",
        ),
        ({"holder_name": "Ana\u200bSouza"}, "holder_name"),
        ({"holder_name": "   "}, "holder_name"),
    ],
)
def test_bad_holders_are_a_problem_naming_the_field(
    api: TestClient[Litestar], holder: dict[str, str], field: str
) -> None:
    user = sign_up_and_log_in(api, f"u{uuid.uuid4().hex[:8]}")
    response = api.post("/v1/accounts", json=holder, headers=user.headers)
    assert_problem(response, 400, "invalid_holder")
    problem = response.json()
    assert problem["field"] == field
    assert "52998224725" not in response.text
    assert api.get("/v1/accounts", headers=user.headers).json() in ([], {"items": []})
