"""Port decorators that record operational metrics (``finbank_adapters.metrics``).

:class:`MeteredLoginThrottle` wraps a ``LoginThrottle``. The auth container
gives the MFA use case (``AnswerChallenge``) one with ``mfa=True``: that use
case records a failure exactly when an MFA code is wrong, so each is an
``MfaFailures``. Both wrappers count ``LoginLockouts``: a failure after which
the account is locked started the lock (logins check the lock before they
can fail, so a failure never happens on an already locked account but in a
race, which counts once more at worst).
"""

from __future__ import annotations

from finbank_adapters import metrics
from finbank_core.auth.errors import AccountLocked
from finbank_core.auth.ports import LoginThrottle


class MeteredLoginThrottle:
    """A ``LoginThrottle`` that counts MFA failures (``mfa``) and the lockouts failures start."""

    def __init__(self, inner: LoginThrottle, *, mfa: bool = False) -> None:
        self._inner = inner
        self._mfa = mfa

    async def ensure_not_locked(self, account: str) -> None:
        await self._inner.ensure_not_locked(account)

    async def record_failure(self, account: str) -> None:
        await self._inner.record_failure(account)
        await self._count(account)

    async def _count(self, account: str) -> None:
        """A failure was counted: an MFA failure (``mfa``), and a lockout if it locked."""
        recorder = metrics.recorder()
        if self._mfa:
            recorder.add(metrics.MFA_FAILURES)
        try:
            await self._inner.ensure_not_locked(account)
        except AccountLocked:
            recorder.add(metrics.LOGIN_LOCKOUTS)

    async def record_success(self, account: str) -> None:
        await self._inner.record_success(account)

    async def begin_attempt(self, account: str) -> str:
        return await self._inner.begin_attempt(account)

    async def end_attempt(self, account: str, token: str, *, failed: bool) -> None:
        await self._inner.end_attempt(account, token, failed=failed)
        if failed:
            await self._count(account)


def metered_login_throttle(inner: LoginThrottle, mfa: bool = False) -> LoginThrottle:
    """For the container: ``inner`` wrapped (the MFA use case's with ``mfa=True``)."""
    return MeteredLoginThrottle(inner, mfa=mfa)
