"""Events of the accounts context (type names and payload builders)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from finbank_core.shared.events import EventEnvelope

ACCOUNT_OPENED = "ledger.account_opened"
DEPOSIT_MADE = "ledger.deposit_made"
WITHDRAWAL_MADE = "ledger.withdrawal_made"
INTERNAL_TRANSFER_MADE = "ledger.internal_transfer_made"


def make_event(
    *,
    event_id: uuid.UUID,
    type: str,
    occurred_at: datetime,
    aggregate_id: uuid.UUID | str,
    payload: dict[str, Any],
    correlation_id: str | None = None,
    version: int = 1,
) -> EventEnvelope:
    return EventEnvelope(
        event_id=event_id,
        type=type,
        version=version,
        occurred_at=occurred_at,
        aggregate_id=str(aggregate_id),
        correlation_id=correlation_id,
        payload=payload,
    )
