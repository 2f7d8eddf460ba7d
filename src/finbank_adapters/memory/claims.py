"""``InMemoryRequestClaims``: in-flight claims of idempotent requests, in one process.

Each call runs without an ``await`` between its check and its write, so on
one event loop it is as atomic as the DynamoDB adapter's conditional writes.
Enough for the memory profile, where every request runs in this process.
"""

from __future__ import annotations

from datetime import datetime


class InMemoryRequestClaims:
    """``RequestClaims`` in a dict: claim id -> (token, lease end)."""

    def __init__(self) -> None:
        self._claims: dict[str, tuple[str, datetime]] = {}

    async def acquire(self, claim_id: str, token: str, *, now: datetime, until: datetime) -> bool:
        held = self._claims.get(claim_id)
        if held is not None and held[1] > now:
            return False
        self._claims[claim_id] = (token, until)
        return True

    async def release(self, claim_id: str, token: str) -> None:
        held = self._claims.get(claim_id)
        if held is not None and held[0] == token:
            del self._claims[claim_id]

    def __len__(self) -> int:
        """How many claims are stored (held or with an ended lease): for tests."""
        return len(self._claims)
