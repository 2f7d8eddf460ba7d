"""MED as the payer's bank, on every backend (memory, PostgreSQL, DynamoDB).

Our customer contests a PIX paid to another bank; that bank's analysis and
its returns (pacs.004) come back: the refund is requested on acceptance, each
return credits our customer once (the money before the record), the case
closes when the last return is in, and every step publishes one event.
"""

from __future__ import annotations

from typing import Any

import pytest

from finbank_core.pix.codes.identifiers import ReturnId
from finbank_core.pix.med import events as med_events
from finbank_core.pix.med import use_cases as med
from finbank_core.pix.med.errors import MedAlreadyDecided, MedNotAllowed
from finbank_core.pix.med.model import CaseStatus, Decision, FraudSituation, MedSide
from finbank_core.pix.med.use_cases import (
    ContestPixPaymentCommand,
    ReceiveMedAnalysisCommand,
    ReceiveMedReturnCommand,
)
from finbank_core.pix.refunds import RefundNature, RefundStatus
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.money import Money
from tests.integration.dynamo_support import serial_moto_endpoint
from tests.med_support import PEER_ISPB, MedWorld, med_world
from tests.pix_concurrency_support import outcomes

__all__ = ["med_world", "serial_moto_endpoint"]  # fixtures


async def contested(w: MedWorld, cents: int = 70_00) -> tuple[str, Any]:
    victim = await w.open_account("victim")
    await w.deposit(victim, cents)
    payment = await w.outgoing(victim, cents)
    e2e = payment.end_to_end_id
    result = await w.contest(
        ContestPixPaymentCommand(
            owner_id="victim", end_to_end_id=e2e, situation=FraudSituation.SCAM
        )
    )
    assert result.case.side is MedSide.PAYER
    return e2e, victim


def answer(
    w: MedWorld, e2e: str, decision: Decision = Decision.AGREED
) -> ReceiveMedAnalysisCommand:
    return w.directory.answer(e2e, decision)


def a_return(w: MedWorld, e2e: str, cents: int, *, final: bool = True) -> ReceiveMedReturnCommand:
    return ReceiveMedReturnCommand(
        end_to_end_id=e2e,
        return_id=ReturnId.generate(PEER_ISPB, w.clock.now(), w.rng).value,
        amount=Money(cents),
        from_ispb=PEER_ISPB,
        final=final,
    )


async def test_an_accepted_report_is_asked_back_and_returned_into_our_customers_account(
    med_world: MedWorld,
) -> None:
    w = med_world
    e2e, victim = await contested(w, 70_00)
    assert await w.available(victim) == 0
    case = await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e))
    assert case.status is CaseStatus.REFUND_REQUESTED
    assert case.requested_amount == Money(70_00)
    [request] = w.directory.refund_requests.values()
    assert (request.end_to_end_id, request.amount, request.to_ispb) == (
        e2e,
        Money(70_00),
        PEER_ISPB,
    )
    assert w.events(med_events.REPORT_ANALYSED) == [e2e]
    assert w.events(med_events.REFUND_REQUESTED) == [e2e]

    receive = med.ReceiveMedReturn(w.deps)
    first = a_return(w, e2e, 50_00, final=False)
    partly = await receive(first)
    assert partly.status is CaseStatus.REFUND_REQUESTED  # more to come
    assert await w.available(victim) == 50_00
    again = await receive(first)  # the SPI delivers it again
    assert again.returned_amount == Money(50_00)
    assert await w.available(victim) == 50_00  # credited once
    done = await receive(a_return(w, e2e, 20_00, final=False))  # completes what was asked
    assert done.status is CaseStatus.CLOSED
    assert done.returned_amount == Money(70_00)
    assert await w.available(victim) == 70_00
    recorded = await w.payments.get(e2e)
    assert recorded.refunded_amount == Money(70_00)
    assert {(r.nature, r.status) for r in recorded.refunds} == {
        (RefundNature.MED_FRAUDE, RefundStatus.DEVOLVIDO)
    }
    assert w.events(med_events.RETURN_RECEIVED) == [e2e, e2e]  # one per rtrId


async def test_a_partial_return_marked_final_closes_the_case(med_world: MedWorld) -> None:
    w = med_world
    e2e, victim = await contested(w, 70_00)
    await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e))
    closed = await med.ReceiveMedReturn(w.deps)(a_return(w, e2e, 15_00, final=True))
    assert closed.status is CaseStatus.CLOSED  # all the other bank could find
    assert closed.returned_amount == Money(15_00)
    assert await w.available(victim) == 15_00
    with pytest.raises(MedNotAllowed):  # a closed case takes no more returns
        await med.ReceiveMedReturn(w.deps)(a_return(w, e2e, 1_00))
    assert await w.available(victim) == 15_00


async def test_a_return_over_what_was_asked_is_refused_and_credits_nothing(
    med_world: MedWorld,
) -> None:
    w = med_world
    e2e, victim = await contested(w, 70_00)
    await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e))
    with pytest.raises(MedNotAllowed) as refused:
        await med.ReceiveMedReturn(w.deps)(a_return(w, e2e, 70_01))
    assert refused.value.details["field"] == "amount"
    assert await w.available(victim) == 0
    case = await w.repository.get_case(e2e)
    assert case is not None
    assert case.returns == ()


async def test_a_rejected_report_closes_the_case_and_takes_no_return(med_world: MedWorld) -> None:
    w = med_world
    e2e, victim = await contested(w)
    case = await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e, Decision.DISAGREED))
    assert case.status is CaseStatus.DISAGREED
    assert w.directory.refund_requests == {}
    with pytest.raises(MedAlreadyDecided):
        await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e, Decision.AGREED))
    with pytest.raises(MedNotAllowed):
        await med.ReceiveMedReturn(w.deps)(a_return(w, e2e, 10_00))
    assert await w.available(victim) == 0
    assert w.events(med_events.REPORT_ANALYSED) == [e2e]


async def test_answers_and_returns_only_from_the_bank_we_paid_on_a_report_we_sent(
    med_world: MedWorld,
) -> None:
    w = med_world
    e2e, _victim = await contested(w)
    wrong = ReceiveMedAnalysisCommand(
        end_to_end_id=e2e,
        report_id=answer(w, e2e).report_id,
        decision=Decision.AGREED,
        analysed_by="11111111",
    )
    with pytest.raises(MedNotAllowed) as refused:
        await med.ReceiveMedAnalysis(w.deps)(wrong)
    assert refused.value.details["field"] == "analysed_by"
    with pytest.raises(MedNotAllowed) as unknown:
        await med.ReceiveMedAnalysis(w.deps)(
            ReceiveMedAnalysisCommand(
                end_to_end_id=e2e,
                report_id="another-report",
                decision=Decision.AGREED,
                analysed_by=PEER_ISPB,
            )
        )
    assert unknown.value.details["field"] == "report_id"
    await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e))
    foreign = ReceiveMedReturnCommand(
        end_to_end_id=e2e,
        return_id=ReturnId.generate("11111111", w.clock.now(), w.rng).value,
        amount=Money(1_00),
        from_ispb="11111111",
    )
    with pytest.raises(MedNotAllowed) as not_theirs:
        await med.ReceiveMedReturn(w.deps)(foreign)
    assert not_theirs.value.details["field"] == "from_ispb"
    # a payment we received is answered by us, not by another bank
    mule = await w.open_account("mule")
    incoming = await w.incoming(mule, 5_00)
    with pytest.raises(Exception):  # noqa: B017, PT011 - no case (not found) on that payment
        await med.ReceiveMedAnalysis(w.deps)(
            ReceiveMedAnalysisCommand(
                end_to_end_id=incoming.end_to_end_id,
                report_id="r",
                decision=Decision.AGREED,
                analysed_by=PEER_ISPB,
            )
        )


async def test_the_same_return_delivered_by_many_at_once_credits_once(med_world: MedWorld) -> None:
    w = med_world
    e2e, victim = await contested(w, 70_00)
    await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e))
    command = a_return(w, e2e, 70_00)
    receive = med.ReceiveMedReturn(w.deps)
    results, errors = await outcomes([lambda: receive(command) for _ in range(8)])
    assert errors == {}
    assert {r.status for r in results} == {CaseStatus.CLOSED}
    assert await w.available(victim) == 70_00
    case = await w.repository.get_case(e2e)
    assert case is not None
    assert len(case.returns) == 1
    assert w.events(med_events.RETURN_RECEIVED) == [e2e]


async def test_the_same_answer_delivered_by_many_at_once_asks_the_money_back_once(
    med_world: MedWorld,
) -> None:
    w = med_world
    e2e, _victim = await contested(w)
    command = answer(w, e2e)
    receive = med.ReceiveMedAnalysis(w.deps)
    results, errors = await outcomes([lambda: receive(command) for _ in range(8)])
    assert errors == {}
    assert {r.status for r in results} == {CaseStatus.REFUND_REQUESTED}
    assert len(w.directory.refund_requests) == 1
    assert w.events(med_events.REFUND_REQUESTED) == [e2e]
    assert w.events(med_events.REPORT_ANALYSED) == [e2e]


async def test_a_crash_before_the_case_takes_the_return_leaves_nothing_behind(
    med_world: MedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = med_world
    e2e, victim = await contested(w, 70_00)
    await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e))
    repository = w.deps.repository
    original = repository.update_case
    failures = [ServiceUnavailable("the store went away")]

    async def update_case(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await original(*args, **kwargs)

    monkeypatch.setattr(repository, "update_case", update_case)
    command = a_return(w, e2e, 70_00)
    with pytest.raises(ServiceUnavailable):
        await med.ReceiveMedReturn(w.deps)(command)
    assert await w.available(victim) == 0  # no money moved
    assert (await w.payments.get(e2e)).refunds == ()  # its reservation given back
    case = await w.repository.get_case(e2e)
    assert case is not None
    assert (case.status, case.returns) == (CaseStatus.REFUND_REQUESTED, ())
    done = await med.ReceiveMedReturn(w.deps)(command)  # the SPI delivers it again
    assert (done.status, done.returned_amount) == (CaseStatus.CLOSED, Money(70_00))
    assert await w.available(victim) == 70_00


async def test_a_crash_between_the_credit_and_the_record_is_finished_by_the_redelivery(
    med_world: MedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = med_world
    e2e, victim = await contested(w, 70_00)
    await med.ReceiveMedAnalysis(w.deps)(answer(w, e2e))
    repository = w.deps.repository
    original = repository.update_case
    calls = 0

    async def update_case(*args: Any, **kwargs: Any) -> Any:
        # the first write takes the return into the case, the second records it returned
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ServiceUnavailable("the store went away")
        return await original(*args, **kwargs)

    monkeypatch.setattr(repository, "update_case", update_case)
    command = a_return(w, e2e, 70_00)
    with pytest.raises(ServiceUnavailable):
        await med.ReceiveMedReturn(w.deps)(command)
    assert await w.available(victim) == 70_00  # credited; not recorded returned yet
    case = await w.repository.get_case(e2e)
    assert case is not None
    assert [r.status for r in case.returns] == [RefundStatus.EM_PROCESSAMENTO]
    assert case.returned_amount == Money(0)
    done = await med.ReceiveMedReturn(w.deps)(command)  # the SPI delivers it again
    assert done.status is CaseStatus.CLOSED
    assert [r.status for r in done.returns] == [RefundStatus.DEVOLVIDO]
    assert await w.available(victim) == 70_00  # and not twice
    assert w.events(med_events.RETURN_RECEIVED) == [e2e]
