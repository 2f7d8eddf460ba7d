"""``CognitoIdentityProvider``: the ``IdentityProvider`` port over Cognito user pools.

Uses ``USER_PASSWORD_AUTH`` (the app client must allow it). Each challenge
is answered with its own response key; ``SECRET_HASH`` is added when the app
client has a secret. It receives an open aioboto3 ``cognito-idp`` client and
keeps no state: the provider session of a challenge lives in the core's
``ChallengeStore``. ``USER_SRP_AUTH`` is not implemented (see docs/auth.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import quote, urlencode

from botocore.exceptions import BotoCoreError, ClientError

from finbank_adapters.aws.cognito_errors import Step, cognito_errors
from finbank_core.auth.errors import (
    IncorrectCode,
    PasswordResetRequired,
    UnsupportedChallenge,
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
from finbank_core.shared.errors import InvalidInput

logger = logging.getLogger("finbank.cognito")

_CODE_CHALLENGES = frozenset(
    {ChallengeType.SOFTWARE_TOKEN_MFA, ChallengeType.SMS_MFA, ChallengeType.EMAIL_OTP}
)
#: challenges whose code the login itself sends (not known before the login)
_DELIVERED_CODE_CHALLENGES = frozenset({ChallengeType.SMS_MFA, ChallengeType.EMAIL_OTP})

#: Cognito's default authentication-session validity (app client ``AuthSessionValidity``)
DEFAULT_AUTH_SESSION_SECONDS = 180

_RESPONSE_KEY = {
    ChallengeType.SMS_MFA: "SMS_MFA_CODE",
    ChallengeType.SOFTWARE_TOKEN_MFA: "SOFTWARE_TOKEN_MFA_CODE",
    ChallengeType.EMAIL_OTP: "EMAIL_OTP_CODE",
    ChallengeType.SELECT_MFA_TYPE: "ANSWER",
}


def secret_hash(client_id: str, client_secret: str, username: str) -> str:
    """Base64(HMAC-SHA256(client secret, username + client id)), as Cognito defines it."""
    digest = hmac.new(
        client_secret.encode(), (username + client_id).encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


class CognitoIdentityProvider:
    def __init__(
        self,
        client: Any,
        *,
        client_id: str,
        client_secret: str | None = None,
        auth_session_seconds: int = DEFAULT_AUTH_SESSION_SECONDS,
        totp_issuer_name: str = "finbank",
        device_name: str = "finbank",
        sign_in_attribute: str = "username",
    ) -> None:
        if not client_id:
            raise ValueError("a Cognito app client id is required")
        self._client = client
        self._client_id = client_id
        self._client_secret = client_secret or None
        self._auth_session_seconds = auth_session_seconds
        self._totp_issuer_name = totp_issuer_name
        self._device_name = device_name
        #: the user attribute users log in with; ``"username"``: the username itself
        self._sign_in_attribute = "" if sign_in_attribute == "username" else sign_in_attribute

    def _with_secret(self, params: dict[str, str], username: str, key: str) -> dict[str, str]:
        if self._client_secret:
            params[key] = secret_hash(self._client_id, self._client_secret, username)
        return params

    # -- sign up -----------------------------------------------------------------

    async def sign_up(self, request: SignUpCommand) -> SignUpResult:
        attributes = [
            {"Name": name, "Value": value}
            for name, value in (
                ("email", request.email),
                ("phone_number", request.phone_number),
                ("name", request.name),
            )
            if value
        ]
        kwargs: dict[str, Any] = {
            "ClientId": self._client_id,
            "Username": request.username,
            "Password": request.password,
            "UserAttributes": attributes,
        }
        if self._client_secret:
            kwargs["SecretHash"] = secret_hash(
                self._client_id, self._client_secret, request.username
            )
        with cognito_errors(Step.SIGN_UP):
            response = await self._client.sign_up(**kwargs)
        return SignUpResult(
            subject=str(response["UserSub"]),
            confirmation_required=not bool(response.get("UserConfirmed", False)),
        )

    async def confirm_sign_up(self, username: str, code: str) -> None:
        kwargs: dict[str, Any] = {
            "ClientId": self._client_id,
            "Username": username,
            "ConfirmationCode": code,
        }
        if self._client_secret:
            kwargs["SecretHash"] = secret_hash(self._client_id, self._client_secret, username)
        with cognito_errors(Step.CONFIRM):
            await self._client.confirm_sign_up(**kwargs)

    # -- login and challenges ------------------------------------------------------

    async def login(self, username: str, password: str) -> TokenSet | ProviderChallenge:
        params = self._with_secret(
            {"USERNAME": username, "PASSWORD": password}, username, "SECRET_HASH"
        )
        with cognito_errors(Step.LOGIN):
            response = await self._client.initiate_auth(
                AuthFlow="USER_PASSWORD_AUTH", ClientId=self._client_id, AuthParameters=params
            )
        return self._outcome(response, username)

    async def answer_challenge(
        self, challenge: ProviderChallenge, answer: str
    ) -> TokenSet | ProviderChallenge:
        if challenge.type is ChallengeType.MFA_SETUP:
            return await self._finish_mfa_setup(challenge, answer)
        key = _RESPONSE_KEY.get(challenge.type)
        if key is None:  # pragma: no cover - every ChallengeType has a key or a branch
            raise UnsupportedChallenge()
        responses = self._with_secret(
            {"USERNAME": challenge.username, key: answer}, challenge.username, "SECRET_HASH"
        )
        with cognito_errors(Step.ANSWER):
            response = await self._client.respond_to_auth_challenge(
                ClientId=self._client_id,
                ChallengeName=challenge.type.value,
                Session=challenge.session,
                ChallengeResponses=responses,
            )
        return self._outcome(response, challenge.username)

    async def begin_challenge_totp_setup(
        self, challenge: ProviderChallenge
    ) -> tuple[TotpSetup, ProviderChallenge]:
        if challenge.type is not ChallengeType.MFA_SETUP:
            raise UnsupportedChallenge("only an MFA_SETUP challenge enrols an authenticator")
        with cognito_errors(Step.ANSWER):
            response = await self._client.associate_software_token(Session=challenge.session)
        secret = str(response["SecretCode"])
        following = ProviderChallenge(
            type=ChallengeType.MFA_SETUP,
            session=str(response.get("Session") or challenge.session),
            username=challenge.username,
            available_types=challenge.available_types,
            session_ttl_seconds=self._auth_session_seconds,
        )
        return self._totp_setup(secret, challenge.username), following

    async def _finish_mfa_setup(
        self, challenge: ProviderChallenge, code: str
    ) -> TokenSet | ProviderChallenge:
        with cognito_errors(Step.ANSWER):
            verified = await self._client.verify_software_token(
                Session=challenge.session, UserCode=code, FriendlyDeviceName=self._device_name
            )
        if verified.get("Status") != "SUCCESS":
            raise IncorrectCode()
        responses = self._with_secret(
            {"USERNAME": challenge.username}, challenge.username, "SECRET_HASH"
        )
        with cognito_errors(Step.ANSWER):
            response = await self._client.respond_to_auth_challenge(
                ClientId=self._client_id,
                ChallengeName=ChallengeType.MFA_SETUP.value,
                Session=str(verified.get("Session") or challenge.session),
                ChallengeResponses=responses,
            )
        return self._outcome(response, challenge.username)

    def _outcome(self, response: dict[str, Any], username: str) -> TokenSet | ProviderChallenge:
        result = response.get("AuthenticationResult")
        if result:
            return _tokens(result)
        name = response.get("ChallengeName")
        if name == "NEW_PASSWORD_REQUIRED":
            raise PasswordResetRequired("a new password must be set before logging in")
        try:
            challenge_type = ChallengeType(str(name))
        except ValueError:
            raise UnsupportedChallenge() from None
        parameters: dict[str, Any] = response.get("ChallengeParameters") or {}
        choices = parameters.get("MFAS_CAN_CHOOSE") or parameters.get("MFAS_CAN_SETUP")
        return ProviderChallenge(
            type=challenge_type,
            session=str(response["Session"]),
            # Cognito wants its own user id in challenge answers (aliases differ).
            username=str(parameters.get("USER_ID_FOR_SRP") or username),
            available_types=_types(choices),
            session_ttl_seconds=self._auth_session_seconds,
        )

    # -- tokens ------------------------------------------------------------------

    async def refresh(self, refresh_token: str, *, username: str | None = None) -> TokenSet:
        params = {"REFRESH_TOKEN": refresh_token}
        if self._client_secret:
            if not username:
                raise InvalidInput("this app client needs the username to refresh tokens")
            self._with_secret(params, username, "SECRET_HASH")
        with cognito_errors(Step.REFRESH):
            response = await self._client.initiate_auth(
                AuthFlow="REFRESH_TOKEN_AUTH", ClientId=self._client_id, AuthParameters=params
            )
        result = dict(response.get("AuthenticationResult") or {})
        # Without refresh-token rotation Cognito keeps the presented token valid.
        result.setdefault("RefreshToken", refresh_token)
        return _tokens(result)

    async def sign_out(self, access_token: str) -> None:
        with cognito_errors(Step.TOKEN):
            await self._client.global_sign_out(AccessToken=access_token)

    # -- TOTP enrolment ----------------------------------------------------------

    async def begin_totp_setup(self, access_token: str) -> TotpSetup:
        with cognito_errors(Step.TOKEN):
            user = await self._client.get_user(AccessToken=access_token)
            response = await self._client.associate_software_token(AccessToken=access_token)
        return self._totp_setup(str(response["SecretCode"]), str(user["Username"]))

    async def verify_totp_setup(self, access_token: str, code: str) -> None:
        with cognito_errors(Step.TOKEN):
            verified = await self._client.verify_software_token(
                AccessToken=access_token, UserCode=code, FriendlyDeviceName=self._device_name
            )
        if verified.get("Status") != "SUCCESS":
            raise IncorrectCode()
        with cognito_errors(Step.TOKEN):
            await self._client.set_user_mfa_preference(
                AccessToken=access_token,
                SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True},
            )

    async def disable_totp(self, access_token: str) -> None:
        """Turn software-token MFA off (refused by Cognito where the pool requires MFA)."""
        with cognito_errors(Step.TOKEN):
            await self._client.set_user_mfa_preference(
                AccessToken=access_token,
                SoftwareTokenMfaSettings={"Enabled": False, "PreferredMfa": False},
            )

    # -- step-up and password change ----------------------------------------------

    async def lockout_name(self, principal: Principal, access_token: str) -> str:
        """The token's ``username``, or with ``sign_in_attribute`` (a pool whose users log
        in with their e-mail or phone) that attribute, read with ``GetUser``.

        In such a pool the token's ``username`` is the pool's generated one, which
        nobody types: step-up and password change counted their failures under it,
        a second lockout, so a login lock did not stop guesses there and guesses
        there did not count towards it.
        """
        if not self._sign_in_attribute:
            return principal.username
        with cognito_errors(Step.TOKEN):
            user = await self._client.get_user(AccessToken=access_token)
        for attribute in user.get("UserAttributes", ()):
            if attribute.get("Name") == self._sign_in_attribute and attribute.get("Value"):
                return str(attribute["Value"])
        return principal.username

    async def reauthenticate(
        self, principal: Principal, *, password: str | None, code: str | None
    ) -> None:
        """Re-run the login for ``principal``'s user: the password, then the MFA code if asked.

        Cognito has no call that checks a TOTP code on its own, so the password is
        required; when the pool answers with an MFA challenge the current ``code``
        is required too and answered (Cognito checks it). The tokens of this
        throw-away login are revoked at once (best effort: not every Cognito
        emulator implements ``RevokeToken``).
        """
        if password is None:
            raise InvalidInput(
                "this identity provider needs the password to step up", field="password"
            )
        outcome = await self.login(principal.username, password)
        if isinstance(outcome, ProviderChallenge):
            if outcome.type is ChallengeType.MFA_SETUP:
                return  # the password is proven; there is no factor to check yet
            if outcome.type in _DELIVERED_CODE_CHALLENGES:
                # The code is sent by the login this very call started: no code the
                # request carries can be it, and answering with one was refused as
                # IncorrectCode and counted, so ten step-ups with the right password
                # locked the account. Refused as unsupported, counted as nothing.
                raise UnsupportedChallenge(
                    "a code sent by SMS or e-mail cannot be used to step up here"
                )
            if outcome.type not in _CODE_CHALLENGES:
                raise UnsupportedChallenge("this login step cannot be used to step up")
            if code is None:
                raise IncorrectCode("the current code is needed too")
            answered = await self.answer_challenge(outcome, code)
            if not isinstance(answered, TokenSet):
                raise UnsupportedChallenge("this login step cannot be used to step up")
            await self._discard(answered)
            return
        await self._discard(outcome)
        if code is not None:
            raise IncorrectCode("no second factor is enabled to check the code against")

    async def _discard(self, tokens: TokenSet) -> None:
        if not tokens.refresh_token:
            return
        kwargs: dict[str, Any] = {"Token": tokens.refresh_token, "ClientId": self._client_id}
        if self._client_secret:
            kwargs["ClientSecret"] = self._client_secret
        try:
            await self._client.revoke_token(**kwargs)
        except (ClientError, BotoCoreError, OSError) as exc:  # best effort: never handed out
            logger.info("cognito revoke_token after step-up failed: %s", type(exc).__name__)

    async def change_password(
        self, access_token: str, current_password: str, new_password: str
    ) -> None:
        """``ChangePassword``, after the current password is checked by a login.

        The login first gives a wrong current password the login's answer
        (``InvalidCredentials``), not Cognito's token error.
        """
        with cognito_errors(Step.TOKEN):
            user = await self._client.get_user(AccessToken=access_token)
        outcome = await self.login(str(user["Username"]), current_password)
        if isinstance(outcome, TokenSet):
            await self._discard(outcome)
        with cognito_errors(Step.TOKEN):
            await self._client.change_password(
                PreviousPassword=current_password,
                ProposedPassword=new_password,
                AccessToken=access_token,
            )

    def _totp_setup(self, secret: str, username: str) -> TotpSetup:
        # Built by hand: the secret is Cognito's to choose, not ours to validate.
        issuer = quote(self._totp_issuer_name, safe="")
        label = f"{issuer}:{quote(username, safe='')}"
        query = urlencode({"secret": secret, "issuer": self._totp_issuer_name})
        return TotpSetup(secret=secret, otpauth_uri=f"otpauth://totp/{label}?{query}")


def _tokens(result: dict[str, Any]) -> TokenSet:
    return TokenSet(
        access_token=str(result["AccessToken"]),
        expires_in=int(result.get("ExpiresIn", 3600)),
        refresh_token=result.get("RefreshToken"),
        id_token=result.get("IdToken"),
        token_type=str(result.get("TokenType", "Bearer")),
    )


def _types(raw: Any) -> tuple[ChallengeType, ...]:
    """Cognito sends the MFA choices as a JSON array in a string."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return ()
    if not isinstance(raw, list):
        return ()
    known = {t.value for t in ChallengeType}
    return tuple(ChallengeType(v) for v in raw if isinstance(v, str) and v in known)
