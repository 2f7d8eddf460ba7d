"""``LocalIdentityProvider``: the ``IdentityProvider`` port without a cloud.

Passwords are hashed with argon2id (hashing runs in a worker thread so it
does not stall the event loop); a user with TOTP enabled gets a
``SOFTWARE_TOKEN_MFA`` challenge whose provider session is a short-lived
signed token; a TOTP time step, once accepted, is never accepted again.

Refresh tokens rotate: each login starts a family in ``RefreshTokenStore``
(its id is the ``sid`` claim of every token of the login, so logging out
can deny them all); each refresh replaces the family's one valid refresh
token, and presenting a superseded one revokes the family. Sign-out revokes
every family of the user, like Cognito's ``GlobalSignOut``.

With a ``denylist`` (the container always passes one), a family that is
revoked is also denied there by its id, the ``sid`` of every token of the
login, until the family would have expired: a detected reuse refuses the
family's access tokens at once, not when they expire, and a refresh is
refused by the (durable) denylist even if the refresh-token store forgot the
revocation.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import argon2
import msgspec
import pyotp

from finbank_adapters.local_auth.tokens import LocalTokenIssuer
from finbank_core.auth.errors import (
    IncorrectCode,
    InvalidCredentials,
    InvalidToken,
    UnsupportedChallenge,
    WeakPassword,
)
from finbank_core.auth.model import (
    ChallengeType,
    Principal,
    ProviderChallenge,
    SignUpCommand,
    SignUpResult,
    TokenSet,
    TotpSetup,
)
from finbank_core.auth.ports import TokenDenylist
from finbank_core.auth.refresh_tokens import RefreshTokenStore, RotationOutcome
from finbank_core.auth.use_cases import PASSWORD_MIN
from finbank_core.auth.users import UserRecord, UserStore
from finbank_core.shared.errors import AuthenticationFailed, Conflict, InvalidInput

MFA_SESSION_TTL_SECONDS = 180
#: reads and compare-and-sets of a user before a write gives up (each lost one means
#: another write of the same user landed in between)
_CHANGE_TRIES = 8
TOTP_STEP_SECONDS = 30


class LocalIdentityProvider:
    def __init__(
        self,
        users: UserStore,
        tokens: LocalTokenIssuer,
        *,
        refresh_tokens: RefreshTokenStore,
        denylist: TokenDenylist | None = None,
        totp_issuer_name: str = "finbank",
        hasher: argon2.PasswordHasher | None = None,
        new_subject: Callable[[], str] | None = None,
    ) -> None:
        if not callable(getattr(users, "replace", None)):
            # users are written with UserStore.replace (a compare-and-set) since it exists
            raise TypeError(
                f"{type(users).__name__} has no replace(): a UserStore needs it (docs/auth.md)"
            )
        self._users = users
        self._tokens = tokens
        self._refresh_tokens = refresh_tokens
        self._denylist = denylist
        self._clock = tokens.clock
        self._totp_issuer_name = totp_issuer_name
        self._hasher = hasher or argon2.PasswordHasher()  # argon2id, RFC 9106 defaults
        self._new_subject = new_subject or (lambda: str(uuid.uuid4()))
        # Verifying against this keeps unknown-user logins as slow as real ones.
        self._dummy_hash = self._hasher.hash("finbank-timing-equaliser")

    # -- sign up ---------------------------------------------------------------

    async def sign_up(self, request: SignUpCommand) -> SignUpResult:
        _check_password_policy(request.username, request.password)
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
        """Always ``AuthenticationFailed``: this provider issues no confirmation codes.

        Sign-ups here are confirmed at once (``confirmation_required`` is false), so
        no code is valid for anyone. The user is not even looked up: the answer,
        and the time it takes, are the same for an existing user and an unknown one.
        """
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
            # only over the hash just verified: a password changed meanwhile stays
            # changed, and another login's rehash of the same password stays too
            verified, version = user.password_hash, user.password_version
            user = await self._change(
                user.subject,
                expect=lambda stored: (
                    (stored.password_hash, stored.password_version) == (verified, version)
                ),
                password_hash=rehashed,
            )
            if user.password_version != version:
                raise InvalidCredentials()  # the password verified was changed meanwhile
        if user.mfa_enabled and user.totp_secret:
            session = self._tokens.sign(
                "mfa_session",
                user.subject,
                MFA_SESSION_TTL_SECONDS,
                username=user.username,
                pwv=user.password_version,
            )
            return ProviderChallenge(
                type=ChallengeType.SOFTWARE_TOKEN_MFA,
                session=session,
                username=user.username,
                available_types=(ChallengeType.SOFTWARE_TOKEN_MFA,),
                session_ttl_seconds=MFA_SESSION_TTL_SECONDS,
            )
        return await self._start_session(user, InvalidCredentials)

    def _verify_password(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    async def answer_challenge(
        self, challenge: ProviderChallenge, answer: str
    ) -> TokenSet | ProviderChallenge:
        if challenge.type is not ChallengeType.SOFTWARE_TOKEN_MFA:
            raise UnsupportedChallenge("this provider only issues SOFTWARE_TOKEN_MFA challenges")
        claims = self._tokens.decode(challenge.session, "mfa_session")
        user = await self._users.get(str(claims["sub"]))
        if user is None or not user.totp_secret:
            raise InvalidToken()
        if claims.get("pwv") != user.password_version:
            raise InvalidToken()  # the password checked at login has been changed since
        await self._consume_totp(user, user.totp_secret, answer)
        return await self._start_session(user, InvalidToken)

    async def begin_challenge_totp_setup(
        self, challenge: ProviderChallenge
    ) -> tuple[TotpSetup, ProviderChallenge]:
        # Enrolment here happens after login (/totp/setup); logins never ask for it.
        raise UnsupportedChallenge("this provider does not issue MFA_SETUP challenges")

    async def _consume_totp(self, user: UserRecord, secret: str, code: str) -> None:
        """Accept a code of the current step (or one step either side) once only.

        The step is spent by the store's compare-and-set, not by this process:
        of concurrent answers with the same code, on any number of replicas,
        exactly one claims the step; the others (and any replay) are refused.
        """
        if not (code.isascii() and code.isdigit() and len(code) == 6):
            raise IncorrectCode()
        totp = pyotp.TOTP(secret)
        now_step = int(self._clock.now().timestamp()) // TOTP_STEP_SECONDS
        for step in (now_step - 1, now_step, now_step + 1):
            if secrets.compare_digest(totp.at(step * TOTP_STEP_SECONDS), code):
                if await self._users.claim_totp_step(user.subject, step):
                    return
                break  # replayed (or older than the last accepted) code
        raise IncorrectCode()

    # -- tokens ------------------------------------------------------------------

    async def _start_session(
        self, user: UserRecord, refused: type[AuthenticationFailed]
    ) -> TokenSet:
        """Tokens for a fresh login: a new refresh family, kept only if the password
        checked (``user.password_version``) is still the user's once the family exists.

        A password change writes the new hash, then revokes every family of the
        user. A login that checked the old password and started its family after
        that revocation would have outlived the change (an attacker's login racing
        the owner's change, say); so the family is started first and the password
        read again: either the change's revocation finds the family, or this read
        finds the new password and the family is revoked here (``refused`` is raised).
        Another login's rehash of the same password changes the hash, not the
        password's version: it refuses nothing.
        """
        family_id = secrets.token_hex(16)
        refresh_jti = secrets.token_hex(16)
        ttl = self._tokens.refresh_ttl_seconds
        expires_at = self._clock.now() + timedelta(seconds=ttl)
        await self._refresh_tokens.start_family(family_id, user.subject, refresh_jti, expires_at)
        current = await self._users.get(user.subject)
        if current is None or current.password_version != user.password_version:
            await self._refresh_tokens.revoke_family(family_id)
            await self._deny_session(family_id, expires_at)
            raise refused()
        return self._issue(user, family_id, refresh_jti, ttl)

    def _issue(
        self, user: UserRecord, family_id: str, refresh_jti: str, refresh_ttl_seconds: int
    ) -> TokenSet:
        access = self._tokens.sign(
            "access",
            user.subject,
            self._tokens.access_ttl_seconds,
            username=user.username,
            roles=list(user.roles),
            sid=family_id,
        )
        refresh = self._tokens.sign(
            "refresh",
            user.subject,
            refresh_ttl_seconds,
            username=user.username,
            sid=family_id,
            jti=refresh_jti,
            # the password this login checked: a refresh after a change is refused by
            # the user's record itself, whatever became of the change's revocations
            pwv=user.password_version,
        )
        return TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_in=self._tokens.access_ttl_seconds,
        )

    async def refresh(self, refresh_token: str, *, username: str | None = None) -> TokenSet:
        claims = self._tokens.decode(refresh_token, "refresh")
        family_id = claims.get("sid")
        if not isinstance(family_id, str) or not family_id:
            raise InvalidToken()
        family_expiry = datetime.fromtimestamp(int(claims["exp"]), UTC)
        if self._denylist is not None and await self._denylist.is_revoked(family_id):
            raise InvalidToken()
        next_jti = secrets.token_hex(16)
        outcome = await self._refresh_tokens.rotate(family_id, str(claims["jti"]), next_jti)
        if outcome in (RotationOutcome.REUSED, RotationOutcome.REVOKED):
            # A stolen copy is in play: every access token of the login goes now.
            await self._deny_session(family_id, family_expiry)
        if outcome is not RotationOutcome.ROTATED:
            raise InvalidToken()
        user = await self._users.get(str(claims["sub"]))
        if user is None:
            await self._refresh_tokens.revoke_family(family_id)
            raise InvalidToken()
        checked = claims.get("pwv")  # absent from refresh tokens issued before it existed
        if checked is not None and checked != user.password_version:
            # A password change ends every login: it revokes the families in the refresh
            # store, and if that failed halfway (a 503 after the new password was
            # written), the durable version still ends this one, at its next refresh.
            await self._refresh_tokens.revoke_family(family_id)
            await self._deny_session(family_id, family_expiry)
            raise InvalidToken()
        # The family keeps the expiry set at login: rotation never extends it.
        remaining = int(claims["exp"]) - int(self._clock.now().timestamp())
        return self._issue(user, family_id, next_jti, max(1, remaining))

    async def sign_out(self, access_token: str) -> None:
        # The access token itself is denied by the Logout use case (denylist);
        # here every refresh family of the user is revoked (global sign-out).
        claims = self._tokens.decode(access_token, "access")
        # No family outlives a refresh TTL from now: deny them durably for that long.
        until = self._clock.now() + timedelta(seconds=self._tokens.refresh_ttl_seconds)
        family_id = claims.get("sid")
        if isinstance(family_id, str) and family_id:
            await self._deny_session(family_id, until)
        # Global sign-out: the user's other logins lose their access tokens too.
        for other in await self._refresh_tokens.revoke_subject(str(claims["sub"])):
            if other != family_id:
                await self._deny_session(other, until)

    async def _deny_session(self, family_id: str, until: datetime) -> None:
        if self._denylist is not None:
            await self._denylist.revoke(family_id, until)

    async def _change(
        self,
        subject: str,
        *,
        expect: Callable[[UserRecord], bool] | None = None,
        **changes: object,
    ) -> UserRecord:
        """Write ``changes`` over the user as stored, with the store's compare-and-set.

        Every write of a user goes through here: the record is read, ``changes``
        applied to it and written back only if no other write came in between
        (:meth:`UserStore.replace`); otherwise it is read again and the changes
        reapplied. So a write never undoes another one, in this process or any
        other: a record read before a slow step (a password being hashed for
        0.4 s, a TOTP code being checked) and written back whole used to bring
        back an old password or a removed authenticator. With ``expect``, only
        while ``expect(user)`` holds for the stored user; otherwise that user is
        returned unchanged (the caller tells whether its change was written).
        """
        for _ in range(_CHANGE_TRIES):
            user = await self._users.get(subject)
            if user is None:
                raise InvalidToken()
            if expect is not None and not expect(user):
                return user
            stored = await self._users.replace(_replace(user, **changes))
            if stored is not None:
                return stored
        raise Conflict("the user changed too often to be written; try again")

    # -- TOTP enrolment -----------------------------------------------------------

    async def begin_totp_setup(self, access_token: str) -> TotpSetup:
        secret = pyotp.random_base32()
        claims = self._tokens.decode(access_token, "access")
        user = await self._change(str(claims["sub"]), pending_totp_secret=secret)
        uri = pyotp.TOTP(secret).provisioning_uri(
            name=user.username, issuer_name=self._totp_issuer_name
        )
        return TotpSetup(secret=secret, otpauth_uri=uri)

    async def verify_totp_setup(self, access_token: str, code: str) -> None:
        user = await self._user_of(access_token)
        if not user.pending_totp_secret:
            raise InvalidInput("no TOTP enrolment in progress")
        pending = user.pending_totp_secret
        await self._consume_totp(user, pending, code)
        stored = await self._change(
            user.subject,
            expect=lambda stored: stored.pending_totp_secret == pending,
            totp_secret=pending,
            pending_totp_secret=None,
            mfa_enabled=True,
        )
        if stored.totp_secret != pending:
            # a new enrolment began (or this one ended) while the code was checked
            raise InvalidInput("the TOTP enrolment changed meanwhile; start it again")

    async def disable_totp(self, access_token: str) -> None:
        """Remove the authenticator: logins ask for the password only again."""
        claims = self._tokens.decode(access_token, "access")
        await self._change(
            str(claims["sub"]), totp_secret=None, pending_totp_secret=None, mfa_enabled=False
        )

    # -- step-up and password change ------------------------------------------------

    async def lockout_name(self, principal: Principal, access_token: str) -> str:
        """Users log in with their username, the token's ``username``."""
        return principal.username

    async def reauthenticate(
        self, principal: Principal, *, password: str | None, code: str | None
    ) -> None:
        """Check a fresh password and/or the current TOTP code (either alone suffices).

        A code is spent like a login code: the same time step is never accepted
        twice, so a code seen by a shoulder-surfer or a proxy cannot be replayed.
        """
        user = await self._users.get(principal.subject)
        if user is None:
            raise InvalidToken()
        if password is None and code is None:
            raise InvalidInput("give the password or the current code", field="password")
        if password is not None:
            ok = await asyncio.to_thread(self._verify_password, user.password_hash, password)
            if not ok:
                raise InvalidCredentials()
        if code is not None:
            if not (user.mfa_enabled and user.totp_secret):
                raise IncorrectCode()
            await self._consume_totp(user, user.totp_secret, code)

    async def change_password(
        self, access_token: str, current_password: str, new_password: str
    ) -> None:
        """Replace the password (the current one is checked first) and end the sessions.

        Every refresh family of the user is revoked, the calling login's too (log
        in again when its access token expires), and the other logins' ids are
        denied: their access tokens are refused at once.
        """
        claims = self._tokens.decode(access_token, "access")
        user = await self._users.get(str(claims["sub"]))
        if user is None:
            raise InvalidToken()
        ok = await asyncio.to_thread(self._verify_password, user.password_hash, current_password)
        if not ok:
            raise InvalidCredentials()
        _check_password_policy(user.username, new_password)
        if new_password == current_password:
            raise WeakPassword("the new password must differ from the current one")
        password_hash = await asyncio.to_thread(self._hasher.hash, new_password)
        checked = user.password_version
        if (
            await self._change(
                user.subject,
                expect=lambda stored: stored.password_version == checked,
                password_hash=password_hash,
                password_version=checked + 1,
            )
        ).password_hash != password_hash:
            # another change (or a rehash) replaced the password just checked meanwhile
            raise InvalidCredentials()
        until = self._clock.now() + timedelta(seconds=self._tokens.refresh_ttl_seconds)
        current_family = claims.get("sid")
        for family in await self._refresh_tokens.revoke_subject(user.subject):
            if family != current_family:
                await self._deny_session(family, until)

    async def _user_of(self, access_token: str) -> UserRecord:
        claims = self._tokens.decode(access_token, "access")
        user = await self._users.get(str(claims["sub"]))
        if user is None:
            raise InvalidToken()
        return user


def _check_password_policy(username: str, password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise WeakPassword(f"password must have at least {PASSWORD_MIN} characters")
    if password.lower() == username.lower():
        raise WeakPassword("password must differ from the username")


def _replace(user: UserRecord, **changes: object) -> UserRecord:
    return msgspec.structs.replace(user, **changes)
