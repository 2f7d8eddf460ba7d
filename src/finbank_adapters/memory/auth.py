"""In-memory auth state: MFA challenges, lockout counters, token denylist, refresh families.

Per-instance, single-process state, proven against the Redis adapters by the
same contract suites. Each operation runs without an ``await`` in between
its read and its write, so on one event loop it is as atomic as the Redis
scripts are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from finbank_adapters.crypto.envelope import EnvelopeCipher, SecretUnreadable, is_sealed
from finbank_core.auth.errors import AccountLocked
from finbank_core.auth.lockout import LockoutPolicy
from finbank_core.auth.model import MfaChallenge
from finbank_core.auth.ports import ATTEMPT_LEASE_SECONDS
from finbank_core.auth.refresh_tokens import RotationOutcome
from finbank_core.shared.clock import Clock


@dataclass(frozen=True)
class _SealedChallenge:
    body: str  # the challenge without its attempts, sealed when the store has a cipher
    attempts: int
    expires_at: datetime
    #: an attempt past the cap was refused: no more attempts, ``get`` answers None
    exhausted: bool = False


class InMemoryChallengeStore:
    """MFA challenges in the process, sealed like the Redis records.

    Each record (it holds the provider's session and the username) is kept
    under the SHA-256 digest of its id and, with ``cipher``, envelope-encrypted
    and bound to that digest: a heap dump or a ``repr`` of the store shows
    neither a session nor a challenge id. The bank's containers always give
    the bank's cipher (the composition root chooses it, as for Redis); a store
    built without one, in a test, keeps the records as they are, like
    ``RedisChallengeStore``. The attempt counter and the expiry stay in clear,
    so counting is one step with no ``await`` in it.
    """

    def __init__(self, clock: Clock, cipher: EnvelopeCipher | None = None) -> None:
        self._clock = clock
        self._cipher = cipher
        self._challenges: dict[str, _SealedChallenge] = {}

    def __repr__(self) -> str:
        return f"InMemoryChallengeStore(challenges={len(self._challenges)})"

    async def put(self, challenge: MfaChallenge) -> None:
        key = _digest(challenge.id)
        body = msgspec.json.encode(msgspec.structs.replace(challenge, attempts=0)).decode()
        if self._cipher is not None:
            body = await self._cipher.seal(body, _context(key))
        self._challenges[key] = _SealedChallenge(body, challenge.attempts, challenge.expires_at)

    async def get(self, challenge_id: str) -> MfaChallenge | None:
        stored = self._challenges.get(_digest(challenge_id))
        if stored is None or stored.exhausted or self._clock.now() >= stored.expires_at:
            return None
        return await self._opened(challenge_id, stored)

    async def begin_attempt(self, challenge_id: str, max_attempts: int) -> MfaChallenge | None:
        key = _digest(challenge_id)
        stored = self._challenges.get(key)
        if stored is None:
            return None
        # counted before the first await: as atomic as the Redis script
        if self._clock.now() >= stored.expires_at:
            del self._challenges[key]
            return None
        if stored.exhausted or stored.attempts >= max_attempts:
            # kept (spent) until its expiry, so that an answer begun within the cap can
            # still win it with its delete
            self._challenges[key] = dataclasses.replace(stored, exhausted=True)
            return None
        counted = dataclasses.replace(stored, attempts=stored.attempts + 1)
        self._challenges[key] = counted
        return await self._opened(challenge_id, counted)

    async def delete(self, challenge_id: str) -> bool:
        stored = self._challenges.pop(_digest(challenge_id), None)
        return stored is not None and self._clock.now() < stored.expires_at

    async def _opened(self, challenge_id: str, stored: _SealedChallenge) -> MfaChallenge:
        text = stored.body
        if is_sealed(text):
            if self._cipher is None:
                raise SecretUnreadable("a sealed challenge needs the store's cipher")
            text = await self._cipher.open(text, _context(_digest(challenge_id)))
        challenge = msgspec.json.decode(text, type=MfaChallenge)
        return msgspec.structs.replace(challenge, attempts=stored.attempts)


def _digest(challenge_id: str) -> str:
    return hashlib.sha256(challenge_id.encode()).hexdigest()


def _context(key: str) -> str:
    return f"mfa_challenge/memory/{key}"


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
        #: account -> the tries held (token -> when it stops counting)
        self._tries: dict[str, dict[str, datetime]] = {}

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

    async def begin_attempt(self, account: str) -> str:
        await self.ensure_not_locked(account)
        # no await from here on: as atomic as the Redis script
        now = self._clock.now()
        tries = {t: end for t, end in self._tries.get(account, {}).items() if end > now}
        state = self._current(account)
        counted = (
            state.failures
            if state is not None and state.window_ends is not None and now < state.window_ends
            else 0
        )
        if counted + len(tries) >= self._policy.max_failures:
            self._tries[account] = tries
            raise AccountLocked(retry_after_seconds=1)
        token = secrets.token_hex(8)
        tries[token] = now + timedelta(seconds=ATTEMPT_LEASE_SECONDS)
        self._tries[account] = tries
        return token

    async def end_attempt(self, account: str, token: str, *, failed: bool) -> None:
        if failed:  # counted in the same step as the try is given back
            await self.record_failure(account)
        tries = self._tries.get(account)
        if tries is not None:
            tries.pop(token, None)
            if not tries:
                del self._tries[account]

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
        # asked on every authenticated request: the clock is read only for an id found
        denied = self._denied
        now = None
        for token_id in token_ids:
            until = denied.get(token_id)
            if until is not None:
                if now is None:
                    now = self._clock.now()
                if until > now:
                    return True
        return False


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
