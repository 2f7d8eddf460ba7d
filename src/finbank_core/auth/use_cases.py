"""Auth use cases: sign up, log in with MFA, refresh, log out, TOTP enrolment.

The MFA flow: a password login that the provider answers with a challenge
stores it in ``ChallengeStore`` under a fresh random id and returns only
that id, the challenge type and its lifetime. Answering looks the challenge
up by id alone, counts the attempt atomically *before* asking the provider
(so parallel guesses cannot exceed the cap), deletes the challenge on
success (the delete decides which of several right answers wins), spends it
at the attempt after the last allowed one, and never keys anything by
username. Every wrong password or code also counts towards the account's
lockout (``LoginThrottle``), so new challenges do not buy new guesses.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta

import msgspec

from finbank_core.auth.errors import (
    ChallengeNotFound,
    IncorrectCode,
    InvalidCredentials,
    InvalidToken,
    UnsupportedChallenge,
)
from finbank_core.auth.lockout import counted_attempt
from finbank_core.auth.model import (
    AuthenticateQuery,
    ChallengeType,
    MfaChallenge,
    Principal,
    ProviderChallenge,
    SignUpCommand,
    SignUpResult,
    TokenSet,
    TotpSetup,
    account_key,
)
from finbank_core.auth.ports import (
    ChallengeStore,
    IdentityProvider,
    LoginThrottle,
    TokenDenylist,
    TokenVerifier,
)
from finbank_core.auth.step_up import RequireStepUp, StepUpPurpose
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import AuthenticationFailed, DomainError, InvalidInput
from finbank_core.shared.privacy import masked_repr

USERNAME_MAX = 128
PASSWORD_MIN = 10
PASSWORD_MAX = 256
ANSWER_MAX = 64
CHALLENGE_ID_MAX = 128
#: Cognito keeps an authentication session for 3 minutes unless the app client says otherwise
DEFAULT_CHALLENGE_TTL_SECONDS = 180
MAX_CHALLENGE_ATTEMPTS = 5
#: how long a logged-out session id stays denied: the longest an access token can live
#: (Cognito allows up to one day)
SESSION_DENY_SECONDS = 24 * 3600
_MFA_TYPES = (ChallengeType.SMS_MFA, ChallengeType.SOFTWARE_TOKEN_MFA, ChallengeType.EMAIL_OTP)
_ID_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def validate_credentials_shape(username: str, password: str) -> None:
    if not username or len(username) > USERNAME_MAX or not username.isprintable():
        raise InvalidInput(
            f"username must be 1 to {USERNAME_MAX} printable characters", field="username"
        )
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"password must be at most {PASSWORD_MAX} characters", field="password")
    check_password_encodable(password, "password")


def check_password_encodable(password: str, field: str) -> None:
    """``InvalidInput`` naming ``field`` for a password with an unpaired surrogate: it is
    hashed as UTF-8 (argon2) or sent to the identity provider, and has no UTF-8 form (so
    no password set through these use cases can hold one)."""
    if not password.isascii():
        try:
            password.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                f"{field} must not contain unpaired surrogate characters", field=field
            ) from None


#: the longest e-mail address (RFC 5321's path limit less its brackets) and name accepted
EMAIL_MAX = 254
NAME_MAX = 140
_EMAIL = re.compile(r"[^@ ]+@[^@ ]+\.[^@ ]+")  # other spaces and controls: not printable
#: ITU-T E.164 with its plus sign, as Cognito's ``phone_number`` wants it
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def validate_contact_details(command: SignUpCommand) -> None:
    """A sign-up's optional e-mail, phone number and name, as a provider stores them:
    bounded, printable, and of their form (nothing stored that a later reader trips on)."""
    email, phone, name = command.email, command.phone_number, command.name
    if email is not None and (
        len(email) > EMAIL_MAX or not email.isprintable() or not _EMAIL.fullmatch(email)
    ):
        raise InvalidInput(
            f"email must be an e-mail address of at most {EMAIL_MAX} printable characters",
            field="email",
        )
    if phone is not None and not _E164.fullmatch(phone):
        raise InvalidInput(
            "phone_number must be in E.164 form, e.g. +5511999998888", field="phone_number"
        )
    if name is not None and (not name.strip() or len(name) > NAME_MAX or not name.isprintable()):
        raise InvalidInput(f"name must be 1 to {NAME_MAX} printable characters", field="name")


def _validate_answer(answer: str, field: str | None = None) -> None:
    if not answer or len(answer) > ANSWER_MAX or not answer.isprintable():
        message = f"the {field or 'answer'} must be 1 to {ANSWER_MAX} printable characters"
        raise InvalidInput(message, field=field) if field else InvalidInput(message)


def _plausible_challenge_id(challenge_id: str) -> bool:
    return 0 < len(challenge_id) <= CHALLENGE_ID_MAX and set(challenge_id) <= _ID_ALPHABET


class LoginResult(msgspec.Struct, frozen=True, kw_only=True):
    """Tokens, or the public side of an MFA challenge (never the provider session)."""

    tokens: TokenSet | None = None
    challenge_id: str | None = None
    challenge_type: str | None = None
    expires_in: int | None = None
    #: for ``SELECT_MFA_TYPE`` (the types to choose from) and ``MFA_SETUP``
    available_types: tuple[str, ...] = ()

    @property
    def mfa_required(self) -> bool:
        return self.challenge_id is not None


class ChallengeTotpSetup(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticator secret for an ``MFA_SETUP`` challenge, and the challenge to answer next."""

    secret: str
    otpauth_uri: str
    challenge_id: str
    challenge_type: str
    expires_in: int

    __repr__ = masked_repr("secret", "otpauth_uri")


class ConfirmSignUpCommand(msgspec.Struct, frozen=True, kw_only=True):
    """``ConfirmSignUp``: the username and the code the provider sent."""

    username: str
    code: str

    __repr__ = masked_repr("code", "username")


class LoginCommand(msgspec.Struct, frozen=True, kw_only=True):
    """``PasswordLogin`` (``Login``): a username and its password."""

    username: str
    password: str

    __repr__ = masked_repr("password", "username")


class AnswerChallengeCommand(msgspec.Struct, frozen=True, kw_only=True):
    """``AnswerChallenge``: the challenge's id and the answer (a code, or an MFA type)."""

    challenge_id: str
    answer: str

    __repr__ = masked_repr("challenge_id", "answer")


class SetUpChallengeTotpCommand(msgspec.Struct, frozen=True, kw_only=True):
    """``AnswerChallenge.begin_totp_setup``: the ``MFA_SETUP`` challenge to enrol through."""

    challenge_id: str

    __repr__ = masked_repr("challenge_id")


class SelectMfaTypeCommand(msgspec.Struct, frozen=True, kw_only=True):
    """``SelectMfaType``: a ``SELECT_MFA_TYPE`` challenge and the type picked
    (a :class:`ChallengeType` or its name)."""

    challenge_id: str
    mfa_type: str

    __repr__ = masked_repr("challenge_id")


class RefreshCommand(msgspec.Struct, frozen=True, kw_only=True):
    """``Refresh``: the refresh token (and, for Cognito's secret hash, the username)."""

    refresh_token: str
    username: str | None = None

    __repr__ = masked_repr("refresh_token", "username")


class LogoutCommand(msgspec.Struct, frozen=True, kw_only=True):
    """``Logout``: the access token whose session ends."""

    access_token: str

    __repr__ = masked_repr("access_token")


class SetUpTotpCommand(msgspec.Struct, frozen=True, kw_only=True):
    """``SetUpTotp``: the caller's access token and a step-up token for ``MFA_CHANGE``."""

    access_token: str
    step_up_token: str | None = None

    __repr__ = masked_repr("access_token", "step_up_token")


class VerifyTotpCommand(msgspec.Struct, frozen=True, kw_only=True):
    """``VerifyTotp``: the caller's access token and a first code from the authenticator."""

    access_token: str
    code: str

    __repr__ = masked_repr("access_token", "code")


class _ChallengeIssuer:
    """Turns a provider's answer into a ``LoginResult``, storing any challenge."""

    def __init__(self, challenges: ChallengeStore, clock: Clock, ttl_seconds: int) -> None:
        if ttl_seconds < 1:
            raise ValueError("the challenge TTL must be positive")
        self.challenges = challenges
        self.clock = clock
        self.ttl_seconds = ttl_seconds

    async def result(self, outcome: TokenSet | ProviderChallenge, *, account: str) -> LoginResult:
        if isinstance(outcome, TokenSet):
            return LoginResult(tokens=outcome)
        challenge = await self.store(outcome, account=account)
        return LoginResult(
            challenge_id=challenge.id,
            challenge_type=challenge.type.value,
            expires_in=self.ttl_for(outcome),
            available_types=tuple(t.value for t in challenge.available_types),
        )

    async def store(self, outcome: ProviderChallenge, *, account: str) -> MfaChallenge:
        challenge = MfaChallenge.issue(
            outcome, now=self.clock.now(), ttl_seconds=self.ttl_for(outcome), account=account
        )
        await self.challenges.put(challenge)
        return challenge

    def ttl_for(self, outcome: ProviderChallenge) -> int:
        # Never outlive the provider's own session: an answer after it would fail anyway.
        if outcome.session_ttl_seconds is None:
            return self.ttl_seconds
        return max(1, min(self.ttl_seconds, outcome.session_ttl_seconds))


class SignUp:
    def __init__(self, provider: IdentityProvider) -> None:
        self._provider = provider

    async def __call__(self, request: SignUpCommand) -> SignUpResult:
        validate_credentials_shape(request.username, request.password)
        if request.username.strip() != request.username:
            # a look-alike of another user's name (Cognito refuses any space in one)
            raise InvalidInput("username must not begin or end with a space", field="username")
        if unicodedata.normalize("NFKC", request.username) != request.username:
            # NFC and NFD "josé", or full-width letters, are distinct strings (and
            # casefold keys) but one name to a reader: only the NFKC form signs up
            raise InvalidInput(
                "username must be in Unicode NFKC form (composed, no compatibility "
                "characters such as full-width letters)",
                field="username",
            )
        validate_contact_details(request)
        return await self._provider.sign_up(request)


class ConfirmSignUp:
    """Confirm a sign-up with the code the provider sent (Cognito); a no-op check locally."""

    def __init__(self, provider: IdentityProvider) -> None:
        self._provider = provider

    async def __call__(self, command: ConfirmSignUpCommand) -> None:
        validate_credentials_shape(command.username, "")
        _validate_answer(command.code, field="code")
        await self._provider.confirm_sign_up(command.username, command.code)


class PasswordLogin:
    """Log in with a password: tokens, or an MFA challenge to answer with ``AnswerChallenge``.

    Raises ``AccountLocked`` while the username is locked (checked before the
    password, so a locked account is not a password oracle),
    ``InvalidCredentials`` (and counts a failure).
    """

    def __init__(
        self,
        provider: IdentityProvider,
        challenges: ChallengeStore,
        throttle: LoginThrottle,
        clock: Clock,
        challenge_ttl_seconds: int = DEFAULT_CHALLENGE_TTL_SECONDS,
    ) -> None:
        self._provider = provider
        self._throttle = throttle
        self._issuer = _ChallengeIssuer(challenges, clock, challenge_ttl_seconds)

    async def __call__(self, command: LoginCommand) -> LoginResult:
        username, password = command.username, command.password
        validate_credentials_shape(username, password)
        account = account_key(username)
        async with counted_attempt(self._throttle, account) as attempt:
            try:
                outcome = await self._provider.login(username, password)
            except InvalidCredentials:
                attempt.failed = True
                raise
        if isinstance(outcome, TokenSet):
            await self._throttle.record_success(account)
        # With a challenge, failures are forgotten only once MFA succeeds too.
        return await self._issuer.result(outcome, account=account)


#: the name the architecture uses; ``PasswordLogin`` is kept for existing callers
Login = PasswordLogin


class AnswerChallenge:
    """Answer an MFA challenge by its id: tokens, or the next challenge.

    Raises ``ChallengeNotFound`` (unknown, expired, used or exhausted id: one
    answer for all), ``IncorrectCode`` with ``attempts_left``,
    ``AccountLocked``, ``ServiceUnavailable`` when the store is down (fail
    closed: no tokens without a counted, stored challenge).
    """

    def __init__(
        self,
        provider: IdentityProvider,
        challenges: ChallengeStore,
        throttle: LoginThrottle,
        clock: Clock,
        challenge_ttl_seconds: int = DEFAULT_CHALLENGE_TTL_SECONDS,
        max_attempts: int = MAX_CHALLENGE_ATTEMPTS,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be positive")
        self._provider = provider
        self._challenges = challenges
        self._throttle = throttle
        self._issuer = _ChallengeIssuer(challenges, clock, challenge_ttl_seconds)
        self._max_attempts = max_attempts

    async def __call__(self, command: AnswerChallengeCommand) -> LoginResult:
        answer = command.answer
        _validate_answer(answer)
        # The account's try is taken before the challenge's attempt is counted: an answer
        # refused because the account is locked, or because all its tries are being
        # checked right now (429), must not use up one of the challenge's attempts.
        # (A challenge's account never changes, so a read that counts nothing tells it.)
        account = (await self._peek(command.challenge_id)).account
        async with counted_attempt(self._throttle, account) as attempt:
            challenge = await self._begin(command.challenge_id, lock_checked_here=False)
            if challenge.type is ChallengeType.SELECT_MFA_TYPE:
                _check_selection(challenge, answer)
            try:
                outcome = await self._provider.answer_challenge(
                    challenge.provider_challenge(), answer
                )
            except InvalidToken:
                # The provider's session is gone: this challenge can never succeed.
                await self._challenges.delete(challenge.id)
                raise ChallengeNotFound() from None
            except AuthenticationFailed:
                attempt.failed = True
                attempts_left = await self._after_failure(challenge)
                raise IncorrectCode(attempts_left=attempts_left) from None
            except DomainError:
                await self._after_failure(challenge)
                raise
        return await self._complete(challenge, outcome)

    async def begin_totp_setup(self, command: SetUpChallengeTotpCommand) -> ChallengeTotpSetup:
        """For an ``MFA_SETUP`` challenge: the secret to enrol, and a new challenge id to answer.

        The old id is spent; the new one is answered with a code from the app.
        """
        challenge = await self._begin(command.challenge_id)
        if challenge.type is not ChallengeType.MFA_SETUP:
            raise UnsupportedChallenge("only an MFA_SETUP challenge enrols an authenticator")
        try:
            setup, following = await self._provider.begin_challenge_totp_setup(
                challenge.provider_challenge()
            )
        except InvalidToken:
            await self._challenges.delete(challenge.id)
            raise ChallengeNotFound() from None
        if not await self._challenges.delete(challenge.id):
            raise ChallengeNotFound()
        stored = await self._issuer.store(following, account=challenge.account)
        return ChallengeTotpSetup(
            secret=setup.secret,
            otpauth_uri=setup.otpauth_uri,
            challenge_id=stored.id,
            challenge_type=stored.type.value,
            expires_in=self._issuer.ttl_for(following),
        )

    async def _peek(self, challenge_id: str) -> MfaChallenge:
        """The challenge, counting no attempt (``ChallengeNotFound`` if there is none)."""
        if not _plausible_challenge_id(challenge_id):
            raise ChallengeNotFound()
        challenge = await self._challenges.get(challenge_id)
        if challenge is None:
            raise ChallengeNotFound()
        return challenge

    async def _begin(self, challenge_id: str, *, lock_checked_here: bool = True) -> MfaChallenge:
        """Count an attempt on the challenge; ``lock_checked_here``: refuse a locked
        account (else the caller checks the code under ``counted_attempt``, which does)."""
        if not _plausible_challenge_id(challenge_id):
            raise ChallengeNotFound()
        challenge = await self._challenges.begin_attempt(challenge_id, self._max_attempts)
        if challenge is None:
            raise ChallengeNotFound()
        if lock_checked_here:
            await self._throttle.ensure_not_locked(challenge.account)
        return challenge

    async def _after_failure(self, challenge: MfaChallenge) -> int:
        # An exhausted challenge is not deleted here: the store refuses (and deletes) it
        # at the next attempt. Deleting it would take it from under a right answer made
        # at the same time, whose own delete is how exactly one answer wins: answered
        # by many at once with the right code, it then gave nobody tokens.
        return max(0, self._max_attempts - challenge.attempts)

    async def _complete(
        self, challenge: MfaChallenge, outcome: TokenSet | ProviderChallenge
    ) -> LoginResult:
        # Exactly one answer may win the challenge, even if two were right at once.
        if not await self._challenges.delete(challenge.id):
            raise ChallengeNotFound()
        if isinstance(outcome, TokenSet):
            await self._throttle.record_success(challenge.account)
        return await self._issuer.result(outcome, account=challenge.account)


def _check_selection(challenge: MfaChallenge, answer: str) -> None:
    allowed = {t.value for t in (challenge.available_types or _MFA_TYPES)}
    if answer not in allowed:
        choices = ", ".join(sorted(allowed))
        raise InvalidInput(f"choose one of: {choices}")


class SelectMfaType:
    """Answer a ``SELECT_MFA_TYPE`` challenge with the MFA type the user picks."""

    def __init__(self, answer_challenge: AnswerChallenge) -> None:
        self._answer = answer_challenge

    async def __call__(self, command: SelectMfaTypeCommand) -> LoginResult:
        try:
            chosen = ChallengeType(command.mfa_type)
        except ValueError:
            raise InvalidInput("unknown MFA type", field="mfa_type") from None
        if chosen not in _MFA_TYPES:
            raise InvalidInput("unknown MFA type", field="mfa_type")
        return await self._answer(
            AnswerChallengeCommand(challenge_id=command.challenge_id, answer=chosen.value)
        )


class Authenticate:
    """Verify an access token and refuse it if it (or its login session) was revoked.

    Raises ``InvalidToken``; ``ServiceUnavailable`` when the denylist cannot be
    read (a token is never accepted unchecked).
    """

    def __init__(self, verifier: TokenVerifier, denylist: TokenDenylist) -> None:
        self._verifier = verifier
        self._denylist = denylist

    async def __call__(self, query: AuthenticateQuery) -> Principal:
        principal, ids = await self._verified(query)
        if await self._denylist.is_revoked(*ids):
            raise InvalidToken()
        return principal

    async def verified(self, query: AuthenticateQuery) -> Principal:
        """The token's principal if its signature, issuer and lifetime check out, and it
        can be revoked; whether it *was* revoked is not asked (``Logout`` asks itself)."""
        principal, _ = await self._verified(query)
        return principal

    async def _verified(self, query: AuthenticateQuery) -> tuple[Principal, tuple[str, ...]]:
        # runs on every request: the ids asked of the denylist are worked out once
        if not query.access_token.isascii():  # a JWT is base64url and dots
            raise InvalidToken()  # (an unpaired surrogate would not even encode)
        principal = await self._verifier.verify(query.access_token)
        ids = revocable_ids(principal)
        if not ids:
            raise InvalidToken("the token cannot be revoked, so it is not accepted")
        return principal, ids


def revocable_ids(principal: Principal) -> tuple[str, ...]:
    """The token's id and its session's, those it has (asked of the denylist)."""
    token_id, session_id = principal.token_id, principal.session_id
    if token_id:
        return (token_id, session_id) if session_id else (token_id,)
    return (session_id,) if session_id else ()


class Refresh:
    """New tokens for a refresh token (rotating where the provider rotates)."""

    def __init__(self, provider: IdentityProvider) -> None:
        self._provider = provider

    async def __call__(self, command: RefreshCommand) -> TokenSet:
        refresh_token = command.refresh_token
        if not refresh_token or len(refresh_token) > 8192 or not refresh_token.isascii():
            raise InvalidToken()
        return await self._provider.refresh(refresh_token, username=command.username)


class Logout:
    """Revoke the access token, its login session and the provider's refresh tokens.

    The token's ``jti`` is denied until it expires; its session id
    (``origin_jti``) for ``session_deny_seconds``, the longest any access
    token of that session can live. Then the provider signs the user out
    (Cognito ``GlobalSignOut``; the local provider revokes every refresh family
    of the user and denies their session ids, so the user's other logins end too).

    The session is denied first, so the token stops working even if the
    provider then fails (``ServiceUnavailable``); the token's own id is denied
    last, once the provider has signed the user out. Until then the logout can
    be repeated with the same token: that repeat is what finishes a sign-out the
    provider failed. (The token used to be denied first and a repeat refused as
    revoked, so such a sign-out could never be finished, and the provider's
    refresh tokens outlived the 24 h session deny.) A logout that finished, and
    a token revoked any other way, are refused like any revoked token.
    """

    def __init__(
        self,
        provider: IdentityProvider,
        authenticate: Authenticate,
        denylist: TokenDenylist,
        clock: Clock,
        session_deny_seconds: int = SESSION_DENY_SECONDS,
    ) -> None:
        self._provider = provider
        self._authenticate = authenticate
        self._denylist = denylist
        self._clock = clock
        self._session_deny_seconds = session_deny_seconds

    async def __call__(self, command: LogoutCommand) -> None:
        access_token = command.access_token
        principal = await self._authenticate.verified(AuthenticateQuery(access_token=access_token))
        token_id, session_id = principal.token_id, principal.session_id
        if token_id and await self._denylist.is_revoked(token_id):
            raise InvalidToken()  # this token's logout finished already
        pending = _logout_pending_id(token_id) if token_id else None
        # Revoked otherwise (a global sign-out, a reused refresh token, a password
        # change): refused like any revoked token. Only this token's own unfinished
        # logout may be repeated: a revoked token let through here signed the user
        # out of every login, those made after its revocation too.
        if (
            session_id
            and await self._denylist.is_revoked(session_id)
            and (pending is None or not await self._denylist.is_revoked(pending))
        ):
            raise InvalidToken()
        now = self._clock.now()
        token_expiry = principal.expires_at or now + timedelta(seconds=self._session_deny_seconds)
        if pending is not None and session_id:
            await self._denylist.revoke(pending, token_expiry)  # what a repeat may finish
        if session_id:
            session_expiry = max(token_expiry, now + timedelta(seconds=self._session_deny_seconds))
            await self._denylist.revoke(session_id, session_expiry)
        elif token_id:  # no session to deny: the token itself, now (a repeat is refused)
            await self._denylist.revoke(token_id, token_expiry)
        await self._provider.sign_out(access_token)
        if token_id and session_id:
            await self._denylist.revoke(token_id, token_expiry)


def _logout_pending_id(token_id: str) -> str:
    """The denylist entry that says a logout of the token ``token_id`` has begun."""
    return f"logout-pending:{token_id}"


class SetUpTotp:
    """Start enrolling (or replacing) an authenticator app: a secret and its ``otpauth://`` URI.

    Changing the second factor needs a step-up token for ``MFA_CHANGE``
    (``StepUpRequired`` otherwise), the first enrolment too: with a bearer
    token alone, whoever stole it could put their own authenticator on the
    account (OWASP ASVS 5.0 V7.5.1).
    """

    def __init__(
        self,
        provider: IdentityProvider,
        authenticate: Authenticate,
        require_step_up: RequireStepUp,
    ) -> None:
        self._provider = provider
        self._authenticate = authenticate
        self._require_step_up = require_step_up

    async def __call__(self, command: SetUpTotpCommand) -> TotpSetup:
        principal = await self._authenticate(AuthenticateQuery(access_token=command.access_token))
        await self._require_step_up(principal, command.step_up_token, StepUpPurpose.MFA_CHANGE)
        return await self._provider.begin_totp_setup(command.access_token)


class VerifyTotp:
    """Finish enrolling: a right code enables TOTP MFA. Raises ``IncorrectCode``."""

    def __init__(self, provider: IdentityProvider, authenticate: Authenticate) -> None:
        self._provider = provider
        self._authenticate = authenticate

    async def __call__(self, command: VerifyTotpCommand) -> None:
        _validate_answer(command.code, field="code")
        await self._authenticate(AuthenticateQuery(access_token=command.access_token))
        await self._provider.verify_totp_setup(command.access_token, command.code)
