"""SELECT_MFA_TYPE and EMAIL_OTP through the core, with a scripted identity provider.

moto never issues these two challenges, so the use cases are exercised here
against a provider of our own port that plays Cognito's part and records
what it was asked; the Cognito adapter's response keys are checked too.
"""

from __future__ import annotations

import pytest

from finbank_adapters.aws.cognito import _RESPONSE_KEY
from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.auth import InMemoryChallengeStore, InMemoryLoginThrottle
from finbank_core.auth import AnswerChallengeCommand, LoginCommand, SelectMfaTypeCommand
from finbank_core.auth.errors import ChallengeNotFound
from finbank_core.auth.model import (
    ChallengeType,
    ProviderChallenge,
    SignUpCommand,
    SignUpResult,
    TokenSet,
    TotpSetup,
)
from finbank_core.auth.use_cases import AnswerChallenge, PasswordLogin, SelectMfaType
from finbank_core.shared.errors import InvalidInput

TOKENS = TokenSet(access_token="access", refresh_token="refresh", expires_in=900)


class ScriptedCognito:
    """Asks the user to pick SMS or e-mail, then for the chosen code."""

    def __init__(self) -> None:
        self.answers: list[tuple[ChallengeType, str, str]] = []

    async def login(self, username: str, password: str) -> TokenSet | ProviderChallenge:
        return ProviderChallenge(
            type=ChallengeType.SELECT_MFA_TYPE,
            session="s-select",
            username=username,
            available_types=(ChallengeType.SMS_MFA, ChallengeType.EMAIL_OTP),
        )

    async def answer_challenge(
        self, challenge: ProviderChallenge, answer: str
    ) -> TokenSet | ProviderChallenge:
        self.answers.append((challenge.type, challenge.session, answer))
        if challenge.type is ChallengeType.SELECT_MFA_TYPE:
            return ProviderChallenge(
                type=ChallengeType(answer), session=f"s-{answer}", username=challenge.username
            )
        return TOKENS

    async def sign_up(self, request: SignUpCommand) -> SignUpResult:
        raise AssertionError("not used")

    async def confirm_sign_up(self, username: str, code: str) -> None:
        raise AssertionError("not used")

    async def refresh(self, refresh_token: str, username: str | None = None) -> TokenSet:
        raise AssertionError("not used")

    async def sign_out(self, access_token: str) -> None:
        raise AssertionError("not used")

    async def begin_totp_setup(self, access_token: str) -> TotpSetup:
        raise AssertionError("not used")

    async def verify_totp_setup(self, access_token: str, code: str) -> None:
        raise AssertionError("not used")

    async def begin_challenge_totp_setup(
        self, challenge: ProviderChallenge
    ) -> tuple[TotpSetup, ProviderChallenge]:
        raise AssertionError("not used")


@pytest.fixture
def world() -> tuple[ScriptedCognito, PasswordLogin, AnswerChallenge]:
    clock = FakeClock()
    provider = ScriptedCognito()
    challenges = InMemoryChallengeStore(clock)
    throttle = InMemoryLoginThrottle(clock)
    return (
        provider,
        PasswordLogin(provider, challenges, throttle, clock),
        AnswerChallenge(provider, challenges, throttle, clock),
    )


async def test_choosing_email_otp_leads_to_an_email_code_then_tokens(
    world: tuple[ScriptedCognito, PasswordLogin, AnswerChallenge],
) -> None:
    provider, login, answer = world
    first = await login(LoginCommand(username="maria", password="a long password"))
    assert first.challenge_type == "SELECT_MFA_TYPE"
    assert set(first.available_types) == {"SMS_MFA", "EMAIL_OTP"}
    assert first.challenge_id is not None
    second = await SelectMfaType(answer)(
        SelectMfaTypeCommand(challenge_id=first.challenge_id, mfa_type="EMAIL_OTP")
    )
    assert second.challenge_type == "EMAIL_OTP"
    assert second.challenge_id not in (None, first.challenge_id)
    assert second.challenge_id is not None
    done = await answer(AnswerChallengeCommand(challenge_id=second.challenge_id, answer="654321"))
    assert done.tokens == TOKENS
    assert provider.answers == [
        (ChallengeType.SELECT_MFA_TYPE, "s-select", "EMAIL_OTP"),
        (ChallengeType.EMAIL_OTP, "s-EMAIL_OTP", "654321"),
    ]
    with pytest.raises(ChallengeNotFound):  # both ids are spent
        await answer(AnswerChallengeCommand(challenge_id=first.challenge_id, answer="SMS_MFA"))
    with pytest.raises(ChallengeNotFound):
        await answer(AnswerChallengeCommand(challenge_id=second.challenge_id, answer="654321"))


async def test_a_type_the_provider_did_not_offer_is_refused_without_asking_it(
    world: tuple[ScriptedCognito, PasswordLogin, AnswerChallenge],
) -> None:
    provider, login, answer = world
    first = await login(LoginCommand(username="maria", password="a long password"))
    assert first.challenge_id is not None
    with pytest.raises(InvalidInput, match="choose one of"):
        await SelectMfaType(answer)(
            SelectMfaTypeCommand(challenge_id=first.challenge_id, mfa_type="SOFTWARE_TOKEN_MFA")
        )
    with pytest.raises(InvalidInput):
        await SelectMfaType(answer)(
            SelectMfaTypeCommand(challenge_id=first.challenge_id, mfa_type="NOT_A_TYPE")
        )
    assert provider.answers == []


def test_each_cognito_challenge_is_answered_with_its_own_response_key() -> None:
    assert _RESPONSE_KEY == {
        ChallengeType.SMS_MFA: "SMS_MFA_CODE",
        ChallengeType.SOFTWARE_TOKEN_MFA: "SOFTWARE_TOKEN_MFA_CODE",
        ChallengeType.EMAIL_OTP: "EMAIL_OTP_CODE",
        ChallengeType.SELECT_MFA_TYPE: "ANSWER",
    }
