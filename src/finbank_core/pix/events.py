"""Events of the PIX context.

Payloads carry ids, amounts and states, and what a consumer needs to apply
them (``pix.incoming_accepted`` names the payer and a masked document);
never PIX keys or full documents.
"""

from __future__ import annotations

from typing import Any

from finbank_core.pix.payments import PixPayment

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
