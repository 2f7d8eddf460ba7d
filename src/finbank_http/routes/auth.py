"""Sign-up and login. Public routes: no bearer token needed."""

from __future__ import annotations

from litestar import Controller, post
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from finbank_core.auth.model import ProviderChallenge, SignUpRequest, TokenSet
from finbank_core.auth.use_cases import PasswordLogin, SignUp
from finbank_http.deps import use_case
from finbank_http.problems import problems
from finbank_http.schemas import LoginIn, LoginOut, SignUpIn, SignUpOut, TokensOut


def tokens_out(tokens: TokenSet) -> TokensOut:
    return TokensOut(
        access_token=tokens.access_token,
        token_type=tokens.token_type,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        id_token=tokens.id_token,
    )


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["auth"]

    @post(
        "/signup",
        summary="Register a user",
        dependencies={"sign_up": use_case("sign_up")},
        responses=problems(400, 409, 429, 503),
        status_code=HTTP_201_CREATED,
    )
    async def signup(self, data: SignUpIn, sign_up: SignUp) -> SignUpOut:
        result = await sign_up(
            SignUpRequest(
                username=data.username,
                password=data.password,
                email=data.email,
                phone_number=data.phone_number,
                name=data.name,
            )
        )
        return SignUpOut(subject=result.subject, confirmation_required=result.confirmation_required)

    @post(
        "/login",
        summary="Log in with a password; returns tokens or an MFA challenge",
        dependencies={"password_login": use_case("password_login")},
        responses=problems(400, 401, 422, 429, 503),
        status_code=HTTP_200_OK,
    )
    async def login(self, data: LoginIn, password_login: PasswordLogin) -> LoginOut:
        outcome = await password_login(data.username, data.password)
        if isinstance(outcome, ProviderChallenge):
            # MFA challenges are completed by the MFA flow (ChallengeStore); the
            # provider session is never sent to the client.
            raise NotImplementedError("MFA challenges need the challenge store")
        return LoginOut(mfa_required=False, tokens=tokens_out(outcome))
