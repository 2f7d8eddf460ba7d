"""Request and response bodies of key claims and key look-ups.

A claim is shown from the caller's side (``role``): the key, the caller's
account and the other institution's ISPB; never the other party's name or
document.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from finbank_core.accounts.model import AccountKind, HolderType
from finbank_core.pix.claims.model import CancelReason, ClaimParty, ClaimStatus, ClaimType, KeyClaim
from finbank_core.pix.codes.keys import PixKeyType
from finbank_core.pix.directory import DirectoryEntry

KeyText = Annotated[str, msgspec.Meta(min_length=1, max_length=77)]


class OpenClaimIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    account_id: uuid.UUID
    claim_type: ClaimType
    key_type: PixKeyType
    key: KeyText


#: the reasons a customer may give (``DEFAULT_OPERATION`` is the directory's alone)
CustomerCancelReason = Literal["USER_REQUESTED", "FRAUD", "ACCOUNT_CLOSURE"]


class CancelClaimIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: CustomerCancelReason = "USER_REQUESTED"


class ClaimOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    claim_type: ClaimType
    status: ClaimStatus
    #: the caller's side of the claim
    role: ClaimParty
    key: str
    key_type: PixKeyType
    #: the caller's account in the claim
    account_id: uuid.UUID | None
    #: the institution on the other side
    other_ispb: str
    opened_at: datetime
    #: the holder confirms or cancels before this instant
    resolution_ends_at: datetime
    #: the claimer completes a confirmed claim before this instant
    completion_ends_at: datetime
    confirmed_by: ClaimParty | None
    cancelled_by: ClaimParty | None
    cancel_reason: CancelReason | None

    @classmethod
    def of(cls, claim: KeyClaim, owner_id: str) -> ClaimOut:
        claimer = claim.is_claimer(owner_id)
        mine, other = (claim.claimer, claim.donor) if claimer else (claim.donor, claim.claimer)
        return cls(
            id=claim.id,
            claim_type=claim.claim_type,
            status=claim.status,
            role=ClaimParty.CLAIMER if claimer else ClaimParty.DONOR,
            key=claim.key.value,
            key_type=claim.key.type,
            account_id=mine.account_id,
            other_ispb=other.ispb,
            opened_at=claim.opened_at,
            resolution_ends_at=claim.resolution_ends_at,
            completion_ends_at=claim.completion_ends_at,
            confirmed_by=claim.confirmed_by,
            cancelled_by=claim.cancelled_by,
            cancel_reason=claim.cancel_reason,
        )


class LookupIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: the account that would pay
    account_id: uuid.UUID
    key: KeyText
    key_type: PixKeyType | None = None


class LookupOut(msgspec.Struct, kw_only=True):
    key_type: PixKeyType
    ispb: str
    branch: str
    account_number: str
    account_kind: AccountKind
    holder_type: HolderType
    owner_name: str
    owner_document_masked: str | None

    @classmethod
    def of(cls, entry: DirectoryEntry) -> LookupOut:
        return cls(
            key_type=entry.key.type,
            ispb=entry.ispb,
            branch=entry.branch,
            account_number=entry.account_number,
            account_kind=entry.account_kind,
            holder_type=entry.holder_type,
            owner_name=entry.owner_name,
            owner_document_masked=entry.owner_document_masked,
        )
