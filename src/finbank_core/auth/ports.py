"""Ports of the auth context.

``IdentityProvider`` is shaped after Cognito's API so that both Cognito and
the self-hosted ``local_auth`` provider fit it: login may return a
``ProviderChallenge`` instead of tokens, and answering one may return another.
"""

from __future__ import annotations

from typing import Protocol

from finbank_core.auth.model import (
    Principal,
    ProviderChallenge,
    SignUpRequest,
    SignUpResult,
    TokenSet,
    TotpSetup,
)


class IdentityProvider(Protocol):
    async def sign_up(self, request: SignUpRequest) -> SignUpResult:
        """Register a user. Raises ``UsernameTaken``, ``WeakPassword``, ``InvalidInput``."""
        ...

    async def confirm_sign_up(self, username: str, code: str) -> None:
        """Confirm a sign-up where the provider requires it; raises ``AuthenticationFailed``."""
        ...

    async def login(self, username: str, password: str) -> TokenSet | ProviderChallenge:
        """Password step. Raises ``InvalidCredentials`` whether or not the user exists."""
        ...

    async def answer_challenge(
        self, challenge: ProviderChallenge, answer: str
    ) -> TokenSet | ProviderChallenge:
        """Answer an MFA challenge with a code (or, for ``SELECT_MFA_TYPE``, a type).

        Raises ``AuthenticationFailed`` (wrong code) or ``InvalidToken``
        (session expired or unknown).
        """
        ...

    async def refresh(self, refresh_token: str) -> TokenSet:
        """New tokens for a refresh token; raises ``InvalidToken``."""
        ...

    async def sign_out(self, access_token: str) -> None:
        """Revoke the user's refresh tokens (global sign-out)."""
        ...

    async def begin_totp_setup(self, access_token: str) -> TotpSetup:
        """Start enrolling an authenticator app for the token's user."""
        ...

    async def verify_totp_setup(self, access_token: str, code: str) -> None:
        """Finish enrolling: a right code enables TOTP MFA; raises ``AuthenticationFailed``."""
        ...


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Principal:
        """Verify an access token; raises ``InvalidToken`` for anything wrong with it."""
        ...
