"""In-memory ``StepUpStore``: outstanding step-up tokens of one process.

``take`` pops without an ``await`` between the read and the removal, so on
one event loop exactly one caller gets a grant (the Redis adapter's
``GETDEL`` gives the same guarantee across processes).
"""

from __future__ import annotations

import hashlib

from finbank_core.auth.step_up import StepUpGrant
from finbank_core.shared.clock import Clock


class InMemoryStepUpStore:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._grants: dict[str, StepUpGrant] = {}

    async def put(self, token: str, grant: StepUpGrant) -> None:
        now = self._clock.now()
        # Forget the expired ones while here: the dict never grows without bound.
        for stale in [t for t, g in self._grants.items() if g.is_expired(now)]:
            del self._grants[stale]
        if not grant.is_expired(now):
            self._grants[_digest(token)] = grant

    async def take(self, token: str) -> StepUpGrant | None:
        grant = self._grants.pop(_digest(token), None)
        if grant is None or grant.is_expired(self._clock.now()):
            return None
        return grant


def _digest(token: str) -> str:
    """Kept under a digest, like Redis: a memory dump shows no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()
