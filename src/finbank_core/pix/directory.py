"""Values of the key directory (DICT): registrations and masked look-up answers."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from finbank_core.accounts.model import AccountKind, HolderType
from finbank_core.pix.codes.documents import mask_document
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.errors import InvalidDocument
from finbank_core.shared.privacy import masked_repr

#: DICT rule: keys per account by holder type
MAX_KEYS_INDIVIDUAL = 5
MAX_KEYS_COMPANY = 20


def max_keys_for(holder_type: HolderType, *, individual: int, company: int) -> int:
    return company if holder_type is HolderType.COMPANY else individual


def safe_mask(document: str | None) -> str | None:
    """``mask_document`` for data that may be missing or malformed (then ``None``)."""
    if not document:
        return None
    try:
        return mask_document(document)
    except InvalidDocument:
        return None


class NewKeyRegistration(msgspec.Struct, frozen=True, kw_only=True):
    """A request to bind a key to an account.

    ``key`` is ``None`` for an EVP, which the directory generates. For an
    account of another institution (the sandbox's peer bank) ``account_id``
    and ``owner_id`` are ``None``.
    """

    id: uuid.UUID
    key_type: PixKeyType
    key: PixKey | None
    ispb: str
    branch: str
    account_number: str
    account_kind: AccountKind
    holder_type: HolderType
    holder_name: str
    holder_document: str | None
    created_at: datetime
    account_id: uuid.UUID | None = None
    owner_id: str | None = None

    __repr__ = masked_repr("holder_document", "holder_name")


class KeyRegistration(msgspec.Struct, frozen=True, kw_only=True):
    """A key as the directory stores it (the holder's full document included)."""

    id: uuid.UUID
    key: PixKey
    ispb: str
    branch: str
    account_number: str
    account_kind: AccountKind
    holder_type: HolderType
    holder_name: str
    holder_document: str | None
    created_at: datetime
    account_id: uuid.UUID | None = None
    owner_id: str | None = None

    __repr__ = masked_repr("holder_document", "holder_name")

    @classmethod
    def of(cls, new: NewKeyRegistration, key: PixKey) -> KeyRegistration:
        fields = {f: getattr(new, f) for f in new.__struct_fields__ if f not in ("key", "key_type")}
        return cls(key=key, **fields)

    def entry(self) -> DirectoryEntry:
        """The look-up answer: the holder's document masked."""
        return DirectoryEntry(
            key=self.key,
            ispb=self.ispb,
            branch=self.branch,
            account_number=self.account_number,
            account_kind=self.account_kind,
            holder_type=self.holder_type,
            owner_name=self.holder_name,
            owner_document_masked=safe_mask(self.holder_document),
            created_at=self.created_at,
        )


class DirectoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """What a payer's institution learns by looking a key up."""

    key: PixKey
    ispb: str
    branch: str
    account_number: str
    account_kind: AccountKind
    holder_type: HolderType
    owner_name: str
    owner_document_masked: str | None
    created_at: datetime

    __repr__ = masked_repr("owner_name")
