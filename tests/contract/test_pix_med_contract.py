"""MED and precautionary blocks, on every backend (memory, PostgreSQL, DynamoDB).

Three layers, each run unchanged against every backend of ``tests/med_support.py``:

1. the ``MedRepository`` port: one case and one block per payment, one
   writer per version, also under many concurrent writers;
2. the flows with the fake clock moved across each deadline, exactly at it
   and just after (report window, analysis, refund request, the block's 72 h);
3. many callers at once on the same payment or case: one block, one
   decision, one plan, each return executed once, money conserved.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import msgspec
import pytest

from finbank_core.accounts.ledger import PendingStatus
from finbank_core.accounts.model import CustomerAccount, HolderType
from finbank_core.pix.errors import PixRefundExceedsOriginal, PixVersionConflict
from finbank_core.pix.med import events as med_events
from finbank_core.pix.med.errors import (
    MedAlreadyDecided,
    MedCaseAlreadyExists,
    MedDeadlinePassed,
    MedNotAllowed,
    MedRefundAlreadyRequested,
    MedVersionConflict,
    PrecautionaryBlockAlreadyExists,
)
from finbank_core.pix.med.model import (
    BlockStatus,
    CaseStatus,
    Decision,
    FraudSituation,
    HoldStatus,
    MedCase,
    MedReturn,
    MedSide,
    PrecautionaryBlock,
)
from finbank_core.pix.med.use_cases import (
    AnalyseInfractionReportCommand,
    ContestPixPaymentCommand,
    ExecuteMedReturnsCommand,
    MedViewQuery,
    PlacePrecautionaryBlockCommand,
    ReceiveInfractionReportCommand,
    ReleasePrecautionaryBlockCommand,
    RequestMedRefundCommand,
)
from finbank_core.pix.med.use_cases.common import MAX_OPERATOR_ID_LENGTH
from finbank_core.pix.network import NetworkResult, ReturnOrder
from finbank_core.pix.refunds import PixRefund, RefundNature, RefundStatus
from finbank_core.shared.errors import InvalidInput, ServiceUnavailable
from finbank_core.shared.money import Money
from tests.integration.dynamo_support import serial_moto_endpoint
from tests.med_support import PEER_ISPB, T0, MedWorld, med_world
from tests.pix_concurrency_support import outcomes

__all__ = ["med_world", "serial_moto_endpoint"]  # fixtures
N = 12


def case(e2e: str, version: int = 0) -> MedCase:
    return MedCase(
        end_to_end_id=e2e,
        report_id=f"r-{e2e}",
        side=MedSide.RECEIVER,
        situation=FraudSituation.SCAM,
        status=CaseStatus.OPEN,
        amount=Money(100_00),
        paid_at=T0,
        opened_at=T0,
        analysis_deadline=T0 + timedelta(days=7),
        payer_ispb=PEER_ISPB,
        payee_ispb="99999999",
        version=version,
    )


def block(e2e: str) -> PrecautionaryBlock:
    return PrecautionaryBlock(
        end_to_end_id=e2e,
        account_id=uuid.uuid4(),
        owner_id="mule",
        amount=Money(10_00),
        status=BlockStatus.ACTIVE,
        blocked_at=T0,
        expires_at=T0 + timedelta(hours=72),
        hold_id=uuid.uuid4(),
        blocked_by="analyst",
    )


async def report(world: MedWorld, e2e: str) -> MedCase:
    result = await world.receive_report(
        ReceiveInfractionReportCommand(
            end_to_end_id=e2e,
            report_id=f"dict-{e2e}",
            situation=FraudSituation.SCAM,
            reporter_ispb=PEER_ISPB,
        )
    )
    return result.case


def analyse(e2e: str, decision: Decision = Decision.AGREED) -> AnalyseInfractionReportCommand:
    return AnalyseInfractionReportCommand(end_to_end_id=e2e, decision=decision, analyst_id="ana")


# -- 1. the store ----------------------------------------------------------------------


async def test_a_payment_has_one_case_and_one_block(med_world: MedWorld) -> None:
    repo = med_world.repository
    stored = await repo.add_case(case("E1"))
    assert stored.version == 1
    assert await repo.get_case("E1") == stored
    assert await repo.get_case("E2") is None
    with pytest.raises(MedCaseAlreadyExists):
        await repo.add_case(case("E1"))
    placed = await repo.add_block(block("E1"))
    assert (await repo.get_block("E1")) == placed
    with pytest.raises(PrecautionaryBlockAlreadyExists):
        await repo.add_block(block("E1"))


async def test_an_update_needs_the_version_it_read(med_world: MedWorld) -> None:
    repo = med_world.repository
    stored = await repo.add_case(case("E1"))
    moved = await repo.update_case(msgspec.structs.replace(stored, status=CaseStatus.AGREED), 1)
    assert moved.version == 2
    assert (await repo.get_case("E1")) == moved
    with pytest.raises(MedVersionConflict):
        await repo.update_case(msgspec.structs.replace(stored, status=CaseStatus.DISAGREED), 1)
    assert (await repo.get_case("E1")).status is CaseStatus.AGREED  # type: ignore[union-attr]
    placed = await repo.add_block(block("E1"))
    with pytest.raises(MedVersionConflict):
        await repo.update_block(placed, 7)


async def test_of_concurrent_writers_at_one_version_exactly_one_wins(med_world: MedWorld) -> None:
    repo = med_world.repository
    stored = await repo.add_case(case("E1"))
    statuses = [CaseStatus.AGREED if i % 2 else CaseStatus.DISAGREED for i in range(N)]
    results, errors = await outcomes(
        [
            lambda s=s: repo.update_case(msgspec.structs.replace(stored, status=s), 1)  # type: ignore[misc]
            for s in statuses
        ]
    )
    assert len(results) == 1
    assert errors == {"MedVersionConflict": N - 1}
    final = await repo.get_case("E1")
    assert final is not None
    assert final.version == 2
    assert final.status is results[0].status


# -- 2. flows and deadlines ---------------------------------------------------------------


async def test_a_precautionary_block_holds_the_money_until_exactly_72_hours(
    med_world: MedWorld,
) -> None:
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 500_00)
    result = await w.place_block(
        PlacePrecautionaryBlockCommand(end_to_end_id=payment.end_to_end_id, blocked_by="engine")
    )
    assert result.block.amount == Money(500_00)
    assert result.block.expires_at == T0 + timedelta(hours=72)
    assert await w.available(mule) == 0
    assert w.events(med_events.BLOCK_PLACED) == [payment.end_to_end_id]

    w.clock.set(T0 + timedelta(hours=72) - timedelta(microseconds=1))
    view = await w.view(MedViewQuery(end_to_end_id=payment.end_to_end_id))
    assert view.block is not None
    assert view.block.status is BlockStatus.ACTIVE
    assert await w.available(mule) == 0

    w.clock.set(T0 + timedelta(hours=72))  # exactly at the deadline: released
    view = await w.view(MedViewQuery(end_to_end_id=payment.end_to_end_id, owner_id="mule"))
    assert view.block is not None
    assert view.block.status is BlockStatus.RELEASED
    assert view.block.resolution == "expired"
    assert view.block.released_by is None  # its deadline released it, no one did
    assert await w.available(mule) == 500_00
    assert w.events(med_events.BLOCK_RELEASED) == [payment.end_to_end_id]


async def test_a_block_is_placed_only_within_72_hours_and_on_a_natural_person(
    med_world: MedWorld,
) -> None:
    w = med_world
    mule = await w.open_account("mule")
    company = await w.open_account("acme", holder_type=HolderType.COMPANY)
    late = await w.incoming(mule, 10_00)
    to_company = await w.incoming(company, 10_00)
    with pytest.raises(MedNotAllowed) as refused:
        await w.place_block(
            PlacePrecautionaryBlockCommand(end_to_end_id=to_company.end_to_end_id, blocked_by="e")
        )
    assert refused.value.details["field"] == "end_to_end_id"
    w.clock.set(T0 + timedelta(hours=72))
    with pytest.raises(MedDeadlinePassed) as passed:
        await w.place_block(
            PlacePrecautionaryBlockCommand(end_to_end_id=late.end_to_end_id, blocked_by="e")
        )
    assert passed.value.details["deadline"] == "precautionary_block"
    assert await w.repository.get_block(late.end_to_end_id) is None
    assert await w.available(mule) == 10_00


async def test_an_analyst_releases_a_block_early_once(med_world: MedWorld) -> None:
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 80_00)
    e2e = payment.end_to_end_id
    await w.place_block(PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by="e"))
    release = ReleasePrecautionaryBlockCommand(end_to_end_id=e2e, released_by="ana")
    first = await w.release_block(release)
    again = await w.release_block(release)
    assert first.block.status is BlockStatus.RELEASED
    assert not first.replayed
    assert again.replayed
    assert again.block == first.block
    assert await w.available(mule) == 80_00
    stored = await w.repository.get_block(e2e)
    assert stored is not None
    assert (stored.resolution, stored.blocked_by, stored.released_by) == ("released", "e", "ana")
    # a later release by someone else is the first one's answer: it does not rename it
    other = await w.release_block(
        ReleasePrecautionaryBlockCommand(end_to_end_id=e2e, released_by="bia")
    )
    assert other.replayed
    assert other.block.released_by == "ana"


async def test_fraud_reported_accepted_traced_and_returned_through_the_network(
    med_world: MedWorld,
) -> None:
    w = med_world
    mule = await w.open_account("mule")
    second = await w.open_account("second")
    third = await w.open_account("third")
    payment = await w.incoming(mule, 100_00)
    w.clock.advance(minutes=1)
    await w.transfer(mule, second, 70_00)  # the money moved on...
    w.clock.advance(minutes=1)
    await w.on_us(mule, third, 20_00)  # ...and on, by PIX
    e2e = payment.end_to_end_id

    opened = await report(w, e2e)
    assert opened.status is CaseStatus.OPEN
    assert opened.side is MedSide.RECEIVER
    analysed = (await w.analyse(analyse(e2e))).case
    assert analysed.status is CaseStatus.AGREED
    held = {b.account_id: (b.amount.cents, b.depth) for b in analysed.blocks}
    assert held == {mule.id: (10_00, 0), second.id: (70_00, 1), third.id: (20_00, 1)}
    assert [await w.available(a) for a in (mule, second, third)] == [0, 0, 0]

    before = [await w.posted(a) for a in (mule, second, third)]
    returned = (
        await w.request_refund(RequestMedRefundCommand(end_to_end_id=e2e, requested_by=PEER_ISPB))
    ).case
    assert returned.status is CaseStatus.CLOSED
    assert returned.returned_amount == Money(100_00)
    assert {r.status for r in returned.returns} == {RefundStatus.DEVOLVIDO}
    after = [await w.posted(a) for a in (mule, second, third)]
    assert sum(before) - sum(after) == 100_00
    assert sum(o.amount.cents for o in w.network.returns) == 100_00
    assert {o.nature for o in w.network.returns} == {RefundNature.MED_FRAUDE}
    peer = w.network.institutions[PEER_ISPB].accounts[0]
    assert peer.balance_cents == 0  # the victim paid 100.00 and got it all back
    recorded = await w.payments.get(e2e)
    assert recorded.refunded_amount == Money(100_00)
    assert {r.nature for r in recorded.refunds} == {RefundNature.MED_FRAUDE}
    assert len(w.events(med_events.RETURN_COMPLETED)) == 3


async def test_self_service_contestation_on_us_returns_part_and_releases_the_rest(
    med_world: MedWorld,
) -> None:
    w = med_world
    victim = await w.open_account("victim")
    mule = await w.open_account("mule")
    await w.deposit(victim, 300_00)
    payment = await w.on_us(victim, mule, 300_00)
    e2e = payment.end_to_end_id
    with pytest.raises(MedNotAllowed):  # the payee cannot contest
        await w.contest(
            ContestPixPaymentCommand(
                owner_id="mule", end_to_end_id=e2e, situation=FraudSituation.SCAM
            )
        )
    opened = await w.contest(
        ContestPixPaymentCommand(
            owner_id="victim", end_to_end_id=e2e, situation=FraudSituation.SCAM
        )
    )
    assert opened.case.side is MedSide.ON_US
    assert opened.case.reporter_owner_id == "victim"
    await w.analyse(analyse(e2e))
    done = await w.request_refund(
        RequestMedRefundCommand(end_to_end_id=e2e, amount=Money(120_00), requested_by="ana")
    )
    assert done.case.status is CaseStatus.CLOSED
    assert await w.posted(victim) == 120_00
    assert await w.available(mule) == 180_00  # the rest of the hold was released
    assert w.network.returns == []  # on-us: no message left the bank
    assert len(w.events(med_events.REPORT_OPENED)) == 1


async def test_a_refund_request_repeated_with_another_amount_is_refused(
    med_world: MedWorld,
) -> None:
    w = med_world
    victim, mule = await w.open_account("victim"), await w.open_account("mule")
    await w.deposit(victim, 300_00)
    e2e = (await w.on_us(victim, mule, 300_00)).end_to_end_id
    await w.contest(
        ContestPixPaymentCommand(
            owner_id="victim", end_to_end_id=e2e, situation=FraudSituation.SCAM
        )
    )
    await w.analyse(analyse(e2e))
    first = await w.request_refund(
        RequestMedRefundCommand(end_to_end_id=e2e, amount=Money(120_00), requested_by="ana")
    )
    with pytest.raises(MedRefundAlreadyRequested) as refused:
        await w.request_refund(
            RequestMedRefundCommand(end_to_end_id=e2e, amount=Money(200_00), requested_by="ana")
        )
    assert refused.value.details == {"field": "amount", "requested_amount": "120.00"}
    same = await w.request_refund(
        RequestMedRefundCommand(end_to_end_id=e2e, amount=Money(120_00), requested_by="ana")
    )
    unsaid = await w.request_refund(RequestMedRefundCommand(end_to_end_id=e2e, requested_by="ana"))
    assert not first.replayed
    assert same.replayed
    assert unsaid.replayed
    assert same.case == first.case == unsaid.case
    assert await w.posted(victim) == 120_00  # returned once, not 200.00, not twice
    assert await w.available(mule) == 180_00


async def test_a_report_is_taken_up_to_exactly_80_days_after_the_payment(
    med_world: MedWorld,
) -> None:
    w = med_world
    mule = await w.open_account("mule")
    on_time, late = await w.incoming(mule, 5_00), await w.incoming(mule, 5_00)
    w.clock.set(T0 + timedelta(days=80))
    assert (await report(w, on_time.end_to_end_id)).status is CaseStatus.OPEN
    w.clock.set(T0 + timedelta(days=80, microseconds=1))
    with pytest.raises(MedDeadlinePassed) as passed:
        await report(w, late.end_to_end_id)
    assert passed.value.details["deadline"] == "report_window"
    assert await w.repository.get_case(late.end_to_end_id) is None


async def test_the_analysis_is_taken_up_to_exactly_7_days_after_the_report(
    med_world: MedWorld,
) -> None:
    w = med_world
    mule = await w.open_account("mule")
    on_time, late = await w.incoming(mule, 5_00), await w.incoming(mule, 5_00)
    await report(w, on_time.end_to_end_id)
    await report(w, late.end_to_end_id)
    w.clock.set(T0 + timedelta(days=7))
    assert (await w.analyse(analyse(on_time.end_to_end_id))).case.status is CaseStatus.AGREED
    w.clock.set(T0 + timedelta(days=7, microseconds=1))
    with pytest.raises(MedDeadlinePassed) as passed:
        await w.analyse(analyse(late.end_to_end_id))
    assert passed.value.details["deadline"] == "analysis"
    stored = await w.repository.get_case(late.end_to_end_id)
    assert stored is not None
    assert stored.status is CaseStatus.OPEN
    assert stored.blocks == ()


async def test_a_refund_not_requested_within_72_hours_lapses_and_releases_the_blocks(
    med_world: MedWorld,
) -> None:
    w = med_world
    mule = await w.open_account("mule")
    on_time, late = await w.incoming(mule, 30_00), await w.incoming(mule, 40_00)
    for payment in (on_time, late):
        await report(w, payment.end_to_end_id)
        await w.analyse(analyse(payment.end_to_end_id))
    assert await w.available(mule) == 0
    w.clock.set(T0 + timedelta(hours=72))
    ok = await w.request_refund(
        RequestMedRefundCommand(end_to_end_id=on_time.end_to_end_id, requested_by=PEER_ISPB)
    )
    assert ok.case.status is CaseStatus.CLOSED
    w.clock.set(T0 + timedelta(hours=72, microseconds=1))
    with pytest.raises(MedDeadlinePassed) as passed:
        await w.request_refund(
            RequestMedRefundCommand(end_to_end_id=late.end_to_end_id, requested_by=PEER_ISPB)
        )
    assert passed.value.details["deadline"] == "refund_request"
    lapsed = await w.repository.get_case(late.end_to_end_id)
    assert lapsed is not None
    assert lapsed.status is CaseStatus.LAPSED
    assert {b.status for b in lapsed.blocks} == {HoldStatus.RELEASED}
    assert await w.available(mule) == 40_00  # the lapsed case's money is free again
    assert w.events(med_events.CASE_LAPSED) == [late.end_to_end_id]


async def test_a_precautionary_block_kept_for_med_outlives_its_72_hours(
    med_world: MedWorld,
) -> None:
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 60_00)
    e2e = payment.end_to_end_id
    await w.place_block(PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by="engine"))
    w.clock.advance(hours=1)
    await report(w, e2e)
    accepted = (await w.analyse(analyse(e2e))).case
    assert [b.amount.cents for b in accepted.blocks] == [60_00]
    w.clock.set(T0 + timedelta(hours=72, minutes=1))
    view = await w.view(MedViewQuery(end_to_end_id=e2e))
    assert view.block is not None
    assert view.block.status is BlockStatus.KEPT_FOR_MED
    assert await w.available(mule) == 0  # still held, now by the case


async def test_a_return_never_exceeds_what_the_payment_still_has(med_world: MedWorld) -> None:
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 50_00)
    e2e = payment.end_to_end_id
    await report(w, e2e)
    await w.analyse(analyse(e2e))
    with pytest.raises(MedNotAllowed) as refused:
        await w.request_refund(
            RequestMedRefundCommand(end_to_end_id=e2e, amount=Money(50_01), requested_by=PEER_ISPB)
        )
    assert refused.value.details["field"] == "amount"
    stored = await w.repository.get_case(e2e)
    assert stored is not None
    assert stored.status is CaseStatus.AGREED
    assert stored.returns == ()
    assert (await w.payments.get(e2e)).refunds == ()


async def test_an_operator_id_at_its_edges_is_kept_or_refused_before_the_money_moves(
    med_world: MedWorld,
) -> None:
    """``blocked_by`` and ``released_by`` are 1 to 128 characters. Past that, a record too
    big to store (a DynamoDB item is at most 400 KB) would leave the hold placed or voided
    with no block to say so: refused before the ledger is touched."""
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 40_00)
    e2e = payment.end_to_end_id
    for bad in ("", "o" * (MAX_OPERATOR_ID_LENGTH + 1), "o" * 500_000):
        with pytest.raises(InvalidInput) as refused:
            await w.place_block(PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by=bad))
        assert refused.value.details["field"] == "blocked_by"
    assert await w.repository.get_block(e2e) is None
    assert await w.available(mule) == 40_00
    longest = "o" * MAX_OPERATOR_ID_LENGTH
    await w.place_block(PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by=longest))
    assert await w.available(mule) == 0
    with pytest.raises(InvalidInput) as refused:
        await w.release_block(
            ReleasePrecautionaryBlockCommand(end_to_end_id=e2e, released_by="r" * 500_000)
        )
    assert refused.value.details["field"] == "released_by"
    assert await w.available(mule) == 0  # still held
    released = await w.release_block(
        ReleasePrecautionaryBlockCommand(
            end_to_end_id=e2e, released_by="r" * MAX_OPERATOR_ID_LENGTH
        )
    )
    stored = await w.repository.get_block(e2e)
    assert stored is not None
    assert stored == released.block
    assert (stored.blocked_by, stored.released_by) == (longest, "r" * MAX_OPERATOR_ID_LENGTH)
    assert await w.available(mule) == 40_00


# -- 3. many callers at once ------------------------------------------------------------------


async def test_concurrent_blocks_of_one_payment_hold_it_once(med_world: MedWorld) -> None:
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 90_00)
    cmd = PlacePrecautionaryBlockCommand(end_to_end_id=payment.end_to_end_id, blocked_by="e")
    results, errors = await outcomes([lambda: w.place_block(cmd) for _ in range(N)])
    assert not errors
    assert len({r.block.hold_id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert await w.available(mule) == 0
    assert await w.posted(mule) == 90_00
    assert len(w.events(med_events.BLOCK_PLACED)) == 1


async def test_concurrent_readers_at_the_deadline_release_the_block_once(
    med_world: MedWorld,
) -> None:
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 90_00)
    e2e = payment.end_to_end_id
    await w.place_block(PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by="e"))
    w.clock.set(T0 + timedelta(hours=72))
    results, errors = await outcomes(
        [lambda: w.view(MedViewQuery(end_to_end_id=e2e)) for _ in range(N)]
    )
    assert not errors
    assert {r.block.status for r in results if r.block} == {BlockStatus.RELEASED}
    stored = await w.repository.get_block(e2e)
    assert stored is not None
    assert stored.version == 2
    assert len(w.events(med_events.BLOCK_RELEASED)) == 1
    assert await w.available(mule) == 90_00


async def test_concurrent_releases_by_several_analysts_record_the_one_that_did_it(
    med_world: MedWorld,
) -> None:
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 60_00)
    e2e = payment.end_to_end_id
    await w.place_block(PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by="e"))
    analysts = [f"analyst-{i}" for i in range(N)]
    results, errors = await outcomes(
        [
            lambda a=a: w.release_block(  # type: ignore[misc]
                ReleasePrecautionaryBlockCommand(end_to_end_id=e2e, released_by=a)
            )
            for a in analysts
        ]
    )
    assert not errors
    assert sum(not r.replayed for r in results) == 1
    stored = await w.repository.get_block(e2e)
    assert stored is not None
    assert stored.released_by in analysts
    first = next(r for r in results if not r.replayed)
    assert first.block.released_by == stored.released_by
    assert {r.block.released_by for r in results} == {stored.released_by}
    assert stored.version == 2
    assert len(w.events(med_events.BLOCK_RELEASED)) == 1
    assert await w.available(mule) == 60_00


async def test_the_same_report_accepted_and_rejected_at_once_is_decided_once(
    med_world: MedWorld,
) -> None:
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 70_00)
    e2e = payment.end_to_end_id
    await report(w, e2e)
    decisions = [Decision.AGREED if i % 2 else Decision.DISAGREED for i in range(N)]
    results, errors = await outcomes([lambda d=d: w.analyse(analyse(e2e, d)) for d in decisions])  # type: ignore[misc]
    assert set(errors) <= {MedAlreadyDecided.__name__}
    final = await w.repository.get_case(e2e)
    assert final is not None
    assert {r.case.status for r in results} == {final.status}
    assert len(results) == N // 2
    assert errors[MedAlreadyDecided.__name__] == N // 2
    hold = await w.ledger.lookup_transfers([final.hold_id_for(mule.id)])
    if final.status is CaseStatus.AGREED:
        assert [b.amount.cents for b in final.blocks] == [70_00]
        assert [h.amount for h in hold] == [70_00]
        assert await w.available(mule) == 0
    else:
        assert final.status is CaseStatus.DISAGREED
        assert final.blocks == ()
        assert hold == []  # the losing acceptances placed nothing
        assert await w.available(mule) == 70_00
    assert len(w.events(med_events.REPORT_ANALYSED)) == 1


async def test_the_same_returns_executed_by_many_callers_happen_once(med_world: MedWorld) -> None:
    w = med_world
    mule, second = await w.open_account("mule"), await w.open_account("second")
    payment = await w.incoming(mule, 100_00)
    w.clock.advance(minutes=1)
    await w.transfer(mule, second, 60_00)
    e2e = payment.end_to_end_id
    await report(w, e2e)
    await w.analyse(analyse(e2e))
    w.network.latency_seconds = 0.001  # the network answers while the others run
    total_before = await w.posted(mule) + await w.posted(second)
    request = RequestMedRefundCommand(
        end_to_end_id=e2e, amount=Money(90_00), requested_by=PEER_ISPB
    )
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: w.request_refund(request) for _ in range(N // 2)
    ] + [
        lambda: w.execute_returns(ExecuteMedReturnsCommand(end_to_end_id=e2e))
        for _ in range(N // 2)
    ]
    _results, errors = await outcomes(calls)
    assert not errors
    await w.execute_returns(ExecuteMedReturnsCommand(end_to_end_id=e2e))
    final = await w.repository.get_case(e2e)
    assert final is not None
    assert final.status is CaseStatus.CLOSED
    assert final.returned_amount == Money(90_00)
    assert sorted(o.return_id for o in w.network.returns) == sorted(
        r.return_id for r in final.returns
    )  # one pacs.004 per return, none twice
    total_after = await w.posted(mule) + await w.posted(second)
    assert total_before - total_after == 90_00  # what left the accounts is what was returned
    assert w.network.institutions[PEER_ISPB].accounts[0].balance_cents == -10_00
    assert await w.available(mule) + await w.available(second) == 10_00  # the rest released
    for ret in final.returns:
        assert await w.deps.ledger.status(ret.hold_id) is PendingStatus.POSTED
    recorded = await w.payments.get(e2e)
    assert recorded.refunded_amount == Money(90_00)
    assert len(recorded.refunds) == len(final.returns)
    assert len(w.events(med_events.RETURN_COMPLETED)) == len(final.returns)


async def test_concurrent_contestations_open_one_report(med_world: MedWorld) -> None:
    w = med_world
    victim, mule = await w.open_account("victim"), await w.open_account("mule")
    await w.deposit(victim, 40_00)
    payment = await w.on_us(victim, mule, 40_00)
    cmd = ContestPixPaymentCommand(
        owner_id="victim", end_to_end_id=payment.end_to_end_id, situation=FraudSituation.COERCION
    )
    results, errors = await outcomes([lambda: w.contest(cmd) for _ in range(N)])
    assert not errors
    assert len({r.case.report_id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert len(w.events(med_events.REPORT_OPENED)) == 1


async def test_a_contested_payment_to_another_bank_is_reported_through_the_directory(
    med_world: MedWorld,
) -> None:
    w = med_world
    victim = await w.open_account("victim")
    await w.deposit(victim, 70_00)
    payment = await w.outgoing(victim, 70_00)
    e2e = payment.end_to_end_id
    cmd = ContestPixPaymentCommand(
        owner_id="victim", end_to_end_id=e2e, situation=FraudSituation.ACCOUNT_TAKEOVER
    )
    first = await w.contest(cmd)
    again = await w.contest(cmd)
    assert first.case.side is MedSide.PAYER
    assert again.replayed
    assert again.case.report_id == first.case.report_id
    [sent] = w.directory.reports.values()
    assert (sent.end_to_end_id, sent.to_ispb, sent.report_id) == (
        e2e,
        PEER_ISPB,
        first.case.report_id,
    )
    with pytest.raises(MedNotAllowed):  # the receiving bank analyses it, not us
        await w.analyse(analyse(e2e))
    with pytest.raises(MedNotAllowed):
        await w.request_refund(RequestMedRefundCommand(end_to_end_id=e2e, requested_by="x"))


async def test_tracing_follows_the_money_no_further_than_the_configured_depth(
    med_world: MedWorld,
) -> None:
    w = med_world
    w.deps.rules = msgspec.structs.replace(w.deps.rules, trace_depth=2)
    chain = [await w.open_account(f"hop{i}") for i in range(4)]
    payment = await w.incoming(chain[0], 40_00)
    for source, target in itertools.pairwise(chain):
        w.clock.advance(seconds=30)
        await w.transfer(source, target, 40_00)  # each hop passes all of it on
    await report(w, payment.end_to_end_id)
    case = (await w.analyse(analyse(payment.end_to_end_id))).case
    assert case.blocks == ()  # hops 0..2 are empty; the money sits at hop 3, out of reach
    assert await w.available(chain[3]) == 40_00

    w.deps.rules = msgspec.structs.replace(w.deps.rules, trace_depth=3)
    second = await w.incoming(chain[0], 10_00)
    w.clock.advance(seconds=30)
    await w.transfer(chain[0], chain[1], 10_00)
    await report(w, second.end_to_end_id)
    traced = (await w.analyse(analyse(second.end_to_end_id))).case
    assert [(b.account_id, b.amount.cents, b.depth) for b in traced.blocks] == [
        (chain[1].id, 10_00, 1)
    ]


async def test_a_competing_refund_never_takes_the_payment_past_its_amount(
    med_world: MedWorld,
) -> None:
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 100_00)
    e2e = payment.end_to_end_id
    await report(w, e2e)
    await w.analyse(analyse(e2e))

    async def customer_refund(n: int) -> None:
        """Another writer of the payment's refunds (60.00 each), under the version it read."""
        for _ in range(20):
            current = await w.payments.get(e2e)
            refund = PixRefund(
                return_id=f"D99999999202603021300{n:011d}",
                client_refund_id=f"c{n}",
                amount=Money(60_00),
                nature=RefundNature.ORIGINAL,
                status=RefundStatus.EM_PROCESSAMENTO,
                requested_at=w.clock.now(),
                request_fingerprint="x",
            )
            try:
                updated = current.add_refund(refund)
            except PixRefundExceedsOriginal:
                return
            try:
                await w.payments.update(updated, current.version)
            except PixVersionConflict:
                continue
            return

    request = RequestMedRefundCommand(end_to_end_id=e2e, requested_by=PEER_ISPB)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda n=n: customer_refund(n) for n in range(N // 2)
    ] + [lambda: w.request_refund(request) for _ in range(N // 2)]
    _results, errors = await outcomes(calls)
    assert set(errors) <= {"PixRefundExceedsOriginal", "MedNotAllowed"}
    recorded = await w.payments.get(e2e)
    assert recorded.refunded_amount.cents <= 100_00
    case = await w.repository.get_case(e2e)
    assert case is not None
    med_refunds = sum(
        r.amount.cents for r in recorded.refunds if r.nature is RefundNature.MED_FRAUDE
    )
    assert med_refunds == sum(r.amount.cents for r in case.returns)


async def requested_while_the_spi_is_down(
    w: MedWorld,
) -> tuple[str, CustomerAccount, MedReturn, Callable[[], None]]:
    """25,00 received by a mule, reported, accepted and asked back while the SPI does not
    answer: its return recorded in progress and the money still held. The payment's id, the
    mule, the return, and what brings the SPI back."""
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 25_00)
    e2e = payment.end_to_end_id
    await report(w, e2e)
    await w.analyse(analyse(e2e))

    async def unreachable(order: ReturnOrder) -> NetworkResult:
        raise ServiceUnavailable("the SPI does not answer")

    sent = w.network.send_return
    w.network.send_return = unreachable  # type: ignore[method-assign]
    requested = await w.request_refund(
        RequestMedRefundCommand(end_to_end_id=e2e, requested_by=PEER_ISPB)
    )
    [pending] = requested.case.returns
    assert pending.status is RefundStatus.EM_PROCESSAMENTO  # recorded, not lost
    assert await w.available(mule) == 0  # still held

    def back_up() -> None:
        w.network.send_return = sent  # type: ignore[method-assign]

    return e2e, mule, pending, back_up


async def test_a_return_the_network_could_not_take_is_retried_after_its_lease(
    med_world: MedWorld,
) -> None:
    w = med_world
    e2e, mule, pending, back_up = await requested_while_the_spi_is_down(w)
    back_up()
    w.clock.advance(seconds=59)  # the first taker's lease still runs: nobody sends
    early = await w.execute_returns(ExecuteMedReturnsCommand(end_to_end_id=e2e))
    assert early.status is CaseStatus.REFUND_REQUESTED
    assert w.network.returns == []
    w.clock.advance(seconds=1)
    done = await w.execute_returns(ExecuteMedReturnsCommand(end_to_end_id=e2e))
    assert done.status is CaseStatus.CLOSED
    assert [o.return_id for o in w.network.returns] == [pending.return_id]
    assert await w.posted(mule) == 0


async def test_no_precautionary_block_once_the_case_holds_the_money(med_world: MedWorld) -> None:
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 30_00)
    await w.deposit(mule, 70_00)  # the mule's own money
    e2e = payment.end_to_end_id
    await report(w, e2e)
    await w.analyse(analyse(e2e))
    with pytest.raises(MedNotAllowed):
        await w.place_block(PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by="e"))
    assert await w.available(mule) == 70_00  # only the reported amount is held
