"""The simulated SPI under concurrent sends of one order: one decision, money moved once."""

from __future__ import annotations

import asyncio

from finbank_adapters.memory import FakeClock
from finbank_adapters.sandbox import PEER_ACCOUNT_NUMBER, sandbox_peer
from finbank_adapters.sandbox.spi import SimulatedSpi
from finbank_core.pix.network import PaymentOrder, ReturnOrder
from finbank_core.pix.payments import Initiation, PixParty
from finbank_core.pix.refunds import RefundNature
from finbank_core.shared.money import Money

PEER = "88888888"
CALLERS = 20


def payment_order() -> PaymentOrder:
    return PaymentOrder(
        end_to_end_id="E99999999202601051200000000001",
        amount=Money(10_00),
        payer=PixParty(ispb="99999999"),
        payee=PixParty(ispb=PEER, branch="0001", account_number=PEER_ACCOUNT_NUMBER),
        initiation=Initiation.MANUAL,
    )


def network() -> SimulatedSpi:
    # a latency makes every send wait inside its decision: the window a duplicate used to slip in
    return SimulatedSpi(FakeClock(), institutions=(sandbox_peer(PEER),), latency_seconds=0.001)


async def test_concurrent_sends_of_one_payment_are_decided_and_credited_once() -> None:
    spi = network()
    account = spi.institutions[PEER].accounts[0]
    before = account.balance_cents
    results = await asyncio.gather(*(spi.send_payment(payment_order()) for _ in range(CALLERS)))
    assert all(result.accepted for result in results)
    assert len({result.settled_at for result in results}) == 1  # the one answer, to everyone
    assert len(spi.payments) == 1
    assert account.balance_cents == before + 10_00
    assert [item.key for item in spi.settled] == [payment_order().end_to_end_id]


async def test_concurrent_sends_of_one_return_give_the_money_back_once() -> None:
    spi = network()
    incoming = spi.originate_payment(
        from_ispb=PEER, from_account_number=PEER_ACCOUNT_NUMBER, amount=Money(50_00), to_key="k"
    )
    account = spi.institutions[PEER].accounts[0]
    before = account.balance_cents
    order = ReturnOrder(
        return_id="D99999999202601051200000000001",
        original_end_to_end_id=incoming.end_to_end_id,
        amount=Money(20_00),
        nature=RefundNature.MED_FRAUDE,
        to_ispb=PEER,
    )
    results = await asyncio.gather(*(spi.send_return(order) for _ in range(CALLERS)))
    assert all(result.accepted for result in results)
    assert len(spi.returns) == 1
    assert account.balance_cents == before + 20_00
    assert [item.key for item in spi.settled].count(order.return_id) == 1


async def test_different_orders_are_not_held_behind_one_another() -> None:
    spi = network()
    orders = [
        PaymentOrder(
            end_to_end_id=f"E99999999202601051200{n:011d}",
            amount=Money(1_00),
            payer=PixParty(ispb="99999999"),
            payee=PixParty(ispb=PEER, branch="0001", account_number=PEER_ACCOUNT_NUMBER),
            initiation=Initiation.MANUAL,
        )
        for n in range(5)
    ]
    results = await asyncio.gather(*(spi.send_payment(o) for o in orders * 2))
    assert all(result.accepted for result in results)
    assert sorted(o.end_to_end_id for o in spi.payments) == sorted(o.end_to_end_id for o in orders)
