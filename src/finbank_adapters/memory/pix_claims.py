"""In-memory key claims and look-up buckets.

Each operation runs without an ``await`` between its checks and its write,
so on one event loop it is as atomic as the PostgreSQL and DynamoDB ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import msgspec

from finbank_core.pix.claims.errors import (
    KeyClaimAlreadyOpen,
    KeyClaimNotFound,
    KeyClaimVersionConflict,
)
from finbank_core.pix.claims.lookups import BucketPolicy, BucketTake, take
from finbank_core.pix.claims.model import KeyClaim
from finbank_core.pix.codes.keys import PixKey
from finbank_core.shared.events import EventEnvelope


def refuse_events(events: Sequence[EventEnvelope]) -> None:
    """A store without an outbox of its own is never given events (``appends_events``)."""
    if events:
        raise ValueError("this claim store does not append events; publish them after the write")


class InMemoryKeyClaimStore:
    """``KeyClaimStore`` in dicts: claims by id, the active claim of each key."""

    appends_events = False

    def __init__(self) -> None:
        self._claims: dict[uuid.UUID, KeyClaim] = {}
        self._active: dict[tuple[str, str], uuid.UUID] = {}

    async def add(self, claim: KeyClaim, *, events: Sequence[EventEnvelope] = ()) -> KeyClaim:
        refuse_events(events)
        index = (claim.key.type.value, claim.key.value)
        if index in self._active or claim.id in self._claims:
            raise KeyClaimAlreadyOpen("the key already has an active claim")
        stored = msgspec.structs.replace(claim, version=1)
        self._claims[claim.id] = stored
        if stored.status.active:
            self._active[index] = claim.id
        return stored

    async def get(self, claim_id: uuid.UUID) -> KeyClaim:
        claim = self._claims.get(claim_id)
        if claim is None:
            raise KeyClaimNotFound()
        return claim

    async def update(
        self, claim: KeyClaim, expected_version: int, *, events: Sequence[EventEnvelope] = ()
    ) -> KeyClaim:
        refuse_events(events)
        current = self._claims.get(claim.id)
        if current is None:
            raise KeyClaimNotFound()
        if current.version != expected_version:
            raise KeyClaimVersionConflict()
        stored = msgspec.structs.replace(claim, version=expected_version + 1)
        self._claims[claim.id] = stored
        index = (claim.key.type.value, claim.key.value)
        if not stored.status.active and self._active.get(index) == claim.id:
            del self._active[index]
        return stored

    async def active_for_key(self, key: PixKey) -> KeyClaim | None:
        claim_id = self._active.get((key.type.value, key.value))
        return self._claims[claim_id] if claim_id is not None else None

    async def list_by_owner(self, owner_id: str) -> list[KeyClaim]:
        found = [
            c
            for c in self._claims.values()
            if c.claimer.owner_id == owner_id or c.donor.owner_id == owner_id
        ]
        return sorted(found, key=lambda c: (c.opened_at, c.id))


class InMemoryLookupBuckets:
    """``LookupBuckets`` in a dict: ``bucket -> (tokens, last update)``."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, datetime]] = {}

    async def take(self, bucket: str, cost: int, policy: BucketPolicy, now: datetime) -> BucketTake:
        held = self._buckets.get(bucket)
        tokens, last = held if held is not None else (0.0, None)
        result = take(tokens, last, now, policy, cost)
        if result.allowed:
            self._buckets[bucket] = (result.tokens, now if last is None else max(now, last))
        return result
