"""MED steps interrupted half-way, on every backend (memory, PostgreSQL, DynamoDB).

* A step whose event could not be published after its write (a failing
  publisher stands for a crash between the two) is announced by its replay:
  exactly one event per id, never none.
* A refund request that stopped after writing the payment's refunds and
  before recording the case leaves no refund "in progress" for ever: the
  first touch of the case ``REQUEST_LEASE`` later removes them, and a new
  request then returns the money as if nothing had happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest

from finbank_core.pix.med import events as med_events
from finbank_core.pix.med.model import REQUEST_LEASE, CaseStatus, Decision, FraudSituation, MedCase
from finbank_core.pix.med.ports import MedRepository
from finbank_core.pix.med.use_cases import (
    AnalyseInfractionReportCommand,
    ExecuteMedReturnsCommand,
    MedViewQuery,
    PlacePrecautionaryBlockCommand,
    ReceiveInfractionReportCommand,
    RequestMedRefundCommand,
)
from finbank_core.pix.refunds import RefundStatus
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.events import EventEnvelope
from finbank_core.shared.money import Money
from tests.integration.dynamo_support import serial_moto_endpoint
from tests.med_support import PEER_ISPB, T0, MedWorld, med_world

__all__ = ["med_world", "serial_moto_endpoint"]  # fixtures


def fail_once(world: MedWorld, monkeypatch: pytest.MonkeyPatch, *types: str) -> None:
    """The next publication of each of ``types`` is refused (after the step's write)."""
    publisher = world.publisher
    original = publisher.publish
    failing = set(types)

    async def publish(events: Sequence[EventEnvelope]) -> None:
        hit = {e.type for e in events} & failing
        if hit:
            failing.difference_update(hit)
            raise ServiceUnavailable("the event bus did not take it")
        await original(events)

    monkeypatch.setattr(publisher, "publish", publish)


async def accepted_case(world: MedWorld, cents: int = 80_00) -> str:
    mule = await world.open_account("mule")
    payment = await world.incoming(mule, cents)
    e2e = payment.end_to_end_id
    await world.receive_report(
        ReceiveInfractionReportCommand(
            end_to_end_id=e2e,
            report_id=f"dict-{e2e}",
            situation=FraudSituation.SCAM,
            reporter_ispb=PEER_ISPB,
        )
    )
    await world.analyse(
        AnalyseInfractionReportCommand(
            end_to_end_id=e2e, decision=Decision.AGREED, analyst_id="analyst"
        )
    )
    return e2e


# -- events lost between a step's write and its publication ------------------------------------


async def test_a_lost_report_event_is_published_by_the_reports_replay(
    med_world: MedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 10_00)
    e2e = payment.end_to_end_id
    command = ReceiveInfractionReportCommand(
        end_to_end_id=e2e,
        report_id=f"dict-{e2e}",
        situation=FraudSituation.SCAM,
        reporter_ispb=PEER_ISPB,
    )
    fail_once(w, monkeypatch, med_events.REPORT_RECEIVED)
    with pytest.raises(ServiceUnavailable):
        await w.receive_report(command)
    assert (await w.repository.get_case(e2e)) is not None  # written, its event lost
    assert w.events(med_events.REPORT_RECEIVED) == []
    again = await w.receive_report(command)  # the directory delivers it again
    assert again.replayed
    assert w.events(med_events.REPORT_RECEIVED) == [e2e]
    await w.receive_report(command)
    assert w.events(med_events.REPORT_RECEIVED) == [e2e]  # one id, however often replayed


async def test_a_lost_analysis_event_is_published_by_the_analysis_replay(
    med_world: MedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 10_00)
    e2e = payment.end_to_end_id
    await w.receive_report(
        ReceiveInfractionReportCommand(
            end_to_end_id=e2e,
            report_id=f"dict-{e2e}",
            situation=FraudSituation.SCAM,
            reporter_ispb=PEER_ISPB,
        )
    )
    command = AnalyseInfractionReportCommand(
        end_to_end_id=e2e, decision=Decision.AGREED, analyst_id="analyst"
    )
    fail_once(w, monkeypatch, med_events.REPORT_ANALYSED)
    with pytest.raises(ServiceUnavailable):
        await w.analyse(command)
    assert w.events(med_events.REPORT_ANALYSED) == []
    replay = await w.analyse(command)
    assert replay.replayed
    assert replay.case.blocks_applied  # the holds the crash skipped are placed by the replay
    assert await w.available(mule) == 0
    assert w.events(med_events.REPORT_ANALYSED) == [e2e]
    assert w.events(med_events.FUNDS_BLOCKED) == [e2e]


async def test_a_lost_refund_request_event_is_published_and_the_returns_made_by_the_replay(
    med_world: MedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = med_world
    e2e = await accepted_case(w)
    command = RequestMedRefundCommand(end_to_end_id=e2e, requested_by=PEER_ISPB)
    fail_once(w, monkeypatch, med_events.REFUND_REQUESTED)
    with pytest.raises(ServiceUnavailable):
        await w.request_refund(command)
    stored = await w.repository.get_case(e2e)
    assert stored is not None
    assert stored.status is CaseStatus.REFUND_REQUESTED
    assert w.events(med_events.REFUND_REQUESTED) == []
    replay = await w.request_refund(command)
    assert replay.replayed
    assert replay.case.status is CaseStatus.CLOSED
    assert w.events(med_events.REFUND_REQUESTED) == [e2e]
    assert len(w.events(med_events.RETURN_COMPLETED)) == 1
    assert sum(o.amount.cents for o in w.network.returns) == 80_00


async def test_a_lost_return_event_is_published_by_the_next_execution(
    med_world: MedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = med_world
    e2e = await accepted_case(w)
    fail_once(w, monkeypatch, med_events.RETURN_COMPLETED)
    # the request's inline execution records the return, then the bus refuses its event
    # (the request answers as for a network outage: the returns are ExecuteMedReturns' now)
    await w.request_refund(RequestMedRefundCommand(end_to_end_id=e2e, requested_by=PEER_ISPB))
    stored = await w.repository.get_case(e2e)
    assert stored is not None
    assert stored.status is CaseStatus.CLOSED  # returned and recorded; only its event was lost
    assert w.events(med_events.RETURN_COMPLETED) == []
    await w.execute_returns(ExecuteMedReturnsCommand(end_to_end_id=e2e))
    assert w.events(med_events.RETURN_COMPLETED) == [e2e]
    await w.execute_returns(ExecuteMedReturnsCommand(end_to_end_id=e2e))
    assert w.events(med_events.RETURN_COMPLETED) == [e2e]
    assert len(w.network.returns) == 1  # the money went back once


# -- a refund request that stopped between the payment and the case ----------------------------


class StopsBeforeTheRecord:
    """The case store, whose write of a refund request's plan fails as a crash there would:
    after the request wrote the payment's refunds, before the case records them."""

    def __init__(self, target: MedRepository) -> None:
        self.target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    async def update_case(self, case: MedCase, expected_version: int) -> MedCase:
        if case.refund_requested_at is not None:
            raise ServiceUnavailable("the request stopped before recording its returns")
        return await self.target.update_case(case, expected_version)


async def crashed_request(w: MedWorld, e2e: str, cents: int) -> None:
    """What a request that stopped after writing the payment's refunds left behind: the
    request itself, run until the write that records its plan on the case."""
    w.deps.repository = cast(MedRepository, StopsBeforeTheRecord(w.repository))
    try:
        with pytest.raises(ServiceUnavailable):
            await w.request_refund(
                RequestMedRefundCommand(
                    end_to_end_id=e2e, amount=Money(cents), requested_by=PEER_ISPB
                )
            )
    finally:
        w.deps.repository = w.repository
    stored = await w.repository.get_case(e2e)
    assert stored is not None
    assert stored.status is CaseStatus.AGREED
    refunds = (await w.payments.get(e2e)).refunds  # written, not recorded on the case
    assert refunds
    assert {r.status for r in refunds} == {RefundStatus.EM_PROCESSAMENTO}
    # marked due before it wrote them (by this request, or by an earlier one's mark)
    assert stored.request_started_at is not None
    assert stored.request_started_at <= min(r.requested_at for r in refunds) == w.clock.now()


async def test_refunds_a_stopped_request_left_in_progress_are_removed_by_the_next_touch(
    med_world: MedWorld,
) -> None:
    w = med_world
    e2e = await accepted_case(w, 80_00)
    await crashed_request(w, e2e, 80_00)
    left = await w.payments.get(e2e)
    assert [r.status for r in left.refunds] == [RefundStatus.EM_PROCESSAMENTO]
    # within the lease the request may still be under way: a touch leaves them
    w.clock.advance(seconds=REQUEST_LEASE.total_seconds() - 1)
    await w.view(MedViewQuery(end_to_end_id=e2e))
    assert len((await w.payments.get(e2e)).refunds) == 1
    w.clock.advance(seconds=1)  # exactly at the lease
    view = await w.view(MedViewQuery(end_to_end_id=e2e))
    assert view.case is not None
    assert view.case.status is CaseStatus.AGREED
    assert (await w.payments.get(e2e)).refunds == ()  # nothing "in progress" any more
    # the payer's bank asks again: the whole amount goes back, once
    done = await w.request_refund(
        RequestMedRefundCommand(end_to_end_id=e2e, requested_by=PEER_ISPB)
    )
    assert done.case.status is CaseStatus.CLOSED
    assert done.case.returned_amount == Money(80_00)
    recorded = await w.payments.get(e2e)
    assert [r.status for r in recorded.refunds] == [RefundStatus.DEVOLVIDO]
    assert recorded.refunded_amount == Money(80_00)


async def test_a_request_retried_in_time_takes_over_what_the_stopped_one_wrote(
    med_world: MedWorld,
) -> None:
    w = med_world
    e2e = await accepted_case(w, 50_00)
    await crashed_request(w, e2e, 50_00)
    done = await w.request_refund(
        RequestMedRefundCommand(end_to_end_id=e2e, requested_by=PEER_ISPB)
    )
    assert done.case.status is CaseStatus.CLOSED
    recorded = await w.payments.get(e2e)
    assert len(recorded.refunds) == 1  # the same rtrId, brought up to date, not a second one
    assert recorded.refunded_amount == Money(50_00)


async def test_a_case_that_lapses_after_a_stopped_request_leaves_no_refund_in_progress(
    med_world: MedWorld,
) -> None:
    w = med_world
    e2e = await accepted_case(w, 30_00)
    await crashed_request(w, e2e, 30_00)
    case = await w.repository.get_case(e2e)
    assert case is not None
    assert case.refund_deadline is not None
    w.clock.set(case.refund_deadline)  # exactly at the deadline: still accepted, touched
    seen = await w.view(MedViewQuery(end_to_end_id=e2e))
    assert seen.case is not None
    assert seen.case.status is CaseStatus.AGREED
    assert (await w.payments.get(e2e)).refunds == ()  # the lease is long over
    w.clock.set(T0 + (case.refund_deadline - T0) * 2)
    lapsed = await w.view(MedViewQuery(end_to_end_id=e2e))
    assert lapsed.case is not None
    assert lapsed.case.status is CaseStatus.LAPSED
    assert (await w.payments.get(e2e)).refunds == ()


async def test_a_lost_block_event_is_published_by_the_blocks_replay(
    med_world: MedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 20_00)
    e2e = payment.end_to_end_id
    command = PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by="fraud-engine")
    fail_once(w, monkeypatch, med_events.BLOCK_PLACED)
    with pytest.raises(ServiceUnavailable):
        await w.place_block(command)
    assert await w.available(mule) == 0  # held and recorded; its event lost
    assert w.events(med_events.BLOCK_PLACED) == []
    replay = await w.place_block(command)
    assert replay.replayed
    assert w.events(med_events.BLOCK_PLACED) == [e2e]
