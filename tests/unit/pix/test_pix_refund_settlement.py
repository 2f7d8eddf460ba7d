"""Refunds settled by the worker: RefundPix stops at EM_PROCESSAMENTO, SettlePixRefund finishes.

The in-memory world of ``tests/pix_support.py``; the refund use cases are
built here with ``settle_inline=False``, as the local and aws profiles wire
them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from tests.pix_support import PEER_ISPB, PixWorld, build_world

from finbank_core.accounts.ledger import PendingStatus, TransferCode
from finbank_core.accounts.model import CustomerAccount
from finbank_core.accounts.use_cases import BankAccounts
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.errors import PixRefundNotFound
from finbank_core.pix.events import REFUND_COMPLETED, REFUND_FAILED, REFUND_REQUESTED
from finbank_core.pix.network import NetworkResult, PaymentOrder, ReturnOrder
from finbank_core.pix.refunds import RefundStatus
from finbank_core.pix.use_cases import (
    RefundPix,
    RefundPixCommand,
    RefundPixResult,
    SendPixCommand,
    SettlePixRefund,
    SettlePixRefundCommand,
)
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.money import Money


class UnreachableNetwork:
    """A network that cannot be reached; counts the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    async def send_payment(self, order: PaymentOrder) -> NetworkResult:
        self.attempts += 1
        raise ServiceUnavailable("the SPI is unreachable")

    async def send_return(self, order: ReturnOrder) -> NetworkResult:
        self.attempts += 1
        raise ServiceUnavailable("the SPI is unreachable")


@dataclass
class RefundWorld:
    world: PixWorld
    #: RefundPix as the local profile wires it: no settlement in the request
    request_refund: RefundPix
    settle_refund: SettlePixRefund


@pytest.fixture
async def rw() -> RefundWorld:
    world = await build_world()
    return RefundWorld(
        world=world,
        request_refund=world.refund_with(world.spi, settle_inline=False),
        settle_refund=world.settle_refund_with(world.spi),
    )


async def received(world: PixWorld, account: CustomerAccount, cents: int) -> str:
    """Banco Simulado pays ``account``; the EndToEndId of the credited payment."""
    order = world.spi.originate_payment(
        from_ispb=PEER_ISPB,
        from_account_number="123456-7",
        amount=Money(cents),
        to_branch=account.branch,
        to_account_number=account.number,
    )
    return (await world.receive(order)).payment.end_to_end_id


def refund_of(owner_id: str, e2e: str, cents: int, refund_id: str = "r1") -> RefundPixCommand:
    return RefundPixCommand(
        owner_id=owner_id, end_to_end_id=e2e, amount=Money(cents), client_refund_id=refund_id
    )


async def requested(rw: RefundWorld, owner_id: str, e2e: str, cents: int) -> RefundPixResult:
    result = await rw.request_refund(refund_of(owner_id, e2e, cents))
    assert result.refund.status is RefundStatus.EM_PROCESSAMENTO
    return result


async def test_without_inline_settlement_a_refund_stays_em_processamento_and_is_requested(
    rw: RefundWorld,
) -> None:
    world = rw.world
    ana = await world.open("ana", "Ana")
    e2e = await received(world, ana, 50_00)

    result = await rw.request_refund(refund_of("ana", e2e, 20_00))

    refund = result.refund
    assert refund.status is RefundStatus.EM_PROCESSAMENTO
    assert await world.steps.pending_status(refund.return_id) is PendingStatus.PENDING
    assert (await world.posted(ana.id), await world.available(ana.id)) == (50_00, 30_00)
    assert world.spi.returns == []  # nothing reached the network
    stored = await world.payments.get(e2e)
    assert stored.refund_by_return_id(refund.return_id) == refund
    assert stored.refunded_amount == Money(20_00)  # reserved against the original already
    [event] = world.publisher.of_type(REFUND_REQUESTED)
    assert event.aggregate_id == e2e
    assert (event.payload["return_id"], event.payload["status"]) == (
        refund.return_id,
        "EM_PROCESSAMENTO",
    )
    assert world.publisher.of_type(REFUND_COMPLETED) == []
    assert (await rw.request_refund(refund_of("ana", e2e, 20_00))).replayed
    await world.assert_ledger_balanced()


async def test_settling_returns_an_incoming_payment_through_the_network(rw: RefundWorld) -> None:
    world = rw.world
    ana = await world.open("ana", "Ana")
    e2e = await received(world, ana, 50_00)
    rtr = (await requested(rw, "ana", e2e, 20_00)).refund.return_id

    result = await rw.settle_refund(SettlePixRefundCommand(end_to_end_id=e2e, return_id=rtr))

    assert (result.refund.status, result.replayed) == (RefundStatus.DEVOLVIDO, False)
    assert result.refund.completed_at == world.clock.now()
    assert (await world.payments.get(e2e)).refund_by_return_id(rtr) == result.refund
    assert (await world.posted(ana.id), await world.available(ana.id)) == (30_00, 30_00)
    assert await world.posted(BankAccounts.PIX_SETTLEMENT) == -30_00
    [returned] = world.spi.returns
    assert (returned.return_id, returned.to_ispb, returned.reason) == (
        rtr,
        PEER_ISPB,
        IsoReason.MD06,
    )
    [completed] = world.publisher.of_type(REFUND_COMPLETED)
    assert (completed.payload["return_id"], completed.payload["status"]) == (rtr, "DEVOLVIDO")
    await world.assert_ledger_balanced()


async def test_settling_an_on_us_refund_credits_the_payer_back(rw: RefundWorld) -> None:
    world = rw.world
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    bia = await world.open("bia", "Bia")
    sent = await world.send(
        SendPixCommand(
            owner_id="ana",
            account_id=ana.id,
            idempotency_key="k",
            amount=Money(40_00),
            key=await world.evp(bia),
        )
    )
    e2e = sent.payment.end_to_end_id
    rtr = (await requested(rw, "bia", e2e, 40_00)).refund.return_id
    assert (await world.posted(ana.id), await world.available(bia.id)) == (60_00, 0)

    result = await rw.settle_refund(SettlePixRefundCommand(end_to_end_id=e2e, return_id=rtr))

    assert result.refund.status is RefundStatus.DEVOLVIDO
    assert (await world.posted(ana.id), await world.posted(bia.id)) == (100_00, 0)
    assert await world.posted(BankAccounts.PIX_SETTLEMENT) == 0
    assert world.spi.returns == []  # on-us never reaches the network
    assert len(world.publisher.of_type(REFUND_COMPLETED)) == 1
    await world.assert_ledger_balanced()


async def test_a_refund_the_network_rejects_is_nao_realizado_and_its_reservation_voided(
    rw: RefundWorld,
) -> None:
    world = rw.world
    ana = await world.open("ana", "Ana")
    e2e = await received(world, ana, 50_00)
    rtr = (await requested(rw, "ana", e2e, 50_00)).refund.return_id
    world.spi.timeout_seconds = 0.0  # every answer now times out (AB03), without waiting

    result = await rw.settle_refund(SettlePixRefundCommand(end_to_end_id=e2e, return_id=rtr))

    assert (result.refund.status, result.refund.failure_reason) == (
        RefundStatus.NAO_REALIZADO,
        IsoReason.AB03,
    )
    assert await world.steps.pending_status(rtr) is PendingStatus.VOIDED
    assert (await world.posted(ana.id), await world.available(ana.id)) == (50_00, 50_00)
    assert result.payment.refunded_amount == Money(0)  # the amount may be refunded again
    [failed] = world.publisher.of_type(REFUND_FAILED)
    assert (failed.payload["return_id"], failed.payload["failure_reason"]) == (rtr, "AB03")
    assert world.publisher.of_type(REFUND_COMPLETED) == []
    await world.assert_ledger_balanced()


async def test_settling_twice_moves_the_money_once_and_announces_it_once(rw: RefundWorld) -> None:
    world = rw.world
    ana = await world.open("ana", "Ana")
    e2e = await received(world, ana, 50_00)
    rtr = (await requested(rw, "ana", e2e, 20_00)).refund.return_id

    first = await rw.settle_refund(SettlePixRefundCommand(end_to_end_id=e2e, return_id=rtr))
    again = await rw.settle_refund(SettlePixRefundCommand(end_to_end_id=e2e, return_id=rtr))

    assert again.replayed
    assert (again.refund, again.payment) == (first.refund, first.payment)
    assert await world.posted(ana.id) == 30_00
    assert len(world.spi.returns) == 1
    # the replay re-announces the outcome (a crash may have eaten it) under the same id
    first_event, repeated = world.publisher.of_type(REFUND_COMPLETED)
    assert repeated.event_id == first_event.event_id
    assert len(world.publisher.applied(REFUND_COMPLETED)) == 1
    await world.assert_ledger_balanced()


async def test_a_run_that_lost_the_race_returns_the_recorded_outcome_and_no_new_event(
    rw: RefundWorld,
) -> None:
    world = rw.world
    ana = await world.open("ana", "Ana")
    e2e = await received(world, ana, 50_00)
    rtr = (await requested(rw, "ana", e2e, 20_00)).refund.return_id
    # a second worker read the payment, then the first one settled and recorded the refund
    stale = await world.payments.get(e2e)
    stale_refund = stale.refund_by_return_id(rtr)
    assert stale_refund is not None
    first = await rw.settle_refund(SettlePixRefundCommand(end_to_end_id=e2e, return_id=rtr))

    late = await rw.settle_refund.settle(stale, stale_refund)

    assert late.replayed
    assert late.refund == first.refund
    assert late.payment.version == first.payment.version
    assert await world.posted(ana.id) == 30_00
    assert len(world.spi.returns) == 1
    assert len(world.publisher.applied(REFUND_COMPLETED)) == 1
    await world.assert_ledger_balanced()


async def test_a_final_refund_is_returned_unchanged(rw: RefundWorld) -> None:
    world = rw.world
    ana = await world.open("ana", "Ana")
    e2e = await received(world, ana, 50_00)
    rtr = (await requested(rw, "ana", e2e, 50_00)).refund.return_id
    world.spi.timeout_seconds = 0.0
    failed = await rw.settle_refund(SettlePixRefundCommand(end_to_end_id=e2e, return_id=rtr))
    world.spi.timeout_seconds = None  # the network is fine again: it must not be asked

    again = await rw.settle_refund(SettlePixRefundCommand(end_to_end_id=e2e, return_id=rtr))

    assert again.replayed
    assert again.refund == failed.refund
    assert again.refund.status is RefundStatus.NAO_REALIZADO
    assert len(world.spi.returns) == 1
    assert len(world.publisher.of_type(REFUND_FAILED)) == 2  # re-announced...
    assert len(world.publisher.applied(REFUND_FAILED)) == 1  # ...under the same id
    assert await world.available(ana.id) == 50_00


async def test_a_replay_after_the_post_catches_up_without_asking_the_network(
    rw: RefundWorld,
) -> None:
    world = rw.world
    ana = await world.open("ana", "Ana")
    e2e = await received(world, ana, 50_00)
    rtr = (await requested(rw, "ana", e2e, 20_00)).refund.return_id
    # a worker posted the reservation and died before recording the refund
    await world.steps.post(rtr, TransferCode.PIX_REFUND_OUT, f"Devolução PIX {rtr}")

    result = await rw.settle_refund(SettlePixRefundCommand(end_to_end_id=e2e, return_id=rtr))

    assert result.refund.status is RefundStatus.DEVOLVIDO
    assert world.spi.returns == []
    assert await world.posted(ana.id) == 30_00
    assert len(world.publisher.of_type(REFUND_COMPLETED)) == 1
    await world.assert_ledger_balanced()


async def test_a_refund_whose_reservation_was_voided_fails_without_reaching_the_network(
    rw: RefundWorld,
) -> None:
    world = rw.world
    ana = await world.open("ana", "Ana")
    e2e = await received(world, ana, 50_00)
    rtr = (await requested(rw, "ana", e2e, 20_00)).refund.return_id
    await world.steps.void(rtr, TransferCode.PIX_REFUND_OUT)  # e.g. reconciliation

    result = await rw.settle_refund(SettlePixRefundCommand(end_to_end_id=e2e, return_id=rtr))

    assert (result.refund.status, result.refund.failure_reason) == (
        RefundStatus.NAO_REALIZADO,
        IsoReason.AB03,
    )
    assert world.spi.returns == []
    assert await world.available(ana.id) == 50_00


async def test_an_unreachable_network_propagates_and_leaves_the_refund_in_progress(
    rw: RefundWorld,
) -> None:
    world = rw.world
    ana = await world.open("ana", "Ana")
    e2e = await received(world, ana, 50_00)
    rtr = (await requested(rw, "ana", e2e, 20_00)).refund.return_id
    network = UnreachableNetwork()

    with pytest.raises(ServiceUnavailable):
        await world.settle_refund_with(network)(
            SettlePixRefundCommand(end_to_end_id=e2e, return_id=rtr)
        )

    assert network.attempts == 1
    refund = (await world.payments.get(e2e)).refund_by_return_id(rtr)
    assert refund is not None
    assert refund.status is RefundStatus.EM_PROCESSAMENTO
    assert await world.steps.pending_status(rtr) is PendingStatus.PENDING
    # the consumer runner retries: once the network is back the refund completes
    assert (
        await rw.settle_refund(SettlePixRefundCommand(end_to_end_id=e2e, return_id=rtr))
    ).refund.status is RefundStatus.DEVOLVIDO
    assert await world.posted(ana.id) == 30_00


async def test_inline_refund_with_the_network_down_answers_em_processamento(
    rw: RefundWorld,
) -> None:
    world = rw.world
    ana = await world.open("ana", "Ana")
    e2e = await received(world, ana, 50_00)

    result = await world.refund_with(UnreachableNetwork())(refund_of("ana", e2e, 20_00))

    assert result.refund.status is RefundStatus.EM_PROCESSAMENTO
    assert await world.available(ana.id) == 30_00
    assert len(world.publisher.of_type(REFUND_REQUESTED)) == 1


async def test_settling_an_unknown_refund_is_refund_not_found(rw: RefundWorld) -> None:
    world = rw.world
    ana = await world.open("ana", "Ana")
    e2e = await received(world, ana, 50_00)
    with pytest.raises(PixRefundNotFound):
        await rw.settle_refund(
            SettlePixRefundCommand(end_to_end_id=e2e, return_id=f"D{uuid.uuid4().hex}")
        )
