"""PIX request and response bodies. Amounts are strings like ``"1234.56"``, never floats.

Documents of other people travel masked (``***.982.247-**``); a customer's
own keys are shown in full to that customer only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from finbank_core.accounts.model import AccountKind
from finbank_core.pix.charges import ChargeStatus
from finbank_core.pix.codes.brcode_reader import BRCodeReading
from finbank_core.pix.codes.keys import PixKeyType
from finbank_core.pix.directory import KeyRegistration
from finbank_core.pix.payments import Initiation, PaymentStatus, PixFlow, PixParty, PixPayment
from finbank_core.pix.refunds import PixRefund, RefundNature, RefundStatus
from finbank_core.pix.use_cases import ChargeResult
from finbank_http.med_schemas import MedOut
from finbank_http.schemas import AmountOut, PositiveAmountText, signed_amount

KeyText = Annotated[str, msgspec.Meta(min_length=1, max_length=77)]
Description = Annotated[str, msgspec.Meta(max_length=140)]
TxIdText = Annotated[
    str,
    msgspec.Meta(pattern=r"^[a-zA-Z0-9]{26,35}$(?!\n)", description="26 to 35 letters or digits"),
]

# -- keys -------------------------------------------------------------------------------


class RegisterKeyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    account_id: uuid.UUID
    key_type: PixKeyType
    #: omitted for EVP (random) keys: the directory issues them
    key: KeyText | None = None


class KeyOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    key: str
    key_type: PixKeyType
    account_id: uuid.UUID | None
    created_at: datetime

    @classmethod
    def of(cls, registration: KeyRegistration) -> KeyOut:
        return cls(
            id=registration.id,
            key=registration.key.value,
            key_type=registration.key.type,
            account_id=registration.account_id,
            created_at=registration.created_at,
        )


# -- payments ------------------------------------------------------------------------------


class AccountDataIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ispb: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Z]{8}$(?!\n)")]
    branch: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,4}$(?!\n)")]
    account_number: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    document: Annotated[str, msgspec.Meta(min_length=11, max_length=18)]
    name: Annotated[str, msgspec.Meta(max_length=140)] | None = None
    account_type: AccountKind = AccountKind.CHECKING


class PaymentIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Name the recipient by exactly one of ``key``, ``br_code`` and ``account_data``."""

    account_id: uuid.UUID
    amount: PositiveAmountText | None = None
    key: KeyText | None = None
    key_type: PixKeyType | None = None
    br_code: Annotated[str, msgspec.Meta(min_length=1, max_length=512)] | None = None
    account_data: AccountDataIn | None = None
    description: Description | None = None


class PartyOut(msgspec.Struct, kw_only=True):
    ispb: str
    branch: str | None
    account_number: str | None
    account_type: str | None
    name: str | None
    document: str | None  # masked

    @classmethod
    def of(cls, party: PixParty) -> PartyOut:
        return cls(
            ispb=party.ispb,
            branch=party.branch,
            account_number=party.account_number,
            account_type=party.account_kind,
            name=party.name,
            document=party.document_masked,
        )


class RefundOut(msgspec.Struct, kw_only=True):
    return_id: str
    end_to_end_id: str
    amount: AmountOut
    nature: RefundNature
    reason: str
    status: RefundStatus
    requested_at: datetime
    completed_at: datetime | None
    failure_reason: str | None
    description: str | None

    @classmethod
    def of(cls, payment: PixPayment, refund: PixRefund) -> RefundOut:
        return cls(
            return_id=refund.return_id,
            end_to_end_id=payment.end_to_end_id,
            amount=signed_amount(refund.amount),
            nature=refund.nature,
            reason=refund.reason.value,
            status=refund.status,
            requested_at=refund.requested_at,
            completed_at=refund.completed_at,
            failure_reason=refund.failure_reason.value if refund.failure_reason else None,
            description=refund.description,
        )


class PaymentOut(msgspec.Struct, kw_only=True):
    end_to_end_id: str
    status: PaymentStatus
    flow: PixFlow
    #: from the caller's point of view
    direction: Literal["sent", "received"]
    amount: AmountOut
    payer: PartyOut
    payee: PartyOut
    initiation: Initiation
    txid: str | None
    description: str | None
    created_at: datetime
    settled_at: datetime | None
    reject_reason: str | None
    refunded_amount: AmountOut
    refunds: list[RefundOut]
    #: its infraction report (MED) and precautionary block, if any
    med: MedOut | None = None

    @classmethod
    def of(cls, payment: PixPayment, owner_id: str) -> PaymentOut:
        return cls(
            end_to_end_id=payment.end_to_end_id,
            status=payment.status,
            flow=payment.flow,
            direction="sent" if payment.payer.owner_id == owner_id else "received",
            amount=signed_amount(payment.amount),
            payer=PartyOut.of(payment.payer),
            payee=PartyOut.of(payment.payee),
            initiation=payment.initiation,
            txid=payment.txid,
            description=payment.description,
            created_at=payment.created_at,
            settled_at=payment.settled_at,
            reject_reason=payment.reject_reason.value if payment.reject_reason else None,
            refunded_amount=signed_amount(payment.refunded_amount),
            refunds=[RefundOut.of(payment, r) for r in payment.refunds],
        )


class RefundIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    amount: PositiveAmountText
    #: MED natures are started by the bank, not by customers
    nature: Literal["ORIGINAL", "RETIRADA"] = "ORIGINAL"
    description: Description | None = None


# -- charges --------------------------------------------------------------------------------


class ChargePayerIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=140)]
    document: Annotated[str, msgspec.Meta(min_length=11, max_length=18)]


class ChargeIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    account_id: uuid.UUID
    key: KeyText
    amount: PositiveAmountText
    expires_in_seconds: Annotated[int, msgspec.Meta(ge=1, le=365 * 24 * 3600)] | None = None
    txid: TxIdText | None = None
    description: Description | None = None
    payer: ChargePayerIn | None = None


class ChargeOut(msgspec.Struct, kw_only=True):
    txid: str
    status: ChargeStatus
    account_id: uuid.UUID
    key: str
    amount: AmountOut
    location: str
    #: the dynamic BR Code ("Pix Copia e Cola")
    brcode: str
    brcode_static: str
    created_at: datetime
    expires_at: datetime
    description: str | None
    payer_name: str | None
    end_to_end_id: str | None
    concluded_at: datetime | None

    @classmethod
    def of(cls, view: ChargeResult) -> ChargeOut:
        charge = view.charge
        return cls(
            txid=charge.txid,
            status=charge.status,
            account_id=charge.account_id,
            key=charge.pix_key.value,
            amount=signed_amount(charge.amount),
            location=view.location_url,
            brcode=view.dynamic_brcode,
            brcode_static=view.static_brcode,
            created_at=charge.created_at,
            expires_at=charge.expires_at,
            description=charge.description,
            payer_name=charge.payer.name if charge.payer else None,
            end_to_end_id=charge.end_to_end_id,
            concluded_at=charge.concluded_at,
        )


# -- BR Codes and sandbox ------------------------------------------------------------------------


class BRCodeDecodeIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    br_code: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    # tolerant: what a payer reads (other banks' codes, pasted text), deviations
    # listed; strict: exactly what this bank issues, as a validator wants.
    mode: Literal["strict", "tolerant"] = "tolerant"


class BRCodeDeviationOut(msgspec.Struct, kw_only=True):
    code: str
    field: str
    message: str


class BRCodeOut(msgspec.Struct, kw_only=True):
    kind: Literal["static", "dynamic", "recurrence"]
    merchant_name: str
    merchant_city: str
    key: str | None
    location: str | None
    recurrence_location: str | None
    amount: AmountOut | None
    txid: str | None
    description: str | None
    single_use: bool
    postal_code: str | None
    deviations: list[BRCodeDeviationOut]

    @classmethod
    def of(cls, code: BRCodeReading) -> BRCodeOut:
        return cls(
            kind=code.kind,
            merchant_name=code.merchant_name,
            merchant_city=code.merchant_city,
            key=code.pix_key,
            location=code.location_url,
            recurrence_location=code.recurrence_url,
            amount=signed_amount(code.amount) if code.amount else None,
            txid=None if code.txid == "***" else code.txid,
            description=code.description,
            single_use=code.point_of_initiation == "12",
            postal_code=code.postal_code,
            deviations=[
                BRCodeDeviationOut(code=d.code, field=d.field, message=d.message)
                for d in code.deviations
            ],
        )


class SandboxIncomingIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    account_id: uuid.UUID
    amount: PositiveAmountText
    txid: Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z0-9]{1,35}$(?!\n)")] | None = None
    description: Description | None = None


class IncomingAcceptedOut(msgspec.Struct, kw_only=True):
    """An incoming payment taken for the settlement worker, not credited yet."""

    end_to_end_id: str
    status: Literal["ACCEPTED"] = "ACCEPTED"
    #: where the payment appears once credited (``GET`` it until ``SETTLED``)
    location: str

    @classmethod
    def of(cls, end_to_end_id: str) -> IncomingAcceptedOut:
        return cls(end_to_end_id=end_to_end_id, location=payment_location(end_to_end_id))


def payment_location(end_to_end_id: str) -> str:
    return f"/v1/pix/payments/{end_to_end_id}"
