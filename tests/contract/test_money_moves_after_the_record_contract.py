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

from collections import Counter
from collections.abc import Awaitable, Callable

import pytest

from finbank_core.accounts.model import CustomerAccount
from finbank_core.pix.med.model import BlockStatus, CaseStatus, HoldStatus
from finbank_core.pix.med.use_cases import (
    PlacePrecautionaryBlockCommand,
    ReleasePrecautionaryBlockCommand,
)
from finbank_core.pix.refunds import RefundStatus
from finbank_core.pix.use_cases.refund import RefundPixCommand
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


async def test_different_refunds_at_once_move_only_what_the_payment_records(
    med_world: MedWorld,
) -> None:
    # Each refund reserves the receiver's money before it is recorded under the
    # payment's version; a loser must void its reservation, so the ledger moves
    # exactly the refunds the payment lists, and nothing stays reserved.
    w = med_world
    payer, payee = await w.open_account("payer"), await w.open_account("payee")
    await w.deposit(payer, 100_00)
    await w.deposit(payee, 500_00)  # enough for every refund's reservation to go through
    e2e = (await w.on_us(payer, payee, 100_00)).end_to_end_id
    refund = w.refund_pix
    commands = [
        RefundPixCommand(
            owner_id="payee",
            end_to_end_id=e2e,
            amount=Money(cents),
            client_refund_id=f"refund-{n}",
        )
        for n, cents in enumerate([60_00, 60_00, 30_00, 30_00, 10_00, 10_00])
    ]

    _results, errors = await outcomes([lambda c=c: refund(c) for c in commands])  # type: ignore[misc]

    # A refund that reads the payment after others were recorded finds less room than it
    # asks (PixRefundExceedsOriginal); one that read it before loses the version race.
    # Which of the two depends on scheduling (PostgreSQL's answers arrive when they do).
    allowed = {"PixVersionConflict", "PixPaymentNotRefundable", "PixRefundExceedsOriginal"}
    assert set(errors) <= allowed, errors
    payment = await w.payments.get(e2e)
    returned = sum(r.amount.cents for r in payment.refunds if r.status is RefundStatus.DEVOLVIDO)
    assert {r.status for r in payment.refunds} <= {RefundStatus.DEVOLVIDO}
    assert 0 < returned <= 100_00
    assert await w.posted(payer) == returned  # credited what the payment says was returned
    assert await w.posted(payee) == 600_00 - returned
    assert await pending(w, payee) == 0  # no refused refund left its reservation


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


@pytest.mark.parametrize("block_first", [True, False], ids=["block-first", "analysis-first"])
async def test_a_block_placed_as_the_report_is_accepted_holds_once_what_moved_on(
    med_world: MedWorld, block_first: bool
) -> None:
    # The mule moved the 30,00 on to a second account, then got 10,00 of its own. A block
    # placed as the report is accepted holds those 10,00 at the mule; the case's tracer,
    # finding nothing free at the mule, follows the money and holds the 30,00 at the
    # second account. The case then holds all it asks for: the block must give way, or
    # the mule's own 10,00 stay held beside it.
    w = med_world
    mule, second = await w.open_account("mule"), await w.open_account("second")
    payment = await w.incoming(mule, 30_00)
    await w.transfer(mule, second, 30_00)
    await w.deposit(mule, 10_00)
    e2e = payment.end_to_end_id
    await report(w, e2e)
    place = PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by="engine")

    errors = await block_and_analyse_at_once(w, place, block_first)

    # the block finds the mule's 10,00 already held by the case: nothing to block
    assert set(errors) <= {"MedNotAllowed", "NothingToBlock"}, errors
    case = await w.repository.get_case(e2e)
    assert case is not None
    case_held = sum(b.amount.cents for b in case.blocks if b.status is HoldStatus.HELD)
    assert case_held == 30_00  # at the mule (the block's 10,00 moved in) and on at second
    block = await w.repository.get_block(e2e)
    block_held = (
        block.amount.cents if block is not None and block.status is BlockStatus.ACTIVE else 0
    )
    held = await pending(w, mule) + await pending(w, second)
    assert held == case_held + block_held  # the ledger holds what the records say
    assert held == 30_00, f"{w.backend}: case {case.blocks}, block {block}"
    assert await w.available(mule) + await w.available(second) == 10_00


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
