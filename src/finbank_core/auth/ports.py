"""Ports of the auth context.

``IdentityProvider`` is shaped after Cognito's API so that both Cognito and
the self-hosted ``local_auth`` provider fit it: login may return a
``ProviderChallenge`` instead of tokens, and answering one may return another.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from finbank_core.auth.model import (
    MfaChallenge,
    Principal,
    ProviderChallenge,
    SignUpCommand,
    SignUpResult,
    TokenSet,
    TotpSetup,
)


class IdentityProvider(Protocol):
    async def sign_up(self, request: SignUpCommand) -> SignUpResult:
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

    async def begin_challenge_totp_setup(
        self, challenge: ProviderChallenge
    ) -> tuple[TotpSetup, ProviderChallenge]:
        """For an ``MFA_SETUP`` challenge: a new TOTP secret and the challenge to answer next.

        The returned challenge (same type, possibly a new provider session) is
        answered with a code from the authenticator app. Raises
        ``UnsupportedChallenge`` for other types, ``InvalidToken`` when the
        session is gone.
        """
        ...

    async def refresh(self, refresh_token: str, *, username: str | None = None) -> TokenSet:
        """New tokens for a refresh token; raises ``InvalidToken``.

        ``username`` is needed only by providers that sign the request with it
        (Cognito app clients with a secret); others ignore it.
        """
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


class ChallengeStore(Protocol):
    """Pending MFA challenges under their opaque id, with a TTL and an attempt counter.

    Time is the injected clock's: a challenge whose ``expires_at`` has passed
    is gone, whatever the backend's own expiry says. Backends that fail raise
    ``ServiceUnavailable``: nothing is ever answered from a guess.
    """

    async def put(self, challenge: MfaChallenge) -> None:
        """Store a new challenge until its ``expires_at``."""
        ...

    async def get(self, challenge_id: str) -> MfaChallenge | None:
        """The challenge, or ``None`` if unknown or expired. Does not count an attempt."""
        ...

    async def begin_attempt(self, challenge_id: str, max_attempts: int) -> MfaChallenge | None:
        """Atomically count one more answer and return the challenge with the new count.

        ``None`` when the challenge is unknown, expired, or this would be
        attempt number ``max_attempts + 1`` or later: the challenge is then
        spent (no further attempt, ``get`` answers ``None``) but kept until
        its expiry, so that an answer begun within the cap can still win it
        with ``delete`` (deleting it here took it from under a right answer
        made at the same time). Concurrent callers each get a distinct count:
        the cap holds under races.
        """
        ...

    async def delete(self, challenge_id: str) -> bool:
        """Remove the challenge; ``True`` only for the one caller that removed it."""
        ...


class LoginThrottle(Protocol):
    """Failed-login counters per account with a lockout (see ``LockoutPolicy``).

    ``account`` is whatever the caller typed as username: locks apply to
    unknown usernames too, so a lock reveals nothing about who has an account.
    """

    async def ensure_not_locked(self, account: str) -> None:
        """Raise ``AccountLocked`` (with ``retry_after_seconds``) while the account is locked."""
        ...

    async def record_failure(self, account: str) -> None:
        """Count a failed password or MFA code; may start a lock."""
        ...

    async def record_success(self, account: str) -> None:
        """Forget the failures (and the lock history) of the account."""
        ...

    async def begin_attempt(self, account: str) -> str:
        """``ensure_not_locked``, then hold one of the account's tries left while a
        password or code is checked; the try's token, for ``end_attempt``.

        ``AccountLocked`` also while the failures counted and the tries held
        together reach the policy's ``max_failures`` (``retry_after_seconds`` 1):
        checks made at once cannot outnumber the tries left, as checks made one
        after another cannot. Each try counts for :data:`ATTEMPT_LEASE_SECONDS`
        from its own start at most (a holder that died). Atomic in the store.
        """
        ...

    async def end_attempt(self, account: str, token: str, *, failed: bool) -> None:
        """Give back the try ``token`` (gone or expired: nothing to give); ``failed``:
        count a failure, as ``record_failure`` does, in the same atomic step."""
        ...


#: how long a try held by ``LoginThrottle.begin_attempt`` counts without its
#: ``end_attempt`` (a process that died mid-check)
ATTEMPT_LEASE_SECONDS = 60


class TokenDenylist(Protocol):
    """Revoked token ids (``jti``) and login sessions (``origin_jti``) until they expire."""

    async def revoke(self, token_id: str, expires_at: datetime) -> None:
        """Deny ``token_id`` until ``expires_at`` (already expired: nothing to keep)."""
        ...

    async def is_revoked(self, *token_ids: str) -> bool:
        """``True`` if any of the ids is denied. Raises ``ServiceUnavailable`` if unsure."""
        ...
