"""Step-up: a fresh password or current code before a sensitive change.

OWASP ASVS 4.0.3 V3.7.1 and 5.0 V7.5.1 ask for re-authentication before
changes that affect authentication (the second factor: enrol, replace,
remove) and before sensitive transactions (raising PIX limits). A bearer
access token alone is not enough: whoever stole it must also know the
password or hold the current authenticator.

``StepUp`` checks the password or current TOTP code with the identity
provider (failures count towards the account's lockout, like login
failures) and returns a *step-up token*: 256 random bits, single use, valid
for ``ttl_seconds`` on the injected clock, bound to the user, the login
session of the access token and one :class:`StepUpPurpose`.
``RequireStepUp`` is the guard a sensitive use case calls: it consumes the
token atomically (of concurrent callers exactly one succeeds) and raises
``StepUpRequired`` unless the token exists, has not expired and matches the
caller and the purpose. A token presented for the wrong purpose or by
another session is burned, not kept.

Password changes take the current password in the request itself (ASVS
4.0.3 2.1.6), which is their re-authentication: see ``ChangePassword``.
"""

from __future__ import annotations

import enum
import secrets
from datetime import datetime, timedelta
from typing import Protocol

import msgspec

from finbank_core.auth.errors import InvalidToken, StepUpRequired
from finbank_core.auth.lockout import counted_attempt
from finbank_core.auth.model import AuthenticateQuery, Principal, account_key
from finbank_core.auth.ports import LoginThrottle
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import AuthenticationFailed, InvalidInput
from finbank_core.shared.inputs import checked_enums

#: five minutes: long enough to type a code, short enough that a leaked token is stale
DEFAULT_STEP_UP_TTL_SECONDS = 300
#: bytes of randomness in a step-up token (256 bits)
STEP_UP_TOKEN_BYTES = 32
STEP_UP_TOKEN_MAX = 128
_TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_SECRET_MAX = 256
_CODE_MAX = 64


class StepUpPurpose(enum.StrEnum):
    """What a step-up token may be spent on (one purpose per token)."""

    #: enrol, replace or remove the second factor (``/v1/auth/totp/*``)
    MFA_CHANGE = "mfa_change"
    #: raise an account's PIX limits
    PIX_LIMIT_RAISE = "pix_limit_raise"


class StepUpGrant(msgspec.Struct, frozen=True, kw_only=True):
    """What a step-up token stands for, as ``StepUpStore`` keeps it (the token is the key)."""

    subject: str
    #: the login session (``sid``/``origin_jti``) of the access token that stepped up
    session_id: str | None
    purpose: StepUpPurpose
    expires_at: datetime

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at


class StepUpCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Re-authenticate the caller of ``access_token`` for one ``purpose``.

    Give the ``password``, or the current ``code`` of the authenticator app
    (where the provider can check one alone), or both.
    """

    access_token: str
    purpose: StepUpPurpose
    password: str | None = None
    code: str | None = None

    def __repr__(self) -> str:
        return f"StepUpCommand(purpose={self.purpose.value!r}, access_token='***', ...)"


class StepUpResult(msgspec.Struct, frozen=True, kw_only=True):
    """A step-up token: send it once, within ``expires_in`` seconds, for ``purpose``."""

    token: str
    purpose: StepUpPurpose
    expires_in: int

    def __repr__(self) -> str:
        purpose = self.purpose.value
        return f"StepUpResult(token='***', purpose={purpose!r}, expires_in={self.expires_in})"


class StepUpStore(Protocol):
    """Outstanding step-up tokens, each taken at most once.

    Time is the injected clock's: a grant whose ``expires_at`` has passed is
    gone. Backends that fail raise ``ServiceUnavailable`` (fail closed).
    """

    async def put(self, token: str, grant: StepUpGrant) -> None:
        """Keep ``grant`` under ``token`` until its ``expires_at``."""
        ...

    async def take(self, token: str) -> StepUpGrant | None:
        """Remove and return the grant; ``None`` if unknown, expired or already taken.

        Atomic: of any number of concurrent callers with one token, exactly one
        gets the grant.
        """
        ...


class Reauthenticator(Protocol):
    """The identity provider's side of step-up (both providers implement it)."""

    async def reauthenticate(
        self, principal: Principal, *, password: str | None, code: str | None
    ) -> None:
        """Check a fresh ``password`` and/or current TOTP ``code`` of ``principal``'s user.

        Raises ``InvalidCredentials`` (wrong password), ``IncorrectCode`` (wrong,
        replayed or missing code), ``InvalidInput`` if the provider cannot check
        what was given.
        """
        ...

    async def lockout_name(self, principal: Principal, access_token: str) -> str:
        """The name ``principal``'s user logs in with: the lockout a step-up counts towards.

        The token's ``username`` unless the provider signs users in by another
        name (a Cognito pool with ``UsernameAttributes``: the e-mail, while the
        token carries the pool's generated username).
        """
        ...


class Authenticator(Protocol):
    """``Authenticate``: the caller's verified principal, or ``InvalidToken``."""

    async def __call__(self, query: AuthenticateQuery) -> Principal: ...


def new_step_up_token() -> str:
    return secrets.token_urlsafe(STEP_UP_TOKEN_BYTES)


def _plausible_token(token: str) -> bool:
    return 0 < len(token) <= STEP_UP_TOKEN_MAX and set(token) <= _TOKEN_ALPHABET


def _check_secret(value: str | None, name: str, limit: int) -> None:
    if value is not None and (not value or len(value) > limit or not value.isprintable()):
        raise InvalidInput(f"{name} must be 1 to {limit} printable characters", field=name)


class StepUp:
    """Issue a step-up token after a fresh password or current code.

    Raises ``InvalidToken`` (access token), ``AccountLocked`` (checked first,
    so a locked account is no password oracle), ``InvalidCredentials`` /
    ``IncorrectCode`` (counted as failures towards the lockout),
    ``InvalidInput`` (neither password nor code).
    """

    def __init__(
        self,
        authenticate: Authenticator,
        provider: Reauthenticator,
        store: StepUpStore,
        throttle: LoginThrottle,
        clock: Clock,
        ttl_seconds: int = DEFAULT_STEP_UP_TTL_SECONDS,
    ) -> None:
        if ttl_seconds < 1:
            raise ValueError("the step-up TTL must be positive")
        self._authenticate = authenticate
        self._provider = provider
        self._store = store
        self._throttle = throttle
        self._clock = clock
        self._ttl_seconds = ttl_seconds

    async def __call__(self, command: StepUpCommand) -> StepUpResult:
        command = checked_enums(command)  # enum fields given as their values
        if command.password is None and command.code is None:
            raise InvalidInput("give the password or the current code", field="password")
        _check_secret(command.password, "password", _SECRET_MAX)
        _check_secret(command.code, "code", _CODE_MAX)
        principal = await self._authenticate(AuthenticateQuery(access_token=command.access_token))
        # the lockout of the name the user logs in with: a login lock holds here too,
        # and guesses here count there (not a second budget of guesses of its own)
        account = account_key(await self._provider.lockout_name(principal, command.access_token))
        async with counted_attempt(self._throttle, account) as attempt:
            try:
                await self._provider.reauthenticate(
                    principal, password=command.password, code=command.code
                )
            except InvalidToken:
                raise
            except AuthenticationFailed:
                attempt.failed = True
                raise
        token = new_step_up_token()
        grant = StepUpGrant(
            subject=principal.subject,
            session_id=principal.session_id,
            purpose=command.purpose,
            expires_at=self._clock.now() + timedelta(seconds=self._ttl_seconds),
        )
        await self._store.put(token, grant)
        return StepUpResult(token=token, purpose=command.purpose, expires_in=self._ttl_seconds)


class RequireStepUp:
    """The guard: spend a step-up token for ``purpose`` or raise ``StepUpRequired``.

    Call it with the ``Principal`` of the request's verified access token,
    after authentication and before the change.
    """

    def __init__(self, store: StepUpStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def __call__(
        self, principal: Principal, token: str | None, purpose: StepUpPurpose
    ) -> None:
        if not token or not _plausible_token(token):
            raise StepUpRequired(purpose=purpose.value)
        grant = await self._store.take(token)
        if (
            grant is None
            or grant.is_expired(self._clock.now())
            or grant.subject != principal.subject
            or grant.session_id != principal.session_id
            or grant.purpose is not purpose
        ):
            raise StepUpRequired(purpose=purpose.value)
