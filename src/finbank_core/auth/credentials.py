"""Changing credentials: the password, and removing the second factor.

Both are sensitive account changes (OWASP ASVS 4.0.3 V3.7.1, 5.0 V7.5.1):
``ChangePassword`` takes the current password with the new one (ASVS 4.0.3
2.1.6), which is its re-authentication; ``DisableTotp`` needs a step-up
token for ``StepUpPurpose.MFA_CHANGE`` (see ``finbank_core.auth.step_up``).
A wrong current password counts towards the account's lockout.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from finbank_core.auth.errors import InvalidCredentials
from finbank_core.auth.lockout import counted_attempt
from finbank_core.auth.model import AuthenticateQuery, Principal, account_key
from finbank_core.auth.ports import LoginThrottle
from finbank_core.auth.step_up import Authenticator, RequireStepUp, StepUpPurpose
from finbank_core.auth.use_cases import check_password_encodable
from finbank_core.shared.errors import InvalidInput

PASSWORD_MAX = 256


class CredentialManager(Protocol):
    """The identity provider's side of credential changes (both providers implement it)."""

    async def change_password(
        self, access_token: str, current_password: str, new_password: str
    ) -> None:
        """Raises ``InvalidCredentials`` (wrong current password), ``WeakPassword``."""
        ...

    async def disable_totp(self, access_token: str) -> None:
        """Turn TOTP MFA off for the token's user."""
        ...

    async def lockout_name(self, principal: Principal, access_token: str) -> str:
        """The name the user logs in with (see ``Reauthenticator.lockout_name``)."""
        ...


class ChangePasswordCommand(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    current_password: str
    new_password: str

    def __repr__(self) -> str:
        return (
            "ChangePasswordCommand(access_token='***', current_password='***', new_password='***')"
        )


class DisableTotpCommand(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    step_up_token: str | None = None

    def __repr__(self) -> str:
        return "DisableTotpCommand(access_token='***', step_up_token='***')"


def _check_password_shape(value: str, field: str) -> None:
    if not value or len(value) > PASSWORD_MAX:
        raise InvalidInput(f"{field} must be 1 to {PASSWORD_MAX} characters", field=field)
    check_password_encodable(value, field)


class ChangePassword:
    """Replace the caller's password, given the current one.

    Raises ``InvalidToken``, ``AccountLocked`` (checked before the password),
    ``InvalidCredentials`` (counted towards the lockout), ``WeakPassword``.
    The self-hosted provider then refuses the user's other logins at once and
    revokes every refresh token (the caller's too).
    """

    def __init__(
        self, authenticate: Authenticator, provider: CredentialManager, throttle: LoginThrottle
    ) -> None:
        self._authenticate = authenticate
        self._provider = provider
        self._throttle = throttle

    async def __call__(self, command: ChangePasswordCommand) -> None:
        _check_password_shape(command.current_password, "current_password")
        _check_password_shape(command.new_password, "new_password")
        principal = await self._authenticate(AuthenticateQuery(access_token=command.access_token))
        account = account_key(await self._provider.lockout_name(principal, command.access_token))
        async with counted_attempt(self._throttle, account) as attempt:
            try:
                await self._provider.change_password(
                    command.access_token, command.current_password, command.new_password
                )
            except InvalidCredentials:
                attempt.failed = True
                raise


class DisableTotp:
    """Remove the caller's authenticator app; needs a step-up token (``MFA_CHANGE``)."""

    def __init__(
        self,
        authenticate: Authenticator,
        provider: CredentialManager,
        require_step_up: RequireStepUp,
    ) -> None:
        self._authenticate = authenticate
        self._provider = provider
        self._require_step_up = require_step_up

    async def __call__(self, command: DisableTotpCommand) -> None:
        principal = await self._authenticate(AuthenticateQuery(access_token=command.access_token))
        await self._require_step_up(principal, command.step_up_token, StepUpPurpose.MFA_CHANGE)
        await self._provider.disable_totp(command.access_token)
