"""The sandbox's side of key claims: other institutions' answers and claims.

:class:`SimulatedDictClaims` is the ``ClaimsNetwork`` of every profile
today. When our customer claims a key held at a simulated institution, that
institution's answer is what :meth:`SimulatedDictClaims.answer` set for the
claim (or ``default_answer``; ``None``: it stays silent, so the resolution
period decides). :meth:`SimulatedDictClaims.originate_claim` builds a claim
a simulated institution opens on a key held here, ready for
``ReceiveKeyClaim``. Every message is kept for tests to inspect.
"""

from __future__ import annotations

import uuid

from finbank_adapters.sandbox.spi import SimulatedSpi
from finbank_core.pix.claims.model import ClaimAccount, ClaimStatus, ClaimType, KeyClaim
from finbank_core.pix.claims.use_cases import ReceiveKeyClaimCommand
from finbank_core.pix.codes.keys import PixKey
from finbank_core.shared.errors import InvalidInput, NotFound

ANSWERS = ("CONFIRM", "CANCEL")


class SimulatedDictClaims:
    """Claims exchanged with the sandbox's simulated institutions."""

    def __init__(
        self, spi: SimulatedSpi | None = None, *, default_answer: str | None = None
    ) -> None:
        self._spi = spi
        self.default_answer = default_answer
        self._answers: dict[uuid.UUID, str | None] = {}
        #: claims our customers opened on keys held elsewhere
        self.opened: list[KeyClaim] = []
        #: (claim id, status) of every step we told the other side about
        self.changes: list[tuple[uuid.UUID, ClaimStatus]] = []

    def answer(self, claim_id: uuid.UUID, answer: str | None) -> None:
        """What the donor institution answers for ``claim_id``: CONFIRM, CANCEL or None."""
        if answer is not None and answer not in ANSWERS:
            raise InvalidInput("answer must be CONFIRM, CANCEL or none", field="answer")
        self._answers[claim_id] = answer

    async def open_claim(self, claim: KeyClaim) -> None:
        self.opened.append(claim)

    async def donor_answer(self, claim: KeyClaim) -> str | None:
        return self._answers.get(claim.id, self.default_answer)

    async def claim_changed(self, claim: KeyClaim) -> None:
        self.changes.append((claim.id, claim.status))

    def originate_claim(
        self,
        *,
        claim_type: ClaimType,
        key: PixKey,
        from_ispb: str,
        from_account_number: str,
        claim_id: uuid.UUID | None = None,
    ) -> ReceiveKeyClaimCommand:
        """A claim an account of a simulated institution opens on a key held here."""
        institution = self._spi.institutions.get(from_ispb) if self._spi else None
        account = (
            next((a for a in institution.accounts if a.account_number == from_account_number), None)
            if institution
            else None
        )
        if account is None:
            raise NotFound("no such simulated institution or account")
        return ReceiveKeyClaimCommand(
            claim_id=claim_id or uuid.uuid4(),
            claim_type=claim_type,
            key=key,
            claimer=ClaimAccount(
                ispb=from_ispb,
                branch=account.branch,
                account_number=account.account_number,
                account_kind=account.kind,
                holder_type=account.holder_type,
                holder_name=account.holder_name,
                holder_document=account.document,
            ),
        )
