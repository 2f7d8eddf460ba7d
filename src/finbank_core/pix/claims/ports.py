"""Ports of key claims and key look-up protection. Domain types only."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from finbank_core.pix.claims.lookups import BucketPolicy, BucketTake
from finbank_core.pix.claims.model import KeyClaim
from finbank_core.pix.codes.keys import PixKey
from finbank_core.pix.directory import KeyRegistration, NewKeyRegistration
from finbank_core.pix.ports import KeyDirectory
from finbank_core.shared.events import EventEnvelope


class KeyClaimStore(Protocol):
    """Claims, versioned; a key has at most one active claim at a time.

    ``appends_events``: the store writes ``events`` given to ``add`` and
    ``update`` to the outbox in the same atomic write as the claim (PostgreSQL
    with the outbox in the same database). A store that cannot is given no
    events; the caller publishes them after the write (``KeyClaim.announced``).
    """

    appends_events: bool

    async def add(self, claim: KeyClaim, *, events: Sequence[EventEnvelope] = ()) -> KeyClaim:
        """Store a new claim with version 1 (and ``events``, see the class docstring).

        Raises ``KeyClaimAlreadyOpen`` if the key has an active claim (open,
        waiting or confirmed); the check and the write are atomic, so of
        concurrent claims on one key exactly one is stored.
        """
        ...

    async def get(self, claim_id: uuid.UUID) -> KeyClaim:
        """Raises ``KeyClaimNotFound``."""
        ...

    async def update(
        self, claim: KeyClaim, expected_version: int, *, events: Sequence[EventEnvelope] = ()
    ) -> KeyClaim:
        """Replace the claim if its stored version is ``expected_version``; returns it stored.

        ``events`` are written with it, or not at all (see the class docstring).

        The stored claim has version ``expected_version + 1``. A claim that
        becomes cancelled or completed frees its key for a new claim in the
        same atomic write. Raises ``KeyClaimVersionConflict`` on a mismatch,
        ``KeyClaimNotFound`` if there is no such claim.
        """
        ...

    async def active_for_key(self, key: PixKey) -> KeyClaim | None:
        """The key's active claim, if any."""
        ...

    async def list_by_owner(self, owner_id: str) -> list[KeyClaim]:
        """Claims where ``owner_id`` is the claimer or the donor, oldest first."""
        ...


class ClaimableKeyDirectory(KeyDirectory, Protocol):
    """The key directory, with the one step a completed claim needs."""

    async def transfer(
        self, from_key_id: uuid.UUID, to: NewKeyRegistration, *, max_keys_per_account: int
    ) -> KeyRegistration:
        """Move ``to.key`` from the registration ``from_key_id`` to ``to``, atomically.

        The donor's registration is removed and ``to`` is stored in one step:
        the key is never on two accounts and never free in between. If the
        key is already registered with id ``to.id`` (a replay), that
        registration is returned. Raises ``PixKeyNotFound`` if
        ``from_key_id`` no longer holds ``to.key`` and ``PixKeyLimitReached``
        if the receiving account is full.
        """
        ...


class LookupBuckets(Protocol):
    """Token buckets for key look-ups, one per customer (``bucket``)."""

    async def take(self, bucket: str, cost: int, policy: BucketPolicy, now: datetime) -> BucketTake:
        """Apply :func:`~finbank_core.pix.claims.lookups.take` atomically and store the result.

        Concurrent takes on one bucket never spend the same tokens twice.
        """
        ...


class ClaimsNetwork(Protocol):
    """The directory's claim messages to and from other institutions."""

    async def open_claim(self, claim: KeyClaim) -> None:
        """Tell the donor's institution about a claim our customer opened."""
        ...

    async def donor_answer(self, claim: KeyClaim) -> str | None:
        """The donor institution's answer so far: ``"CONFIRM"``, ``"CANCEL"`` or ``None``."""
        ...

    async def claim_changed(self, claim: KeyClaim) -> None:
        """Tell the other side's institution that the claim moved (our donor's step)."""
        ...
