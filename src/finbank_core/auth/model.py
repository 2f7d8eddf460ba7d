"""Auth value objects."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime, timedelta

import msgspec

from finbank_core.shared.privacy import masked_repr

#: bytes of randomness in an MFA challenge id (256 bits; the floor is 128)
CHALLENGE_ID_BYTES = 32


def account_key(username: str) -> str:
    """The lockout key of a username: its ``casefold()``, the key the user stores find a
    user by (case-insensitive, nothing else folded), so two usernames share a lockout
    only if they are one user. (It used to strip spaces too: a user ``" ana"`` signed up
    next to ``ana`` then shared ``ana``'s counter, and its own successful logins reset
    it, so guesses at ``ana`` were never locked.)"""
    return username.casefold()


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling, as proven by a verified access token."""

    subject: str  # stable user id; what resources are owned by
    username: str
    token_id: str | None = None  # jti, for revocation
    #: the login session the token descends from (Cognito ``origin_jti``, the
    #: local provider's refresh family); revoking it revokes every token of it
    session_id: str | None = None
    expires_at: datetime | None = None
    roles: frozenset[str] = frozenset()

    __repr__ = masked_repr("username")


class TokenSet(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    expires_in: int
    refresh_token: str | None = None
    id_token: str | None = None
    token_type: str = "Bearer"  # noqa: S105 - a scheme name, not a secret

    __repr__ = masked_repr("access_token", "refresh_token", "id_token")


class ChallengeType(enum.StrEnum):
    """MFA challenges, named as Cognito names them."""

    SMS_MFA = "SMS_MFA"
    SOFTWARE_TOKEN_MFA = "SOFTWARE_TOKEN_MFA"  # noqa: S105 - a challenge name
    EMAIL_OTP = "EMAIL_OTP"
    SELECT_MFA_TYPE = "SELECT_MFA_TYPE"
    MFA_SETUP = "MFA_SETUP"


class ProviderChallenge(msgspec.Struct, frozen=True, kw_only=True):
    """A challenge as the identity provider issued it; never shown to clients.

    ``session`` is the provider's own opaque session (Cognito's ``Session``).
    """

    type: ChallengeType
    session: str
    username: str
    available_types: tuple[ChallengeType, ...] = ()
    #: how long the provider keeps ``session`` alive, when it says so
    session_ttl_seconds: int | None = None

    __repr__ = masked_repr("session", "username")


class MfaChallenge(msgspec.Struct, frozen=True, kw_only=True):
    """A pending MFA challenge as ``ChallengeStore`` keeps it.

    ``id`` is the only handle a client gets: opaque, random, single use. It
    maps to the provider's session and the user; nothing is keyed by username.
    ``attempts`` counts the answers begun so far (right or wrong).
    """

    id: str
    type: ChallengeType
    session: str
    username: str
    expires_at: datetime
    available_types: tuple[ChallengeType, ...] = ()
    attempts: int = 0
    #: the lockout key of the login that raised it (what the user typed, case-folded)
    account: str = ""

    __repr__ = masked_repr("session", "username")

    @classmethod
    def issue(
        cls, challenge: ProviderChallenge, *, now: datetime, ttl_seconds: int, account: str = ""
    ) -> MfaChallenge:
        """A new challenge with a fresh random id, expiring ``ttl_seconds`` after ``now``."""
        return cls(
            account=account or account_key(challenge.username),
            id=new_challenge_id(),
            type=challenge.type,
            session=challenge.session,
            username=challenge.username,
            available_types=challenge.available_types,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )

    def provider_challenge(self) -> ProviderChallenge:
        return ProviderChallenge(
            type=self.type,
            session=self.session,
            username=self.username,
            available_types=self.available_types,
        )

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def new_challenge_id() -> str:
    """256 random bits, URL-safe: unguessable, and meaningless without the store."""
    return secrets.token_urlsafe(CHALLENGE_ID_BYTES)


class SignUpCommand(msgspec.Struct, frozen=True, kw_only=True):
    """A new user of the identity provider (confirmed later with the code sent to them)."""

    username: str
    password: str
    email: str | None = None
    phone_number: str | None = None
    name: str | None = None

    def __repr__(self) -> str:
        # The password and the contact details never reach a log through repr.
        return "SignUpCommand(username='***', password='***')"


class AuthenticateQuery(msgspec.Struct, frozen=True, kw_only=True):
    """``Authenticate``: the access token to verify (every use case that acts for a
    caller checks its token with it first)."""

    access_token: str

    __repr__ = masked_repr("access_token")


class SignUpResult(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    confirmation_required: bool


class TotpSetup(msgspec.Struct, frozen=True, kw_only=True):
    secret: str
    otpauth_uri: str

    __repr__ = masked_repr("secret", "otpauth_uri")
