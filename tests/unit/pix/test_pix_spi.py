"""The simulated SPI: rules, institutions, timeouts and replays (no real waiting)."""

from __future__ import annotations

import asyncio

import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.sandbox import PEER_ACCOUNT_NUMBER, sandbox_peer
from finbank_adapters.sandbox.spi import SimulatedSpi
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.network import PaymentOrder
from finbank_core.pix.payments import Initiation, PixParty
from finbank_core.shared.money import Money

PEER = "88888888"


def order(
    n: int, cents: int = 10_00, number: str = PEER_ACCOUNT_NUMBER, ispb: str = PEER
) -> PaymentOrder:
    return PaymentOrder(
        end_to_end_id=f"E99999999202601051200{n:011d}",
        amount=Money(cents),
        payer=PixParty(ispb="99999999"),
        payee=PixParty(ispb=ispb, branch="0001", account_number=number),
        initiation=Initiation.MANUAL,
    )


@pytest.fixture
def spi() -> SimulatedSpi:
    return SimulatedSpi(FakeClock(), institutions=(sandbox_peer(PEER),))


async def test_accepts_and_credits_an_existing_account(spi: SimulatedSpi) -> None:
    before = spi.institutions[PEER].accounts[0].balance_cents
    result = await spi.send_payment(order(1))
    assert result.accepted
    assert spi.institutions[PEER].accounts[0].balance_cents == before + 10_00


@pytest.mark.parametrize(
    ("number", "ispb", "reason"),
    [
        ("000-0", PEER, IsoReason.AC03),
        ("765432-1", PEER, IsoReason.AC07),
        (PEER_ACCOUNT_NUMBER, "77777777", IsoReason.AC03),
    ],
)
async def test_rejects_unknown_or_closed_accounts(
    spi: SimulatedSpi, number: str, ispb: str, reason: IsoReason
) -> None:
    result = await spi.send_payment(order(1, number=number, ispb=ispb))
    assert (result.accepted, result.reason) == (False, reason)


async def test_rules_reject_by_amount_and_the_same_order_gets_the_same_answer(
    spi: SimulatedSpi,
) -> None:
    spi.reject_when(IsoReason.RR04, amount=Money(66_60))
    assert (await spi.send_payment(order(1, 66_60))).reason is IsoReason.RR04
    assert (await spi.send_payment(order(2, 66_61))).accepted
    spi.rules.clear()
    assert (await spi.send_payment(order(1, 66_60))).reason is IsoReason.RR04  # replayed answer
    assert len(spi.payments) == 2


async def test_latency_over_the_timeout_answers_ab03_after_waiting_the_timeout(
    spi: SimulatedSpi, monkeypatch: pytest.MonkeyPatch
) -> None:
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    spi.latency_seconds, spi.timeout_seconds = 0.5, 2.0
    assert (await spi.send_payment(order(1))).accepted
    spi.latency_seconds = 3.0
    assert (await spi.send_payment(order(2))).reason is IsoReason.AB03
    assert waited == [0.5, 2.0]
