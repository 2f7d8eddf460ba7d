"""The one place where Cognito errors become core errors.

The mapping depends on the step: ``NotAuthorizedException`` is wrong
credentials at login but a dead session when answering a challenge. Unknown
users look exactly like wrong passwords (no user-existence leak). Cognito's
own messages are never passed on or chained: they can echo usernames,
sessions or secret hashes. Only the error code is logged.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

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
    InvalidInput,
    PermissionDenied,
    ServiceUnavailable,
    TooManyRequests,
)

logger = logging.getLogger("finbank.cognito")


class Step(enum.Enum):
    SIGN_UP = "sign_up"
    CONFIRM = "confirm"
    LOGIN = "login"
    ANSWER = "answer"  # answering a challenge with its session
    REFRESH = "refresh"
    TOKEN = "token"  # noqa: S105 - calls authorised by the user's access token


_THROTTLED = {
    "TooManyRequestsException",
    "LimitExceededException",
    "TooManyFailedAttemptsException",
}
_DENIED = {"NotAuthorizedException", "UserNotFoundException"}


def translate(code: str, step: Step) -> DomainError:
    """The core error for Cognito error ``code`` raised during ``step``."""
    if code in _THROTTLED:
        return TooManyRequests("the identity provider is throttling; retry later")
    if step is Step.CONFIRM and code in (
        _DENIED | {"CodeMismatchException", "ExpiredCodeException"}
    ):
        # One answer whether the user exists or the code is wrong.
        return AuthenticationFailed("confirmation failed")
    if code in _DENIED:
        if step is Step.LOGIN:
            return InvalidCredentials()
        if step is Step.SIGN_UP:
            return PermissionDenied("sign-up is not allowed")
        return InvalidToken()
    simple: dict[str, DomainError] = {
        "UsernameExistsException": UsernameTaken(),
        "AliasExistsException": UsernameTaken(),
        "InvalidPasswordException": WeakPassword(),
        "CodeMismatchException": IncorrectCode(),
        "EnableSoftwareTokenMFAException": IncorrectCode(),
        "PasswordResetRequiredException": PasswordResetRequired(),
        "UserNotConfirmedException": UserNotConfirmed(),
        "SoftwareTokenMFANotFoundException": InvalidInput("no TOTP enrolment in progress"),
        "InvalidParameterException": InvalidInput("the identity provider refused the request"),
        "UserLambdaValidationException": InvalidInput("the request was refused by a policy"),
    }
    if code in simple:
        return simple[code]
    if code == "ExpiredCodeException" or (
        code == "ResourceNotFoundException" and step is Step.ANSWER
    ):
        # The code or the auth session expired (or never existed): start over.
        return InvalidToken()
    return ServiceUnavailable("the identity provider failed")


@contextmanager
def cognito_errors(step: Step) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
        error = translate(code, step)
        if isinstance(error, ServiceUnavailable):
            logger.warning("cognito %s failed: %s", step.value, code)
        raise error from None
    except (BotoCoreError, OSError, TimeoutError) as exc:
        logger.warning("cognito %s unreachable: %s", step.value, type(exc).__name__)
        raise ServiceUnavailable("the identity provider is unreachable") from None
