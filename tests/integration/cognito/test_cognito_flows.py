"""Cognito login flows against moto: TOTP and SMS MFA, limits in our code, sign-up, logout.

moto accepts any SMS code, so attempt caps, TTL and single use are enforced
(and tested) by our use cases on the injected clock.
"""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest

from finbank_adapters.memory import FakeClock
from finbank_core.auth import (
    AnswerChallengeCommand,
    AuthenticateQuery,
    LoginCommand,
    LogoutCommand,
    RefreshCommand,
    SetUpChallengeTotpCommand,
)
from finbank_core.auth.errors import (
    ChallengeNotFound,
    IncorrectCode,
    InvalidCredentials,
    InvalidToken,
    PasswordResetRequired,
    UsernameTaken,
    UserNotConfirmed,
    WeakPassword,
)
from finbank_core.auth.model import ChallengeType, MfaChallenge, SignUpCommand, TokenSet
from finbank_core.shared.errors import InvalidInput
from tests.integration.cognito.conftest import (
    PASSWORD,
    CognitoWorld,
    Pool,
    cognito_world,
    make_pool,
)


class MotoTotp(pyotp.TOTP):
    """moto hands out one short, fixed secret; real Cognito secrets are 256 bits."""

    min_secret_length_bits = 0

    def now(self) -> str:
        """The current code, from a step with at least 5 s left.

        moto checks a code against the current 30 s step only (no window): a code
        made in the last moments of its step reached moto after the step rolled
        over on a busy host and the right code was refused.
        """
        left = self.interval - time.time() % self.interval
        if left < 5:
            time.sleep(left + 0.05)
        return super().now()


async def enrol_totp(world: CognitoWorld, username: str) -> pyotp.TOTP:
    """Log in without MFA, enrol an authenticator through the adapter, as the app would."""
    world.pool.user(username)
    first = await world.login(LoginCommand(username=username, password=PASSWORD))
    assert first.tokens is not None, "no MFA before enrolment"
    setup = await world.provider.begin_totp_setup(first.tokens.access_token)
    assert setup.otpauth_uri.startswith("otpauth://totp/")
    totp = MotoTotp(setup.secret)
    await world.provider.verify_totp_setup(first.tokens.access_token, totp.now())
    return totp


async def test_an_enrolled_totp_user_gets_software_token_mfa_and_then_tokens(
    world: CognitoWorld,
) -> None:
    totp = await enrol_totp(world, "maria")
    challenge = await world.login(LoginCommand(username="maria", password=PASSWORD))
    assert challenge.challenge_type == "SOFTWARE_TOKEN_MFA"
    assert challenge.tokens is None
    assert challenge.challenge_id is not None
    result = await world.answer(
        AnswerChallengeCommand(challenge_id=challenge.challenge_id, answer=totp.now())
    )
    assert result.tokens is not None
    principal = await world.authenticate(AuthenticateQuery(access_token=result.tokens.access_token))
    assert principal.username == "maria"
    assert principal.session_id  # Cognito's origin_jti


async def test_an_sms_user_gets_sms_mfa(world: CognitoWorld) -> None:
    world.pool.sms_user("joao")
    challenge = await world.login(LoginCommand(username="joao", password=PASSWORD))
    assert challenge.challenge_type == "SMS_MFA"
    assert challenge.challenge_id is not None
    result = await world.answer(
        AnswerChallengeCommand(challenge_id=challenge.challenge_id, answer="123456")
    )
    assert result.tokens is not None


async def test_a_wrong_totp_code_is_an_incorrect_code_and_the_sixth_finds_no_challenge(
    world: CognitoWorld,
) -> None:
    totp = await enrol_totp(world, "maria")
    challenge_id = (
        await world.login(LoginCommand(username="maria", password=PASSWORD))
    ).challenge_id
    assert challenge_id is not None
    wrong = f"{(int(totp.now()) + 7) % 1_000_000:06d}"
    for left in (4, 3, 2, 1, 0):
        with pytest.raises(IncorrectCode) as error:
            await world.answer(AnswerChallengeCommand(challenge_id=challenge_id, answer=wrong))
        assert error.value.details["attempts_left"] == left
    with pytest.raises(ChallengeNotFound):
        await world.answer(AnswerChallengeCommand(challenge_id=challenge_id, answer=totp.now()))


async def test_an_sms_challenge_past_our_ttl_is_refused_though_moto_would_accept(
    world: CognitoWorld,
) -> None:
    world.pool.sms_user("joao")
    challenge = await world.login(LoginCommand(username="joao", password=PASSWORD))
    assert challenge.challenge_id is not None
    assert challenge.expires_in == 180
    world.clock.advance(180)
    with pytest.raises(ChallengeNotFound):
        await world.answer(
            AnswerChallengeCommand(challenge_id=challenge.challenge_id, answer="123456")
        )


async def test_an_sms_challenge_cannot_be_answered_twice(world: CognitoWorld) -> None:
    world.pool.sms_user("joao")
    challenge_id = (
        await world.login(LoginCommand(username="joao", password=PASSWORD))
    ).challenge_id
    assert challenge_id is not None
    assert (
        await world.answer(AnswerChallengeCommand(challenge_id=challenge_id, answer="123456"))
    ).tokens is not None
    with pytest.raises(ChallengeNotFound):
        await world.answer(AnswerChallengeCommand(challenge_id=challenge_id, answer="123456"))


async def test_the_stored_challenge_keeps_the_cognito_session_away_from_the_client(
    world: CognitoWorld,
) -> None:
    world.pool.sms_user("joao")
    result = await world.login(LoginCommand(username="joao", password=PASSWORD))
    assert result.challenge_id is not None
    stored = await world.challenges.get(result.challenge_id)
    assert stored is not None
    assert stored.session not in repr(result)
    assert stored.username == "joao"


async def test_wrong_password_and_unknown_user_are_the_same_error(world: CognitoWorld) -> None:
    world.pool.user("maria")
    with pytest.raises(InvalidCredentials) as wrong_password:
        await world.login(LoginCommand(username="maria", password="Not-the-password-1"))
    with pytest.raises(InvalidCredentials) as unknown_user:
        await world.login(LoginCommand(username="nobody", password="Not-the-password-1"))
    assert wrong_password.value.message == unknown_user.value.message


async def test_sign_up_needs_confirmation_before_login(world: CognitoWorld) -> None:
    result = await world.provider.sign_up(
        SignUpCommand(username="ana", password=PASSWORD, email="ana@example.com")
    )
    assert result.confirmation_required
    with pytest.raises(UserNotConfirmed):
        await world.login(LoginCommand(username="ana", password=PASSWORD))
    await world.provider.confirm_sign_up("ana", "123456")
    assert (await world.login(LoginCommand(username="ana", password=PASSWORD))).tokens is not None


async def test_sign_up_errors_are_core_errors(world: CognitoWorld) -> None:
    await world.provider.sign_up(SignUpCommand(username="ana", password=PASSWORD))
    with pytest.raises(UsernameTaken):
        await world.provider.sign_up(SignUpCommand(username="ana", password=PASSWORD))
    with pytest.raises(WeakPassword):
        await world.provider.sign_up(SignUpCommand(username="bia", password="short"))


async def test_logout_revokes_the_access_token_and_the_refresh_token(world: CognitoWorld) -> None:
    world.pool.user("maria")
    tokens = (await world.login(LoginCommand(username="maria", password=PASSWORD))).tokens
    assert tokens is not None
    assert tokens.refresh_token is not None
    renewed = await world.refresh(RefreshCommand(refresh_token=tokens.refresh_token))
    await world.logout(LogoutCommand(access_token=tokens.access_token))
    with pytest.raises(InvalidToken):
        await world.authenticate(AuthenticateQuery(access_token=tokens.access_token))
    with pytest.raises(InvalidToken):  # same origin_jti: the session is denied
        await world.authenticate(AuthenticateQuery(access_token=renewed.access_token))
    with pytest.raises(InvalidToken):  # GlobalSignOut revoked it at Cognito
        await world.refresh(RefreshCommand(refresh_token=tokens.refresh_token))


async def test_a_client_with_a_secret_signs_challenge_answers_and_refreshes(
    moto_endpoint: str, clock: FakeClock, cognito_client: Any
) -> None:
    pool = make_pool(moto_endpoint, with_secret=True)
    assert pool.client_secret
    world = await cognito_world(pool, clock, cognito_client)
    pool.sms_user("joao")
    challenge_id = (
        await world.login(LoginCommand(username="joao", password=PASSWORD))
    ).challenge_id
    assert challenge_id is not None
    tokens = (
        await world.answer(AnswerChallengeCommand(challenge_id=challenge_id, answer="123456"))
    ).tokens  # moto checks SECRET_HASH
    assert tokens is not None
    assert tokens.refresh_token is not None
    with pytest.raises(InvalidInput):
        await world.refresh(RefreshCommand(refresh_token=tokens.refresh_token))
    renewed = await world.refresh(
        RefreshCommand(refresh_token=tokens.refresh_token, username="joao")
    )
    assert (
        await world.authenticate(AuthenticateQuery(access_token=renewed.access_token))
    ).username == "joao"


async def test_mfa_setup_enrols_an_authenticator_during_login(
    moto_endpoint: str, clock: FakeClock, cognito_client: Any
) -> None:
    pool = make_pool(moto_endpoint, mfa="ON")
    world = await cognito_world(pool, clock, cognito_client)
    # moto reaches MFA_SETUP only after a first-login password change.
    pool.admin.admin_create_user(
        UserPoolId=pool.pool_id,
        Username="carla",
        TemporaryPassword=PASSWORD,
        MessageAction="SUPPRESS",
    )
    with pytest.raises(PasswordResetRequired):
        await world.login(LoginCommand(username="carla", password=PASSWORD))
    first = pool.admin.initiate_auth(
        ClientId=pool.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "carla", "PASSWORD": PASSWORD},
    )
    setup_step = pool.admin.respond_to_auth_challenge(
        ClientId=pool.client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=first["Session"],
        ChallengeResponses={"USERNAME": "carla", "NEW_PASSWORD": PASSWORD + "x"},
    )
    assert setup_step["ChallengeName"] == "MFA_SETUP"
    outcome = world.provider._outcome(setup_step, "carla")
    assert not isinstance(outcome, TokenSet)
    challenge = MfaChallenge.issue(outcome, now=clock.now(), ttl_seconds=180)
    await world.challenges.put(challenge)

    enrolment = await world.answer.begin_totp_setup(
        SetUpChallengeTotpCommand(challenge_id=challenge.id)
    )
    assert enrolment.challenge_type == ChallengeType.MFA_SETUP.value
    assert enrolment.challenge_id != challenge.id
    with pytest.raises(ChallengeNotFound):  # the first id is spent
        await world.answer.begin_totp_setup(SetUpChallengeTotpCommand(challenge_id=challenge.id))
    result = await world.answer(
        AnswerChallengeCommand(
            challenge_id=enrolment.challenge_id, answer=MotoTotp(enrolment.secret).now()
        )
    )
    assert result.tokens is not None


def test_moto_pool_fixture_is_isolated_per_test(pool: Pool, moto_endpoint: str) -> None:
    other = make_pool(moto_endpoint)
    assert other.pool_id != pool.pool_id
