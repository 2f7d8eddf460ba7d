"""MFA challenges through the use cases: attempts, TTL, single use, lockout.

Runs once with the in-memory stores and once with Redis (see conftest).
The provider is the self-hosted one: a real TOTP secret, a real clock (fake).
"""

from __future__ import annotations

import asyncio

import pytest

from finbank_core.auth import (
    AnswerChallengeCommand,
    AuthenticateQuery,
    LoginCommand,
    SetUpTotpCommand,
    VerifyTotpCommand,
)
from finbank_core.auth.errors import (
    AccountLocked,
    ChallengeNotFound,
    IncorrectCode,
    InvalidCredentials,
)
from finbank_core.auth.model import SignUpCommand
from finbank_core.auth.use_cases import DEFAULT_CHALLENGE_TTL_SECONDS
from finbank_core.shared.errors import InvalidInput
from tests.integration.auth.harness import PASSWORD, AuthWorld, wrong_code


async def test_an_mfa_user_gets_an_opaque_challenge_and_no_tokens(world: AuthWorld) -> None:
    await world.user_with_totp("maria")
    result = await world.login(LoginCommand(username="maria", password=PASSWORD))
    assert result.tokens is None
    assert result.challenge_type == "SOFTWARE_TOKEN_MFA"
    assert result.expires_in == DEFAULT_CHALLENGE_TTL_SECONDS
    assert result.challenge_id is not None
    assert "maria" not in result.challenge_id
    assert len(result.challenge_id) >= 22  # >= 128 bits in base64url


async def test_the_right_code_within_the_ttl_gives_tokens(world: AuthWorld) -> None:
    totp = await world.user_with_totp()
    challenge = await world.challenge()
    world.clock.advance(DEFAULT_CHALLENGE_TTL_SECONDS - 1)
    assert challenge.challenge_id is not None
    result = await world.answer(
        AnswerChallengeCommand(challenge_id=challenge.challenge_id, answer=world.code(totp))
    )
    assert result.tokens is not None
    principal = await world.authenticate(AuthenticateQuery(access_token=result.tokens.access_token))
    assert principal.username == "maria"


async def test_six_wrong_codes_the_sixth_is_refused_and_the_challenge_is_gone(
    world: AuthWorld,
) -> None:
    totp = await world.user_with_totp()
    challenge = await world.challenge()
    challenge_id = challenge.challenge_id
    assert challenge_id is not None
    right = world.code(totp)
    attempts_left = []
    for _ in range(5):
        with pytest.raises(IncorrectCode) as wrong:
            await world.answer(
                AnswerChallengeCommand(challenge_id=challenge_id, answer=wrong_code(right))
            )
        attempts_left.append(wrong.value.details["attempts_left"])
    assert attempts_left == [4, 3, 2, 1, 0]
    with pytest.raises(ChallengeNotFound):
        await world.answer(
            AnswerChallengeCommand(challenge_id=challenge_id, answer=wrong_code(right))
        )
    # gone for good: even the right code no longer works
    with pytest.raises(ChallengeNotFound):
        await world.answer(AnswerChallengeCommand(challenge_id=challenge_id, answer=right))
    assert await world.challenges.get(challenge_id) is None


async def test_the_right_code_on_the_fifth_attempt_still_works(world: AuthWorld) -> None:
    totp = await world.user_with_totp()
    challenge_id = (await world.challenge()).challenge_id
    assert challenge_id is not None
    right = world.code(totp)
    for _ in range(4):
        with pytest.raises(IncorrectCode):
            await world.answer(
                AnswerChallengeCommand(challenge_id=challenge_id, answer=wrong_code(right))
            )
    result = await world.answer(AnswerChallengeCommand(challenge_id=challenge_id, answer=right))
    assert result.tokens is not None


async def test_an_expired_challenge_is_refused_even_with_the_right_code(
    world: AuthWorld,
) -> None:
    totp = await world.user_with_totp()
    challenge_id = (await world.challenge()).challenge_id
    assert challenge_id is not None
    world.clock.advance(DEFAULT_CHALLENGE_TTL_SECONDS)
    with pytest.raises(ChallengeNotFound):
        await world.answer(
            AnswerChallengeCommand(challenge_id=challenge_id, answer=world.code(totp))
        )


async def test_a_challenge_id_cannot_be_answered_twice(world: AuthWorld) -> None:
    totp = await world.user_with_totp()
    challenge_id = (await world.challenge()).challenge_id
    assert challenge_id is not None
    assert (
        await world.answer(
            AnswerChallengeCommand(challenge_id=challenge_id, answer=world.code(totp))
        )
    ).tokens is not None
    world.clock.advance(30)  # a fresh, never used code
    with pytest.raises(ChallengeNotFound):
        await world.answer(
            AnswerChallengeCommand(challenge_id=challenge_id, answer=world.code(totp))
        )


async def test_two_simultaneous_right_answers_yield_one_set_of_tokens(world: AuthWorld) -> None:
    totp = await world.user_with_totp()
    challenge_id = (await world.challenge()).challenge_id
    assert challenge_id is not None
    code = world.code(totp)
    outcomes = await asyncio.gather(
        world.answer(AnswerChallengeCommand(challenge_id=challenge_id, answer=code)),
        world.answer(AnswerChallengeCommand(challenge_id=challenge_id, answer=code)),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if not isinstance(o, BaseException) and o.tokens]
    assert len(winners) == 1


async def test_a_replayed_totp_code_is_refused_on_a_new_challenge(world: AuthWorld) -> None:
    totp = await world.user_with_totp()
    code = world.code(totp)
    first = (await world.challenge()).challenge_id
    assert first is not None
    assert (
        await world.answer(AnswerChallengeCommand(challenge_id=first, answer=code))
    ).tokens is not None
    second = (await world.challenge()).challenge_id
    assert second is not None
    with pytest.raises(IncorrectCode):
        await world.answer(
            AnswerChallengeCommand(challenge_id=second, answer=code)
        )  # same 30-second step: already spent


async def test_the_code_that_enrolled_totp_cannot_log_in(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa("maria")
    setup = await world.set_up_totp(
        SetUpTotpCommand(
            access_token=tokens.access_token,
            step_up_token=await world.stepped_up(tokens.access_token),
        )
    )
    import pyotp

    enrolment_code = pyotp.TOTP(setup.secret).at(world.clock.now())
    await world.verify_totp(
        VerifyTotpCommand(access_token=tokens.access_token, code=enrolment_code)
    )
    challenge_id = (await world.challenge()).challenge_id
    assert challenge_id is not None
    with pytest.raises(IncorrectCode):
        await world.answer(AnswerChallengeCommand(challenge_id=challenge_id, answer=enrolment_code))


async def test_a_username_is_not_a_challenge_id(world: AuthWorld) -> None:
    await world.user_with_totp("maria")
    await world.challenge("maria")
    with pytest.raises(ChallengeNotFound):
        await world.answer(AnswerChallengeCommand(challenge_id="maria", answer="123456"))


async def test_wrong_codes_across_fresh_challenges_lock_the_account(world: AuthWorld) -> None:
    # Without this, each new login would buy 5 more guesses at the TOTP code.
    totp = await world.user_with_totp()
    right = world.code(totp)
    for _ in range(2):
        challenge_id = (await world.challenge()).challenge_id
        assert challenge_id is not None
        for _ in range(5):
            with pytest.raises(IncorrectCode):
                await world.answer(
                    AnswerChallengeCommand(challenge_id=challenge_id, answer=wrong_code(right))
                )
    with pytest.raises(AccountLocked):
        await world.login(LoginCommand(username="maria", password=PASSWORD))
    world.clock.advance(minutes=30)
    assert (await world.login(LoginCommand(username="maria", password=PASSWORD))).mfa_required


async def test_ten_wrong_passwords_lock_the_account_for_thirty_minutes(world: AuthWorld) -> None:
    await world.user_without_mfa("maria")
    for _ in range(10):
        with pytest.raises(InvalidCredentials):
            await world.login(LoginCommand(username="maria", password="wrong password!"))
    with pytest.raises(AccountLocked) as locked:
        await world.login(
            LoginCommand(username="Maria", password=PASSWORD)
        )  # right password, any case: still locked
    assert locked.value.details["retry_after_seconds"] == 1800
    world.clock.advance(minutes=30)
    assert (await world.login(LoginCommand(username="maria", password=PASSWORD))).tokens is not None


async def test_unknown_usernames_lock_exactly_like_real_ones(world: AuthWorld) -> None:
    for _ in range(10):
        with pytest.raises(InvalidCredentials):
            await world.login(LoginCommand(username="nobody-here", password="wrong password!"))
    with pytest.raises(AccountLocked):
        await world.login(LoginCommand(username="nobody-here", password="wrong password!"))


@pytest.mark.parametrize("callers", [6, 12])
async def test_many_simultaneous_right_answers_yield_exactly_one_set_of_tokens(
    world: AuthWorld, callers: int
) -> None:
    # More callers than the challenge's 5 attempts: the one holding the 5th failed on
    # the TOTP step another had just spent and, exhausting the challenge, deleted it
    # before the winner's own delete (its claim): on Redis nobody got tokens.
    totp = await world.user_with_totp()
    for _ in range(3):
        challenge_id = (await world.challenge()).challenge_id
        assert challenge_id is not None
        code = world.code(totp)
        outcomes = await asyncio.gather(
            *(
                world.answer(AnswerChallengeCommand(challenge_id=challenge_id, answer=code))
                for _ in range(callers)
            ),
            return_exceptions=True,
        )
        winners = [o for o in outcomes if not isinstance(o, BaseException) and o.tokens]
        assert len(winners) == 1, outcomes
        # past the account's 10 tries held at once, an answer is refused (429) before
        # it counts an attempt on the challenge
        assert all(
            isinstance(o, IncorrectCode | ChallengeNotFound | AccountLocked)
            for o in outcomes
            if isinstance(o, BaseException)
        ), outcomes
        await world.throttle.record_success("maria")  # the spent-step refusals counted
        world.clock.advance(30)  # a fresh step for the next round


async def test_a_space_padded_look_alike_can_neither_sign_up_nor_reset_the_lockout(
    world: AuthWorld,
) -> None:
    await world.user_without_mfa("maria")
    with pytest.raises(InvalidInput) as refused:
        await world.sign_up(SignUpCommand(username=" maria", password=PASSWORD))
    assert refused.value.details.get("field") == "username"
    # one signed up before that check (straight through the provider): its own logins
    # must not forget the failures at "maria", which is another user
    await world.provider.sign_up(SignUpCommand(username="maria ", password=PASSWORD))
    for n in range(10):
        with pytest.raises(InvalidCredentials):
            await world.login(LoginCommand(username="maria", password="wrong password!"))
        if n == 4:
            padded = await world.login(LoginCommand(username="maria ", password=PASSWORD))
            assert padded.tokens is not None
    with pytest.raises(AccountLocked):
        await world.login(LoginCommand(username="maria", password=PASSWORD))
    padded = await world.login(LoginCommand(username="maria ", password=PASSWORD))
    assert padded.tokens is not None  # its own lockout is its own


async def test_logins_at_once_never_check_more_passwords_than_the_tries_left(
    world: AuthWorld,
) -> None:
    # Checked first and counted after, 99 wrong passwords and the right one sent at once
    # were all checked (and the right one got tokens) before the first failure counted.
    await world.user_without_mfa("maria")
    guesses = [f"wrong password {n}" for n in range(29)] + [PASSWORD]
    outcomes = await asyncio.gather(
        *(world.login(LoginCommand(username="maria", password=g)) for g in guesses),
        return_exceptions=True,
    )
    checked = [o for o in outcomes if not isinstance(o, AccountLocked)]
    assert len(checked) <= 10, outcomes  # the policy's 10 tries
    assert all(isinstance(o, InvalidCredentials) or o.tokens for o in checked), outcomes  # type: ignore[union-attr]
    wrong = sum(isinstance(o, InvalidCredentials) for o in checked)
    if wrong == 10:  # every try went to a wrong one: the account is now locked
        with pytest.raises(AccountLocked):
            await world.login(LoginCommand(username="maria", password=PASSWORD))


async def test_mfa_codes_at_once_over_many_challenges_never_exceed_the_tries_left(
    world: AuthWorld,
) -> None:
    totp = await world.user_with_totp()
    challenges = [(await world.challenge()).challenge_id for _ in range(6)]
    wrong = wrong_code(world.code(totp))
    outcomes = await asyncio.gather(
        *(
            world.answer(AnswerChallengeCommand(challenge_id=c, answer=wrong))
            for c in challenges
            if c is not None
            for _ in range(5)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(o, IncorrectCode) for o in outcomes) <= 10, outcomes
    assert all(isinstance(o, IncorrectCode | AccountLocked) for o in outcomes), outcomes


async def test_an_answer_refused_while_every_try_is_being_checked_uses_no_attempt(
    world: AuthWorld,
) -> None:
    # An answer refused 429 (every try of the account held by checks in flight) used to
    # count one of the challenge's 5 attempts first: five such refusals spent it.
    totp = await world.user_with_totp()
    result = await world.challenge()
    assert result.challenge_id is not None
    held = [await world.throttle.begin_attempt("maria") for _ in range(10)]
    for _ in range(6):
        with pytest.raises(AccountLocked):
            await world.answer(AnswerChallengeCommand(challenge_id=result.challenge_id, answer="0"))
    for token in held:
        await world.throttle.end_attempt("maria", token, failed=False)
    challenge = await world.challenges.get(result.challenge_id)
    assert challenge is not None
    assert challenge.attempts == 0
    answered = await world.answer(
        AnswerChallengeCommand(challenge_id=result.challenge_id, answer=world.code(totp))
    )
    assert answered.tokens is not None


@pytest.mark.parametrize(
    "look_alike",
    [
        "jose\u0301",  # NFD: "e" and a combining acute accent
        "\uff4a\uff4f\uff53\u00e9",  # full-width letters
    ],
)
async def test_a_unicode_look_alike_of_a_username_cannot_sign_up(
    world: AuthWorld, look_alike: str
) -> None:
    await world.user_without_mfa("jos\u00e9")  # NFC
    with pytest.raises(InvalidInput) as refused:
        await world.sign_up(SignUpCommand(username=look_alike, password=PASSWORD))
    assert refused.value.details.get("field") == "username"
