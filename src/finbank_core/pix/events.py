"""Events of the PIX context.

Payloads carry ids, amounts and states, and what a consumer needs to apply
them (``pix.incoming_accepted`` names the payer and a masked document);
never PIX keys or full documents.
"""

from __future__ import annotations

import uuid
from typing import Any

from finbank_core.pix.payments import PaymentStatus, PixFlow, PixPayment
from finbank_core.shared.ids import uuid5_of

KEY_REGISTERED = "pix.key_registered"
KEY_DELETED = "pix.key_deleted"
PAYMENT_REQUESTED = "pix.payment_requested"
PAYMENT_SETTLED = "pix.payment_settled"
PAYMENT_REJECTED = "pix.payment_rejected"
PAYMENT_RECEIVED = "pix.payment_received"
#: an incoming payment we answered the network for; the credit follows (worker)
INCOMING_ACCEPTED = "pix.incoming_accepted"
REFUND_REQUESTED = "pix.refund_requested"
REFUND_COMPLETED = "pix.refund_completed"
REFUND_FAILED = "pix.refund_failed"
CHARGE_CREATED = "pix.charge_created"
CHARGE_CONCLUDED = "pix.charge_concluded"


#: namespace of the name-based (uuid5) ids of outcome events
_OUTCOME_NAMESPACE = uuid.UUID("0d4f6a52-8b1e-5c3a-9e57-6f1c2b7d9a40")
#: ``uuid.uuid5(_OUTCOME_NAMESPACE, name)``, bit for bit
_outcome_id = uuid5_of(_OUTCOME_NAMESPACE)


def outcome_event_id(type: str, subject: str) -> uuid.UUID:
    """The id of the one ``type`` event a payment or refund (``subject``) ever has.

    An outcome (settled, rejected, received, refund completed or failed)
    happens once, so its event gets an id derived from what it is about: a
    use case that finds the outcome already recorded (a replay after a crash
    between recording it and publishing it) publishes the event again under
    the same id, which consumers drop as a duplicate if it did go out the
    first time. So the event can be late, never lost, never doubled.
    """
    return _outcome_id(f"{type}:{subject}")


def payment_outcomes(payment: PixPayment) -> tuple[str, ...]:
    """The outcome events a payment in its current (final) status has; none while pending."""
    if payment.status is PaymentStatus.SETTLED:
        if payment.flow is PixFlow.INCOMING:
            return (PAYMENT_RECEIVED,)
        if payment.flow is PixFlow.ON_US:
            return (PAYMENT_SETTLED, PAYMENT_RECEIVED)
        return (PAYMENT_SETTLED,)
    if payment.status is PaymentStatus.REJECTED:
        return (PAYMENT_REJECTED,)
    return ()


def payment_payload(payment: PixPayment, **extra: Any) -> dict[str, Any]:
    return {
        "end_to_end_id": payment.end_to_end_id,
        "flow": payment.flow.value,
        "status": payment.status.value,
        "amount_cents": payment.amount.cents,
        "payer_ispb": payment.payer.ispb,
        "payee_ispb": payment.payee.ispb,
        "payer_account_id": str(payment.payer.account_id) if payment.payer.account_id else None,
        "payee_account_id": str(payment.payee.account_id) if payment.payee.account_id else None,
        "reject_reason": payment.reject_reason.value if payment.reject_reason else None,
        **extra,
    }
