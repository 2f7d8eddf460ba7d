"""Auth routes under /v1/auth: sign-up, login with MFA, refresh, logout, TOTP enrolment.

Public routes need no bearer token; ``/logout`` and ``/totp/*`` take one and
check it themselves (verified, then looked up in the denylist). The whole
router sits behind Litestar's rate limiter (per client address), whose store
is Redis in the local/aws profiles (see :func:`register_rate_limit_store`).
MFA challenges are answered by their opaque ``challenge_id`` only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Litestar, Request, Router, delete, post
from litestar.di import NamedDependency
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.params import HeaderParameter, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from finbank_adapters.containers import BankContainer, resolve
from finbank_core.auth.credentials import ChangePasswordCommand, DisableTotpCommand
from finbank_core.auth.model import ChallengeType, SignUpCommand, TokenSet
from finbank_core.auth.step_up import STEP_UP_TOKEN_MAX, StepUpCommand, StepUpPurpose
from finbank_core.auth.use_cases import (
    AnswerChallengeCommand,
    ConfirmSignUpCommand,
    LoginCommand,
    LoginResult,
    LogoutCommand,
    RefreshCommand,
    SelectMfaTypeCommand,
    SetUpChallengeTotpCommand,
    SetUpTotpCommand,
    VerifyTotpCommand,
)
from finbank_http.deps import Bank
from finbank_http.problems import problems
from finbank_http.schemas import (
    PASSWORD_MIN_LENGTH,
    LoggedIn,
    LoginIn,
    LoginOut,
    MfaChallenge,
    SignUpIn,
    SignUpOut,
    TokensOut,
)
from finbank_http.security import BEARER_SCHEME, authenticated, bearer_present, bearer_token

RATE_LIMIT_STORE = "finbank_auth_rate_limit"
#: the header that carries a step-up token to a sensitive route (docs/auth.md, "Step-up")
STEP_UP_HEADER = "X-Step-Up-Token"
#: the parameter a sensitive route declares: ``step_up_token: StepUpToken = None``
StepUpToken = Annotated[
    str | None,
    HeaderParameter(
        name=STEP_UP_HEADER,
        required=False,
        max_length=STEP_UP_TOKEN_MAX,
        description="a step-up token from `POST /v1/auth/step-up` for this purpose (single use)",
    ),
]

ChallengeId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class ConfirmIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    code: Code


class MfaAnswerIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The code for the challenge ``challenge_id`` (from ``/login`` or a previous ``/mfa``)."""

    challenge_id: ChallengeId
    code: Code


class MfaSelectIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    challenge_id: ChallengeId
    mfa_type: Literal["SOFTWARE_TOKEN_MFA", "SMS_MFA", "EMAIL_OTP"]


class MfaSetupIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    challenge_id: ChallengeId


class MfaSetupOut(msgspec.Struct, kw_only=True):
    """Enrol ``secret`` in an authenticator app, then answer ``challenge_id`` at ``/mfa``."""

    secret: str
    otpauth_uri: str
    challenge_id: str
    challenge_type: ChallengeType
    expires_in: int


class RefreshIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]
    #: needed only by Cognito app clients with a secret
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None


class TotpSetupOut(msgspec.Struct, kw_only=True):
    secret: str
    otpauth_uri: str


class TotpVerifyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    code: Code


class StepUpIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Re-authenticate for one ``purpose``: the ``password``, the current ``code``, or both."""

    purpose: StepUpPurpose
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    code: Code | None = None


class StepUpOut(msgspec.Struct, kw_only=True):
    """Send ``step_up_token`` once, in the ``X-Step-Up-Token`` header, within ``expires_in`` s."""

    step_up_token: str
    purpose: StepUpPurpose
    expires_in: int


class ChangePasswordIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    current_password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    new_password: Annotated[
        str,
        msgspec.Meta(
            min_length=PASSWORD_MIN_LENGTH,
            max_length=256,
            description=f"at least {PASSWORD_MIN_LENGTH} characters; a passphrase is welcome",
        ),
    ]


def tokens_out(tokens: TokenSet) -> TokensOut:
    return TokensOut(
        access_token=tokens.access_token,
        token_type=tokens.token_type,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        id_token=tokens.id_token,
    )


def login_out(result: LoginResult) -> LoginOut:
    if result.tokens is not None:
        return LoggedIn(tokens=tokens_out(result.tokens))
    assert result.challenge_id is not None
    assert result.challenge_type is not None
    return MfaChallenge(
        challenge_id=result.challenge_id,
        challenge_type=ChallengeType(result.challenge_type),
        expires_in=result.expires_in or 0,
        available_types=list(result.available_types) or None,
    )


_MFA_DOC = (
    "Answers are counted: after 5 wrong codes the challenge is gone (401 "
    "`mfa_challenge_invalid`, log in again); a wrong code is 401 `incorrect_code` with "
    "the attempts left. An id is single use and expires with the provider's session "
    "(`expires_in`). Wrong codes also count towards the account lockout (429 "
    "`account_locked`). 503 when the challenge store is unavailable: the login fails "
    "closed."
)


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["auth"]

    @post(
        "/signup",
        operation_id="signUp",
        summary="Register a user",
        responses=problems(400, 403, 409, 429, 503),
        status_code=HTTP_201_CREATED,
    )
    async def signup(self, data: JSONBody[SignUpIn], bank: NamedDependency[Bank]) -> SignUpOut:
        result = await bank.auth.sign_up(
            SignUpCommand(
                username=data.username,
                password=data.password,
                email=data.email,
                phone_number=data.phone_number,
                name=data.name,
            )
        )
        return SignUpOut(subject=result.subject, confirmation_required=result.confirmation_required)

    @post(
        "/confirm",
        operation_id="confirmSignUp",
        summary="Confirm a sign-up with the code the provider sent",
        description="401 `authentication_failed` whether the user or the code is wrong.",
        responses=problems(400, 401, 429, 503),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def confirm(self, data: JSONBody[ConfirmIn], bank: NamedDependency[Bank]) -> None:
        await bank.auth.confirm(ConfirmSignUpCommand(username=data.username, code=data.code))

    @post(
        "/login",
        operation_id="logIn",
        summary="Log in with a password; returns tokens or an MFA challenge",
        description=(
            "Either `tokens`, or `mfa_required: true` with an opaque `challenge_id` to answer "
            "at `/v1/auth/mfa` within `expires_in` seconds. 401 `invalid_credentials` whether "
            "or not the user exists; 429 `account_locked` after repeated failures (for any "
            "username); 422 `user_not_confirmed` / `password_reset_required`; 503 when a "
            "dependency is down."
        ),
        responses=problems(400, 401, 422, 429, 503),
        status_code=HTTP_200_OK,
    )
    async def login(self, data: JSONBody[LoginIn], bank: NamedDependency[Bank]) -> LoginOut:
        return login_out(
            await bank.auth.login(LoginCommand(username=data.username, password=data.password))
        )

    @post(
        "/mfa",
        operation_id="answerMfaChallenge",
        summary="Answer an MFA challenge with its code; returns tokens or the next challenge",
        description=_MFA_DOC,
        responses=problems(400, 401, 422, 429, 503),
        status_code=HTTP_200_OK,
    )
    async def mfa(self, data: JSONBody[MfaAnswerIn], bank: NamedDependency[Bank]) -> LoginOut:
        return login_out(
            await bank.auth.answer_challenge(
                AnswerChallengeCommand(challenge_id=data.challenge_id, answer=data.code)
            )
        )

    @post(
        "/mfa/select",
        operation_id="selectMfaType",
        summary="Answer a SELECT_MFA_TYPE challenge with the MFA type to use",
        description=_MFA_DOC,
        responses=problems(400, 401, 429, 503),
        status_code=HTTP_200_OK,
    )
    async def mfa_select(
        self, data: JSONBody[MfaSelectIn], bank: NamedDependency[Bank]
    ) -> LoginOut:
        return login_out(
            await bank.auth.select_mfa_type(
                SelectMfaTypeCommand(challenge_id=data.challenge_id, mfa_type=data.mfa_type)
            )
        )

    @post(
        "/mfa/totp-setup",
        operation_id="startMfaTotpSetup",
        summary="For an MFA_SETUP challenge: get an authenticator secret to enrol",
        description=(
            "Spends `challenge_id` and returns a new one, to be answered at `/v1/auth/mfa` "
            "with a code from the app. 422 `unsupported_challenge` for other challenge types."
        ),
        responses=problems(400, 401, 422, 429, 503),
        status_code=HTTP_200_OK,
    )
    async def mfa_totp_setup(
        self, data: JSONBody[MfaSetupIn], bank: NamedDependency[Bank]
    ) -> MfaSetupOut:
        setup = await bank.auth.begin_totp_setup(
            SetUpChallengeTotpCommand(challenge_id=data.challenge_id)
        )
        return MfaSetupOut(
            secret=setup.secret,
            otpauth_uri=setup.otpauth_uri,
            challenge_id=setup.challenge_id,
            challenge_type=ChallengeType(setup.challenge_type),
            expires_in=setup.expires_in,
        )

    @post(
        "/refresh",
        operation_id="refreshTokens",
        summary="New tokens for a refresh token",
        description=(
            "With the self-hosted provider the refresh token rotates: use the new one next "
            "time. Presenting a superseded refresh token revokes its whole login session "
            "(401 `invalid_token`)."
        ),
        responses=problems(400, 401, 429, 503),
        status_code=HTTP_200_OK,
    )
    async def refresh(self, data: JSONBody[RefreshIn], bank: NamedDependency[Bank]) -> TokensOut:
        return tokens_out(
            await bank.auth.refresh(
                RefreshCommand(refresh_token=data.refresh_token, username=data.username)
            )
        )

    @post(
        "/logout",
        operation_id="logOut",
        guards=[bearer_present],  # 401 before anything else is read
        summary="Revoke the bearer token, its login session and the refresh tokens",
        security=[{BEARER_SCHEME: []}],
        responses=problems(401, 429, 503),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def logout(self, request: Request[Any, Any, Any], bank: NamedDependency[Bank]) -> None:
        await bank.auth.logout(LogoutCommand(access_token=bearer_token(request)))

    @post(
        "/totp/setup",
        operation_id="startTotpSetup",
        guards=[authenticated],  # 401 before the body is read
        summary="Start enrolling (or replacing) an authenticator app for the caller",
        description=(
            "Needs a step-up token for `mfa_change` in `X-Step-Up-Token` (from "
            "`POST /v1/auth/step-up`), for the first enrolment too; without a valid one 403 "
            "`step_up_required`."
        ),
        security=[{BEARER_SCHEME: []}],
        responses=problems(401, 403, 429, 503),
        status_code=HTTP_200_OK,
    )
    async def totp_setup(
        self,
        request: Request[Any, Any, Any],
        bank: NamedDependency[Bank],
        step_up_token: StepUpToken = None,
    ) -> TotpSetupOut:
        setup = await bank.auth.set_up_totp(
            SetUpTotpCommand(access_token=bearer_token(request), step_up_token=step_up_token)
        )
        return TotpSetupOut(secret=setup.secret, otpauth_uri=setup.otpauth_uri)

    @post(
        "/totp/verify",
        operation_id="verifyTotp",
        guards=[authenticated],  # 401 before the body is read
        summary="Finish enrolling: a right code from the app turns TOTP MFA on",
        security=[{BEARER_SCHEME: []}],
        responses=problems(400, 401, 429, 503),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def totp_verify(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[TotpVerifyIn],
        bank: NamedDependency[Bank],
    ) -> None:
        await bank.auth.verify_totp(
            VerifyTotpCommand(access_token=bearer_token(request), code=data.code)
        )

    @delete(
        "/totp",
        operation_id="disableTotp",
        guards=[authenticated],
        summary="Remove the caller's authenticator app (needs a step-up token)",
        description=(
            "Send a step-up token for `mfa_change` in `X-Step-Up-Token`; without a valid one "
            "403 `step_up_required`."
        ),
        security=[{BEARER_SCHEME: []}],
        responses=problems(401, 403, 429, 503),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def totp_disable(
        self,
        request: Request[Any, Any, Any],
        bank: NamedDependency[Bank],
        step_up_token: StepUpToken = None,
    ) -> None:
        await bank.auth.disable_totp(
            DisableTotpCommand(access_token=bearer_token(request), step_up_token=step_up_token)
        )

    @post(
        "/step-up",
        operation_id="createStepUpToken",
        guards=[authenticated],  # 401 before the body is read
        summary="Re-authenticate (password or current code) for one sensitive change",
        description=(
            "Returns a single-use token for `purpose`, valid for `expires_in` seconds, bound "
            "to the caller and this login session: send it in `X-Step-Up-Token` to the "
            "route that needs it (`mfa_change`: `/v1/auth/totp/setup`, `DELETE /v1/auth/totp`;"
            " `pix_limit_raise`: raising PIX limits). 401 `invalid_credentials` / "
            "`incorrect_code` for a wrong answer, which counts towards the account lockout "
            "(429 `account_locked`)."
        ),
        security=[{BEARER_SCHEME: []}],
        responses=problems(400, 401, 429, 503),
        status_code=HTTP_201_CREATED,
    )
    async def step_up(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[StepUpIn],
        bank: NamedDependency[Bank],
    ) -> StepUpOut:
        result = await bank.auth.step_up(
            StepUpCommand(
                access_token=bearer_token(request),
                purpose=data.purpose,
                password=data.password,
                code=data.code,
            )
        )
        return StepUpOut(
            step_up_token=result.token, purpose=result.purpose, expires_in=result.expires_in
        )

    @post(
        "/password",
        operation_id="changePassword",
        guards=[authenticated],  # 401 before the body is read
        summary="Change the caller's password (the current one is required)",
        description=(
            "401 `invalid_credentials` for a wrong current password (it counts towards the "
            "account lockout, 429 `account_locked`); 400 `weak_password`. The self-hosted "
            "provider then refuses the user's other logins at once and every refresh token "
            "(this login's too: log in again when the access token expires)."
        ),
        security=[{BEARER_SCHEME: []}],
        responses=problems(400, 401, 429, 503),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def change_password(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ChangePasswordIn],
        bank: NamedDependency[Bank],
    ) -> None:
        await bank.auth.change_password(
            ChangePasswordCommand(
                access_token=bearer_token(request),
                current_password=data.current_password,
                new_password=data.new_password,
            )
        )


def auth_router(container: BankContainer) -> Router:
    """The auth routes behind a per-client rate limit (``FINBANK_AUTH_RATE_LIMIT_PER_MINUTE``)."""
    limit = RateLimitConfig(
        rate_limit=("minute", container.infra.settings().auth.rate_limit_per_minute),
        store=RATE_LIMIT_STORE,
    )
    return Router(path="/", route_handlers=[AuthController], middleware=[limit.middleware])


async def register_rate_limit_store(app: Litestar, container: BankContainer) -> None:
    """Give the rate limiter the container's store (Redis or memory); call after opening it."""
    store = await resolve(container.auth.rate_limit_store())
    app.stores.register(RATE_LIMIT_STORE, store, allow_override=True)
