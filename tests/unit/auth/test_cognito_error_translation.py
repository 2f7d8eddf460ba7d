"""Cognito error codes become core errors, by step, without revealing who has an account."""

from __future__ import annotations

import pytest

from finbank_adapters.aws.cognito_errors import Step, translate
from finbank_core.auth.errors import (
    IncorrectCode,
    InvalidCredentials,
    InvalidToken,
    PasswordResetRequired,
    UsernameTaken,
    UserNotConfirmed,
    WeakPassword,
)
from finbank_core.shared.errors import (
    AuthenticationFailed,
    DomainError,
    ServiceUnavailable,
    TooManyRequests,
)


@pytest.mark.parametrize(
    ("code", "step", "expected"),
    [
        ("NotAuthorizedException", Step.LOGIN, InvalidCredentials),
        ("UserNotFoundException", Step.LOGIN, InvalidCredentials),
        ("NotAuthorizedException", Step.ANSWER, InvalidToken),
        ("NotAuthorizedException", Step.REFRESH, InvalidToken),
        ("CodeMismatchException", Step.ANSWER, IncorrectCode),
        ("ExpiredCodeException", Step.ANSWER, InvalidToken),
        ("ResourceNotFoundException", Step.ANSWER, InvalidToken),
        ("TooManyRequestsException", Step.LOGIN, TooManyRequests),
        ("TooManyFailedAttemptsException", Step.ANSWER, TooManyRequests),
        ("PasswordResetRequiredException", Step.LOGIN, PasswordResetRequired),
        ("UserNotConfirmedException", Step.LOGIN, UserNotConfirmed),
        ("UsernameExistsException", Step.SIGN_UP, UsernameTaken),
        ("InvalidPasswordException", Step.SIGN_UP, WeakPassword),
        ("InternalErrorException", Step.LOGIN, ServiceUnavailable),
        ("SomethingNewException", Step.TOKEN, ServiceUnavailable),
    ],
)
def test_cognito_codes_map_to_core_errors(
    code: str, step: Step, expected: type[DomainError]
) -> None:
    assert type(translate(code, step)) is expected


@pytest.mark.parametrize(
    "code",
    [
        "UserNotFoundException",
        "CodeMismatchException",
        "ExpiredCodeException",
        "NotAuthorizedException",
    ],
)
def test_confirming_a_sign_up_fails_the_same_way_for_unknown_users_and_wrong_codes(
    code: str,
) -> None:
    error = translate(code, Step.CONFIRM)
    assert type(error) is AuthenticationFailed
    assert error.message == "confirmation failed"


def test_unknown_user_and_wrong_password_read_the_same() -> None:
    unknown = translate("UserNotFoundException", Step.LOGIN)
    wrong = translate("NotAuthorizedException", Step.LOGIN)
    assert (unknown.code, unknown.message) == (wrong.code, wrong.message)
