"""Events of Pix Automático, published through the outbox for every state change.

Payloads carry ids, statuses, amounts and dates; never a document or a key.
Each event's id is derived from what it is about (``event_id``), so a use
case that finds a change already recorded (a replay after a crash between
the write and the publish) publishes it again under the same id and
consumers drop the copy.
"""

from __future__ import annotations

import uuid
from typing import Any

from finbank_core.pix.automatic.model import Recurrence, RecurringCharge
from finbank_core.shared.ids import uuid5_of

RECURRENCE_CREATED = "pix.automatic.recurrence_created"
RECURRENCE_REQUESTED = "pix.automatic.recurrence_requested"
RECURRENCE_APPROVED = "pix.automatic.recurrence_approved"
RECURRENCE_REJECTED = "pix.automatic.recurrence_rejected"
RECURRENCE_CANCELLED = "pix.automatic.recurrence_cancelled"
RECURRENCE_EXPIRED = "pix.automatic.recurrence_expired"
CHARGE_SCHEDULED = "pix.automatic.charge_scheduled"
CHARGE_REJECTED = "pix.automatic.charge_rejected"
CHARGE_CANCELLED = "pix.automatic.charge_cancelled"
DEBIT_FAILED = "pix.automatic.debit_failed"
CHARGE_CONCLUDED = "pix.automatic.charge_concluded"
CHARGE_EXPIRED = "pix.automatic.charge_expired"

_NAMESPACE = uuid.UUID("5b0c61a4-2f0e-5d8e-a1f4-7e2d9c3b8a61")
#: ``uuid.uuid5(_NAMESPACE, name)``, bit for bit
_event_id = uuid5_of(_NAMESPACE)

_BY_RECURRENCE_STATUS = {
    "APROVADA": RECURRENCE_APPROVED,
    "REJEITADA": RECURRENCE_REJECTED,
    "CANCELADA": RECURRENCE_CANCELLED,
    "EXPIRADA": RECURRENCE_EXPIRED,
}
_BY_CHARGE_STATUS = {
    "ATIVA": CHARGE_SCHEDULED,
    "REJEITADA": CHARGE_REJECTED,
    "CANCELADA": CHARGE_CANCELLED,
    "CONCLUIDA": CHARGE_CONCLUDED,
    "EXPIRADA": CHARGE_EXPIRED,
}


def event_id(type: str, subject: str) -> uuid.UUID:
    """The id of the one ``type`` event ``subject`` (an id, ``txid:attempt``...) ever has."""
    return _event_id(f"{type}:{subject}")


def recurrence_event(recurrence: Recurrence) -> str | None:
    """The event type of a recurrence's current status (None for ``CRIADA``)."""
    return _BY_RECURRENCE_STATUS.get(recurrence.status.value)


def charge_event(charge: RecurringCharge) -> str | None:
    """The event type of a charge's current status."""
    return _BY_CHARGE_STATUS.get(charge.status.value)


def recurrence_payload(recurrence: Recurrence) -> dict[str, Any]:
    auth = recurrence.authorisation
    return {
        "recurrence_id": recurrence.recurrence_id,
        "status": recurrence.status.value,
        "journey": recurrence.journey.value,
        "periodicity": recurrence.periodicity.value,
        "retry_policy": recurrence.retry_policy.value,
        "receiver_account_id": str(recurrence.receiver_account_id),
        "payer_account_id": str(auth.payer_account_id) if auth else None,
        "fixed_amount_cents": recurrence.fixed_amount.cents if recurrence.fixed_amount else None,
        "max_amount_cents": auth.max_amount.cents if auth and auth.max_amount else None,
        "ended_by": recurrence.ended_by.value if recurrence.ended_by else None,
        "reason": recurrence.end_reason,
    }


def charge_payload(charge: RecurringCharge, **extra: Any) -> dict[str, Any]:
    settled = charge.settled_attempt
    return {
        "txid": charge.txid,
        "recurrence_id": charge.recurrence_id,
        "status": charge.status.value,
        "amount_cents": charge.amount.cents,
        "due_date": charge.due_date.isoformat(),
        "attempts": len(charge.attempts),
        "end_to_end_id": settled.end_to_end_id if settled else None,
        "reason": charge.reason,
        **extra,
    }


__all__ = [
    "CHARGE_CANCELLED",
    "CHARGE_CONCLUDED",
    "CHARGE_EXPIRED",
    "CHARGE_REJECTED",
    "CHARGE_SCHEDULED",
    "DEBIT_FAILED",
    "RECURRENCE_APPROVED",
    "RECURRENCE_CANCELLED",
    "RECURRENCE_CREATED",
    "RECURRENCE_EXPIRED",
    "RECURRENCE_REJECTED",
    "RECURRENCE_REQUESTED",
    "charge_event",
    "charge_payload",
    "event_id",
    "recurrence_event",
    "recurrence_payload",
]
