"""Events of key claims (outbox). Payloads carry ids, statuses and the key type, never the key."""

from __future__ import annotations

from typing import Any

from finbank_core.pix.claims.model import KeyClaim

KEY_CLAIM_OPENED = "pix.key_claim_opened"
KEY_CLAIM_WAITING_RESOLUTION = "pix.key_claim_waiting_resolution"
KEY_CLAIM_CONFIRMED = "pix.key_claim_confirmed"
KEY_CLAIM_CANCELLED = "pix.key_claim_cancelled"
KEY_CLAIM_COMPLETED = "pix.key_claim_completed"

EVENT_BY_STATUS = {
    "OPEN": KEY_CLAIM_OPENED,
    "WAITING_RESOLUTION": KEY_CLAIM_WAITING_RESOLUTION,
    "CONFIRMED": KEY_CLAIM_CONFIRMED,
    "CANCELLED": KEY_CLAIM_CANCELLED,
    "COMPLETED": KEY_CLAIM_COMPLETED,
}


def claim_payload(claim: KeyClaim) -> dict[str, Any]:
    return {
        "claim_id": str(claim.id),
        "claim_type": claim.claim_type.value,
        "status": claim.status.value,
        "key_type": claim.key.type.value,
        "claimer_ispb": claim.claimer.ispb,
        "donor_ispb": claim.donor.ispb,
        "claimer_account_id": str(claim.claimer.account_id) if claim.claimer.account_id else None,
        "donor_account_id": str(claim.donor.account_id) if claim.donor.account_id else None,
        "confirmed_by": claim.confirmed_by.value if claim.confirmed_by else None,
        "cancelled_by": claim.cancelled_by.value if claim.cancelled_by else None,
        "cancel_reason": claim.cancel_reason.value if claim.cancel_reason else None,
        "resolution_ends_at": claim.resolution_ends_at.isoformat(),
        "completion_ends_at": claim.completion_ends_at.isoformat(),
    }
