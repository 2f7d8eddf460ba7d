"""Errors of the auth context. Messages never say whether a user exists."""

from __future__ import annotations

from finbank_core.shared.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    RuleViolation,
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
