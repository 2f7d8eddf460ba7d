"""Step-up, password change and MFA removal on Cognito (moto, TOTP codes checked for real).

Cognito has no call that checks a TOTP code alone, so a step-up re-runs the
login: the password, then the current code when the pool asks for MFA.
moto verifies TOTP codes here (``MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP``),
so a wrong code is refused by the emulator, as Cognito would.
"""

from __future__ import annotations

from typing import Any

import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.auth import InMemoryLoginThrottle
from finbank_adapters.memory.step_up import InMemoryStepUpStore
from finbank_core.auth import (
    AnswerChallengeCommand,
    AuthenticateQuery,
    LoginCommand,
    SetUpTotpCommand,
)
from finbank_core.auth.credentials import (
    ChangePassword,
    ChangePasswordCommand,
    DisableTotp,
    DisableTotpCommand,
)
from finbank_core.auth.errors import (
    AccountLocked,
    IncorrectCode,
    InvalidCredentials,
    StepUpRequired,
    UnsupportedChallenge,
)
from finbank_core.auth.step_up import RequireStepUp, StepUp, StepUpCommand, StepUpPurpose
from finbank_core.auth.use_cases import PasswordLogin, SetUpTotp
from finbank_core.shared.errors import InvalidInput
from tests.integration.cognito.conftest import PASSWORD, CognitoWorld, cognito_world, make_pool
from tests.integration.cognito.test_cognito_flows import enrol_totp

NEW_PASSWORD = "Another-Long-Passphrase-7"


class StepUpWorld:
    def __init__(self, world: CognitoWorld) -> None:
        clock: FakeClock = world.clock
        self.store = InMemoryStepUpStore(clock)
        self.throttle = InMemoryLoginThrottle(clock)
        self.step_up = StepUp(world.authenticate, world.provider, self.store, self.throttle, clock)
        self.require = RequireStepUp(self.store, clock)
        self.set_up_totp = SetUpTotp(world.provider, world.authenticate, self.require)


async def logged_in(world: CognitoWorld, username: str) -> str:
    world.pool.user(username)
    result = await world.login(LoginCommand(username=username, password=PASSWORD))
    assert result.tokens is not None
    return result.tokens.access_token


async def test_a_user_without_mfa_steps_up_with_the_password_only(world: CognitoWorld) -> None:
    up = StepUpWorld(world)
    access = await logged_in(world, "ana")
    with pytest.raises(InvalidCredentials):
        await up.step_up(
            StepUpCommand(
                access_token=access, purpose=StepUpPurpose.MFA_CHANGE, password="Wrong-Pass-123"
            )
        )
    with pytest.raises(InvalidInput) as no_password:
        await up.step_up(
            StepUpCommand(access_token=access, purpose=StepUpPurpose.MFA_CHANGE, code="123456")
        )
    assert no_password.value.details == {"field": "password"}
    granted = await up.step_up(
        StepUpCommand(access_token=access, purpose=StepUpPurpose.MFA_CHANGE, password=PASSWORD)
    )
    setup = await up.set_up_totp(SetUpTotpCommand(access_token=access, step_up_token=granted.token))
    assert setup.secret
    with pytest.raises(StepUpRequired):
        await up.set_up_totp(SetUpTotpCommand(access_token=access, step_up_token=granted.token))


async def test_a_totp_user_needs_the_password_and_the_current_code(world: CognitoWorld) -> None:
    up = StepUpWorld(world)
    totp = await enrol_totp(world, "maria")
    challenge_id = (
        await world.login(LoginCommand(username="maria", password=PASSWORD))
    ).challenge_id
    assert challenge_id is not None
    result = await world.answer(
        AnswerChallengeCommand(challenge_id=challenge_id, answer=totp.now())
    )
    assert result.tokens is not None
    access = result.tokens.access_token
    with pytest.raises(StepUpRequired):
        await up.set_up_totp(SetUpTotpCommand(access_token=access, step_up_token=None))
    with pytest.raises(IncorrectCode):  # the stolen token and the password are not enough
        await up.step_up(
            StepUpCommand(access_token=access, purpose=StepUpPurpose.MFA_CHANGE, password=PASSWORD)
        )
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    with pytest.raises(IncorrectCode):
        await up.step_up(
            StepUpCommand(
                access_token=access,
                purpose=StepUpPurpose.MFA_CHANGE,
                password=PASSWORD,
                code=wrong,
            )
        )
    granted = await up.step_up(
        StepUpCommand(
            access_token=access,
            purpose=StepUpPurpose.MFA_CHANGE,
            password=PASSWORD,
            code=totp.now(),
        )
    )
    disable = DisableTotp(world.authenticate, world.provider, up.require)
    await disable(DisableTotpCommand(access_token=access, step_up_token=granted.token))
    assert (
        await world.login(LoginCommand(username="maria", password=PASSWORD))
    ).tokens is not None  # no MFA any more


async def test_changing_the_password_on_cognito(world: CognitoWorld) -> None:
    up = StepUpWorld(world)
    access = await logged_in(world, "joana")
    change = ChangePassword(world.authenticate, world.provider, up.throttle)
    with pytest.raises(InvalidCredentials):
        await change(
            ChangePasswordCommand(
                access_token=access, current_password="Wrong-Pass-123", new_password=NEW_PASSWORD
            )
        )
    await change(
        ChangePasswordCommand(
            access_token=access, current_password=PASSWORD, new_password=NEW_PASSWORD
        )
    )
    with pytest.raises(InvalidCredentials):
        await world.login(LoginCommand(username="joana", password=PASSWORD))
    assert (
        await world.login(LoginCommand(username="joana", password=NEW_PASSWORD))
    ).tokens is not None


async def test_an_sms_user_is_told_step_up_is_unsupported_and_is_never_locked_by_it(
    world: CognitoWorld,
) -> None:
    # The SMS code is sent by the login the step-up starts, so no request can carry
    # it: each step-up with the right password was IncorrectCode and counted, and ten
    # of them locked the account (the right password at login then got 429).
    up = StepUpWorld(world)
    world.pool.sms_user("joao")
    challenge = await world.login(LoginCommand(username="joao", password=PASSWORD))
    assert challenge.challenge_type == "SMS_MFA"
    assert challenge.challenge_id is not None
    answered = await world.answer(
        AnswerChallengeCommand(challenge_id=challenge.challenge_id, answer="123456")
    )
    assert answered.tokens is not None
    access = answered.tokens.access_token
    for code in (None, "123456") * 6:
        with pytest.raises(UnsupportedChallenge):
            await up.step_up(
                StepUpCommand(
                    access_token=access,
                    purpose=StepUpPurpose.MFA_CHANGE,
                    password=PASSWORD,
                    code=code,
                )
            )
    with pytest.raises(InvalidCredentials):  # a wrong password is still a counted failure
        await up.step_up(
            StepUpCommand(
                access_token=access, purpose=StepUpPurpose.MFA_CHANGE, password="Wrong-Pass-123"
            )
        )
    await up.throttle.ensure_not_locked("joao")


async def test_in_an_email_pool_step_up_and_login_share_one_lockout(
    moto_endpoint: str, clock: FakeClock, cognito_client: Any
) -> None:
    # The token's username in a pool with UsernameAttributes=[email] is the pool's
    # generated one: step-up counted under it, so a login lock did not stop guesses at
    # step-up and those did not count towards the login's lockout.
    pool = make_pool(moto_endpoint, username_attributes=["email"])
    pool.admin.admin_create_user(
        UserPoolId=pool.pool_id,
        Username="dana@example.com",
        UserAttributes=[{"Name": "email", "Value": "dana@example.com"}],
        MessageAction="SUPPRESS",
    )
    pool.admin.admin_set_user_password(
        UserPoolId=pool.pool_id, Username="dana@example.com", Password=PASSWORD, Permanent=True
    )
    world = await cognito_world(pool, clock, cognito_client, sign_in_attribute="email")
    throttle = InMemoryLoginThrottle(clock)
    login = PasswordLogin(world.provider, world.challenges, throttle, clock)
    step_up = StepUp(
        world.authenticate, world.provider, InMemoryStepUpStore(clock), throttle, clock
    )
    change = ChangePassword(world.authenticate, world.provider, throttle)
    tokens = (await login(LoginCommand(username="dana@example.com", password=PASSWORD))).tokens
    assert tokens is not None
    assert (await world.authenticate(AuthenticateQuery(access_token=tokens.access_token))).username
    for _ in range(5):  # half the tries at step-up, half at password change
        with pytest.raises(InvalidCredentials):
            await step_up(
                StepUpCommand(
                    access_token=tokens.access_token,
                    purpose=StepUpPurpose.MFA_CHANGE,
                    password="Wrong-Pass-123",
                )
            )
        with pytest.raises(InvalidCredentials):
            await change(
                ChangePasswordCommand(
                    access_token=tokens.access_token,
                    current_password="Wrong-Pass-123",
                    new_password=NEW_PASSWORD,
                )
            )
    with pytest.raises(AccountLocked):  # the login name's lockout counted all ten
        await login(LoginCommand(username="dana@example.com", password=PASSWORD))
    with pytest.raises(AccountLocked):
        await step_up(
            StepUpCommand(
                access_token=tokens.access_token,
                purpose=StepUpPurpose.MFA_CHANGE,
                password=PASSWORD,
            )
        )
