"""The MED sweeper, on every backend (memory, PostgreSQL, DynamoDB): what nobody reads
is moved on all the same, once, whoever else reads it at the same time.

* The store lists what is due (``due_cases``, ``due_blocks``) from the first
  instant a reader would act, in time order, page by page, and forgets it once
  it is done; one microsecond earlier it is not listed.
* A pass lapses an accepted case nobody asked back (its holds voided: the
  money is the customers' again), finishes a payer-side return whose delivery
  stopped (credited once), executes a receiving-side return the network could
  not take (after its lease), and records an expired block released.
* Sweeps, views and redeliveries at once, in either order, move the money
  once and publish one event per step; an item that fails is named and stays
  due, and the others are swept.
* A refund request that stopped between writing the payment's refunds and
  recording them on the case leaves the case due ``REQUEST_LEASE`` later: a
  pass removes them then (not a microsecond before), and a new request,
  alone or racing the sweeps, returns the money once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, cast

import pytest

from finbank_core.accounts.ledger import PendingStatus
from finbank_core.pix.med import events as med_events
from finbank_core.pix.med import use_cases as med
from finbank_core.pix.med.model import (
    REQUEST_LEASE,
    BlockStatus,
    CaseStatus,
    MedCase,
    MedDue,
    PrecautionaryBlock,
)
from finbank_core.pix.med.ports import MedRepository
from finbank_core.pix.med.use_cases import ExecuteMedReturnsCommand, RequestMedRefundCommand
from finbank_core.pix.refunds import RefundStatus
from finbank_core.shared.errors import InvalidInput, ServiceUnavailable
from finbank_core.shared.money import Money
from tests.contract.test_pix_med_contract import requested_while_the_spi_is_down
from tests.contract.test_pix_med_lapse_races_contract import (
    Crash,
    HeldCases,
    assert_lapsed_and_free,
)
from tests.contract.test_pix_med_payer_side_races_contract import (
    STOPS,
    a_delivery_that_stops,
    returned_once,
)
from tests.contract.test_pix_med_recovery_contract import crashed_request
from tests.contract.test_pix_med_refund_request_races_contract import (
    Scene,
    accepted_case,
    med_refunds,
)
from tests.integration.dynamo_support import serial_moto_endpoint
from tests.med_support import PEER_ISPB, MedWorld, med_world
from tests.pix_concurrency_support import outcomes

__all__ = ["med_world", "serial_moto_endpoint"]  # fixtures

INSTANT = timedelta(microseconds=1)


def sweep(w: MedWorld, page_size: int = 100) -> Awaitable[med.SweepMedResult]:
    return med.SweepMed(w.deps)(med.SweepMedCommand(page_size=page_size))


async def a_block(w: MedWorld, owner: str, cents: int = 30_00) -> PrecautionaryBlock:
    holder = await w.open_account(owner)
    payment = await w.incoming(holder, cents)
    placed = await w.place_block(
        med.PlacePrecautionaryBlockCommand(end_to_end_id=payment.end_to_end_id, blocked_by="e")
    )
    return placed.block


async def accepted_with_deadline(w: MedWorld) -> tuple[Scene, datetime]:
    """:func:`accepted_case`, and the last instant its refund can be asked."""
    scene = await accepted_case(w)
    deadline = (await stored_case(w, scene.e2e)).refund_deadline
    assert deadline is not None
    return scene, deadline


async def stored_case(w: MedWorld, e2e: str) -> MedCase:
    case = await w.repository.get_case(e2e)
    assert case is not None
    return case


async def stored_block(w: MedWorld, e2e: str) -> PrecautionaryBlock:
    block = await w.repository.get_block(e2e)
    assert block is not None
    return block


async def walk(
    page: Callable[..., Awaitable[list[MedDue]]], until: datetime, limit: int
) -> list[MedDue]:
    """Every page of a due listing, ``limit`` at a time."""
    seen: list[MedDue] = []
    after: MedDue | None = None
    while due := await page(until, after=after, limit=limit):
        assert len(due) <= limit
        seen += due
        after = due[-1]
    return seen


# -- the store's listing ------------------------------------------------------------------


async def test_the_store_lists_a_case_from_the_first_instant_a_reader_would_lapse_it(
    med_world: MedWorld,
) -> None:
    w = med_world
    scene, deadline = await accepted_with_deadline(w)
    case = await stored_case(w, scene.e2e)
    due_at = deadline + INSTANT
    assert case.attention_at() == due_at
    assert not case.refund_lapsed(deadline)  # the deadline itself is in time
    assert case.refund_lapsed(due_at)

    assert await w.repository.due_cases(deadline) == []
    assert await w.repository.due_cases(due_at) == [MedDue(due_at, scene.e2e)]
    assert await w.repository.due_cases(due_at, after=MedDue(due_at, scene.e2e)) == []

    # asked back in time: nothing is due on it any more (its returns are done at once)
    await w.request_refund(RequestMedRefundCommand(end_to_end_id=scene.e2e, requested_by=PEER_ISPB))
    requested = await stored_case(w, scene.e2e)
    assert requested.attention_at() is None
    assert await w.repository.due_cases(due_at + timedelta(days=365)) == []


async def test_the_store_lists_active_blocks_by_deadline_page_by_page(
    med_world: MedWorld,
) -> None:
    w = med_world
    blocks = []
    for n in range(5):
        blocks.append(await a_block(w, f"holder{n}", 10_00 + n))
        if n % 2:
            w.clock.advance(minutes=1)  # two pairs placed at the same instant: ties by id
    expected = sorted(MedDue(b.expires_at, b.end_to_end_id) for b in blocks)
    first = expected[0].at
    last = expected[-1].at

    assert await w.repository.due_blocks(first - INSTANT) == []
    assert await w.repository.due_blocks(first) == [d for d in expected if d.at == first]
    for limit in (1, 2, 5, 100):
        assert await walk(w.repository.due_blocks, last, limit) == expected
    # a block released early leaves the listing
    await w.release_block(
        med.ReleasePrecautionaryBlockCommand(
            end_to_end_id=expected[2].end_to_end_id, released_by="ana"
        )
    )
    assert await walk(w.repository.due_blocks, last, 2) == expected[:2] + expected[3:]


# -- one pass -------------------------------------------------------------------------------


async def test_a_sweep_lapses_an_untouched_case_and_frees_the_money(med_world: MedWorld) -> None:
    w = med_world
    scene, deadline = await accepted_with_deadline(w)

    w.clock.set(deadline)
    nothing = await sweep(w)
    assert (nothing.cases, nothing.failed_cases) == (0, ())
    assert (await stored_case(w, scene.e2e)).status is CaseStatus.AGREED
    assert await scene.available() == scene.posted_before - 100_00  # still held

    w.clock.advance(microseconds=1)
    done = await sweep(w)
    assert (done.until, done.cases, done.failed_cases) == (w.clock.now(), 1, ())
    await assert_lapsed_and_free(scene)
    assert await w.repository.due_cases(w.clock.now() + timedelta(days=1)) == []
    again = await sweep(w)
    assert again.cases == 0
    await assert_lapsed_and_free(scene)  # one lapse event still


async def test_a_lapse_that_stopped_after_its_record_is_finished_by_the_sweep(
    med_world: MedWorld,
) -> None:
    # A reader recorded the lapse and stopped before voiding the holds: nobody reads
    # the case again. The case stays due until its holds are voided.
    w = med_world
    scene, deadline = await accepted_with_deadline(w)
    w.clock.set(deadline + INSTANT)
    cases = HeldCases(w.deps.repository)
    w.deps.repository = cast(MedRepository, cases)
    try:
        cases.crash_after_next_update()
        with pytest.raises(Crash):
            await w.view(med.MedViewQuery(end_to_end_id=scene.e2e))
    finally:
        w.deps.repository = cases.target
    stopped = await stored_case(w, scene.e2e)
    assert (stopped.status, stopped.lapse_finished) == (CaseStatus.LAPSED, False)
    assert await scene.available() == scene.posted_before - 100_00  # still held
    w.clock.advance(days=30)
    assert [d.end_to_end_id for d in await w.repository.due_cases(w.clock.now())] == [scene.e2e]

    done = await sweep(w)
    assert (done.cases, done.failed_cases) == (1, ())
    await assert_lapsed_and_free(scene)
    assert (await stored_case(w, scene.e2e)).lapse_finished
    assert await w.repository.due_cases(w.clock.now()) == []


@pytest.mark.parametrize("where", STOPS)
async def test_a_sweep_finishes_a_payer_return_whose_delivery_stopped(
    med_world: MedWorld, where: str
) -> None:
    w = med_world
    command, victim = await a_delivery_that_stops(w, where)
    e2e = command.end_to_end_id
    assert await w.repository.due_cases(w.clock.now()) != []

    done = await sweep(w)
    assert (done.cases, done.failed_cases) == (1, ())
    case = await stored_case(w, e2e)
    assert [r.status for r in case.returns] == [RefundStatus.DEVOLVIDO]
    assert case.returned_amount == Money(70_00)
    await returned_once(w, e2e, victim)
    assert (await sweep(w)).cases == 0
    # the network's late delivery is a replay
    assert await med.ReceiveMedReturn(w.deps)(command) == case
    await returned_once(w, e2e, victim)


async def test_a_sweep_executes_a_return_the_network_could_not_take_once_its_lease_ends(
    med_world: MedWorld,
) -> None:
    w = med_world
    e2e, mule, pending, back_up = await requested_while_the_spi_is_down(w)
    # still down at the next pass: named, left due, nothing sent
    w.clock.advance(seconds=60)
    down = await sweep(w)
    assert (down.cases, down.failed_cases) == (0, (e2e,))
    back_up()

    w.clock.advance(seconds=59)  # the last taker's lease still runs: nobody sends
    early = await sweep(w)
    assert early.failed_cases == ()
    assert w.network.returns == []
    assert (await stored_case(w, e2e)).status is CaseStatus.REFUND_REQUESTED
    w.clock.advance(seconds=1)
    await sweep(w)
    case = await stored_case(w, e2e)
    assert case.status is CaseStatus.CLOSED
    assert [o.return_id for o in w.network.returns] == [pending.return_id]
    assert await w.posted(mule) == 0
    assert case.attention_at() is None
    assert w.events(med_events.RETURN_COMPLETED) == [e2e]


async def test_a_sweep_records_an_expired_block_released_once(med_world: MedWorld) -> None:
    w = med_world
    block = await a_block(w, "holder")
    w.clock.set(block.expires_at - INSTANT)
    assert (await sweep(w)).blocks == 0
    assert (await stored_block(w, block.end_to_end_id)).status is BlockStatus.ACTIVE

    w.clock.set(block.expires_at)
    done = await sweep(w)
    assert (done.blocks, done.failed_blocks) == (1, ())
    released = await stored_block(w, block.end_to_end_id)
    assert (released.status, released.resolution) == (BlockStatus.RELEASED, "expired")
    assert released.resolved_at == block.expires_at
    # the ledger ended the hold at the deadline on its own: the money is free
    assert await w.deps.ledger.status(block.hold_id) is PendingStatus.EXPIRED
    assert await w.available(block.account_id) == 30_00
    assert (await sweep(w)).blocks == 0
    assert w.events(med_events.BLOCK_RELEASED) == [block.end_to_end_id]


@pytest.mark.parametrize("page_size", [0, -1, med.sweep.MAX_PAGE_SIZE + 1])
async def test_a_page_size_out_of_range_is_refused(med_world: MedWorld, page_size: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        await sweep(med_world, page_size)
    assert refused.value.details["field"] == "page_size"


@pytest.mark.parametrize("page_size", [1, med.sweep.MAX_PAGE_SIZE])
async def test_pages_of_one_and_of_the_most_sweep_every_item_once(
    med_world: MedWorld, page_size: int
) -> None:
    w = med_world
    blocks = [await a_block(w, f"holder{n}", 10_00 + n) for n in range(3)]
    w.clock.set(max(b.expires_at for b in blocks))
    done = await sweep(w, page_size)
    assert (done.blocks, done.failed_blocks) == (3, ())
    assert sorted(w.events(med_events.BLOCK_RELEASED)) == sorted(b.end_to_end_id for b in blocks)


# -- failures and races -----------------------------------------------------------------------


class FailingReads:
    """The case store, its reads of ``failing`` failing as an unreachable store does."""

    def __init__(self, target: MedRepository, failing: str) -> None:
        self.target = target
        self.failing = failing

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    async def get_case(self, end_to_end_id: str) -> MedCase | None:
        if end_to_end_id == self.failing:
            raise ServiceUnavailable("the store went away")
        return await self.target.get_case(end_to_end_id)


async def test_a_case_that_fails_is_named_and_stays_due_while_the_others_are_swept(
    med_world: MedWorld,
) -> None:
    w = med_world
    command, victim = await a_delivery_that_stops(w, "before the credit")
    stopped = command.end_to_end_id
    scene, deadline = await accepted_with_deadline(w)
    w.clock.set(deadline + INSTANT)

    w.deps.repository = cast(MedRepository, FailingReads(w.repository, stopped))
    try:
        first = await sweep(w)
    finally:
        w.deps.repository = w.repository
    assert (first.cases, first.failed_cases) == (1, (stopped,))
    await assert_lapsed_and_free(scene)
    assert await w.available(victim) == 0  # not credited yet, still due
    assert [d.end_to_end_id for d in await w.repository.due_cases(w.clock.now())] == [stopped]

    second = await sweep(w)
    assert (second.cases, second.failed_cases) == (1, ())
    await returned_once(w, stopped, victim)


ORDERS = ["sweeps first", "readers first"]


async def due_of_each_kind(w: MedWorld) -> tuple[Scene, str, Any, PrecautionaryBlock]:
    """A payer-side return whose delivery stopped before the credit, an accepted case
    nobody asks back and a precautionary block, with the clock past both deadlines."""
    command, victim = await a_delivery_that_stops(w, "before the credit")
    scene, deadline = await accepted_with_deadline(w)
    block = await a_block(w, "holder", 30_00)
    w.clock.set(max(deadline + INSTANT, block.expires_at))
    return scene, command.end_to_end_id, victim, block


@pytest.mark.parametrize("order", ORDERS)
async def test_sweeps_views_and_redeliveries_at_once_move_each_step_once(
    med_world: MedWorld, order: str
) -> None:
    w = med_world
    scene, stopped, victim, block = await due_of_each_kind(w)
    [taken] = (await stored_case(w, stopped)).returns
    redelivery = med.ReceiveMedReturnCommand(
        end_to_end_id=stopped,
        return_id=taken.return_id,
        amount=taken.amount,
        from_ispb=PEER_ISPB,
        final=True,
    )
    sweeps: list[Callable[[], Awaitable[object]]] = [lambda: sweep(w) for _ in range(4)]
    readers: list[Callable[[], Awaitable[object]]] = [
        *(
            lambda e2e=e2e: w.view(med.MedViewQuery(end_to_end_id=e2e))
            for e2e in (scene.e2e, stopped, block.end_to_end_id)
            for _ in range(2)
        ),
        lambda: med.ReceiveMedReturn(w.deps)(redelivery),
        lambda: w.execute_returns(ExecuteMedReturnsCommand(end_to_end_id=scene.e2e)),
    ]
    calls = sweeps + readers if order == "sweeps first" else readers + sweeps

    results, errors = await outcomes(calls)

    assert errors == {}, errors
    sweeps_done = [r for r in results if isinstance(r, med.SweepMedResult)]
    assert len(sweeps_done) == 4
    assert all(r.failed_cases == r.failed_blocks == () for r in sweeps_done)
    lapsed = await stored_case(w, scene.e2e)
    assert (lapsed.status, lapsed.returns) == (CaseStatus.LAPSED, ())
    assert [await w.deps.ledger.status(b.hold_id) for b in lapsed.blocks] == [
        PendingStatus.VOIDED
    ] * len(lapsed.blocks)
    assert await scene.available() == await scene.posted() == scene.posted_before
    assert w.events(med_events.CASE_LAPSED) == [scene.e2e]
    await returned_once(w, stopped, victim)  # credited once, one event
    released = await stored_block(w, block.end_to_end_id)
    assert released.status is BlockStatus.RELEASED
    assert w.events(med_events.BLOCK_RELEASED) == [block.end_to_end_id]
    assert await w.available(released.account_id) == 30_00
    # nothing is due any more, and another pass changes nothing
    assert await w.repository.due_cases(w.clock.now()) == []
    assert await w.repository.due_blocks(w.clock.now()) == []
    after = await sweep(w)
    assert (after.cases, after.blocks) == (0, 0)
    assert await w.available(victim) == 70_00


async def test_many_sweeps_at_once_over_many_due_items_lapse_and_release_each_once(
    med_world: MedWorld,
) -> None:
    w = med_world
    blocks = [await a_block(w, f"holder{n}", 1 + n * 1_00) for n in range(6)]
    w.clock.set(max(b.expires_at for b in blocks))
    results, errors = await outcomes([lambda: sweep(w, page_size=2) for _ in range(5)])
    assert errors == {}, errors
    assert sum(r.failed_blocks != () for r in results) == 0
    assert sorted(w.events(med_events.BLOCK_RELEASED)) == sorted(b.end_to_end_id for b in blocks)
    for b in blocks:
        stored = await stored_block(w, b.end_to_end_id)
        assert stored.status is BlockStatus.RELEASED
        assert await w.available(b.account_id) == b.amount.cents  # 0,01 to 5,01: all free
    assert await w.repository.due_blocks(w.clock.now()) == []


# -- a refund request that stopped before its record ---------------------------------------


async def stopped_request(w: MedWorld) -> tuple[Scene, datetime]:
    """An accepted case (100,00 held on two accounts) whose refund request wrote the
    payment's refunds and stopped before recording them; when its mark falls due."""
    scene = await accepted_case(w)
    await crashed_request(w, scene.e2e, 100_00)
    case = await stored_case(w, scene.e2e)
    assert case.request_started_at == w.clock.now()  # the request's own mark
    assert case.attention_at() == w.clock.now() + REQUEST_LEASE
    return scene, w.clock.now() + REQUEST_LEASE


async def test_a_sweep_removes_what_a_stopped_request_left_once_its_lease_is_over(
    med_world: MedWorld,
) -> None:
    w = med_world
    scene, due_at = await stopped_request(w)
    assert len(med_refunds(await w.payments.get(scene.e2e))) == 2
    assert [d.end_to_end_id for d in await w.repository.due_cases(due_at)] == [scene.e2e]
    assert await w.repository.due_cases(due_at - INSTANT) == []
    w.clock.set(due_at - INSTANT)  # the request may still be under way: left alone
    assert (await sweep(w)).cases == 0
    assert len(med_refunds(await w.payments.get(scene.e2e))) == 2

    w.clock.set(due_at)
    done = await sweep(w)

    assert (done.cases, done.failed_cases) == (1, ())
    assert (await w.payments.get(scene.e2e)).refunds == ()
    case = await stored_case(w, scene.e2e)
    assert (case.status, case.request_started_at) == (CaseStatus.AGREED, None)
    assert case.refund_deadline is not None
    assert case.attention_at() == case.refund_deadline + INSTANT  # only its lapse now
    assert await w.repository.due_cases(w.clock.now()) == []
    assert (await sweep(w)).cases == 0
    assert await scene.posted() == scene.posted_before  # the money never moved
    # the payer's bank asks again: all of it goes back, once
    again = await w.request_refund(scene.request(None))
    assert again.case.status is CaseStatus.CLOSED
    assert again.case.returned_amount == Money(100_00)
    assert sum(o.amount.cents for o in w.network.returns) == 100_00
    payment = await w.payments.get(scene.e2e)
    assert {r.status for r in payment.refunds} == {RefundStatus.DEVOLVIDO}
    assert payment.refunded_amount == Money(100_00)


async def test_a_later_stopped_request_under_a_young_mark_moves_the_mark_to_its_refunds(
    med_world: MedWorld,
) -> None:
    w = med_world
    scene, first_due = await stopped_request(w)
    w.clock.set(first_due - timedelta(seconds=40))  # the mark is 20 s old: it covers us
    await crashed_request(w, scene.e2e, 100_00)  # the same rtrIds, written again now
    second_written = w.clock.now()
    assert (await stored_case(w, scene.e2e)).request_started_at == first_due - REQUEST_LEASE

    w.clock.set(first_due)
    done = await sweep(w)

    # the first mark is due, but the refunds are the second request's now: too young
    assert (done.cases, done.failed_cases) == (1, ())
    assert len(med_refunds(await w.payments.get(scene.e2e))) == 2
    case = await stored_case(w, scene.e2e)
    assert case.request_started_at == second_written
    assert await w.repository.due_cases(second_written + REQUEST_LEASE - INSTANT) == []
    w.clock.set(second_written + REQUEST_LEASE)
    assert (await sweep(w)).cases == 1
    assert (await w.payments.get(scene.e2e)).refunds == ()
    assert (await stored_case(w, scene.e2e)).request_started_at is None


async def test_a_request_marks_the_case_again_once_the_mark_is_half_a_lease_old(
    med_world: MedWorld,
) -> None:
    w = med_world
    scene, first_due = await stopped_request(w)
    first = first_due - REQUEST_LEASE
    w.clock.set(first + REQUEST_LEASE / 2 - INSTANT)
    await crashed_request(w, scene.e2e, 100_00)
    assert (await stored_case(w, scene.e2e)).request_started_at == first  # covered
    w.clock.set(first + REQUEST_LEASE / 2)
    await crashed_request(w, scene.e2e, 100_00)
    renewed = await stored_case(w, scene.e2e)
    assert renewed.request_started_at == w.clock.now()  # its own: an older one may go
    assert renewed.attention_at() == w.clock.now() + REQUEST_LEASE


@pytest.mark.parametrize("order", ORDERS)
async def test_sweeps_views_and_a_new_request_at_once_return_the_money_once(
    med_world: MedWorld, order: str
) -> None:
    w = med_world
    scene, due_at = await stopped_request(w)
    w.clock.set(due_at)
    sweeps: list[Callable[[], Awaitable[object]]] = [lambda: sweep(w) for _ in range(3)]
    readers: list[Callable[[], Awaitable[object]]] = [
        lambda: w.view(med.MedViewQuery(end_to_end_id=scene.e2e)),
        lambda: w.view(med.MedViewQuery(end_to_end_id=scene.e2e)),
        lambda: w.request_refund(scene.request(Money(70_00))),
    ]
    calls = sweeps + readers if order == "sweeps first" else readers + sweeps

    results, errors = await outcomes(calls)

    assert errors == {}, errors
    assert all(r.failed_cases == () for r in results if isinstance(r, med.SweepMedResult))
    case = await stored_case(w, scene.e2e)
    assert case.status is CaseStatus.CLOSED
    assert case.returned_amount == Money(70_00)
    # the payment holds exactly the recorded returns, each once, returned
    payment = await w.payments.get(scene.e2e)
    assert med_refunds(payment) == sorted((r.return_id, r.amount) for r in case.returns)
    assert {r.status for r in payment.refunds} == {RefundStatus.DEVOLVIDO}
    assert payment.refunded_amount == Money(70_00)
    assert sum(o.amount.cents for o in w.network.returns) == 70_00
    assert w.events(med_events.REFUND_REQUESTED) == [scene.e2e]
    # the 30,00 not asked back is the customers' again; nothing is due any more
    assert await scene.posted() == scene.posted_before - 70_00
    assert await scene.available() == await scene.posted()
    assert await w.repository.due_cases(w.clock.now()) == []
