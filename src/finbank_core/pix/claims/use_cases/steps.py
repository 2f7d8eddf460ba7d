"""What every claim flow shares: deadlines on read, stored steps, their events, the key move."""

from __future__ import annotations

import uuid

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
from finbank_core.pix.errors import PixKeyNotFound
from finbank_core.pix.events import outcome_event_id
from finbank_core.pix.ledger_steps import PixEvents
from finbank_core.shared.clock import Clock

_ADVANCE_ROUNDS = 4


class ClaimSteps:
    """Reads claims with their deadlines applied, stores steps and announces them.

    A period that has ended is applied by the first caller that reads the
    claim after its end (any read or step), once: the store's versioned
    update lets one caller win and the others re-read. Each status has one
    event per claim, with an id derived from the claim and the status.
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
        """The claim with its ended periods and a remote donor's answer applied."""
        claim = await self.store.get(claim_id)
        for _ in range(_ADVANCE_ROUNDS):
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
        """Store ``step`` over ``claim`` (versioned), move the key if it completed, announce it."""
        stored = await self.store.update(step, claim.version)
        if stored.status is ClaimStatus.COMPLETED:
            await self.move_key(stored)
        await self.announce(stored)
        if not self.is_ours(stored.claimer.ispb) or not self.is_ours(stored.donor.ispb):
            await self.network.claim_changed(stored)
        return stored

    async def announce(self, claim: KeyClaim) -> None:
        type = EVENT_BY_STATUS[claim.status.value]
        await self.events.publish(
            type,
            str(claim.id),
            claim_payload(claim),
            event_id=outcome_event_id(type, str(claim.id)),
        )

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
