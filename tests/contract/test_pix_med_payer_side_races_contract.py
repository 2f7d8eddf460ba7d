"""MED as the payer's bank: returns that race, on every backend (memory, PostgreSQL, DynamoDB).

Different returns (other rtrIds) arriving at once that together pass what
was asked back cannot all be credited: each is reserved in the payment's
refunds under its version before the money moves, so the customer gets no
more than was asked and everything credited is on the case. A crash after
the reservation is finished by the redelivery. An rtrId another bank made
is refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from finbank_core.pix.codes.identifiers import ReturnId
from finbank_core.pix.med import events as med_events
from finbank_core.pix.med import use_cases as med
from finbank_core.pix.med.errors import MedNotAllowed
from finbank_core.pix.med.model import CaseStatus, MedCase
from finbank_core.pix.refunds import RefundStatus
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.money import Money
from tests.contract.test_pix_med_payer_side_contract import a_return, answer, contested
from tests.integration.dynamo_support import serial_moto_endpoint
from tests.med_support import PEER_ISPB, MedWorld, med_world
from tests.pix_concurrency_support import outcomes

__all__ = ["med_world", "serial_moto_endpoint"]  # fixtures


async def test_different_returns_at_once_past_what_was_asked_credit_no_more_than_asked(
    med_world: MedWorld,
) -> None:
    w = med_world
    e2e, victim = await contested(w, 100_00)
    await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e))
    receive = med.ReceiveMedReturn(w.deps)
    commands = [a_return(w, e2e, 60_00, final=False) for _ in range(4)]

    results, errors = await outcomes([lambda c=c: receive(c) for c in commands])  # type: ignore[misc]

    assert len(results) == 1, errors
    assert errors == {"MedNotAllowed": 3}
    case = await w.repository.get_case(e2e)
    assert case is not None
    assert case.returned_amount == Money(60_00)
    assert await w.available(victim) == 60_00  # what the case says came back, no more
    payment = await w.payments.get(e2e)
    assert [(r.amount, r.status) for r in payment.refunds] == [
        (Money(60_00), RefundStatus.DEVOLVIDO)
    ]
    # the rest still fits
    done = await receive(a_return(w, e2e, 40_00, final=False))
    assert (done.status, done.returned_amount) == (CaseStatus.CLOSED, Money(100_00))
    assert await w.available(victim) == 100_00


async def test_different_returns_at_once_within_what_was_asked_are_all_credited(
    med_world: MedWorld,
) -> None:
    w = med_world
    e2e, victim = await contested(w, 100_00)
    await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e))
    receive = med.ReceiveMedReturn(w.deps)
    commands = [a_return(w, e2e, 25_00, final=False) for _ in range(4)]

    results, errors = await outcomes([lambda c=c: receive(c) for c in commands])  # type: ignore[misc]

    assert (len(results), errors) == (4, {})
    case = await w.repository.get_case(e2e)
    assert case is not None
    assert (case.status, case.returned_amount) == (CaseStatus.CLOSED, Money(100_00))
    assert await w.available(victim) == 100_00
    payment = await w.payments.get(e2e)
    assert payment.refunded_amount == Money(100_00)
    assert {r.status for r in payment.refunds} == {RefundStatus.DEVOLVIDO}


async def test_final_returns_at_once_close_the_case_once_and_credit_only_what_it_records(
    med_world: MedWorld,
) -> None:
    # Within the payment's amount each of these fits, so the payment's reservation
    # stops none of them; but each is final, so the first recorded closes the case
    # and the others must be refused BEFORE their money moves. On PostgreSQL and
    # DynamoDB the refused ones were credited all the same (the customer got 40,00
    # where the case, closed, recorded 10,00), and their reservations stayed in the
    # payment's refunds; memory, where nothing suspends mid-call, never showed it.
    w = med_world
    e2e, victim = await contested(w, 100_00)
    await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e))
    receive = med.ReceiveMedReturn(w.deps)
    commands = [a_return(w, e2e, 10_00, final=True) for _ in range(4)]

    results, errors = await outcomes([lambda c=c: receive(c) for c in commands])  # type: ignore[misc]

    assert len(results) == 1, errors
    assert errors == {"MedNotAllowed": 3}
    case = await w.repository.get_case(e2e)
    assert case is not None
    assert (case.status, case.returned_amount) == (CaseStatus.CLOSED, Money(10_00))
    assert [(r.amount, r.status) for r in case.returns] == [(Money(10_00), RefundStatus.DEVOLVIDO)]
    assert await w.available(victim) == 10_00  # what the case says came back, no more
    payment = await w.payments.get(e2e)
    assert [(r.amount, r.status) for r in payment.refunds] == [
        (Money(10_00), RefundStatus.DEVOLVIDO)
    ]
    # each refused return stays refused when delivered again, and still moves nothing
    for command in commands:
        if command.return_id != case.returns[0].return_id:
            with pytest.raises(MedNotAllowed):
                await receive(command)
    assert await w.available(victim) == 10_00


async def test_a_crash_after_the_reservation_is_finished_by_the_redelivery(
    med_world: MedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = med_world
    e2e, victim = await contested(w, 70_00)
    await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e))
    receive = med.ReceiveMedReturn(w.deps)
    failures = [ServiceUnavailable("the ledger went away")]
    original = receive._steps.credit_from_settlement

    async def credit(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await original(*args, **kwargs)

    monkeypatch.setattr(receive._steps, "credit_from_settlement", credit)
    command = a_return(w, e2e, 70_00)
    with pytest.raises(ServiceUnavailable):
        await receive(command)
    assert await w.available(victim) == 0  # nothing credited
    [reserved] = (await w.payments.get(e2e)).refunds
    assert reserved.status is RefundStatus.EM_PROCESSAMENTO  # in progress, not returned
    case = await w.repository.get_case(e2e)
    assert case is not None
    # the case took it (closed to other returns: it was final) but has not returned it
    assert [(r.amount, r.status) for r in case.returns] == [
        (Money(70_00), RefundStatus.EM_PROCESSAMENTO)
    ]
    assert (case.status, case.returned_amount) == (CaseStatus.CLOSED, Money(0))

    done = await receive(command)  # the SPI delivers it again
    assert done.status is CaseStatus.CLOSED
    assert await w.available(victim) == 70_00
    [returned] = (await w.payments.get(e2e)).refunds
    assert (returned.amount, returned.status) == (Money(70_00), RefundStatus.DEVOLVIDO)


async def ledger_down(*args: Any, **kwargs: Any) -> Any:
    """The credit's ledger call, failing: the delivery stops before the money."""
    raise ServiceUnavailable("the ledger went away")


async def a_delivery_that_stops(w: MedWorld, where: str) -> tuple[med.ReceiveMedReturnCommand, Any]:
    """A final return of all 70,00 whose delivery the case took, then stopped ``where``
    (``before the credit`` or ``after the credit``, before the record); the command, and
    the payer's account."""
    e2e, victim = await contested(w, 70_00)
    await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e))
    receive = med.ReceiveMedReturn(w.deps)
    update_case = w.deps.repository.update_case
    calls = 0

    async def stop_second(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1  # the first takes the return into the case; the second records it
        if calls == 2:
            raise ServiceUnavailable("the store went away")
        return await update_case(*args, **kwargs)

    command = a_return(w, e2e, 70_00)
    with pytest.MonkeyPatch.context() as patch:
        if where == "before the credit":
            patch.setattr(receive._steps, "credit_from_settlement", ledger_down)
        else:
            patch.setattr(w.deps.repository, "update_case", stop_second)
        with pytest.raises(ServiceUnavailable):
            await receive(command)
    case = await w.repository.get_case(e2e)
    assert case is not None
    assert [r.status for r in case.returns] == [RefundStatus.EM_PROCESSAMENTO]
    assert (case.status, case.returned_amount) == (CaseStatus.CLOSED, Money(0))
    assert await w.available(victim) == (70_00 if where == "after the credit" else 0)
    return command, victim


async def returned_once(w: MedWorld, e2e: str, victim: Any) -> None:
    """The 70,00 credited once, returned in the payment's refunds, announced once."""
    assert await w.available(victim) == 70_00
    [returned] = (await w.payments.get(e2e)).refunds
    assert (returned.amount, returned.status) == (Money(70_00), RefundStatus.DEVOLVIDO)
    assert w.events(med_events.RETURN_RECEIVED) == [e2e]


STOPS = ["before the credit", "after the credit"]


@pytest.mark.parametrize("where", STOPS)
async def test_a_return_whose_delivery_stopped_is_finished_by_the_next_view(
    med_world: MedWorld, where: str
) -> None:
    # The case took the return (its pacs.004 had settled into our account), and the
    # network never delivers it again: the customer's next look at the case finishes it.
    w = med_world
    command, victim = await a_delivery_that_stops(w, where)
    e2e = command.end_to_end_id
    view = await w.view(med.MedViewQuery(end_to_end_id=e2e))
    assert view.case is not None
    assert [r.status for r in view.case.returns] == [RefundStatus.DEVOLVIDO]
    assert view.case.returned_amount == Money(70_00)
    assert await w.repository.get_case(e2e) == view.case
    await returned_once(w, e2e, victim)
    # a late delivery of the same rtrId is a replay; another look changes nothing
    again = await med.ReceiveMedReturn(w.deps)(command)
    assert again == view.case
    assert (await w.view(med.MedViewQuery(end_to_end_id=e2e))).case == view.case
    assert await w.available(victim) == 70_00


async def test_the_view_finishes_only_the_stopped_centavo_beside_a_finished_return(
    med_world: MedWorld,
) -> None:
    # The edges of the amounts: 69,99 came back first (finished); the last centavo, which
    # completes what was asked, stopped before its credit. The view credits that centavo,
    # once, and leaves the finished return as it was.
    w = med_world
    e2e, victim = await contested(w, 70_00)
    await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e))
    receive = med.ReceiveMedReturn(w.deps)
    first = await receive(a_return(w, e2e, 69_99, final=False))
    assert first.status is CaseStatus.REFUND_REQUESTED
    centavo = a_return(w, e2e, 1, final=False)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(receive._steps, "credit_from_settlement", ledger_down)
        with pytest.raises(ServiceUnavailable):
            await receive(centavo)
    assert await w.available(victim) == 69_99
    view = await w.view(med.MedViewQuery(end_to_end_id=e2e))
    assert view.case is not None
    assert (view.case.status, view.case.returned_amount) == (CaseStatus.CLOSED, Money(70_00))
    assert [(r.amount, r.status) for r in view.case.returns] == [
        (Money(69_99), RefundStatus.DEVOLVIDO),
        (Money(1), RefundStatus.DEVOLVIDO),
    ]
    assert first.returns[0] == view.case.returns[0]  # the finished one untouched
    assert await w.available(victim) == 70_00
    refunds = (await w.payments.get(e2e)).refunds
    assert sorted((r.amount.cents, r.status) for r in refunds) == [
        (1, RefundStatus.DEVOLVIDO),
        (69_99, RefundStatus.DEVOLVIDO),
    ]
    assert w.events(med_events.RETURN_RECEIVED) == [e2e, e2e]  # one per rtrId
    assert await receive(centavo) == view.case  # a late delivery is a replay
    assert await w.available(victim) == 70_00


@pytest.mark.parametrize("views_first", [True, False], ids=["views-first", "deliveries-first"])
@pytest.mark.parametrize("where", STOPS)
async def test_views_and_redeliveries_at_once_finish_a_stopped_return_once(
    med_world: MedWorld, where: str, views_first: bool
) -> None:
    w = med_world
    command, victim = await a_delivery_that_stops(w, where)
    e2e = command.end_to_end_id
    receive = med.ReceiveMedReturn(w.deps)
    query = med.MedViewQuery(end_to_end_id=e2e)

    async def look() -> MedCase | None:
        return (await w.view(query)).case

    async def deliver() -> MedCase | None:
        return await receive(command)

    pair: list[Callable[[], Awaitable[MedCase | None]]] = (
        [look, deliver] if views_first else [deliver, look]
    )
    cases, errors = await outcomes(pair * 4)
    assert set(errors) <= {"MedVersionConflict"}, errors
    final = await w.repository.get_case(e2e)
    assert final is not None
    assert [r.status for r in final.returns] == [RefundStatus.DEVOLVIDO]
    assert all(c is not None and c.returned_amount == Money(70_00) for c in cases)
    await returned_once(w, e2e, victim)


async def test_an_rtr_id_another_bank_made_is_refused_before_anything_is_written(
    med_world: MedWorld,
) -> None:
    w = med_world
    e2e, victim = await contested(w, 70_00)
    await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e))
    command = med.ReceiveMedReturnCommand(
        end_to_end_id=e2e,
        return_id=ReturnId.generate("77777777", w.clock.now(), w.rng).value,
        amount=Money(70_00),
        from_ispb=PEER_ISPB,
    )
    with pytest.raises(MedNotAllowed) as refused:
        await med.ReceiveMedReturn(w.deps)(command)
    assert refused.value.details["field"] == "return_id"
    assert await w.available(victim) == 0
    assert (await w.payments.get(e2e)).refunds == ()
