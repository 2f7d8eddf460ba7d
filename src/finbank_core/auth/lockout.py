"""The lockout policy for failed logins, shared by every ``LoginThrottle`` backend."""

from __future__ import annotations

import msgspec


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
