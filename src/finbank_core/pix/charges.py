"""Immediate charges (cob) and the BR Codes that pay them.

``ATIVA -> CONCLUIDA`` when a matching payment arrives, ``ATIVA ->
REMOVIDA_PELO_USUARIO_RECEBEDOR | REMOVIDA_PELO_PSP`` when withdrawn; the
other states are final. As in the central bank's API, an expired charge
stays ``ATIVA`` but can no longer be paid.

A payment made here claims the charge before any money moves: ``claim``
writes the payment's EndToEndId into the charge (a conditional write on the
version, so of many payers at once exactly one wins, in any number of
processes), ``release`` gives it back if the payment fails before it is
recorded, ``conclude`` ends it. A claimed charge stays ``ATIVA`` (the
central bank has no such state) but is not payable by anyone else. A claim
whose payment was rejected, or never recorded after
``STALE_CLAIM_SECONDS`` (its request crashed), may be taken over.

The txid of a charge has 26-35 characters but a static BR Code carries at
most 25 (field 62-05), so the static code carries ``static_txid``, the
txid's first 25 characters; both identify the charge, and a new charge whose
first 25 characters clash with an existing one is refused.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta

import msgspec

from finbank_core.pix.codes.brcode import BRCode
from finbank_core.pix.codes.keys import PixKey
from finbank_core.pix.errors import ChargeNotPayable, IllegalPixTransition
from finbank_core.shared.money import Money
from finbank_core.shared.privacy import masked_repr

STATIC_TXID_LENGTH = 25
#: how long a claim whose payment was never recorded blocks other payers
STALE_CLAIM_SECONDS = 120


class ChargeStatus(enum.StrEnum):
    ATIVA = "ATIVA"
    CONCLUIDA = "CONCLUIDA"
    REMOVIDA_PELO_USUARIO_RECEBEDOR = "REMOVIDA_PELO_USUARIO_RECEBEDOR"
    REMOVIDA_PELO_PSP = "REMOVIDA_PELO_PSP"


class ChargePayer(msgspec.Struct, frozen=True, kw_only=True):
    """Who is expected to pay; ``document`` is personal data (never logged)."""

    name: str
    document: str

    __repr__ = masked_repr("document", "name")


class Charge(msgspec.Struct, frozen=True, kw_only=True):
    """A charge of ``amount`` into ``account_id``, paid to ``pix_key``."""

    txid: str
    location_id: str
    account_id: uuid.UUID
    owner_id: str
    pix_key: PixKey
    amount: Money
    merchant_name: str
    merchant_city: str
    created_at: datetime
    expires_in_seconds: int
    status: ChargeStatus = ChargeStatus.ATIVA
    description: str | None = None
    payer: ChargePayer | None = None
    version: int = 0
    end_to_end_id: str | None = None
    concluded_at: datetime | None = None
    #: the EndToEndId of the payment in flight that claimed the charge
    claimed_by: str | None = None
    claimed_at: datetime | None = None

    @property
    def static_txid(self) -> str:
        return self.txid[:STATIC_TXID_LENGTH]

    @property
    def expires_at(self) -> datetime:
        return self.created_at + timedelta(seconds=self.expires_in_seconds)

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def matches(self, reference: str | None) -> bool:
        """True when a payment's txid names this charge (full txid or static one)."""
        return reference is not None and reference in (self.txid, self.static_txid)

    def require_payable(self, now: datetime, amount: Money | None = None) -> None:
        """Raise ``ChargeNotPayable`` unless the charge can be paid now (with ``amount``)."""
        if self.status is not ChargeStatus.ATIVA:
            raise ChargeNotPayable(f"the charge is {self.status.value}", state=self.status.value)
        if self.claimed_by is not None:
            raise ChargeNotPayable("the charge is already being paid", state="CLAIMED")
        if self.is_expired(now):
            raise ChargeNotPayable("the charge has expired", state="EXPIRED")
        if amount is not None and amount != self.amount:
            raise ChargeNotPayable(f"the charge must be paid with exactly {self.amount}")

    # -- state machine -------------------------------------------------------------

    def claim(self, end_to_end_id: str, now: datetime) -> Charge:
        """The charge held for payment ``end_to_end_id`` (checked payable by the caller)."""
        return msgspec.structs.replace(self, claimed_by=end_to_end_id, claimed_at=now)

    def release(self) -> Charge:
        """The claim given back: the charge is payable again."""
        return msgspec.structs.replace(self, claimed_by=None, claimed_at=None)

    def claim_is_stale(self, now: datetime) -> bool:
        """Claimed long enough ago that a payment still unrecorded will never be."""
        return self.claimed_at is not None and now >= self.claimed_at + timedelta(
            seconds=STALE_CLAIM_SECONDS
        )

    def conclude(self, end_to_end_id: str, now: datetime) -> Charge:
        self._require_active(ChargeStatus.CONCLUIDA)
        return msgspec.structs.replace(
            self,
            status=ChargeStatus.CONCLUIDA,
            end_to_end_id=end_to_end_id,
            concluded_at=now,
            claimed_by=None,
            claimed_at=None,
        )

    def remove(self, *, by_psp: bool = False) -> Charge:
        target = (
            ChargeStatus.REMOVIDA_PELO_PSP
            if by_psp
            else ChargeStatus.REMOVIDA_PELO_USUARIO_RECEBEDOR
        )
        self._require_active(target)
        return msgspec.structs.replace(self, status=target)

    def _require_active(self, target: ChargeStatus) -> None:
        if self.status is not ChargeStatus.ATIVA:
            raise IllegalPixTransition(
                f"a charge cannot go from {self.status.value} to {target.value}",
                current=self.status.value,
                target=target.value,
            )

    # -- BR Codes ------------------------------------------------------------------------

    def location_url(self, base_url: str) -> str:
        """``{base}/cob/{location_id}``, without a scheme, as field 26-25 wants it."""
        base = base_url.removeprefix("https://").removeprefix("http://").rstrip("/")
        return f"{base}/cob/{self.location_id}"

    def dynamic_brcode(self, base_url: str) -> BRCode:
        """A single-use code whose amount and txid come from the location."""
        return BRCode.dynamic(
            location_url=self.location_url(base_url),
            merchant_name=self.merchant_name,
            merchant_city=self.merchant_city,
        )

    def static_brcode(self) -> BRCode:
        """A code with the key, the amount and ``static_txid`` written in it."""
        return BRCode.static(
            key=self.pix_key,
            merchant_name=self.merchant_name,
            merchant_city=self.merchant_city,
            amount=self.amount,
            txid=self.static_txid,
        )

    __repr__ = masked_repr("merchant_name")


class ChargePayload(msgspec.Struct, frozen=True, kw_only=True):
    """What a location URL serves a payer: enough to pay the charge.

    ``amount`` and ``txid`` override whatever the (dynamic) BR Code says.
    """

    txid: str
    pix_key: PixKey
    amount: Money
    status: ChargeStatus
    expires_at: datetime
    merchant_name: str

    def require_payable(self, now: datetime) -> None:
        if self.status is not ChargeStatus.ATIVA:
            raise ChargeNotPayable(f"the charge is {self.status.value}")
        if now >= self.expires_at:
            raise ChargeNotPayable("the charge has expired")

    __repr__ = masked_repr("merchant_name")
