"""In-memory auth state: MFA challenges, lockout counters, token denylist, refresh families.

Per-instance, single-process state, proven against the Redis adapters by the
same contract suites. Each operation runs without an ``await`` in between
its read and its write, so on one event loop it is as atomic as the Redis
scripts are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from finbank_core.auth.errors import AccountLocked
from finbank_core.auth.lockout import LockoutPolicy
from finbank_core.auth.model import MfaChallenge
from finbank_core.auth.refresh_tokens import RotationOutcome
from finbank_core.shared.clock import Clock


class InMemoryChallengeStore:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._challenges: dict[str, MfaChallenge] = {}

    async def put(self, challenge: MfaChallenge) -> None:
        self._challenges[challenge.id] = challenge

    async def get(self, challenge_id: str) -> MfaChallenge | None:
        challenge = self._challenges.get(challenge_id)
        if challenge is None or challenge.is_expired(self._clock.now()):
            return None
        return challenge

    async def begin_attempt(self, challenge_id: str, max_attempts: int) -> MfaChallenge | None:
        challenge = self._challenges.get(challenge_id)
        if challenge is None:
            return None
        if challenge.is_expired(self._clock.now()) or challenge.attempts >= max_attempts:
            del self._challenges[challenge_id]
            return None
        counted = msgspec.structs.replace(challenge, attempts=challenge.attempts + 1)
        self._challenges[challenge_id] = counted
        return counted

    async def delete(self, challenge_id: str) -> bool:
        challenge = self._challenges.pop(challenge_id, None)
        return challenge is not None and not challenge.is_expired(self._clock.now())


@dataclass
class _AccountFailures:
    failures: int = 0
    window_ends: datetime | None = None
    locked_until: datetime | None = None
    locks: int = 0
    forget_at: datetime | None = None


class InMemoryLoginThrottle:
    def __init__(self, clock: Clock, policy: LockoutPolicy | None = None) -> None:
        self._clock = clock
        self._policy = policy or LockoutPolicy()
        self._accounts: dict[str, _AccountFailures] = {}

    async def ensure_not_locked(self, account: str) -> None:
        state = self._current(account)
        now = self._clock.now()
        if state is not None and state.locked_until is not None and now < state.locked_until:
            retry_after = int((state.locked_until - now).total_seconds() + 0.999)
            raise AccountLocked(retry_after_seconds=max(1, retry_after))

    async def record_failure(self, account: str) -> None:
        now = self._clock.now()
        policy = self._policy
        state = self._current(account) or _AccountFailures()
        if state.window_ends is None or now >= state.window_ends:
            state.failures = 0
            state.window_ends = now + timedelta(seconds=policy.failure_window_seconds)
        state.failures += 1
        if state.failures >= policy.max_failures:
            state.locked_until = now + timedelta(seconds=policy.lock_seconds_after(state.locks))
            state.locks += 1
            state.failures = 0
            state.window_ends = None
        state.forget_at = now + timedelta(seconds=policy.history_seconds)
        self._accounts[account] = state

    async def record_success(self, account: str) -> None:
        self._accounts.pop(account, None)

    def _current(self, account: str) -> _AccountFailures | None:
        state = self._accounts.get(account)
        if state is None:
            return None
        now = self._clock.now()
        still_locked = state.locked_until is not None and now < state.locked_until
        if state.forget_at is not None and now >= state.forget_at and not still_locked:
            del self._accounts[account]
            return None
        return state


class InMemoryTokenDenylist:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._denied: dict[str, datetime] = {}

    async def revoke(self, token_id: str, expires_at: datetime) -> None:
        now = self._clock.now()
        self._denied = {k: v for k, v in self._denied.items() if v > now}  # prune
        if expires_at <= now:
            return
        self._denied[token_id] = max(expires_at, self._denied.get(token_id, expires_at))

    async def is_revoked(self, *token_ids: str) -> bool:
        now = self._clock.now()
        return any(
            (until := self._denied.get(token_id)) is not None and until > now
            for token_id in token_ids
        )


@dataclass
class _Family:
    subject: str
    current: str
    expires_at: datetime
    revoked: bool = False


class InMemoryRefreshTokenStore:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._families: dict[str, _Family] = {}

    async def start_family(
        self, family_id: str, subject: str, token_id: str, expires_at: datetime
    ) -> None:
        self._families[family_id] = _Family(subject, token_id, expires_at)

    async def rotate(
        self, family_id: str, presented_token_id: str, next_token_id: str
    ) -> RotationOutcome:
        family = self._families.get(family_id)
        if family is None or self._clock.now() >= family.expires_at:
            return RotationOutcome.UNKNOWN
        if family.revoked:
            return RotationOutcome.REVOKED
        if family.current != presented_token_id:
            family.revoked = True
            return RotationOutcome.REUSED
        family.current = next_token_id
        return RotationOutcome.ROTATED

    async def revoke_family(self, family_id: str) -> None:
        family = self._families.get(family_id)
        if family is not None:
            family.revoked = True

    async def revoke_subject(self, subject: str) -> tuple[str, ...]:
        now = self._clock.now()
        revoked = []
        for family_id, family in self._families.items():
            if family.subject == subject and now < family.expires_at:
                family.revoked = True
                revoked.append(family_id)
        return tuple(revoked)
