"""What every claim flow shares: deadlines on read, stored steps, their events, the key move."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta

import msgspec

from finbank_core.accounts.events import make_event
from finbank_core.accounts.model import HolderType
from finbank_core.pix.claims.errors import KeyClaimNotFound, KeyClaimVersionConflict
from finbank_core.pix.claims.events import EVENT_BY_STATUS, claim_payload
from finbank_core.pix.claims.model import (
    CancelReason,
    ClaimParty,
    ClaimSettings,
    ClaimStatus,
    KeyClaim,
    cancelled,
    completed,
    confirmed,
    due_step,
)
from finbank_core.pix.claims.ports import ClaimableKeyDirectory, ClaimsNetwork, KeyClaimStore
from finbank_core.pix.directory import (
    MAX_KEYS_COMPANY,
    MAX_KEYS_INDIVIDUAL,
    KeyRegistration,
    max_keys_for,
)
from finbank_core.pix.errors import PixKeyAlreadyRegistered, PixKeyLimitReached, PixKeyNotFound
from finbank_core.pix.events import outcome_event_id
from finbank_core.pix.ledger_steps import PixEvents
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.events import EventEnvelope

_ADVANCE_ROUNDS = 4
#: how long a step's writer has to publish its event before any touch publishes it again
ANNOUNCE_GRACE = timedelta(seconds=30)


class ClaimSteps:
    """Reads claims with their deadlines applied, stores steps and announces them.

    A period that has ended is applied by the first caller that reads the
    claim after its end (any read or step), once: the store's versioned
    update lets one caller win and the others re-read. Each status has one
    event per claim, with an id derived from the claim and the status.

    A step and its event are exactly-once: a store that ``appends_events``
    writes both in one transaction; otherwise the step is stored
    ``announced=False``, the event published, then the claim marked
    announced, and a touch that finds the mark missing ``ANNOUNCE_GRACE``
    after the step (a crash or a failed publish in between; within the grace
    the writer is still at it) publishes the event again under its id. A
    completion that began (``completing``) is finished by the next touch.
    """

    def __init__(
        self,
        *,
        ispb: str,
        store: KeyClaimStore,
        directory: ClaimableKeyDirectory,
        network: ClaimsNetwork,
        events: PixEvents,
        clock: Clock,
        settings: ClaimSettings | None = None,
        max_keys_individual: int = MAX_KEYS_INDIVIDUAL,
        max_keys_company: int = MAX_KEYS_COMPANY,
    ) -> None:
        self.ispb = ispb
        self.store = store
        self.directory = directory
        self.network = network
        self.events = events
        self.clock = clock
        self.settings = settings or ClaimSettings()
        self._max_individual = max_keys_individual
        self._max_company = max_keys_company

    def max_keys(self, holder_type: HolderType) -> int:
        return max_keys_for(holder_type, individual=self._max_individual, company=self._max_company)

    def is_ours(self, ispb: str) -> bool:
        return ispb == self.ispb

    async def current(self, claim_id: uuid.UUID) -> KeyClaim:
        """The claim with its ended periods and a remote donor's answer applied.

        Also what a crash left: the event of its status published (once, by
        id) and a begun completion finished.
        """
        claim = await self.store.get(claim_id)
        for _ in range(_ADVANCE_ROUNDS):
            if not claim.announced and self.clock.now() - claim.updated_at >= ANNOUNCE_GRACE:
                claim = await self._announced(claim)
            if claim.completing:
                try:
                    claim = await self.finish_completion(claim)
                except (PixKeyLimitReached, PixKeyAlreadyRegistered, ServiceUnavailable):
                    return await self.store.get(claim_id)  # the completer is told, not a reader
                continue
            step = await self._next_step(claim)
            if step is None:
                return claim
            try:
                claim = await self.save(claim, step)
            except KeyClaimVersionConflict:
                claim = await self.store.get(claim_id)
        return claim

    async def _next_step(self, claim: KeyClaim) -> KeyClaim | None:
        now = self.clock.now()
        step = due_step(claim, now)
        if step is not None or claim.status is not ClaimStatus.WAITING_RESOLUTION:
            return step
        if self.is_ours(claim.donor.ispb):
            return None
        answer = await self.network.donor_answer(claim)
        if answer == "CONFIRM":
            return confirmed(claim, ClaimParty.DONOR, now)
        if answer == "CANCEL":
            return cancelled(claim, ClaimParty.DONOR, CancelReason.USER_REQUESTED, now)
        return None

    async def save(self, claim: KeyClaim, step: KeyClaim) -> KeyClaim:
        """Store ``step`` over ``claim`` (versioned) with its event; tell the other side.

        A ``claim`` whose own event is not known to be out yet has it
        published first (under its id), so a step never buries the one before.
        """
        if not claim.announced:
            await self.announce(claim)
        if self.store.appends_events:
            stored = await self.store.update(
                msgspec.structs.replace(step, announced=True),
                claim.version,
                events=[self.event_of(step)],
            )
        else:
            stored = await self.store.update(
                msgspec.structs.replace(step, announced=False), claim.version
            )
            stored = await self._announced(stored)
        if not self.is_ours(stored.claimer.ispb) or not self.is_ours(stored.donor.ispb):
            await self.network.claim_changed(stored)
        return stored

    async def add(self, claim: KeyClaim) -> KeyClaim:
        """Store a new claim with its event (see :meth:`save`)."""
        if self.store.appends_events:
            return await self.store.add(
                msgspec.structs.replace(claim, announced=True), events=[self.event_of(claim)]
            )
        stored = await self.store.add(msgspec.structs.replace(claim, announced=False))
        return await self._announced(stored)

    def event_of(self, claim: KeyClaim) -> EventEnvelope:
        """The one event of ``claim``'s status, under the id derived from both."""
        type = EVENT_BY_STATUS[claim.status.value]
        return make_event(
            event_id=outcome_event_id(type, str(claim.id)),
            type=type,
            occurred_at=self.clock.now(),
            aggregate_id=str(claim.id),
            payload=claim_payload(claim),
        )

    async def announce(self, claim: KeyClaim) -> None:
        """Publish the event of ``claim``'s status (again: the outbox keeps one per id)."""
        event = self.event_of(claim)
        await self.events.publish(
            event.type, event.aggregate_id, event.payload, event_id=event.event_id
        )

    async def _announced(self, claim: KeyClaim) -> KeyClaim:
        """Publish the status's event, then mark the claim announced (a lost race is fine)."""
        await self.announce(claim)
        try:
            return await self.store.update(
                msgspec.structs.replace(claim, announced=True), claim.version
            )
        except KeyClaimVersionConflict:
            return await self.store.get(claim.id)  # another caller moved it on (or marked it)

    async def finish_completion(self, claim: KeyClaim) -> KeyClaim:
        """Move the key of a ``completing`` claim, then mark it ``COMPLETED``.

        If the key cannot move (the claimer's account is full, the key was
        registered elsewhere), the claim goes back to plain ``CONFIRMED`` and
        the error is raised: the claim never says the key moved when it did
        not. ``ServiceUnavailable`` leaves it ``completing`` for the next touch.
        """
        try:
            await self.move_key(claim)
        except (PixKeyLimitReached, PixKeyAlreadyRegistered):
            with contextlib.suppress(KeyClaimVersionConflict):  # else another caller did
                await self.store.update(
                    msgspec.structs.replace(claim, completing=False), claim.version
                )
            raise
        for _ in range(_ADVANCE_ROUNDS):
            try:
                return await self.save(claim, completed(claim, self.clock.now()))
            except KeyClaimVersionConflict:
                claim = await self.store.get(claim.id)
                if not claim.completing:  # finished (or reverted) by another caller
                    return claim
        raise KeyClaimVersionConflict()

    async def move_key(self, claim: KeyClaim) -> KeyRegistration:
        """Bind the key to the claimer; a replay finds it bound under the claim's id."""
        target = claim.claimer_registration()
        limit = self.max_keys(claim.claimer.holder_type)
        try:
            return await self.directory.transfer(
                claim.donor_key_id, target, max_keys_per_account=limit
            )
        except PixKeyNotFound:
            # the donor's registration is gone (its holder deleted the key): bind the free key
            return await self.directory.register(target, max_keys_per_account=limit)

    async def get_visible(self, claim_id: uuid.UUID, owner_id: str) -> KeyClaim:
        claim = await self.current(claim_id)
        if not (claim.is_claimer(owner_id) or claim.is_donor(owner_id)):
            raise KeyClaimNotFound()
        return claim
