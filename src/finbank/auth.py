"""``bank.auth``: sign-up, login with MFA, tokens."""

from __future__ import annotations

from finbank._provided import UseCases
from finbank_adapters.containers import BankContainer
from finbank_core.auth import use_cases as uc
from finbank_core.auth.credentials import ChangePasswordCommand, DisableTotpCommand
from finbank_core.auth.model import (
    AuthenticateQuery,
    Principal,
    SignUpCommand,
    SignUpResult,
    TokenSet,
    TotpSetup,
)
from finbank_core.auth.step_up import StepUpCommand, StepUpPurpose, StepUpResult
from finbank_core.shared.inputs import checked_types

__all__ = ["AuthFacade"]


class AuthFacade:
    """Sign-up, login with MFA, tokens: ``bank.auth``."""

    def __init__(self, container: BankContainer) -> None:
        self._c = container.auth()
        self._built = UseCases()  # each use case built once, again after an override

    async def sign_up(self, command: SignUpCommand) -> SignUpResult:
        """Create a user (confirmed later with the code sent to them)."""
        return await (await self._built(self._c.sign_up))(checked_types(command))

    async def confirm(self, command: uc.ConfirmSignUpCommand) -> None:
        """Confirm a sign-up with its code."""
        await (await self._built(self._c.confirm_sign_up))(checked_types(command))

    async def login(self, command: uc.LoginCommand) -> uc.LoginResult:
        """Password login: tokens, or an MFA challenge to answer."""
        return await (await self._built(self._c.password_login))(checked_types(command))

    async def answer_challenge(self, command: uc.AnswerChallengeCommand) -> uc.LoginResult:
        """Answer an MFA challenge (a TOTP code...)."""
        return await (await self._built(self._c.answer_challenge))(checked_types(command))

    async def begin_totp_setup(
        self, command: uc.SetUpChallengeTotpCommand
    ) -> uc.ChallengeTotpSetup:
        """For an ``MFA_SETUP`` challenge: the secret to enrol and a new challenge id to answer."""
        use_case = await self._built(self._c.answer_challenge)
        return await use_case.begin_totp_setup(checked_types(command))

    async def select_mfa_type(self, command: uc.SelectMfaTypeCommand) -> uc.LoginResult:
        """Pick the MFA method a challenge offers a choice of."""
        return await (await self._built(self._c.select_mfa_type))(checked_types(command))

    async def refresh(self, command: uc.RefreshCommand) -> TokenSet:
        """New tokens for a refresh token (rotated)."""
        return await (await self._built(self._c.refresh_tokens))(checked_types(command))

    async def logout(self, command: uc.LogoutCommand) -> None:
        """Revoke the session of an access token."""
        await (await self._built(self._c.logout))(checked_types(command))

    async def set_up_totp(self, command: uc.SetUpTotpCommand) -> TotpSetup:
        """Start TOTP enrolment: the secret to put in an authenticator app.

        Needs a step-up token for ``MFA_CHANGE`` (``StepUpRequired`` otherwise).
        """
        return await (await self._built(self._c.set_up_totp))(checked_types(command))

    async def verify_totp(self, command: uc.VerifyTotpCommand) -> None:
        """Finish TOTP enrolment with a first code."""
        await (await self._built(self._c.verify_totp))(checked_types(command))

    async def step_up(self, command: StepUpCommand) -> StepUpResult:
        """A single-use step-up token for ``command.purpose``, after a fresh password or code.

        Wrong answers count towards the account's lockout (docs/auth.md, "Step-up").
        """
        return await (await self._built(self._c.step_up))(checked_types(command))

    async def require_step_up(
        self, principal: Principal, step_up_token: str | None, purpose: StepUpPurpose
    ) -> None:
        """Spend a step-up token for ``purpose`` or raise ``StepUpRequired`` (403).

        What a sensitive operation of any context calls first, with the caller's
        verified ``Principal``: the token must be the caller's, of the same login
        session, for this purpose, unexpired and unused.
        """
        await (await self._built(self._c.require_step_up))(principal, step_up_token, purpose)

    async def change_password(self, command: ChangePasswordCommand) -> None:
        """Replace the caller's password, given the current one (ends their other sessions)."""
        await (await self._built(self._c.change_password))(checked_types(command))

    async def disable_totp(self, command: DisableTotpCommand) -> None:
        """Remove the caller's authenticator app (needs a step-up token for ``MFA_CHANGE``)."""
        await (await self._built(self._c.disable_totp))(checked_types(command))

    async def authenticate(self, query: AuthenticateQuery) -> Principal:
        """Who an access token is (``Unauthorized`` if invalid, expired or revoked)."""
        return await (await self._built(self._c.authenticate))(checked_types(query))
