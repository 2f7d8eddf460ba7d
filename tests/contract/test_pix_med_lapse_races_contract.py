"""A refund request against the lapse of its case, on every backend (memory,
PostgreSQL, DynamoDB): which call notices the deadline first.

An accepted case lapses when no refund was requested in time; the first call
that reads it after the deadline records the lapse and its holds are voided.
A request whose clock was still before the deadline can be recorded while a
reader, whose clock has passed it, is lapsing the same case. Whatever the
order, the case and the ledger must agree:

* the request recorded first: the case returns the money, and the holds are
  posted, not voided under it (the lapse, refused by the case's version, moves
  no money);
* the lapse recorded first: the request is refused with ``MedDeadlinePassed``,
  the holds are voided, and the money is the customers' again;
* a lapse recorded and then interrupted before its voids: the next reader
  voids them;
* a lapse recorded while the acceptance's tracer was still placing the holds:
  the tracer voids what it placed instead of recording it on the lapsed case.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, cast

import pytest

from finbank_core.accounts.ledger import PendingStatus, TransferFlags
from finbank_core.pix.med import events as med_events
from finbank_core.pix.med.errors import MedDeadlinePassed
from finbank_core.pix.med.model import CaseStatus, HoldStatus, MedCase
from finbank_core.pix.med.ports import MedRepository
from finbank_core.pix.med.use_cases.view import MedViewQuery
from finbank_core.pix.ports import PixPaymentRepository
from finbank_core.pix.refunds import RefundStatus
from finbank_core.shared.money import Money
from tests.contract.test_pix_med_contract import analyse
from tests.contract.test_pix_med_refund_request_races_contract import (
    GATE_TIMEOUT,
    PAID,
    HeldPayments,
    Scene,
    accepted_case,
    reported_case,
)
from tests.integration.dynamo_support import serial_moto_endpoint
from tests.med_support import PEER_ISPB, MedWorld, med_world

__all__ = ["med_world", "serial_moto_endpoint"]  # fixtures

ALL = Money(PAID)  # both blocks (40,00 and 60,00) get their whole hold


class HeldCases:
    """The case store, with the next ``update_case`` held at a gate before it writes, or
    failing right after it wrote (a crash between the record and what follows it)."""

    def __init__(self, target: MedRepository) -> None:
        self.target = target
        self._gate: tuple[asyncio.Event, asyncio.Event] | None = None
        self._let_through = 0
        self._crash_after_next = False

    def hold_next_update(self, *, after: int = 0) -> tuple[asyncio.Event, asyncio.Event]:
        """Hold the update that comes ``after`` others (let through) from now."""
        reached, release = asyncio.Event(), asyncio.Event()
        self._gate = (reached, release)
        self._let_through = after
        return reached, release

    def crash_after_next_update(self) -> None:
        self._crash_after_next = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    async def update_case(self, case: MedCase, expected_version: int) -> MedCase:
        gate = self._gate
        if gate is not None and self._let_through:
            self._let_through -= 1
            gate = None
        elif gate is not None:
            self._gate = None
        if gate is not None:
            reached, release = gate
            reached.set()
            await release.wait()
        written = await self.target.update_case(case, expected_version)
        if self._crash_after_next:
            self._crash_after_next = False
            raise Crash("stopped after the case was written")
        return written


class Crash(Exception):
    pass


async def just_before_the_deadline(scene: Scene) -> MedCase:
    w = scene.w
    case = await w.repository.get_case(scene.e2e)
    assert case is not None
    assert case.refund_deadline is not None
    w.clock.set(case.refund_deadline - timedelta(seconds=1))
    return case


async def hold_statuses(w: MedWorld, case: MedCase) -> list[PendingStatus | None]:
    return [await w.deps.ledger.status(b.hold_id) for b in case.blocks]


def view(scene: Scene) -> MedViewQuery:
    return MedViewQuery(end_to_end_id=scene.e2e)


async def assert_lapsed_and_free(scene: Scene) -> None:
    w = scene.w
    case = await w.repository.get_case(scene.e2e)
    assert case is not None
    assert case.status is CaseStatus.LAPSED
    assert case.returns == ()
    assert {b.status for b in case.blocks} == {HoldStatus.RELEASED}
    assert await hold_statuses(w, case) == [PendingStatus.VOIDED] * len(case.blocks)
    # the held 100,00 is the customers' again, and nothing left their accounts
    assert await scene.posted() == scene.posted_before
    assert await scene.available() == scene.posted_before
    peer = w.network.institutions[PEER_ISPB].accounts[0]
    assert peer.balance_cents == -PAID
    assert len(w.events(med_events.CASE_LAPSED)) == 1


@pytest.mark.asyncio
async def test_a_request_recorded_in_time_keeps_its_holds_from_a_reader_that_lapses_the_case(
    med_world: MedWorld,
) -> None:
    w = med_world
    scene = await accepted_case(w)
    await just_before_the_deadline(scene)
    payments = HeldPayments(w.deps.payments)
    cases = HeldCases(w.deps.repository)
    w.deps.payments = cast(PixPaymentRepository, payments)
    w.deps.repository = cast(MedRepository, cases)
    try:
        # the request reads the case and plans its returns in time ...
        request_reached, request_go = payments.hold_next_update("after_the_winner")
        requesting = asyncio.ensure_future(w.request_refund(scene.request(ALL)))
        await asyncio.wait_for(request_reached.wait(), GATE_TIMEOUT)
        # ... the deadline passes, and a reader lapses the case; held before its write
        w.clock.advance(seconds=2)
        lapse_reached, lapse_go = cases.hold_next_update()
        reading = asyncio.ensure_future(w.view(view(scene)))
        await asyncio.wait_for(lapse_reached.wait(), GATE_TIMEOUT)
        # the request is recorded first and returns the money
        request_go.set()
        result = await asyncio.wait_for(requesting, GATE_TIMEOUT)
        lapse_go.set()
        seen = await asyncio.wait_for(reading, GATE_TIMEOUT)
    finally:
        w.deps.payments = payments._target
        w.deps.repository = cases.target
    case = await w.repository.get_case(scene.e2e)
    assert case is not None
    assert result.case.status is CaseStatus.CLOSED
    assert case.status is CaseStatus.CLOSED
    # the money the case promised went back: every return done, every hold posted
    assert {r.status for r in case.returns} == {RefundStatus.DEVOLVIDO}
    assert case.returned_amount == ALL
    assert await hold_statuses(w, case) == [PendingStatus.POSTED] * len(case.blocks)
    assert await scene.posted() == scene.posted_before - PAID
    peer = w.network.institutions[PEER_ISPB].accounts[0]
    assert peer.balance_cents == 0
    # the reader that noticed the deadline lapsed nothing
    assert seen.case is not None
    assert seen.case.status is not CaseStatus.LAPSED
    assert w.events(med_events.CASE_LAPSED) == []


@pytest.mark.asyncio
async def test_a_lapse_recorded_first_refuses_the_request_and_frees_the_money(
    med_world: MedWorld,
) -> None:
    w = med_world
    scene = await accepted_case(w)
    await just_before_the_deadline(scene)
    payments = HeldPayments(w.deps.payments)
    w.deps.payments = cast(PixPaymentRepository, payments)
    try:
        request_reached, request_go = payments.hold_next_update("after_the_winner")
        requesting = asyncio.ensure_future(w.request_refund(scene.request(ALL)))
        await asyncio.wait_for(request_reached.wait(), GATE_TIMEOUT)
        w.clock.advance(seconds=2)
        seen = await w.view(view(scene))  # the lapse is recorded while the request waits
        assert seen.case is not None
        assert seen.case.status is CaseStatus.LAPSED
        request_go.set()
        with pytest.raises(MedDeadlinePassed):
            await asyncio.wait_for(requesting, GATE_TIMEOUT)
    finally:
        w.deps.payments = payments._target
    await assert_lapsed_and_free(scene)
    # the returns the request wrote into the payment before it lost are gone at once,
    # not REQUEST_LEASE later: they took room from the customer's own refunds
    payment = await w.deps.payments.get(scene.e2e)
    assert [r for r in payment.refunds if r.status is RefundStatus.EM_PROCESSAMENTO] == []


@pytest.mark.asyncio
async def test_a_lapse_interrupted_after_its_record_is_finished_by_the_next_reader(
    med_world: MedWorld,
) -> None:
    w = med_world
    scene = await accepted_case(w)
    await just_before_the_deadline(scene)
    w.clock.advance(seconds=2)
    cases = HeldCases(w.deps.repository)
    w.deps.repository = cast(MedRepository, cases)
    try:
        cases.crash_after_next_update()
        with pytest.raises(Crash):
            await w.view(view(scene))
    finally:
        w.deps.repository = cases.target
    case = await w.repository.get_case(scene.e2e)
    assert case is not None
    assert case.status is CaseStatus.LAPSED
    # the record is there and the money is still held: the voids come after it
    assert await hold_statuses(w, case) == [PendingStatus.PENDING] * len(case.blocks)
    assert await scene.available() == scene.posted_before - PAID
    seen = await w.view(view(scene))
    assert seen.case is not None
    assert seen.case.status is CaseStatus.LAPSED
    assert await hold_statuses(w, case) == [PendingStatus.VOIDED] * len(case.blocks)
    assert await scene.available() == scene.posted_before
    # and a later read of the lapsed case moves nothing more
    await w.view(view(scene))
    assert await scene.available() == scene.posted_before


@pytest.mark.asyncio
async def test_a_tracer_that_finishes_after_the_lapse_leaves_nothing_held(
    med_world: MedWorld,
) -> None:
    w = med_world
    mule, second, e2e = await reported_case(w)
    posted = await w.posted(mule) + await w.posted(second)
    cases = HeldCases(w.deps.repository)
    w.deps.repository = cast(MedRepository, cases)
    try:
        # the acceptance is recorded (let through); its tracer places the holds and is
        # held before it records them
        reached, go = cases.hold_next_update(after=1)
        analysing = asyncio.ensure_future(w.analyse(analyse(e2e)))
        await asyncio.wait_for(reached.wait(), GATE_TIMEOUT)
        case = await w.repository.get_case(e2e)
        assert case is not None
        assert case.status is CaseStatus.AGREED
        assert case.refund_deadline is not None
        holds = [case.hold_id_for(mule.id), case.hold_id_for(second.id)]
        assert [await w.deps.ledger.status(h) for h in holds] == [PendingStatus.PENDING] * 2
        # the request deadline passes and a reader lapses the case first
        w.clock.set(case.refund_deadline + timedelta(seconds=1))
        seen = await w.view(MedViewQuery(end_to_end_id=e2e))
        assert seen.case is not None
        assert seen.case.status is CaseStatus.LAPSED
        go.set()
        result = await asyncio.wait_for(analysing, GATE_TIMEOUT)
    finally:
        w.deps.repository = cases.target
    final = await w.repository.get_case(e2e)
    assert final is not None
    assert final.status is CaseStatus.LAPSED
    assert result.case.status is CaseStatus.LAPSED
    assert all(b.status is not HoldStatus.HELD for b in final.blocks)
    # nothing the tracer placed is still held: the money is the customers' again
    assert [await w.deps.ledger.status(h) for h in holds] == [PendingStatus.VOIDED] * 2
    assert await w.available(mule) + await w.available(second) == posted
    assert await w.posted(mule) + await w.posted(second) == posted


class CountedLedger:
    """The ledger, with every ``create_transfers`` batch kept (the calls a read makes)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.batches: list[list[Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    async def create_transfers(self, transfers: Any, **kwargs: Any) -> Any:
        self.batches.append(list(transfers))
        return await self.target.create_transfers(transfers, **kwargs)


@pytest.mark.asyncio
async def test_every_read_of_a_lapsed_case_voids_its_holds_in_one_ledger_call(
    med_world: MedWorld,
) -> None:
    w = med_world
    scene = await accepted_case(w)
    case = await just_before_the_deadline(scene)
    holds = [b.hold_id for b in case.blocks]
    assert len(holds) == 2  # 40,00 and 60,00 on two accounts
    w.clock.advance(seconds=2)
    counted = CountedLedger(w.deps.ledger._ledger)
    w.deps.ledger._ledger = counted
    try:
        seen = await w.view(view(scene))  # the read that records the lapse
        lapsing = counted.batches
        counted.batches = []
        await w.view(view(scene))  # a later read voids them again, safe to repeat
        again = counted.batches
    finally:
        w.deps.ledger._ledger = counted.target
    assert seen.case is not None
    assert seen.case.status is CaseStatus.LAPSED
    for batches in (lapsing, again):
        # one call with both holds' voids, not one call per hold
        assert len(batches) == 1, batches
        [batch] = batches
        assert sorted(str(t.pending_id) for t in batch) == sorted(str(h) for h in holds)
        assert {t.flags for t in batch} == {TransferFlags.VOID_PENDING_TRANSFER}
    await assert_lapsed_and_free(scene)
