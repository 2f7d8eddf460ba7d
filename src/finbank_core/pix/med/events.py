"""Events of MED and precautionary blocks (``pix.med.*``), published on the outbox.

Every step's event has an id derived from what it is about
(:func:`~finbank_core.pix.events.outcome_event_id`), so a step repeated after
a crash announces itself again under the same id and consumers drop the
copy. Payloads carry ids, amounts, states and deadlines; never documents,
keys or the free text a customer typed.
"""

from __future__ import annotations

from typing import Any

from finbank_core.pix.med.model import MedCase, PrecautionaryBlock

BLOCK_PLACED = "pix.med.block_placed"
BLOCK_RELEASED = "pix.med.block_released"
BLOCK_KEPT_FOR_MED = "pix.med.block_kept_for_med"
#: the block holds less: its case holds the rest of the payment on other accounts
BLOCK_REDUCED = "pix.med.block_reduced"
REPORT_OPENED = "pix.med.report_opened"
REPORT_RECEIVED = "pix.med.report_received"
REPORT_ANALYSED = "pix.med.report_analysed"
FUNDS_BLOCKED = "pix.med.funds_blocked"
REFUND_REQUESTED = "pix.med.refund_requested"
RETURN_COMPLETED = "pix.med.return_completed"
RETURN_FAILED = "pix.med.return_failed"
CASE_LAPSED = "pix.med.case_lapsed"
#: we are the payer's bank: a return (pacs.004) credited our customer
RETURN_RECEIVED = "pix.med.return_received"

ALL = (
    BLOCK_PLACED,
    BLOCK_RELEASED,
    BLOCK_KEPT_FOR_MED,
    BLOCK_REDUCED,
    REPORT_OPENED,
    REPORT_RECEIVED,
    REPORT_ANALYSED,
    FUNDS_BLOCKED,
    REFUND_REQUESTED,
    RETURN_COMPLETED,
    RETURN_FAILED,
    CASE_LAPSED,
    RETURN_RECEIVED,
)


def block_payload(block: PrecautionaryBlock) -> dict[str, Any]:
    """What the customer's notification needs: whose account, how much, until when."""
    return {
        "end_to_end_id": block.end_to_end_id,
        "account_id": str(block.account_id),
        "owner_id": block.owner_id,
        "amount_cents": block.amount.cents,
        "status": block.status.value,
        "expires_at": block.expires_at.isoformat(),
        "resolution": block.resolution,
    }


def case_payload(case: MedCase, **extra: Any) -> dict[str, Any]:
    return {
        "end_to_end_id": case.end_to_end_id,
        "report_id": case.report_id,
        "side": case.side.value,
        "situation": case.situation.value,
        "status": case.status.value,
        "amount_cents": case.amount.cents,
        "blocked_cents": case.blocked_amount.cents,
        "returned_cents": case.returned_amount.cents,
        "analysis_deadline": case.analysis_deadline.isoformat(),
        "refund_deadline": case.refund_deadline.isoformat() if case.refund_deadline else None,
        "blocks": [
            {"account_id": str(b.account_id), "amount_cents": b.amount.cents, "depth": b.depth}
            for b in case.blocks
        ],
        **extra,
    }
