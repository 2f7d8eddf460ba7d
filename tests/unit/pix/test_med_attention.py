"""``MedCase.attention_at`` and ``PrecautionaryBlock.attention_at``: from when a reader
would move a record on by itself (what the sweeper's stores index), for every status.

The instant must be the first at which the reader's own test is true, not a moment
before (the sweeper would read it for nothing) nor after (the money would wait)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from finbank_core.pix.med.model import (
    REQUEST_LEASE,
    BlockStatus,
    CaseStatus,
    FraudSituation,
    MedCase,
    MedReturn,
    MedSide,
    PrecautionaryBlock,
)
from finbank_core.pix.refunds import RefundStatus
from finbank_core.shared.money import Money

T = datetime(2026, 3, 2, 13, 0, 0, 999_999, tzinfo=UTC)
US = timedelta(microseconds=1)
CASE = MedCase(
    end_to_end_id="E9999999920260302130000000000001",
    report_id="r",
    side=MedSide.RECEIVER,
    situation=FraudSituation.SCAM,
    status=CaseStatus.OPEN,
    amount=Money(100_00),
    paid_at=T,
    opened_at=T,
    analysis_deadline=T + timedelta(days=7),
    payer_ispb="88888888",
    payee_ispb="99999999",
)

BLOCK = PrecautionaryBlock(
    end_to_end_id=CASE.end_to_end_id,
    account_id=uuid.UUID(int=1),
    owner_id="o",
    amount=Money(1),
    status=BlockStatus.ACTIVE,
    blocked_at=T,
    expires_at=T + timedelta(hours=72),
    hold_id=uuid.UUID(int=2),
    blocked_by="e",
)


def a_return(status: RefundStatus, requested: datetime, attempted: datetime | None) -> MedReturn:
    return MedReturn(
        return_id=f"D88888888202603021300{uuid.uuid4().int % 10**11:011d}",
        account_id=uuid.UUID(int=1),
        hold_id=uuid.uuid4(),
        amount=Money(1),
        status=status,
        requested_at=requested,
        attempted_at=attempted,
    )


def test_an_accepted_case_is_due_the_first_instant_it_lapses() -> None:
    deadline = T + timedelta(hours=72)
    case = msgspec.structs.replace(CASE, status=CaseStatus.AGREED, refund_deadline=deadline)
    due = case.attention_at()
    assert due == deadline + US
    assert case.refund_lapsed(due)
    assert not case.refund_lapsed(due - US)
    # the microsecond carries into the next second (13:00:00.999999 -> 13:00:01)
    assert (due.second, due.microsecond) == (1, 0)


@pytest.mark.parametrize("status", [CaseStatus.OPEN, CaseStatus.DISAGREED, CaseStatus.CLOSED])
def test_a_case_with_nothing_in_progress_is_never_due(status: CaseStatus) -> None:
    done = a_return(RefundStatus.DEVOLVIDO, T, T)
    case = msgspec.structs.replace(CASE, status=status, refund_deadline=T, returns=(done,))
    assert case.attention_at() is None


def test_an_accepted_case_without_a_deadline_is_not_due() -> None:
    assert msgspec.structs.replace(CASE, status=CaseStatus.AGREED).attention_at() is None


def test_a_lapsed_case_is_due_until_its_lapse_is_finished() -> None:
    lapsed = msgspec.structs.replace(CASE, status=CaseStatus.LAPSED, refund_deadline=T)
    assert lapsed.attention_at() == T + US
    assert msgspec.structs.replace(lapsed, lapse_finished=True).attention_at() is None


def test_returns_in_progress_are_due_from_their_last_taking_or_their_request() -> None:
    later_request = a_return(RefundStatus.EM_PROCESSAMENTO, T + timedelta(minutes=5), None)
    taken = a_return(RefundStatus.EM_PROCESSAMENTO, T, T + timedelta(minutes=9))
    failed = a_return(RefundStatus.NAO_REALIZADO, T - timedelta(days=1), None)
    case = msgspec.structs.replace(
        CASE, status=CaseStatus.REFUND_REQUESTED, returns=(failed, taken, later_request)
    )
    # the earliest of: the untaken one's request (T+5) and the taken one's taking (T+9)
    assert case.attention_at() == T + timedelta(minutes=5)
    only_taken = msgspec.structs.replace(case, returns=(taken,))
    assert only_taken.attention_at() == T + timedelta(minutes=9)  # not its request (T)


def test_an_accepted_case_with_a_request_under_way_is_due_when_its_refunds_may_go() -> None:
    # the request's mark: from REQUEST_LEASE on a reader removes the refunds it wrote
    # (drop_unrecorded_refunds: ``now >= requested_at + REQUEST_LEASE``)
    deadline = T + timedelta(hours=72)
    accepted = msgspec.structs.replace(CASE, status=CaseStatus.AGREED, refund_deadline=deadline)
    marked = msgspec.structs.replace(accepted, request_started_at=T)
    assert marked.attention_at() == T + REQUEST_LEASE
    # a mark later than the lapse: the lapse first (it removes them whatever their age)
    late = msgspec.structs.replace(accepted, request_started_at=deadline)
    assert late.attention_at() == deadline + US
    # recorded (or lapsed, or closed): the mark no longer makes it due
    for status in (CaseStatus.REFUND_REQUESTED, CaseStatus.CLOSED):
        assert msgspec.structs.replace(marked, status=status).attention_at() is None
    lapsed = msgspec.structs.replace(marked, status=CaseStatus.LAPSED, lapse_finished=True)
    assert lapsed.attention_at() is None


def test_a_return_in_progress_beside_a_lapse_deadline_takes_the_earlier() -> None:
    early = a_return(RefundStatus.EM_PROCESSAMENTO, T, None)
    case = msgspec.structs.replace(
        CASE,
        side=MedSide.PAYER,
        status=CaseStatus.AGREED,
        refund_deadline=T + timedelta(hours=1),
        returns=(early,),
    )
    assert case.attention_at() == T


def test_a_block_is_due_at_its_deadline_while_recorded_active() -> None:
    block = BLOCK
    due = block.attention_at()
    assert due == block.expires_at
    assert block.expired(due)
    assert not block.expired(due - US)
    for status in (BlockStatus.RELEASED, BlockStatus.KEPT_FOR_MED):
        assert msgspec.structs.replace(block, status=status).attention_at() is None


def test_a_reduction_whose_event_is_owed_is_due_at_once_whatever_the_status() -> None:
    block = msgspec.structs.replace(BLOCK, reduction_owed=True)
    assert block.attention_at() == T  # placed before: due now, not at its deadline
    released = msgspec.structs.replace(block, status=BlockStatus.RELEASED)
    assert released.attention_at() == T  # a release copied the owed event along
    assert msgspec.structs.replace(released, reduction_owed=False).attention_at() is None
