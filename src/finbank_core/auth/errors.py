"""Errors of the auth context. Messages never say whether a user exists."""

from __future__ import annotations

from finbank_core.shared.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    PermissionDenied,
    RuleViolation,
    TooManyRequests,
)


class InvalidCredentials(AuthenticationFailed):
    code = "invalid_credentials"
    title = "Username or password is incorrect"


class InvalidToken(AuthenticationFailed):
    code = "invalid_token"
    title = "The token is invalid, expired or revoked"


class UsernameTaken(Conflict):
    code = "username_taken"
    title = "Username is not available"


class WeakPassword(InvalidInput):
    code = "weak_password"
    title = "Password does not meet the policy"


class UserNotConfirmed(RuleViolation):
    code = "user_not_confirmed"
    title = "The sign-up must be confirmed first"


class IncorrectCode(AuthenticationFailed):
    """A wrong MFA or TOTP code; ``details['attempts_left']`` when a challenge caps them."""

    code = "incorrect_code"
    title = "The code is incorrect"


class ChallengeNotFound(AuthenticationFailed):
    """The MFA challenge id is unknown, expired, already answered or out of attempts.

    One error for all four, so the answer tells an attacker nothing.
    """

    code = "mfa_challenge_invalid"
    title = "The MFA challenge is invalid or expired; log in again"


class AccountLocked(TooManyRequests):
    """Too many failed logins for this username; ``details['retry_after_seconds']``.

    Raised for any username, existing or not, so it does not reveal accounts.
    """

    code = "account_locked"
    title = "Too many failed attempts; try again later"


class PasswordResetRequired(RuleViolation):
    code = "password_reset_required"
    title = "The password must be reset before logging in"


class UnsupportedChallenge(RuleViolation):
    """The provider asked for a step this service does not implement."""

    code = "unsupported_challenge"
    title = "This login step is not supported"


class StepUpRequired(PermissionDenied):
    """A sensitive change needs a valid step-up token for its purpose (``details['purpose']``).

    Missing, unknown, expired, spent, another user's or session's, or issued
    for another purpose: one answer for all.
    """

    code = "step_up_required"
    title = "Re-authenticate (step up) before this change"
