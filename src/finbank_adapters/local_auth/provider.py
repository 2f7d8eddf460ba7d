"""``LocalIdentityProvider``: the ``IdentityProvider`` port without a cloud.

Passwords are hashed with argon2id (hashing runs in a worker thread so it
does not stall the event loop); a user with TOTP enabled gets a
``SOFTWARE_TOKEN_MFA`` challenge whose provider session is a short-lived
signed token; a TOTP time step, once accepted, is never accepted again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import argon2
import msgspec
import pyotp

from finbank_adapters.local_auth.tokens import LocalTokenIssuer
from finbank_core.auth.errors import InvalidCredentials, InvalidToken, WeakPassword
from finbank_core.auth.model import (
    ChallengeType,
    ProviderChallenge,
    SignUpRequest,
    SignUpResult,
    TokenSet,
    TotpSetup,
)
from finbank_core.auth.use_cases import PASSWORD_MIN
from finbank_core.auth.users import UserRecord, UserStore
from finbank_core.shared.errors import AuthenticationFailed, InvalidInput

MFA_SESSION_TTL_SECONDS = 180
TOTP_STEP_SECONDS = 30


class LocalIdentityProvider:
    def __init__(
        self,
        users: UserStore,
        tokens: LocalTokenIssuer,
        *,
        totp_issuer_name: str = "finbank",
        hasher: argon2.PasswordHasher | None = None,
        new_subject: Callable[[], str] | None = None,
    ) -> None:
        self._users = users
        self._tokens = tokens
        self._clock = tokens.clock
        self._totp_issuer_name = totp_issuer_name
        self._hasher = hasher or argon2.PasswordHasher()  # argon2id, RFC 9106 defaults
        self._new_subject = new_subject or (lambda: str(uuid.uuid4()))
        # Verifying against this keeps unknown-user logins as slow as real ones.
        self._dummy_hash = self._hasher.hash("finbank-timing-equaliser")

    # -- sign up ---------------------------------------------------------------

    async def sign_up(self, request: SignUpRequest) -> SignUpResult:
        if len(request.password) < PASSWORD_MIN:
            raise WeakPassword(f"password must have at least {PASSWORD_MIN} characters")
        if request.password.lower() == request.username.lower():
            raise WeakPassword("password must differ from the username")
        password_hash = await asyncio.to_thread(self._hasher.hash, request.password)
        user = UserRecord(
            subject=self._new_subject(),
            username=request.username,
            password_hash=password_hash,
            created_at=self._clock.now(),
            email=request.email,
            phone_number=request.phone_number,
            name=request.name,
        )
        await self._users.add(user)
        return SignUpResult(subject=user.subject, confirmation_required=False)

    async def confirm_sign_up(self, username: str, code: str) -> None:
        # Local sign-ups are confirmed at once; there is nothing to confirm.
        user = await self._users.get_by_username(username)
        if user is None or not user.confirmed:
            raise AuthenticationFailed("confirmation failed")

    # -- login -------------------------------------------------------------------

    async def login(self, username: str, password: str) -> TokenSet | ProviderChallenge:
        user = await self._users.get_by_username(username)
        stored_hash = user.password_hash if user is not None else self._dummy_hash
        ok = await asyncio.to_thread(self._verify_password, stored_hash, password)
        if user is None or not ok:
            raise InvalidCredentials()
        if self._hasher.check_needs_rehash(user.password_hash):
            rehashed = await asyncio.to_thread(self._hasher.hash, password)
            user = _replace(user, password_hash=rehashed)
            await self._users.update(user)
        if user.mfa_enabled and user.totp_secret:
            session = self._tokens.sign(
                "mfa_session", user.subject, MFA_SESSION_TTL_SECONDS, username=user.username
            )
            return ProviderChallenge(
                type=ChallengeType.SOFTWARE_TOKEN_MFA,
                session=session,
                username=user.username,
                available_types=(ChallengeType.SOFTWARE_TOKEN_MFA,),
            )
        return self._issue(user)

    def _verify_password(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    async def answer_challenge(
        self, challenge: ProviderChallenge, answer: str
    ) -> TokenSet | ProviderChallenge:
        if challenge.type is not ChallengeType.SOFTWARE_TOKEN_MFA:
            raise InvalidInput("this provider only issues SOFTWARE_TOKEN_MFA challenges")
        claims = self._tokens.decode(challenge.session, "mfa_session")
        user = await self._users.get(str(claims["sub"]))
        if user is None or not user.totp_secret:
            raise InvalidToken()
        user = await self._consume_totp(user, user.totp_secret, answer)
        return self._issue(user)

    async def _consume_totp(self, user: UserRecord, secret: str, code: str) -> UserRecord:
        """Accept a code of the current step (or one step either side) once only."""
        if not (code.isascii() and code.isdigit() and len(code) == 6):
            raise AuthenticationFailed("the code is incorrect")
        totp = pyotp.TOTP(secret)
        now_step = int(self._clock.now().timestamp()) // TOTP_STEP_SECONDS
        for step in (now_step - 1, now_step, now_step + 1):
            if totp.at(step * TOTP_STEP_SECONDS) == code:
                if user.totp_last_step is not None and step <= user.totp_last_step:
                    break  # replayed (or older than the last accepted) code
                user = _replace(user, totp_last_step=step)
                await self._users.update(user)
                return user
        raise AuthenticationFailed("the code is incorrect")

    # -- tokens ------------------------------------------------------------------

    def _issue(self, user: UserRecord) -> TokenSet:
        access = self._tokens.sign(
            "access",
            user.subject,
            self._tokens.access_ttl_seconds,
            username=user.username,
            roles=list(user.roles),
        )
        refresh = self._tokens.sign(
            "refresh", user.subject, self._tokens.refresh_ttl_seconds, username=user.username
        )
        return TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_in=self._tokens.access_ttl_seconds,
        )

    async def refresh(self, refresh_token: str) -> TokenSet:
        claims = self._tokens.decode(refresh_token, "refresh")
        user = await self._users.get(str(claims["sub"]))
        if user is None:
            raise InvalidToken()
        return self._issue(user)

    async def sign_out(self, access_token: str) -> None:
        # Access tokens are revoked by the token denylist; refresh tokens stay
        # valid until expiry (families and their revocation: the MFA issue).
        self._tokens.decode(access_token, "access")

    # -- TOTP enrolment -----------------------------------------------------------

    async def begin_totp_setup(self, access_token: str) -> TotpSetup:
        user = await self._user_of(access_token)
        secret = pyotp.random_base32()
        await self._users.update(_replace(user, pending_totp_secret=secret))
        uri = pyotp.TOTP(secret).provisioning_uri(
            name=user.username, issuer_name=self._totp_issuer_name
        )
        return TotpSetup(secret=secret, otpauth_uri=uri)

    async def verify_totp_setup(self, access_token: str, code: str) -> None:
        user = await self._user_of(access_token)
        if not user.pending_totp_secret:
            raise InvalidInput("no TOTP enrolment in progress")
        user = await self._consume_totp(user, user.pending_totp_secret, code)
        await self._users.update(
            _replace(
                user,
                totp_secret=user.pending_totp_secret,
                pending_totp_secret=None,
                mfa_enabled=True,
            )
        )

    async def _user_of(self, access_token: str) -> UserRecord:
        claims = self._tokens.decode(access_token, "access")
        user = await self._users.get(str(claims["sub"]))
        if user is None:
            raise InvalidToken()
        return user


def _replace(user: UserRecord, **changes: object) -> UserRecord:
    return msgspec.structs.replace(user, **changes)
