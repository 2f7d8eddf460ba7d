"""A MED case's hold ids: one per payment, report and account; a stored case keeps its own.

The report id comes from the bank that reported, so two payments can arrive under one
(its mistake, or a replay aimed at the wrong payment). Cases made now derive their holds
from the payment's EndToEndId too (``hold_ids`` 2); a case stored before the field
existed decodes as 1 and keeps deriving the ids it used, so a tracer walk interrupted
before an upgrade finds its holds again instead of holding twice.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec

from finbank_core.pix.med.model import (
    CaseStatus,
    FraudSituation,
    MedCase,
    MedSide,
    med_hold_id,
)
from finbank_core.shared.money import Money

ACCOUNT = uuid.UUID("0b7d7c1e-8f7a-4c61-9a55-1c2d3e4f5a6b")
WHEN = datetime(2026, 5, 1, 14, 59, tzinfo=UTC)


def case(end_to_end_id: str, *, hold_ids: int) -> MedCase:
    return MedCase(
        end_to_end_id=end_to_end_id,
        report_id="report-1",
        side=MedSide.RECEIVER,
        situation=FraudSituation.SCAM,
        status=CaseStatus.OPEN,
        amount=Money(90_00),
        paid_at=WHEN,
        opened_at=WHEN,
        analysis_deadline=WHEN,
        payer_ispb="12345678",
        payee_ispb="87654321",
        hold_ids=hold_ids,
    )


def test_two_payments_reported_under_one_id_hold_apart() -> None:
    first = case("E1234567820260501145900000000001", hold_ids=2)
    second = case("E1234567820260501145900000000002", hold_ids=2)
    assert first.hold_id_for(ACCOUNT) != second.hold_id_for(ACCOUNT)
    assert first.hold_id_for(ACCOUNT) == med_hold_id("report-1", ACCOUNT, first.end_to_end_id)
    # and one case on two accounts, as before
    assert first.hold_id_for(ACCOUNT) != first.hold_id_for(uuid.uuid4())


def test_a_case_stored_before_the_field_keeps_the_ids_it_derived() -> None:
    made_now = case("E1234567820260501145900000000001", hold_ids=2)
    stored = msgspec.json.encode(made_now)
    before = msgspec.json.decode(stored.replace(b'"hold_ids":2,', b""), type=MedCase)
    assert before.hold_ids == 1
    assert before.hold_id_for(ACCOUNT) == med_hold_id("report-1", ACCOUNT)
    assert msgspec.json.decode(stored, type=MedCase).hold_id_for(ACCOUNT) == (
        made_now.hold_id_for(ACCOUNT)
    )
