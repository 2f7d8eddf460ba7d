"""Reading claims: one, or all of a customer's (as claimer or donor)."""

from __future__ import annotations

import uuid

import msgspec

from finbank_core.pix.claims.model import KeyClaim
from finbank_core.pix.claims.use_cases.steps import ClaimSteps
from finbank_core.shared.inputs import check_text


class GetKeyClaimQuery(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    claim_id: uuid.UUID


class ListKeyClaimsQuery(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str


class GetKeyClaim:
    """One claim the caller is a side of, its ended periods applied (``KeyClaimNotFound`` else)."""

    def __init__(self, *, steps: ClaimSteps) -> None:
        self._steps = steps

    async def __call__(self, query: GetKeyClaimQuery) -> KeyClaim:
        return await self._steps.get_visible(query.claim_id, query.owner_id)


class ListKeyClaims:
    """The caller's claims, as claimer or donor, oldest first, periods applied."""

    def __init__(self, *, steps: ClaimSteps) -> None:
        self._steps = steps

    async def __call__(self, query: ListKeyClaimsQuery) -> list[KeyClaim]:
        check_text(query.owner_id, field="owner_id", name="owner id")  # the store is asked by it
        found = await self._steps.store.list_by_owner(query.owner_id)
        return [await self._steps.current(claim.id) for claim in found]
