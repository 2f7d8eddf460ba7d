"""Auth use cases (foundation: sign up and password login).

MFA challenge handling (``ChallengeStore``) builds on these: see ARCHITECTURE.md "Auth".
"""

from __future__ import annotations

import msgspec

from finbank_core.auth.model import ProviderChallenge, SignUpRequest, SignUpResult, TokenSet
from finbank_core.auth.ports import IdentityProvider
from finbank_core.shared.errors import InvalidInput

USERNAME_MAX = 128
PASSWORD_MIN = 10
PASSWORD_MAX = 256


def validate_credentials_shape(username: str, password: str) -> None:
    if not username or len(username) > USERNAME_MAX or not username.isprintable():
        raise InvalidInput(f"username must be 1 to {USERNAME_MAX} printable characters")
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"password must be at most {PASSWORD_MAX} characters")


class LoginResult(msgspec.Struct, frozen=True, kw_only=True):
    """Tokens, or the public side of an MFA challenge (never the provider session)."""

    tokens: TokenSet | None = None
    challenge_id: str | None = None
    challenge_type: str | None = None
    expires_in: int | None = None


class SignUp:
    def __init__(self, provider: IdentityProvider) -> None:
        self._provider = provider

    async def __call__(self, request: SignUpRequest) -> SignUpResult:
        validate_credentials_shape(request.username, request.password)
        return await self._provider.sign_up(request)


class PasswordLogin:
    """Log in with a password; returns tokens when the provider asks for no MFA."""

    def __init__(self, provider: IdentityProvider) -> None:
        self._provider = provider

    async def __call__(self, username: str, password: str) -> TokenSet | ProviderChallenge:
        validate_credentials_shape(username, password)
        return await self._provider.login(username, password)
