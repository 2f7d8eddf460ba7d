"""Money moves only for what the records accept, under calls at once, on every backend.

The shape hunted here (fixed once in ``ReceiveMedReturn``): a ledger step
(reserve, hold, credit, void) made before the version-checked write that
accepts it, whose losing path refuses or ends otherwise without undoing the
ledger step; or two different requests on one aggregate that both pass a
check read before either writes. Each test makes the competing calls at once
(memory through ``interleaved`` adapters, PostgreSQL and DynamoDB for real)
and checks the ledger against the records: what moved or is held is what
the records say, nothing is left reserved for a refused call.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, cast

import msgspec
import pytest

from finbank_core.accounts.ledger import PendingStatus
from finbank_core.accounts.model import CustomerAccount
from finbank_core.pix.errors import (
    PixPaymentNotRefundable,
    PixRefundExceedsOriginal,
    PixVersionConflict,
)
from finbank_core.pix.ledger_steps import PixLedgerSteps
from finbank_core.pix.med import events as med_events
from finbank_core.pix.med.model import (
    BlockStatus,
    CaseStatus,
    HoldStatus,
    MedCase,
    MedDue,
    PrecautionaryBlock,
    med_step_id,
    precautionary_hold_id,
)
from finbank_core.pix.med.ports import MedRepository
from finbank_core.pix.med.use_cases import (
    MedViewQuery,
    PlacePrecautionaryBlockCommand,
    ReleasePrecautionaryBlockCommand,
    SweepMed,
    SweepMedCommand,
)
from finbank_core.pix.payments import MAX_REFUNDS_PER_PAYMENT, PixPayment
from finbank_core.pix.ports import PixPaymentRepository
from finbank_core.pix.refunds import RefundStatus
from finbank_core.pix.use_cases.refund import RefundPix, RefundPixCommand
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.money import Money
from tests.contract.test_pix_med_contract import analyse, report
from tests.integration.dynamo_support import serial_moto_endpoint
from tests.med_support import MedWorld, med_world
from tests.pix_concurrency_support import outcomes

__all__ = ["med_world", "serial_moto_endpoint"]  # fixtures


async def pending(w: MedWorld, account: CustomerAccount) -> int:
    """What is held (reserved, pending) on the account: posted minus available."""
    return await w.posted(account) - await w.available(account)


# -- RefundPix: reserve, then the payment's version --------------------------------------


async def paid_100(w: MedWorld, payee_own: int) -> tuple[CustomerAccount, CustomerAccount, str]:
    """The payer and the payee (with ``payee_own`` of its own) and the EndToEndId of the
    R$ 100,00 on-us payment between them."""
    payer, payee = await w.open_account("payer"), await w.open_account("payee")
    await w.deposit(payer, 100_00)
    if payee_own:
        await w.deposit(payee, payee_own)
    return payer, payee, (await w.on_us(payer, payee, 100_00)).end_to_end_id


def refunds_of(e2e: str, amounts: list[int]) -> list[RefundPixCommand]:
    return [
        RefundPixCommand(
            owner_id="payee", end_to_end_id=e2e, amount=Money(cents), client_refund_id=f"r-{n}"
        )
        for n, cents in enumerate(amounts)
    ]


async def test_different_refunds_at_once_move_only_what_the_payment_records(
    med_world: MedWorld,
) -> None:
    # Each refund reserves the receiver's money before it is recorded under the
    # payment's version; a loser must void its reservation, so the ledger moves
    # exactly the refunds the payment lists, and nothing stays reserved. Without
    # claims nothing makes them take turns: a loser starts again on the payment as
    # it now is, so each is answered as it would be in turn.
    w = med_world
    # the payee's own R$ 500,00: enough for every refund's reservation to go through
    payer, payee, e2e = await paid_100(w, 500_00)
    refund = w.refund_pix
    commands = refunds_of(e2e, [60_00, 60_00, 30_00, 30_00, 10_00, 10_00])

    settled = await asyncio.gather(*(refund(c) for c in commands), return_exceptions=True)

    payment = await w.payments.get(e2e)
    returned = sum(r.amount.cents for r in payment.refunds if r.status is RefundStatus.DEVOLVIDO)
    assert {r.status for r in payment.refunds} <= {RefundStatus.DEVOLVIDO}
    assert 0 < returned <= 100_00
    for command, outcome in zip(commands, settled, strict=True):
        if isinstance(outcome, BaseException):
            # refused only for want of room, never for losing a write to another refund:
            # what it asked does not fit even in what is left at the end
            assert isinstance(outcome, PixRefundExceedsOriginal), repr(outcome)
            assert command.amount.cents > 100_00 - returned
        else:
            assert outcome.refund.status is RefundStatus.DEVOLVIDO
    assert await w.posted(payer) == returned  # credited what the payment says was returned
    assert await w.posted(payee) == 600_00 - returned
    assert await pending(w, payee) == 0  # no refused refund left its reservation


async def test_refunds_at_once_are_never_refused_for_money_another_one_holds(
    med_world: MedWorld,
) -> None:
    # The payee can pay back R$ 200,00 (R$ 100,00 of its own, the payment's R$ 100,00);
    # eight refunds of R$ 40,00 at once. In turn, two fit the payment and six exceed
    # it. Reserving beside each other, some used to find the money held by refunds
    # that then lost the payment's version, and were refused insufficient_funds
    # (with money left) or PixVersionConflict. With claims they take turns.
    w = med_world
    payer, payee, e2e = await paid_100(w, 100_00)
    refund = w.refund_pix_with_claims
    commands = refunds_of(e2e, [40_00] * 8)

    results, errors = await outcomes([lambda c=c: refund(c) for c in commands])  # type: ignore[misc]

    assert errors == Counter({"PixRefundExceedsOriginal": 6}), errors
    assert [r.refund.status for r in results] == [RefundStatus.DEVOLVIDO] * 2
    payment = await w.payments.get(e2e)
    assert sorted(r.client_refund_id for r in payment.refunds) == sorted(
        r.refund.client_refund_id for r in results
    )
    assert await w.posted(payer) == 80_00
    assert await w.posted(payee) == 120_00
    assert await pending(w, payee) == 0


class _ReadOnceAt:
    """``payments`` whose first ``get`` answers ``stale``: a caller that read the payment
    just before another refund of it was recorded."""

    def __init__(self, payments: Any, stale: PixPayment) -> None:
        self._payments = payments
        self._stale: PixPayment | None = stale

    def __getattr__(self, name: str) -> Any:
        return getattr(self._payments, name)

    async def get(self, end_to_end_id: str) -> PixPayment:
        stale, self._stale = self._stale, None
        return stale if stale is not None else await self._payments.get(end_to_end_id)


async def test_a_refund_refused_funds_while_another_was_recorded_is_answered_in_turn(
    med_world: MedWorld,
) -> None:
    # The payee holds only the payment's R$ 100,00. A refund of R$ 40,00 reads the
    # payment, then one of R$ 80,00 is recorded and paid back before the first one
    # reserves: its reservation finds R$ 20,00. In turn it exceeds what is left of
    # the payment; it must not be told insufficient_funds for the other's refund.
    w = med_world
    _payer, payee, e2e = await paid_100(w, 0)
    stale = await w.payments.get(e2e)
    first_command, late_command = refunds_of(e2e, [80_00, 40_00])
    first = await w.refund_pix(first_command)
    assert first.refund.status is RefundStatus.DEVOLVIDO
    late = RefundPix(
        ispb=w.deps.ispb,
        accounts=w.accounts,
        payments=cast(PixPaymentRepository, _ReadOnceAt(w.payments, stale)),
        steps=PixLedgerSteps(w.ledger),
        events=w.deps.events,
        clock=w.clock,
        ids=w.deps.ids,
        network=w.network,
    )

    with pytest.raises(PixRefundExceedsOriginal):
        await late(late_command)

    payment = await w.payments.get(e2e)
    assert [r.client_refund_id for r in payment.refunds] == [first_command.client_refund_id]
    assert await w.posted(payee) == 20_00
    assert await pending(w, payee) == 0


class _AnswerLost:
    """``payments`` whose next ``update`` is applied but answered ``PixVersionConflict``:
    a write whose answer was lost, found on the store's retry with the version it moved."""

    def __init__(self, payments: Any) -> None:
        self._payments = payments
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._payments, name)

    async def update(self, payment: PixPayment, expected_version: int) -> PixPayment:
        stored = await self._payments.update(payment, expected_version)
        if self.lost:
            return cast(PixPayment, stored)
        self.lost += 1
        raise PixVersionConflict()


async def test_a_refund_whose_recording_answer_was_lost_keeps_its_money_reserved(
    med_world: MedWorld,
) -> None:
    # The write went through but its caller was told the version had moved (by that
    # write itself). Voiding the reservation then left a recorded refund with nothing
    # reserved, which its settlement could only fail (AB03).
    w = med_world
    payer, payee, e2e = await paid_100(w, 0)
    [command] = refunds_of(e2e, [30_00])
    payments = _AnswerLost(w.payments)
    refund = RefundPix(
        ispb=w.deps.ispb,
        accounts=w.accounts,
        payments=cast(PixPaymentRepository, payments),
        steps=PixLedgerSteps(w.ledger),
        events=w.deps.events,
        clock=w.clock,
        ids=w.deps.ids,
        network=w.network,
    )

    answered = await refund(command)

    assert payments.lost == 1
    assert answered.refund.status is RefundStatus.DEVOLVIDO
    payment = await w.payments.get(e2e)
    assert [(r.client_refund_id, r.status) for r in payment.refunds] == [
        (command.client_refund_id, RefundStatus.DEVOLVIDO)
    ]
    assert await w.posted(payer) == 30_00
    assert await w.posted(payee) == 70_00
    assert await pending(w, payee) == 0


class _StoreDown:
    """``payments`` whose ``update`` fails as an unreachable store (or one refusing the
    item: DynamoDB's 400 KB) does."""

    def __init__(self, payments: Any) -> None:
        self._payments = payments

    def __getattr__(self, name: str) -> Any:
        return getattr(self._payments, name)

    async def update(self, payment: PixPayment, expected_version: int) -> PixPayment:
        raise ServiceUnavailable("the PIX store is down")


async def test_a_refund_the_store_cannot_record_gives_its_reservation_back(
    med_world: MedWorld,
) -> None:
    # On DynamoDB a payment's record past 400 KB made every further refund 503, each
    # leaving its reservation: the payee's money was held by refunds that did not exist.
    w = med_world
    _payer, payee, e2e = await paid_100(w, 0)
    [command] = refunds_of(e2e, [30_00])
    refund = RefundPix(
        ispb=w.deps.ispb,
        accounts=w.accounts,
        payments=cast(PixPaymentRepository, _StoreDown(w.payments)),
        steps=PixLedgerSteps(w.ledger),
        events=w.deps.events,
        clock=w.clock,
        ids=w.deps.ids,
        network=w.network,
    )

    for _ in range(3):  # the client retries a 503
        with pytest.raises(ServiceUnavailable):
            await refund(command)

    assert (await w.payments.get(e2e)).refunds == ()
    assert await w.posted(payee) == 100_00
    assert await pending(w, payee) == 0


async def test_a_payment_takes_at_most_its_cap_of_refunds(med_world: MedWorld) -> None:
    w = med_world
    _payer, payee, e2e = await paid_100(w, 0)
    refund = w.refund_pix
    for command in refunds_of(e2e, [1] * MAX_REFUNDS_PER_PAYMENT):
        assert (await refund(command)).refund.status is RefundStatus.DEVOLVIDO
    [one_more] = refunds_of(e2e, [1])
    one_more = msgspec.structs.replace(one_more, client_refund_id="one-more")

    with pytest.raises(PixPaymentNotRefundable):
        await refund(one_more)

    assert len((await w.payments.get(e2e)).refunds) == MAX_REFUNDS_PER_PAYMENT
    assert await w.posted(payee) == 100_00 - MAX_REFUNDS_PER_PAYMENT
    assert await pending(w, payee) == 0


# -- precautionary block and the case's holds ------------------------------------------


async def block_and_analyse_at_once(
    w: MedWorld, place: PlacePrecautionaryBlockCommand, block_first: bool
) -> Counter[str]:
    """The block placed and the report accepted at once; the errors, by name."""
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: w.place_block(place),
        lambda: w.analyse(analyse(place.end_to_end_id)),
    ]
    if not block_first:  # which of the two notices the other depends on who goes first
        calls.reverse()
    _results, errors = await outcomes(calls)
    return errors


@pytest.mark.parametrize("block_first", [True, False], ids=["block-first", "analysis-first"])
async def test_a_block_placed_as_the_report_is_accepted_holds_the_amount_once(
    med_world: MedWorld, block_first: bool
) -> None:
    # The block checks that the case holds nothing yet, the case's tracer that no
    # block is in force, each before the other writes. Sequentially the second is
    # refused or takes the first's hold over; at once both may hold the amount.
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 30_00)
    await w.deposit(mule, 70_00)  # the mule's own money: none of it may be held
    e2e = payment.end_to_end_id
    await report(w, e2e)
    place = PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by="engine")

    errors = await block_and_analyse_at_once(w, place, block_first)

    assert set(errors) <= {"MedNotAllowed"}, errors
    case = await w.repository.get_case(e2e)
    assert case is not None
    case_held = sum(b.amount.cents for b in case.blocks if b.status is HoldStatus.HELD)
    block = await w.repository.get_block(e2e)
    block_held = (
        block.amount.cents if block is not None and block.status is BlockStatus.ACTIVE else 0
    )
    assert case_held == 30_00
    held = await pending(w, mule)
    assert held == case_held + block_held  # the ledger holds what the records say
    assert held == 30_00, f"{w.backend}: case {case_held}, block {block_held}"
    assert await w.available(mule) == 70_00
    if block is not None:  # recorded: moved into the case, or given way to it
        assert block.status in (BlockStatus.KEPT_FOR_MED, BlockStatus.RELEASED), block
        if block.status is BlockStatus.RELEASED:
            assert block.resolution == "superseded_by_med", block
        again = await w.place_block(place)  # a later call answers as the record says
        assert (again.replayed, again.block.status) == (True, block.status)


@pytest.mark.parametrize("moved", [30_00, 20_00], ids=["all-moved-on", "two-thirds-moved-on"])
@pytest.mark.parametrize("block_first", [True, False], ids=["block-first", "analysis-first"])
async def test_a_block_placed_as_the_report_is_accepted_holds_once_what_moved_on(
    med_world: MedWorld, block_first: bool, moved: int
) -> None:
    # The mule moved ``moved`` of the 30,00 on to a second account, then got 10,00 of its
    # own. A block placed as the report is accepted holds what the mule has at the mule;
    # the case's tracer, finding nothing free at the mule, follows the money and holds
    # ``moved`` at the second account. The block must then hold only the rest of the
    # 30,00 (none when all moved on), or the mule's own 10,00 stay held beside the case.
    w = med_world
    mule, second = await w.open_account("mule"), await w.open_account("second")
    payment = await w.incoming(mule, 30_00)
    await w.transfer(mule, second, moved)
    await w.deposit(mule, 10_00)
    e2e = payment.end_to_end_id
    await report(w, e2e)
    place = PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by="engine")

    errors = await block_and_analyse_at_once(w, place, block_first)

    # the block finds what the mule has already held by the case: nothing to block
    assert set(errors) <= {"MedNotAllowed", "NothingToBlock"}, errors
    case = await w.repository.get_case(e2e)
    assert case is not None
    case_held = sum(b.amount.cents for b in case.blocks if b.status is HoldStatus.HELD)
    assert case_held >= moved  # on at the second account, and maybe at the mule
    block = await w.repository.get_block(e2e)
    block_held = (
        block.amount.cents if block is not None and block.status is BlockStatus.ACTIVE else 0
    )
    held = await pending(w, mule) + await pending(w, second)
    assert held == case_held + block_held  # the ledger holds what the records say
    assert held == 30_00, f"{w.backend}: case {case.blocks}, block {block}"
    assert await w.available(mule) + await w.available(second) == 10_00
    # a block that now holds less told its customer so, once, with the amount it keeps
    reduced = block is not None and block.hold_id != precautionary_hold_id(e2e)
    assert reduced_amounts(w, e2e) == ([block.amount.cents] if reduced and block else [])


def reduced_amounts(w: MedWorld, e2e: str) -> list[int]:
    """The amounts of ``e2e``'s distinct ``pix.med.block_reduced`` events."""
    seen = {
        event.event_id: event.payload["amount_cents"]
        for event in w.publisher.of_type(med_events.BLOCK_REDUCED)
        if event.aggregate_id == e2e
    }
    return list(seen.values())


class Crash(Exception):
    pass


class BlockUnseenByTheTracer:
    """The MED store as the race leaves it to the tracer: the block is not there until the
    case's holds are recorded (the tracer looked before the block was recorded); then the next
    block update, when armed, stops the caller (a crash) before it writes."""

    def __init__(self, target: MedRepository) -> None:
        self.target = target
        self.hidden = True
        self.crash_next_block_update = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    async def get_block(self, end_to_end_id: str) -> PrecautionaryBlock | None:
        return None if self.hidden else await self.target.get_block(end_to_end_id)

    async def update_case(self, case: MedCase, expected_version: int) -> MedCase:
        written = await self.target.update_case(case, expected_version)
        self.hidden = self.hidden and not written.blocks_applied  # the tracer's record
        return written

    async def update_block(
        self, block: PrecautionaryBlock, expected_version: int
    ) -> PrecautionaryBlock:
        if self.crash_next_block_update:
            self.crash_next_block_update = False
            raise Crash("stopped before the block's record")
        return await self.target.update_block(block, expected_version)


async def blocked_after_moving_on(
    w: MedWorld,
) -> tuple[
    CustomerAccount, CustomerAccount, str, PlacePrecautionaryBlockCommand, PrecautionaryBlock
]:
    """30,00 to a mule, 20,00 of it moved on to a second account, 10,00 of the mule's own
    deposited, the payment reported and blocked (20,00, what the mule has): the accounts,
    the payment's id, the placement and the block."""
    mule, second = await w.open_account("mule"), await w.open_account("second")
    payment = await w.incoming(mule, 30_00)
    await w.transfer(mule, second, 20_00)
    await w.deposit(mule, 10_00)
    e2e = payment.end_to_end_id
    await report(w, e2e)
    place = PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by="engine")
    placed = (await w.place_block(place)).block
    assert placed.amount == Money(20_00)
    return mule, second, e2e, place, placed


async def test_a_block_reduced_beside_its_case_is_recorded_by_the_next_reader_after_a_crash(
    med_world: MedWorld,
) -> None:
    # 20,00 of the 30,00 moved on; the block holds the 20,00 the mule has (10,00 of them
    # its own). The tracer, not seeing the block, holds the 20,00 at the second account;
    # the block is then reduced to the 10,00 the case does not hold, and the caller
    # stops between the ledger's move and the block's record.
    w = med_world
    mule, second, e2e, place, placed = await blocked_after_moving_on(w)
    store = BlockUnseenByTheTracer(w.deps.repository)
    w.deps.repository = cast(MedRepository, store)
    try:
        with pytest.raises(Crash):
            await w.analyse(analyse(e2e))
    finally:
        w.deps.repository = store.target
    first, smaller = placed.hold_id, med_step_id(placed.hold_id, "reduced")
    assert await w.deps.ledger.status(first) is PendingStatus.VOIDED
    assert await w.deps.ledger.status(smaller) is PendingStatus.PENDING
    assert await w.deps.ledger.held(smaller) == Money(10_00)
    recorded = await w.repository.get_block(e2e)
    assert recorded is not None
    assert recorded.hold_id == first  # the crash came before the record
    assert reduced_amounts(w, e2e) == []  # nor announced
    # the next reader records the reduction and announces it; the mule's own 10,00 are
    # free throughout
    again = await w.place_block(place)
    assert again.replayed
    assert (again.block.hold_id, again.block.amount) == (smaller, Money(10_00))
    assert reduced_amounts(w, e2e) == [10_00]
    # a crash that lost the event after the record: the next replay announces it again
    w.publisher.published.clear()
    assert (await w.place_block(place)).replayed
    assert reduced_amounts(w, e2e) == [10_00]
    assert again.block.status is BlockStatus.ACTIVE
    assert await w.repository.get_block(e2e) == again.block
    assert await pending(w, mule) == 10_00
    assert await pending(w, second) == 20_00
    assert await w.available(mule) == 10_00
    # and the analyst's release frees the reduced hold
    released = await w.release_block(
        ReleasePrecautionaryBlockCommand(end_to_end_id=e2e, released_by="analyst")
    )
    assert released.block.status is BlockStatus.RELEASED
    assert await pending(w, mule) == 0
    assert await w.available(mule) == 20_00


@pytest.mark.parametrize("reader", ["sweep", "view"])
async def test_a_reduction_whose_event_was_lost_is_announced_by_the_next_reader_or_sweep(
    med_world: MedWorld, reader: str
) -> None:
    # As above, but the caller stops after the reduction's record, before its event: the
    # record says the event is owed, so the sweeper lists the block at once and the next
    # reader (a sweep, or any view) announces it, once.
    w = med_world
    mule, _, e2e, _, _ = await blocked_after_moving_on(w)
    store = BlockUnseenByTheTracer(w.deps.repository)
    store.crash_next_block_update = False
    w.deps.repository = cast(MedRepository, store)
    publish = w.deps.publish_block

    async def lost(type: str, block: PrecautionaryBlock) -> None:
        if type == med_events.BLOCK_REDUCED:
            raise Crash("stopped before the event")
        await publish(type, block)

    w.deps.publish_block = lost  # type: ignore[method-assign]
    try:
        with pytest.raises(Crash):
            await w.analyse(analyse(e2e))
    finally:
        w.deps.repository = store.target
        w.deps.publish_block = publish  # type: ignore[method-assign]
    recorded = await w.repository.get_block(e2e)
    assert recorded is not None
    assert (recorded.amount, recorded.reduction_owed) == (Money(10_00), True)
    assert reduced_amounts(w, e2e) == []
    assert await w.repository.due_blocks(w.clock.now()) == [
        MedDue(recorded.blocked_at, e2e)  # at once, not at its deadline
    ]

    if reader == "sweep":
        swept = await SweepMed(w.deps)(SweepMedCommand())
        assert (swept.blocks, swept.failed_blocks) == (1, ())
    else:
        view = await w.view(MedViewQuery(end_to_end_id=e2e))
        assert view.block is not None
        assert view.block.reduction_owed is False
    assert reduced_amounts(w, e2e) == [10_00]
    announced = await w.repository.get_block(e2e)
    assert announced is not None
    assert (announced.status, announced.reduction_owed) == (BlockStatus.ACTIVE, False)
    # due again only at its deadline; another pass announces nothing more
    assert await w.repository.due_blocks(w.clock.now()) == []
    assert (await SweepMed(w.deps)(SweepMedCommand())).blocks == 0
    assert reduced_amounts(w, e2e) == [10_00]
    assert await w.available(mule) == 10_00  # the mule's own money stayed free


async def test_a_block_released_as_the_report_is_accepted_leaves_the_case_holding(
    med_world: MedWorld,
) -> None:
    # The release voids the block's hold before its version-checked write; the
    # tracer moves that hold into the case's before its own. Whichever wins, the
    # case must hold what its blocks say, and a refused release must not have
    # freed the case's money.
    w = med_world
    mule = await w.open_account("mule")
    payment = await w.incoming(mule, 40_00)
    await w.deposit(mule, 60_00)
    e2e = payment.end_to_end_id
    await w.place_block(PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by="engine"))
    w.clock.advance(hours=1)
    await report(w, e2e)
    release = ReleasePrecautionaryBlockCommand(end_to_end_id=e2e, released_by="analyst")
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: w.release_block(release),
        lambda: w.analyse(analyse(e2e)),
    ]

    _results, errors = await outcomes(calls)

    assert set(errors) <= {"MedNotAllowed"}, errors
    case = await w.repository.get_case(e2e)
    assert case is not None
    assert case.status is CaseStatus.AGREED
    case_held = sum(b.amount.cents for b in case.blocks if b.status is HoldStatus.HELD)
    block = await w.repository.get_block(e2e)
    assert block is not None
    assert block.status is not BlockStatus.ACTIVE
    if errors:  # the release was refused: the case kept the block's hold
        assert block.status is BlockStatus.KEPT_FOR_MED
    assert case_held == 40_00
    assert await pending(w, mule) == 40_00  # held once, by the case, as it records
    assert await w.available(mule) == 60_00
