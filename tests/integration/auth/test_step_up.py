"""Step-up before sensitive changes, on the local provider with memory and Redis stores.

The issue's scenario first: with MFA on, a stolen access token alone could
swap the authenticator (``/totp/setup`` then ``/totp/verify``). Now the swap
needs a step-up token, which needs the password or the current code.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pyotp
import pytest

from finbank_core.auth import (
    AnswerChallengeCommand,
    AuthenticateQuery,
    LoginCommand,
    RefreshCommand,
    SetUpTotpCommand,
    VerifyTotpCommand,
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
    InvalidToken,
    StepUpRequired,
    WeakPassword,
)
from finbank_core.auth.step_up import (
    DEFAULT_STEP_UP_TTL_SECONDS,
    StepUpCommand,
    StepUpPurpose,
)
from finbank_core.shared.errors import InvalidInput, PermissionDenied
from tests.integration.auth.harness import PASSWORD, POLICY, AuthWorld, wrong_code

NEW_PASSWORD = "a brand new passphrase 42"


async def mfa_login(world: AuthWorld, totp: pyotp.TOTP, username: str = "maria") -> str:
    challenge_id = (await world.challenge(username)).challenge_id
    assert challenge_id is not None
    result = await world.answer(
        AnswerChallengeCommand(challenge_id=challenge_id, answer=world.code(totp))
    )
    assert result.tokens is not None
    world.clock.advance(30)  # the next code is a fresh step
    return result.tokens.access_token


async def test_a_stolen_access_token_alone_cannot_replace_the_authenticator(
    world: AuthWorld,
) -> None:
    totp = await world.user_with_totp()
    stolen = await mfa_login(world, totp)
    with pytest.raises(StepUpRequired) as refused:
        await world.set_up_totp(SetUpTotpCommand(access_token=stolen, step_up_token=None))
    assert refused.value.details == {"purpose": "mfa_change"}
    assert isinstance(refused.value, PermissionDenied)  # 403 over HTTP
    with pytest.raises(InvalidCredentials):
        await world.step_up(
            StepUpCommand(
                access_token=stolen, purpose=StepUpPurpose.MFA_CHANGE, password="a guess at it"
            )
        )
    with pytest.raises(IncorrectCode):
        await world.step_up(
            StepUpCommand(
                access_token=stolen,
                purpose=StepUpPurpose.MFA_CHANGE,
                code=wrong_code(world.code(totp)),
            )
        )
    with pytest.raises(StepUpRequired):
        await world.set_up_totp(
            SetUpTotpCommand(access_token=stolen, step_up_token="made-up-token")
        )
    # The old authenticator still logs in: nothing was swapped.
    assert await mfa_login(world, totp)


async def test_wrong_step_up_answers_count_towards_the_lockout(world: AuthWorld) -> None:
    totp = await world.user_with_totp()
    stolen = await mfa_login(world, totp)
    for _ in range(POLICY.max_failures):
        with pytest.raises(InvalidCredentials):
            await world.step_up(
                StepUpCommand(
                    access_token=stolen, purpose=StepUpPurpose.MFA_CHANGE, password="guess 1234"
                )
            )
    # Locked: even the right password is no longer checked, and logins are locked too.
    with pytest.raises(AccountLocked):
        await world.step_up(
            StepUpCommand(access_token=stolen, purpose=StepUpPurpose.MFA_CHANGE, password=PASSWORD)
        )
    with pytest.raises(AccountLocked):
        await world.login(LoginCommand(username="maria", password=PASSWORD))


async def test_the_owner_replaces_the_authenticator_after_stepping_up_with_the_password(
    world: AuthWorld,
) -> None:
    old = await world.user_with_totp()
    access = await mfa_login(world, old)
    token = await world.stepped_up(access)
    setup = await world.set_up_totp(SetUpTotpCommand(access_token=access, step_up_token=token))
    new = pyotp.TOTP(setup.secret)
    await world.verify_totp(VerifyTotpCommand(access_token=access, code=world.code(new)))
    world.clock.advance(30)
    challenge_id = (await world.challenge()).challenge_id
    assert challenge_id is not None
    with pytest.raises(IncorrectCode):
        await world.answer(
            AnswerChallengeCommand(challenge_id=challenge_id, answer=world.code(old))
        )
    assert (
        await world.answer(
            AnswerChallengeCommand(challenge_id=challenge_id, answer=world.code(new))
        )
    ).tokens is not None


async def test_the_current_code_steps_up_once_and_its_replay_does_not(world: AuthWorld) -> None:
    totp = await world.user_with_totp()
    access = await mfa_login(world, totp)
    code = world.code(totp)
    command = StepUpCommand(access_token=access, purpose=StepUpPurpose.MFA_CHANGE, code=code)
    result = await world.step_up(command)
    assert result.purpose is StepUpPurpose.MFA_CHANGE
    assert result.expires_in == DEFAULT_STEP_UP_TTL_SECONDS
    with pytest.raises(IncorrectCode):
        await world.step_up(command)  # the same time step is spent


async def test_a_code_cannot_step_up_a_user_without_mfa(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    with pytest.raises(IncorrectCode):
        await world.step_up(
            StepUpCommand(
                access_token=tokens.access_token, purpose=StepUpPurpose.MFA_CHANGE, code="123456"
            )
        )


async def test_a_step_up_needs_a_password_or_a_code(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    with pytest.raises(InvalidInput) as refused:
        await world.step_up(
            StepUpCommand(access_token=tokens.access_token, purpose=StepUpPurpose.MFA_CHANGE)
        )
    assert refused.value.details == {"field": "password"}


async def test_a_step_up_token_is_single_use(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    token = await world.stepped_up(tokens.access_token)
    await world.set_up_totp(SetUpTotpCommand(access_token=tokens.access_token, step_up_token=token))
    with pytest.raises(StepUpRequired):
        await world.set_up_totp(
            SetUpTotpCommand(access_token=tokens.access_token, step_up_token=token)
        )


async def test_a_step_up_token_works_until_just_before_its_expiry(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    token = await world.stepped_up(tokens.access_token)
    world.clock.advance(DEFAULT_STEP_UP_TTL_SECONDS - 0.001)
    await world.set_up_totp(SetUpTotpCommand(access_token=tokens.access_token, step_up_token=token))


async def test_a_step_up_token_is_refused_exactly_at_its_expiry(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    token = await world.stepped_up(tokens.access_token)
    world.clock.advance(DEFAULT_STEP_UP_TTL_SECONDS)
    with pytest.raises(StepUpRequired):
        await world.set_up_totp(
            SetUpTotpCommand(access_token=tokens.access_token, step_up_token=token)
        )


async def test_a_step_up_token_is_bound_to_its_purpose(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    token = await world.stepped_up(tokens.access_token, StepUpPurpose.PIX_LIMIT_RAISE)
    with pytest.raises(StepUpRequired):
        await world.set_up_totp(
            SetUpTotpCommand(access_token=tokens.access_token, step_up_token=token)
        )
    # ... and burned by the misuse, not kept for its own purpose.
    principal = await world.authenticate(AuthenticateQuery(access_token=tokens.access_token))
    with pytest.raises(StepUpRequired):
        await world.require_step_up(principal, token, StepUpPurpose.PIX_LIMIT_RAISE)


async def test_a_step_up_token_is_bound_to_its_user_and_login_session(world: AuthWorld) -> None:
    ana = await world.user_without_mfa("ana")
    bia = await world.user_without_mfa("bia")
    ana_token = await world.stepped_up(ana.access_token)
    with pytest.raises(StepUpRequired):
        await world.set_up_totp(
            SetUpTotpCommand(access_token=bia.access_token, step_up_token=ana_token)
        )
    # Another login of the same user is another session.
    second_login = await world.login(LoginCommand(username="ana", password=PASSWORD))
    assert second_login.tokens is not None
    other_session = second_login.tokens.access_token
    token = await world.stepped_up(ana.access_token)
    with pytest.raises(StepUpRequired):
        await world.set_up_totp(SetUpTotpCommand(access_token=other_session, step_up_token=token))


async def test_concurrent_spends_of_one_step_up_token_succeed_exactly_once(
    world: AuthWorld,
) -> None:
    tokens = await world.user_without_mfa()
    principal = await world.authenticate(AuthenticateQuery(access_token=tokens.access_token))
    token = await world.stepped_up(tokens.access_token, StepUpPurpose.PIX_LIMIT_RAISE)
    outcomes = await asyncio.gather(
        *(
            world.require_step_up(principal, token, StepUpPurpose.PIX_LIMIT_RAISE)
            for _ in range(25)
        ),
        return_exceptions=True,
    )
    assert sum(o is None for o in outcomes) == 1
    assert all(isinstance(o, StepUpRequired) for o in outcomes if o is not None)


async def test_removing_the_authenticator_needs_a_step_up(world: AuthWorld) -> None:
    totp = await world.user_with_totp()
    access = await mfa_login(world, totp)
    disable = DisableTotp(world.authenticate, world.provider, world.require_step_up)
    with pytest.raises(StepUpRequired):
        await disable(DisableTotpCommand(access_token=access))
    await disable(
        DisableTotpCommand(access_token=access, step_up_token=await world.stepped_up(access))
    )
    assert (
        await world.login(LoginCommand(username="maria", password=PASSWORD))
    ).tokens is not None  # no MFA any more


async def test_a_password_change_needs_the_current_password(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    other_login = await world.login(LoginCommand(username="maria", password=PASSWORD))
    assert other_login.tokens is not None
    assert other_login.tokens.refresh_token
    change = ChangePassword(world.authenticate, world.provider, world.throttle)
    with pytest.raises(InvalidCredentials):
        await change(
            ChangePasswordCommand(
                access_token=tokens.access_token,
                current_password="not the password",
                new_password=NEW_PASSWORD,
            )
        )
    with pytest.raises(WeakPassword):
        await change(
            ChangePasswordCommand(
                access_token=tokens.access_token,
                current_password=PASSWORD,
                new_password="short",
            )
        )
    await change(
        ChangePasswordCommand(
            access_token=tokens.access_token, current_password=PASSWORD, new_password=NEW_PASSWORD
        )
    )
    with pytest.raises(InvalidCredentials):
        await world.login(LoginCommand(username="maria", password=PASSWORD))
    assert (
        await world.login(LoginCommand(username="maria", password=NEW_PASSWORD))
    ).tokens is not None
    # The other login is over: its refresh token and its access token are refused.
    with pytest.raises(InvalidToken):
        await world.refresh(RefreshCommand(refresh_token=other_login.tokens.refresh_token))
    with pytest.raises(InvalidToken):
        await world.authenticate(AuthenticateQuery(access_token=other_login.tokens.access_token))
    # The calling login keeps its access token until it expires, not its refresh token.
    assert (
        await world.authenticate(AuthenticateQuery(access_token=tokens.access_token))
    ).username == "maria"
    assert tokens.refresh_token
    with pytest.raises(InvalidToken):
        await world.refresh(RefreshCommand(refresh_token=tokens.refresh_token))


async def test_wrong_current_passwords_count_towards_the_lockout(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    change = ChangePassword(world.authenticate, world.provider, world.throttle)
    for _ in range(POLICY.max_failures):
        with pytest.raises(InvalidCredentials):
            await change(
                ChangePasswordCommand(
                    access_token=tokens.access_token,
                    current_password="guess 123456",
                    new_password=NEW_PASSWORD,
                )
            )
    with pytest.raises(AccountLocked):
        await change(
            ChangePasswordCommand(
                access_token=tokens.access_token,
                current_password=PASSWORD,
                new_password=NEW_PASSWORD,
            )
        )


def test_commands_and_results_never_show_their_secrets() -> None:
    command = StepUpCommand(
        access_token="eyJ-access", purpose=StepUpPurpose.MFA_CHANGE, password="hunter22hunter"
    )
    assert "eyJ-access" not in repr(command)
    assert "hunter22" not in repr(command)
    change = ChangePasswordCommand(
        access_token="eyJ-access", current_password="old-secret-1", new_password="new-secret-2"
    )
    assert not {"eyJ-access", "old-secret-1", "new-secret-2"} & set(repr(change).split("'"))


async def test_a_password_change_keeps_an_authenticator_enrolled_while_it_hashed(
    world: AuthWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The change read the user, hashed the new password (0.4 s of argon2) and wrote the
    # record it had read back with the new hash: an authenticator enrolled meanwhile was
    # lost, and the next login gave tokens with no MFA asked.
    tokens = await world.user_without_mfa()
    setup = await world.set_up_totp(
        SetUpTotpCommand(
            access_token=tokens.access_token,
            step_up_token=await world.stepped_up(tokens.access_token),
        )
    )
    hashing, hashed = threading.Event(), threading.Event()

    class HeldHasher:
        """The provider's hasher, held mid-hash (in its thread) to order the two writes."""

        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def hash(self, password: str) -> str:
            hashing.set()
            hashed.wait(10)
            result: str = self._inner.hash(password)
            return result

    monkeypatch.setattr(world.provider, "_hasher", HeldHasher(world.provider._hasher))
    change = asyncio.create_task(
        ChangePassword(world.authenticate, world.provider, world.throttle)(
            ChangePasswordCommand(
                access_token=tokens.access_token,
                current_password=PASSWORD,
                new_password=NEW_PASSWORD,
            )
        )
    )
    assert await asyncio.to_thread(hashing.wait, 10)
    await world.verify_totp(
        VerifyTotpCommand(
            access_token=tokens.access_token, code=world.code(pyotp.TOTP(setup.secret))
        )
    )
    hashed.set()
    await change

    after = await world.login(LoginCommand(username="maria", password=NEW_PASSWORD))
    assert after.mfa_required  # the authenticator enrolled during the change is kept
    assert after.tokens is None


async def test_a_logins_rehash_finishing_after_a_password_change_does_not_undo_it(
    world: AuthWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A login with the old password verified it, then rehashed it (the hasher's
    # parameters had changed) while the password was changed: its write brought the
    # old password back and the new one no longer worked.
    tokens = await world.user_without_mfa()
    hashing, hashed = threading.Event(), threading.Event()
    inner = world.provider._hasher

    class RehashingHasher:
        """Every stored hash needs a rehash; the old password's is held mid-hash."""

        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

        def check_needs_rehash(self, stored: str) -> bool:
            return True

        def hash(self, password: str) -> str:
            if password == PASSWORD:
                hashing.set()
                hashed.wait(10)
            result: str = inner.hash(password)
            return result

    monkeypatch.setattr(world.provider, "_hasher", RehashingHasher())
    login = asyncio.create_task(world.login(LoginCommand(username="maria", password=PASSWORD)))
    assert await asyncio.to_thread(hashing.wait, 10)
    await ChangePassword(world.authenticate, world.provider, world.throttle)(
        ChangePasswordCommand(
            access_token=tokens.access_token, current_password=PASSWORD, new_password=NEW_PASSWORD
        )
    )
    hashed.set()
    with pytest.raises(InvalidCredentials):  # its password is no longer the user's
        await login
    monkeypatch.setattr(world.provider, "_hasher", inner)

    with pytest.raises(InvalidCredentials):
        await world.login(LoginCommand(username="maria", password=PASSWORD))
    after = await world.login(LoginCommand(username="maria", password=NEW_PASSWORD))
    assert after.tokens is not None
