"""Key claims (reivindicações) of the key directory: portability and ownership.

A claim asks the directory (DICT) to move a key from the account that holds
it (the *donor*) to another account (the *claimer*):

* **portability**: the key's owner moves it to their account at another
  institution; the donor must confirm (the owner agrees) or cancel within
  the resolution period, else the claim lapses (cancelled).
* **ownership** (posse): someone else proves they now own a phone or email
  key; the holder may cancel (contest) within the resolution period, else
  the key is given up (confirmed) when the period ends.

Statuses follow the directory's: ``OPEN`` (the claimer opened it),
``WAITING_RESOLUTION`` (the donor's institution acknowledged it),
``CONFIRMED`` (the donor gave the key up), ``COMPLETED`` (the key is bound
to the claimer's account) and ``CANCELLED``. The key stays on the donor's
account until completion, and completion moves it in one step of the
directory (:meth:`~finbank_core.pix.claims.ports.ClaimableKeyDirectory.transfer`),
so it is never on two accounts. A confirmed claim being completed is marked
``completing`` first; the key moves, and only then is the claim marked
``COMPLETED``, so the status never says the key moved when it did not (a
completion interrupted in between is finished by the next touch). The
periods are in :class:`ClaimSettings`; every deadline is read on the
injected clock.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta

import msgspec

from finbank_core.accounts.model import AccountKind, HolderType
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.directory import KeyRegistration, NewKeyRegistration, safe_mask


class ClaimType(enum.StrEnum):
    PORTABILITY = "PORTABILITY"
    OWNERSHIP = "OWNERSHIP"


class ClaimStatus(enum.StrEnum):
    OPEN = "OPEN"
    WAITING_RESOLUTION = "WAITING_RESOLUTION"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"

    @property
    def active(self) -> bool:
        """Open, waiting or confirmed: the key has this claim and may have no other."""
        return self not in (ClaimStatus.CANCELLED, ClaimStatus.COMPLETED)


class ClaimParty(enum.StrEnum):
    """Which side acted (confirmed, cancelled); ``DIRECTORY`` when a deadline did."""

    DONOR = "DONOR"
    CLAIMER = "CLAIMER"
    DIRECTORY = "DIRECTORY"


class CancelReason(enum.StrEnum):
    USER_REQUESTED = "USER_REQUESTED"
    FRAUD = "FRAUD"
    ACCOUNT_CLOSURE = "ACCOUNT_CLOSURE"
    #: a period ended without the step it waited for
    DEFAULT_OPERATION = "DEFAULT_OPERATION"


#: which key types each claim type accepts (an EVP is never claimed)
CLAIMABLE_KEY_TYPES: dict[ClaimType, frozenset[PixKeyType]] = {
    ClaimType.PORTABILITY: frozenset(
        {PixKeyType.CPF, PixKeyType.CNPJ, PixKeyType.PHONE, PixKeyType.EMAIL}
    ),
    ClaimType.OWNERSHIP: frozenset({PixKeyType.PHONE, PixKeyType.EMAIL}),
}


class ClaimSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The directory's periods (Manual Operacional do DICT, reivindicação)."""

    #: the donor's window to confirm or cancel, from the opening
    resolution_days: int = 7
    #: the claimer's window to complete, from the end of the resolution period
    completion_days: int = 30

    def periods(self, opened_at: datetime) -> tuple[datetime, datetime]:
        resolution = opened_at + timedelta(days=self.resolution_days)
        return resolution, resolution + timedelta(days=self.completion_days)


class ClaimAccount(msgspec.Struct, frozen=True, kw_only=True):
    """One side of a claim: an account here (``account_id``/``owner_id`` set) or elsewhere."""

    ispb: str
    branch: str
    account_number: str
    account_kind: AccountKind
    holder_type: HolderType
    holder_name: str
    #: personal data: masked in ``repr``
    holder_document: str | None
    account_id: uuid.UUID | None = None
    owner_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"ClaimAccount(ispb={self.ispb!r}, branch={self.branch!r}, "
            f"account_number={self.account_number!r}, account_id={self.account_id!r}, "
            f"holder_document={safe_mask(self.holder_document)!r})"
        )

    @classmethod
    def of_registration(cls, registration: KeyRegistration) -> ClaimAccount:
        return cls(
            ispb=registration.ispb,
            branch=registration.branch,
            account_number=registration.account_number,
            account_kind=registration.account_kind,
            holder_type=registration.holder_type,
            holder_name=registration.holder_name,
            holder_document=registration.holder_document,
            account_id=registration.account_id,
            owner_id=registration.owner_id,
        )


class KeyClaim(msgspec.Struct, frozen=True, kw_only=True):
    """A claim as the claims store keeps it (``version`` guards every change)."""

    id: uuid.UUID
    claim_type: ClaimType
    key: PixKey
    status: ClaimStatus
    claimer: ClaimAccount
    donor: ClaimAccount
    #: the donor's registration the key moves from
    donor_key_id: uuid.UUID
    opened_at: datetime
    resolution_ends_at: datetime
    completion_ends_at: datetime
    updated_at: datetime
    confirmed_by: ClaimParty | None = None
    cancelled_by: ClaimParty | None = None
    cancel_reason: CancelReason | None = None
    #: a confirmed claim whose key move has begun: nobody may cancel it, the next touch
    #: finishes it (the key moves, then the claim becomes ``COMPLETED``)
    completing: bool = False
    #: the event of this status is on the outbox; ``False`` between a step's write and its
    #: event (a crash there leaves it for the next touch to publish, under the same id)
    announced: bool = True
    version: int = 1

    def is_donor(self, owner_id: str) -> bool:
        return self.donor.owner_id is not None and self.donor.owner_id == owner_id

    def is_claimer(self, owner_id: str) -> bool:
        return self.claimer.owner_id is not None and self.claimer.owner_id == owner_id

    def claimer_registration(self) -> NewKeyRegistration:
        """The registration completion binds; its id is the claim's, so a replay finds it."""
        c = self.claimer
        return NewKeyRegistration(
            id=self.id,
            key_type=self.key.type,
            key=self.key,
            ispb=c.ispb,
            branch=c.branch,
            account_number=c.account_number,
            account_kind=c.account_kind,
            holder_type=c.holder_type,
            holder_name=c.holder_name,
            holder_document=c.holder_document,
            created_at=self.updated_at,
            account_id=c.account_id,
            owner_id=c.owner_id,
        )


class KeyClaimPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[KeyClaim]


# -- the steps, as pure functions ---------------------------------------------------------


def _require(claim: KeyClaim, allowed: tuple[ClaimStatus, ...], step: str) -> None:
    from finbank_core.pix.claims.errors import IllegalKeyClaimTransition

    if claim.status not in allowed:
        raise IllegalKeyClaimTransition(
            f"a {claim.status.value} claim cannot be {step}", status=claim.status.value
        )


def acknowledged(claim: KeyClaim, now: datetime) -> KeyClaim:
    """The donor's institution received the claim: ``WAITING_RESOLUTION``."""
    _require(claim, (ClaimStatus.OPEN,), "acknowledged")
    return msgspec.structs.replace(claim, status=ClaimStatus.WAITING_RESOLUTION, updated_at=now)


def confirmed(claim: KeyClaim, by: ClaimParty, now: datetime) -> KeyClaim:
    _require(claim, (ClaimStatus.OPEN, ClaimStatus.WAITING_RESOLUTION), "confirmed")
    return msgspec.structs.replace(
        claim, status=ClaimStatus.CONFIRMED, confirmed_by=by, updated_at=now
    )


def cancelled(claim: KeyClaim, by: ClaimParty, reason: CancelReason, now: datetime) -> KeyClaim:
    if claim.completing:
        from finbank_core.pix.claims.errors import IllegalKeyClaimTransition

        raise IllegalKeyClaimTransition(
            "the claim is being completed: its key is moving", status=claim.status.value
        )
    _require(
        claim,
        (ClaimStatus.OPEN, ClaimStatus.WAITING_RESOLUTION, ClaimStatus.CONFIRMED),
        "cancelled",
    )
    return msgspec.structs.replace(
        claim,
        status=ClaimStatus.CANCELLED,
        cancelled_by=by,
        cancel_reason=reason,
        updated_at=now,
    )


def completing(claim: KeyClaim, now: datetime) -> KeyClaim:
    """The claimer began completing: the key moves next (see the module docstring)."""
    _require(claim, (ClaimStatus.CONFIRMED,), "completed")
    return msgspec.structs.replace(claim, completing=True, updated_at=now)


def completed(claim: KeyClaim, now: datetime) -> KeyClaim:
    """The key moved: ``COMPLETED`` (only after the directory's move)."""
    _require(claim, (ClaimStatus.CONFIRMED,), "completed")
    return msgspec.structs.replace(
        claim, status=ClaimStatus.COMPLETED, completing=False, updated_at=now
    )


def due_step(claim: KeyClaim, now: datetime) -> KeyClaim | None:
    """What the passing of a period does to ``claim`` at ``now`` (``None``: nothing).

    A period is over at its end instant: at ``resolution_ends_at`` the donor
    can no longer act; a portability claim then lapses (cancelled) and an
    ownership claim is confirmed (the holder did not contest; a claim never
    acknowledged by the donor's institution is cancelled instead). At
    ``completion_ends_at`` a confirmed claim not completed is cancelled; one
    whose completion began before the end is finished instead (not here).
    """
    if claim.completing:
        return None
    if claim.status in (ClaimStatus.OPEN, ClaimStatus.WAITING_RESOLUTION):
        if now < claim.resolution_ends_at:
            return None
        # only a claim the donor's institution acknowledged can be given up by silence
        acknowledged = claim.status is ClaimStatus.WAITING_RESOLUTION
        if claim.claim_type is ClaimType.OWNERSHIP and acknowledged:
            return confirmed(claim, ClaimParty.DIRECTORY, now)
        return cancelled(claim, ClaimParty.DIRECTORY, CancelReason.DEFAULT_OPERATION, now)
    if claim.status is ClaimStatus.CONFIRMED and now >= claim.completion_ends_at:
        return cancelled(claim, ClaimParty.DIRECTORY, CancelReason.DEFAULT_OPERATION, now)
    return None
