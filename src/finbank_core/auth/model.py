"""Auth value objects."""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling, as proven by a verified access token."""

    subject: str  # stable user id; what resources are owned by
    username: str
    token_id: str | None = None  # jti, for revocation
    expires_at: datetime | None = None
    roles: frozenset[str] = frozenset()


class TokenSet(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    expires_in: int
    refresh_token: str | None = None
    id_token: str | None = None
    token_type: str = "Bearer"  # noqa: S105 - a scheme name, not a secret


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


class SignUpRequest(msgspec.Struct, frozen=True, kw_only=True):
    username: str
    password: str
    email: str | None = None
    phone_number: str | None = None
    name: str | None = None


class SignUpResult(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    confirmation_required: bool


class TotpSetup(msgspec.Struct, frozen=True, kw_only=True):
    secret: str
    otpauth_uri: str
