"""Two refund requests of one accepted MED case at once, on every backend (memory,
PostgreSQL, DynamoDB).

``RequestMedRefund`` writes the returns it plans into the payment's refunds
(nature ``MED_FRAUDE``) *before* it records them on the case under the
case's version. Two requests that read the case at the same version plan
the same rtrIds; only one records the case. Whatever the order, what the
two calls leave behind must agree: the case has the winner's returns once,
the payment's MED refunds are exactly those returns (not the loser's
amounts: they are the room left for the customer's own refunds), the
ledger moved the winner's amount only, and the winner's request asked
again answers the same case.

The interleaving is forced, the same on every backend: the loser reads the
case first and is held at its payment write (just before it, or just after
it) while the winner runs to its end; then the loser goes on. A third test
lets many requests run at once without a gate.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

import msgspec
import pytest

from finbank_core.accounts.ledger import PendingStatus
from finbank_core.accounts.model import CustomerAccount
from finbank_core.accounts.ports import Ledger
from finbank_core.accounts.use_cases import BankAccounts
from finbank_core.pix.errors import PixRefundExceedsOriginal
from finbank_core.pix.med import events as med_events
from finbank_core.pix.med.errors import MedRefundAlreadyRequested
from finbank_core.pix.med.ledger import MedLedger
from finbank_core.pix.med.model import CaseStatus, HoldStatus, MedCase
from finbank_core.pix.med.ports import MedRepository
from finbank_core.pix.med.use_cases import ExecuteMedReturnsCommand, RequestMedRefundCommand
from finbank_core.pix.med.use_cases.refund import CLAIM_LEASE, MedRefundResult
from finbank_core.pix.med.use_cases.view import MedViewQuery
from finbank_core.pix.payments import PixPayment
from finbank_core.pix.ports import PixPaymentRepository
from finbank_core.pix.refunds import RefundNature, RefundStatus
from finbank_core.pix.use_cases.refund import RefundPixCommand
from finbank_core.shared.money import Money
from tests.contract.test_pix_med_contract import analyse, report
from tests.integration.dynamo_support import serial_moto_endpoint
from tests.med_support import PEER_ISPB, MedWorld, med_world
from tests.pix_concurrency_support import outcomes

__all__ = ["med_world", "serial_moto_endpoint"]  # fixtures

PAID = 100_00
#: what the mule has of its own, for the customer refund after the race
OWN_MONEY = 100_00
SMALL, LARGE = Money(50_00), Money(90_00)  # both give each of the two blocks a share
#: the loser held just before its payment write (it lands after the winner has
#: finished) or just after it (the winner writes over it)
LOSER_WRITES = ["after_the_winner", "before_the_winner"]
GATE_TIMEOUT = 10.0


class HeldPayments:
    """The payment store, with the next ``update`` held at a gate, before or after it writes."""

    def __init__(self, target: PixPaymentRepository) -> None:
        self._target = target
        self._armed: tuple[str, asyncio.Event, asyncio.Event] | None = None

    def hold_next_update(self, loser_writes: str) -> tuple[asyncio.Event, asyncio.Event]:
        """Arm the gate: ``(reached, release)``, set when held, to set to go on."""
        reached, release = asyncio.Event(), asyncio.Event()
        self._armed = (loser_writes, reached, release)
        return reached, release

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    async def update(self, payment: PixPayment, expected_version: int) -> PixPayment:
        armed, self._armed = self._armed, None
        if armed is None:
            return await self._target.update(payment, expected_version)
        loser_writes, reached, release = armed
        if loser_writes == "after_the_winner":
            reached.set()
            await release.wait()
            return await self._target.update(payment, expected_version)
        written = await self._target.update(payment, expected_version)
        reached.set()
        await release.wait()
        return written


class Scene:
    """An accepted case: 100,00 received by the mule, 60,00 of it moved on to a second
    account, so the case holds 40,00 at the mule and 60,00 at the second account."""

    def __init__(self, w: MedWorld, e2e: str, mule: CustomerAccount, second: CustomerAccount):
        self.w = w
        self.e2e = e2e
        self.mule = mule
        self.second = second
        self.posted_before = 0

    async def posted(self) -> int:
        return await self.w.posted(self.mule) + await self.w.posted(self.second)

    async def available(self) -> int:
        return await self.w.available(self.mule) + await self.w.available(self.second)

    def request(self, amount: Money | None) -> RequestMedRefundCommand:
        return RequestMedRefundCommand(
            end_to_end_id=self.e2e, amount=amount, requested_by=PEER_ISPB
        )


async def reported_case(w: MedWorld) -> tuple[CustomerAccount, CustomerAccount, str]:
    """100,00 received by the mule, 60,00 of it moved on to a second account, and the
    payment reported: (mule, second, end-to-end id)."""
    mule, second = await w.open_account("mule"), await w.open_account("second")
    payment = await w.incoming(mule, PAID)
    w.clock.advance(minutes=1)
    await w.transfer(mule, second, 60_00)
    e2e = payment.end_to_end_id
    await report(w, e2e)
    return mule, second, e2e


async def accepted_case(w: MedWorld) -> Scene:
    mule, second, e2e = await reported_case(w)
    case = (await w.analyse(analyse(e2e))).case
    assert case.status is CaseStatus.AGREED
    assert sorted(b.amount.cents for b in case.blocks) == [40_00, 60_00]
    await w.deposit(mule, OWN_MONEY)  # after the tracer: the mule's own money, free
    scene = Scene(w, e2e, mule, second)
    scene.posted_before = await scene.posted()
    assert await scene.available() == OWN_MONEY
    return scene


def med_refunds(payment: PixPayment) -> list[tuple[str, Money]]:
    return sorted(
        (r.return_id, r.amount) for r in payment.refunds if r.nature is RefundNature.MED_FRAUDE
    )


def returns_of(case: MedCase) -> list[tuple[str, Money]]:
    return sorted((r.return_id, r.amount) for r in case.returns)


async def race(
    scene: Scene, winner: Money, loser: Money | None, loser_writes: str
) -> tuple[MedRefundResult, MedRefundResult | BaseException]:
    """The loser reads the case first and is held at its payment write while the
    winner's request runs to its end; then the loser goes on. Both outcomes."""
    w = scene.w
    gate = HeldPayments(w.deps.payments)
    w.deps.payments = cast(PixPaymentRepository, gate)
    try:
        reached, release = gate.hold_next_update(loser_writes)
        losing = asyncio.ensure_future(w.request_refund(scene.request(loser)))
        await asyncio.wait_for(reached.wait(), GATE_TIMEOUT)  # the loser read the case
        assert not losing.done()
        won = await w.request_refund(scene.request(winner))
        release.set()
        lost: MedRefundResult | BaseException
        try:
            lost = await asyncio.wait_for(losing, GATE_TIMEOUT)
        except Exception as error:  # the outcome is checked by the caller
            lost = error
    finally:
        w.deps.payments = gate._target
    return won, lost


async def assert_what_the_calls_left(scene: Scene, winner: Money) -> MedCase:
    """Points 2 to 4 of the contract, read straight from the stores (nothing re-synced)."""
    w = scene.w
    case = await w.repository.get_case(scene.e2e)
    assert case is not None
    # 2. the case's returns add up to the winner's amount, once
    assert case.requested_amount == winner
    assert case.status is CaseStatus.CLOSED
    assert sum(r.amount.cents for r in case.returns) == winner.cents
    assert {r.status for r in case.returns} == {RefundStatus.DEVOLVIDO}
    assert case.returned_amount == winner
    # 3. the payment's record agrees with the case (read as the two calls left it)
    payment = await w.payments.get(scene.e2e)
    assert med_refunds(payment) == returns_of(case), "the payment records other MED amounts"
    assert {
        r.return_id: r.status for r in payment.refunds if r.nature is RefundNature.MED_FRAUDE
    } == {r.return_id: r.status for r in case.returns}
    assert payment.refunded_amount == winner
    # 4. the ledger moved the winner's amount only
    assert scene.posted_before - await scene.posted() == winner.cents
    assert await scene.available() == OWN_MONEY + PAID - winner.cents  # the rest released
    for ret in case.returns:
        assert await w.deps.ledger.status(ret.hold_id) is PendingStatus.POSTED
    assert sorted(o.return_id for o in w.network.returns) == sorted(
        r.return_id for r in case.returns
    )  # one pacs.004 per return, none for the loser's plan
    assert sum(o.amount.cents for o in w.network.returns) == winner.cents
    peer = w.network.institutions[PEER_ISPB].accounts[0]
    assert peer.balance_cents == -PAID + winner.cents
    assert len(w.events(med_events.REFUND_REQUESTED)) == 1
    return case


async def assert_a_customer_refund_takes_only_the_rest(
    scene: Scene, winner: Money, *, released_to_mule: int = 0
) -> None:
    """``released_to_mule``: what of the mule's block the winner's return did not take."""
    w = scene.w
    rest = PAID - winner.cents
    refund = w.refund_pix

    def command(cents: int, n: int) -> RefundPixCommand:
        return RefundPixCommand(
            owner_id="mule",
            end_to_end_id=scene.e2e,
            amount=Money(cents),
            client_refund_id=f"customer-refund-{n}",
        )

    with pytest.raises(PixRefundExceedsOriginal):
        await refund(command(rest + 1, 1))
    done = await refund(command(rest, 2))
    assert done.refund.status is RefundStatus.DEVOLVIDO
    payment = await w.payments.get(scene.e2e)
    assert payment.refunded_amount == Money(PAID)
    assert w.network.institutions[PEER_ISPB].accounts[0].balance_cents == 0
    assert await w.available(scene.mule) == OWN_MONEY + released_to_mule - rest


async def assert_the_winner_replays(scene: Scene, winner: Money, case: MedCase) -> None:
    w = scene.w
    posted = await scene.posted()
    again = await w.request_refund(scene.request(winner))
    assert again.replayed
    assert again.case == case
    assert await w.repository.get_case(scene.e2e) == case
    assert returns_of(case) == med_refunds(await w.payments.get(scene.e2e))
    assert await scene.posted() == posted  # nothing moved again


@pytest.mark.parametrize("loser_writes", LOSER_WRITES)
@pytest.mark.parametrize(
    ("winner", "loser"), [(SMALL, LARGE), (LARGE, SMALL)], ids=["smaller_wins", "larger_wins"]
)
async def test_two_requests_with_different_amounts_at_once_leave_only_the_winners_returns(
    med_world: MedWorld, winner: Money, loser: Money, loser_writes: str
) -> None:
    scene = await accepted_case(med_world)

    won, lost = await race(scene, winner, loser, loser_writes)

    # 1. one succeeds, the other is refused naming the amount that was recorded
    assert not won.replayed
    assert isinstance(lost, MedRefundAlreadyRequested), lost
    assert lost.details == {"field": "amount", "requested_amount": winner.to_bcb()}
    case = await assert_what_the_calls_left(scene, winner)
    assert won.case == case
    await assert_a_customer_refund_takes_only_the_rest(scene, winner)
    # 5. the winner's request again answers the same case; the loser's is still refused
    await assert_the_winner_replays(scene, winner, case)
    with pytest.raises(MedRefundAlreadyRequested):
        await med_world.request_refund(scene.request(loser))


@pytest.mark.parametrize("loser_writes", LOSER_WRITES)
@pytest.mark.parametrize("loser", [LARGE, None], ids=["loser_asks_90", "loser_asks_all"])
async def test_a_winner_that_plans_fewer_returns_than_the_loser_leaves_none_of_the_losers(
    med_world: MedWorld, loser: Money | None, loser_writes: str
) -> None:
    # 30,00 gives the second block no share: the winner plans one return, the loser two.
    # The loser's second return id is none of the winner's, so writing the winner's
    # returns back over the loser's own did not remove it: it stayed in the payment,
    # in progress for good, and took 60,00 of room from the customer's own refunds.
    scene = await accepted_case(med_world)

    won, lost = await race(scene, THIRTY, loser, loser_writes)

    assert not won.replayed
    assert len(won.case.returns) == 1
    if loser is None:  # no amount: answered as the recorded request
        assert isinstance(lost, MedRefundResult), lost
        assert lost.replayed
    else:
        assert isinstance(lost, MedRefundAlreadyRequested), lost
    case = await assert_what_the_calls_left(scene, THIRTY)
    # the mule's block held 40,00 and returned 30,00: 10,00 of it is the mule's again
    await assert_a_customer_refund_takes_only_the_rest(scene, THIRTY, released_to_mule=10_00)
    await assert_the_winner_replays(scene, THIRTY, case)


class StopAtTheNextRead:
    """The case store; the next ``get_case`` raises :class:`Crash` (once armed)."""

    def __init__(self, target: MedRepository) -> None:
        self.target = target
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    async def get_case(self, end_to_end_id: str) -> MedCase | None:
        if self.armed:
            self.armed = False
            raise Crash("stopped before reading the case again")
        return await self.target.get_case(end_to_end_id)


async def test_a_loser_that_stops_before_writing_the_winners_returns_back_is_cleaned_by_a_read(
    med_world: MedWorld,
) -> None:
    # The loser's plan (two returns) lands in the payment after the winner's (one); the
    # loser stops before it re-reads the case to write the winner's returns back. The
    # next read of the recorded case removes the loser's extra return from the payment.
    w = med_world
    scene = await accepted_case(w)
    gate = HeldPayments(w.deps.payments)
    stop = StopAtTheNextRead(w.deps.repository)
    w.deps.payments = cast(PixPaymentRepository, gate)
    w.deps.repository = cast(MedRepository, stop)
    try:
        reached, release = gate.hold_next_update("after_the_winner")
        losing = asyncio.ensure_future(w.request_refund(scene.request(LARGE)))
        await asyncio.wait_for(reached.wait(), GATE_TIMEOUT)
        won = await w.request_refund(scene.request(THIRTY))
        stop.armed = True  # the loser's next read of the case, after it lost, stops it
        release.set()
        with pytest.raises(Crash):
            await asyncio.wait_for(losing, GATE_TIMEOUT)
    finally:
        w.deps.payments = gate._target
        w.deps.repository = stop.target
    assert len(won.case.returns) == 1
    left = await w.payments.get(scene.e2e)
    assert len(med_refunds(left)) == 2  # the loser's second return, in progress
    seen = await w.view(MedViewQuery(end_to_end_id=scene.e2e))
    assert seen.case is not None
    assert seen.case.status is CaseStatus.CLOSED
    case = await assert_what_the_calls_left(scene, THIRTY)
    await assert_a_customer_refund_takes_only_the_rest(scene, THIRTY, released_to_mule=10_00)
    await assert_the_winner_replays(scene, THIRTY, case)


@pytest.mark.parametrize("loser_writes", LOSER_WRITES)
async def test_two_requests_with_the_same_amount_at_once_return_it_once(
    med_world: MedWorld, loser_writes: str
) -> None:
    scene = await accepted_case(med_world)

    won, lost = await race(scene, SMALL, SMALL, loser_writes)

    assert not won.replayed
    assert isinstance(lost, MedRefundResult), lost
    assert lost.replayed  # answered as the recorded request
    case = await assert_what_the_calls_left(scene, SMALL)
    assert won.case == lost.case == case
    await assert_a_customer_refund_takes_only_the_rest(scene, SMALL)
    await assert_the_winner_replays(scene, SMALL, case)


async def test_many_requests_with_two_amounts_at_once_leave_only_the_winners_returns(
    med_world: MedWorld,
) -> None:
    scene = await accepted_case(med_world)
    amounts = [SMALL, LARGE] * 3

    results, errors = await outcomes(
        [lambda a=a: med_world.request_refund(scene.request(a)) for a in amounts]  # type: ignore[misc]
    )

    assert sum(not r.replayed for r in results) == 1, (results, errors)
    [winner] = {r.case.requested_amount for r in results}
    assert winner is not None
    assert len(results) == amounts.count(winner)  # the same amount: answered as a replay
    assert errors == {"MedRefundAlreadyRequested": len(amounts) - len(results)}
    case = await assert_what_the_calls_left(scene, winner)
    await assert_a_customer_refund_takes_only_the_rest(scene, winner)
    await assert_the_winner_replays(scene, winner, case)


# -- a block that gets no share of the request ------------------------------------------------

#: what the mule moved on to the second account (the second block, before the case held it)
MOVED_ON = 60_00
THIRTY = Money(30_00)  # the mule's block (40,00) takes it all: the second block gets nothing
#: (what the mule refunded its payer first, what the request asks: ``None`` = all that is left)
NO_SHARE_REQUESTS = [(0, THIRTY), (70_00, None), (PAID, None)]


class Crash(Exception):
    """The process stopped here (nothing in the use cases catches it)."""


class CrashingLedger:
    """The raw ledger, with its next call (any method) crashing once armed."""

    def __init__(self, target: Ledger) -> None:
        self._target = target
        self._armed = False
        self.crashes = 0

    def crash_next_call(self) -> None:
        self._armed = True

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self._armed:
                self._armed = False
                self.crashes += 1
                raise Crash(f"the process stopped before ledger.{name}")
            return await attribute(*args, **kwargs)

        return call


class CrashAfterTheRequestIsRecorded:
    """The case store: once ``update_case`` has stored the refund request, the next ledger
    call crashes (once)."""

    def __init__(self, target: MedRepository, ledger: CrashingLedger) -> None:
        self._target = target
        self._ledger = ledger
        self._fired = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    async def update_case(self, case: MedCase, expected_version: int) -> MedCase:
        stored = await self._target.update_case(case, expected_version)
        if stored.refund_requested_at is not None and not self._fired:
            self._fired = True
            self._ledger.crash_next_call()
        return stored


async def customer_refund(scene: Scene, cents: int) -> None:
    """The mule refunds its payer ``cents`` of the payment, from its own money."""
    if cents:
        done = await scene.w.refund_pix(
            RefundPixCommand(
                owner_id="mule",
                end_to_end_id=scene.e2e,
                amount=Money(cents),
                client_refund_id="customer-refund-first",
            )
        )
        assert done.refund.status is RefundStatus.DEVOLVIDO


class Balances(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the request may move, as the ledger and the network have it."""

    mule_posted: int
    mule_available: int
    second_posted: int
    second_available: int
    suspense_pending: int
    peer: int
    #: the pacs.004 sent so far, and what they add up to
    returns_sent: int
    returns_amount: int


async def balances(scene: Scene) -> Balances:
    w = scene.w
    [suspense] = await w.ledger.lookup_accounts([BankAccounts.SUSPENSE])
    return Balances(
        mule_posted=await w.posted(scene.mule),
        mule_available=await w.available(scene.mule),
        second_posted=await w.posted(scene.second),
        second_available=await w.available(scene.second),
        suspense_pending=suspense.credits_pending,
        peer=w.network.institutions[PEER_ISPB].accounts[0].balance_cents,
        returns_sent=len(w.network.returns),
        returns_amount=sum(o.amount.cents for o in w.network.returns),
    )


async def hold_statuses(scene: Scene, case: MedCase) -> dict[uuid.UUID, PendingStatus | None]:
    return {b.hold_id: await scene.w.deps.ledger.status(b.hold_id) for b in case.blocks}


async def assert_the_zero_share_hold_is_released(
    scene: Scene, before: Balances, returned: int, refunded_by_customer: int
) -> MedCase:
    """The case returned ``returned`` (all from the mule's 40,00); every block without a
    return is RELEASED with its ledger hold voided; the money is where it should be."""
    w = scene.w
    case = await w.repository.get_case(scene.e2e)
    assert case is not None
    assert case.status is CaseStatus.CLOSED
    assert case.returned_amount == Money(returned)
    blocks = {b.account_id: b for b in case.blocks}
    mule_block, second_block = blocks[scene.mule.id], blocks[scene.second.id]
    assert (mule_block.amount.cents, second_block.amount.cents) == (PAID - MOVED_ON, MOVED_ON)
    # the returns: the mule's block only, for what was asked
    assert [(r.account_id, r.amount, r.status) for r in case.returns] == (
        [(scene.mule.id, Money(returned), RefundStatus.DEVOLVIDO)] if returned else []
    )
    assert mule_block.status is (HoldStatus.RETURNED if returned else HoldStatus.RELEASED)
    assert second_block.status is HoldStatus.RELEASED
    # the ledger: the returned hold posted, every released one voided (nothing left held)
    assert await hold_statuses(scene, case) == {
        mule_block.hold_id: PendingStatus.POSTED if returned else PendingStatus.VOIDED,
        second_block.hold_id: PendingStatus.VOIDED,
    }, "a released block's hold is still pending on the ledger"
    after = await balances(scene)
    assert after.second_available == MOVED_ON, "the second account's money is still held"
    assert after.second_posted == before.second_posted  # nothing taken from it
    assert before.mule_posted - after.mule_posted == returned  # the mule moved only that
    # the rest of the mule's block is its own again
    assert after.mule_available == before.mule_available + (PAID - MOVED_ON) - returned
    # money conserved: what left the two accounts is what reached the payer's bank
    assert after.peer - before.peer == returned
    assert after.peer == -PAID + refunded_by_customer + returned
    assert after.returns_sent - before.returns_sent == (1 if returned else 0)
    assert after.returns_amount - before.returns_amount == returned
    assert after.suspense_pending == 0  # no hold of the case left pending
    payment = await w.payments.get(scene.e2e)
    assert payment.refunded_amount == Money(refunded_by_customer + returned)
    assert med_refunds(payment) == returns_of(case)
    return case


async def assert_a_replay_changes_nothing(scene: Scene, amount: Money | None) -> None:
    w = scene.w
    case = await w.repository.get_case(scene.e2e)
    assert case is not None
    before, holds = await balances(scene), await hold_statuses(scene, case)
    payment = await w.payments.get(scene.e2e)
    again = await w.request_refund(
        RequestMedRefundCommand(end_to_end_id=scene.e2e, amount=amount, requested_by=PEER_ISPB)
    )
    assert again.replayed
    assert again.case == case
    assert await w.repository.get_case(scene.e2e) == case
    assert await balances(scene) == before
    assert await hold_statuses(scene, case) == holds
    assert await w.payments.get(scene.e2e) == payment


@pytest.mark.parametrize(
    ("refunded_by_customer", "amount"),
    NO_SHARE_REQUESTS,
    ids=["thirty_asked", "unsaid_with_thirty_left", "unsaid_with_nothing_left"],
)
async def test_a_block_that_gets_no_share_of_the_request_has_its_hold_released(
    med_world: MedWorld, refunded_by_customer: int, amount: Money | None
) -> None:
    scene = await accepted_case(med_world)
    await customer_refund(scene, refunded_by_customer)
    assert await med_world.available(scene.second) == 0  # all of it held by the case
    before = await balances(scene)
    returned = amount.cents if amount is not None else PAID - refunded_by_customer
    assert returned < MOVED_ON  # the mule's block takes it all; the second gets nothing

    done = await med_world.request_refund(
        RequestMedRefundCommand(end_to_end_id=scene.e2e, amount=amount, requested_by=PEER_ISPB)
    )

    assert not done.replayed
    case = await assert_the_zero_share_hold_is_released(
        scene, before, returned, refunded_by_customer
    )
    assert done.case == case
    await assert_a_replay_changes_nothing(scene, amount)


async def replay_the_request(scene: Scene) -> None:
    again = await scene.w.request_refund(scene.request(THIRTY))
    assert again.replayed


async def execute_the_returns(scene: Scene) -> None:
    await scene.w.execute_returns(ExecuteMedReturnsCommand(end_to_end_id=scene.e2e))


RECOVERIES: dict[str, Callable[[Scene], Awaitable[None]]] = {
    "the_replay": replay_the_request,
    "execute_med_returns": execute_the_returns,
}


@pytest.mark.parametrize("recovery", list(RECOVERIES))
async def test_a_crash_after_the_case_records_the_request_leaves_the_released_hold_to_the_replay(
    med_world: MedWorld, recovery: str
) -> None:
    w = med_world
    scene = await accepted_case(w)
    before = await balances(scene)
    deps = w.deps
    repository, raw_ledger, ledger = deps.repository, deps.raw_ledger, deps.ledger
    crashing = CrashingLedger(raw_ledger)
    deps.raw_ledger = cast(Ledger, crashing)
    deps.ledger = MedLedger(cast(Ledger, crashing))
    deps.repository = cast(MedRepository, CrashAfterTheRequestIsRecorded(repository, crashing))
    try:
        with pytest.raises(Crash):
            await w.request_refund(scene.request(THIRTY))
    finally:
        deps.repository, deps.raw_ledger, deps.ledger = repository, raw_ledger, ledger
    assert crashing.crashes == 1
    recorded = await w.repository.get_case(scene.e2e)
    assert recorded is not None
    assert recorded.requested_amount == THIRTY  # the case has the request...
    [second_block] = [b for b in recorded.blocks if b.account_id == scene.second.id]
    assert second_block.status is HoldStatus.RELEASED
    # ...the ledger does not: the crash came before the void, the recovery has to do it
    assert await w.deps.ledger.status(second_block.hold_id) is PendingStatus.PENDING
    assert await w.available(scene.second) == 0
    # ...and whoever took its return to execute it has had its lease when the recovery runs
    w.clock.advance(seconds=CLAIM_LEASE.total_seconds())

    await RECOVERIES[recovery](scene)

    await assert_the_zero_share_hold_is_released(scene, before, THIRTY.cents, 0)
    await assert_a_replay_changes_nothing(scene, THIRTY)
