"""The lockout policy for failed logins, shared by every ``LoginThrottle`` backend."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import msgspec

from finbank_core.shared.errors import ServiceUnavailable

if TYPE_CHECKING:
    from finbank_core.auth.ports import LoginThrottle


class LockoutPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """``max_failures`` failures within ``failure_window_seconds`` lock the account.

    The first lock lasts ``lock_seconds``; with ``exponential`` each further
    lock (before a successful login resets the history) lasts twice the
    previous one, up to ``max_lock_seconds``.
    """

    max_failures: int = 10
    failure_window_seconds: int = 15 * 60
    lock_seconds: int = 30 * 60
    exponential: bool = False
    max_lock_seconds: int = 24 * 3600
    #: how long the lock history is remembered after the last failure
    history_seconds: int = 24 * 3600

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.failure_window_seconds < 1 or self.lock_seconds < 1:
            raise ValueError("a lockout policy needs positive limits")
        if self.max_lock_seconds < self.lock_seconds:
            raise ValueError("max_lock_seconds must be at least lock_seconds")

    def lock_seconds_after(self, previous_locks: int) -> int:
        """How long the next lock lasts, given how many locks came before it."""
        if not self.exponential:
            return self.lock_seconds
        # Cap the exponent before shifting so the integer stays small.
        factor = 1 << min(previous_locks, 32)
        return min(self.lock_seconds * factor, self.max_lock_seconds)


class Attempt:
    """A check of a password or code under way; set ``failed`` when it was wrong."""

    __slots__ = ("failed",)

    def __init__(self) -> None:
        self.failed = False


@asynccontextmanager
async def counted_attempt(throttle: LoginThrottle, account: str) -> AsyncIterator[Attempt]:
    """Hold one of ``account``'s tries for the block (``begin_attempt``: ``AccountLocked``
    when locked or when the tries left are all being checked) and give it back on any
    exit (``end_attempt``), counted as a failure if the block set ``failed``.

    Checking under a held try is what keeps checks made at once within the tries
    left: checked first and counted after, 100 logins at once with 99 wrong
    passwords all had their passwords checked before the first failure was counted.
    """
    token = await throttle.begin_attempt(account)
    attempt = Attempt()
    try:
        yield attempt
    except BaseException:
        # the block's own answer stands: a store that cannot take the try back now
        # (unreachable: no new try can begin either) lets it lapse with its lease
        with contextlib.suppress(ServiceUnavailable):
            await throttle.end_attempt(account, token, failed=attempt.failed)
        raise
    await throttle.end_attempt(account, token, failed=attempt.failed)
