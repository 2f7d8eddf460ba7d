"""MED as the payer's bank through ``bank.pix.med`` and the sandbox network (memory profile).

Ana pays the sandbox's peer bank, contests the payment; the peer bank answers
through the sandbox directory and returns the money through the simulated
SPI; Ana's account is credited, the case closes, reconciliation sees the
return coming in.
"""

from __future__ import annotations

import pytest

from finbank import open_bank, provided
from finbank_adapters.reconciliation.pix_sources import _items_of
from finbank_adapters.sandbox import PEER_KEY_EMAIL, SimulatedSpi
from finbank_adapters.sandbox.dict_med import SimulatedMedDirectory
from finbank_core.accounts.use_cases import GetBalanceQuery, MoveCashCommand, OpenAccountCommand
from finbank_core.pix.med import CaseStatus, Decision, FraudSituation
from finbank_core.pix.med import events as med_events
from finbank_core.pix.med.use_cases import ContestPixPaymentCommand, MedViewQuery
from finbank_core.pix.network import NetworkResult, PaymentOrder, ReturnOrder
from finbank_core.pix.use_cases import GetPixPaymentQuery, SendPixCommand
from finbank_core.reconciliation.model import Direction
from finbank_core.shared.errors import NotFound, ServiceUnavailable
from finbank_core.shared.money import Money


async def test_the_peer_bank_accepts_and_returns_a_contested_payment() -> None:
    async with open_bank(profile="memory") as bank:
        ana = await bank.accounts.open(OpenAccountCommand(owner_id="ana", holder_name="Ana"))
        await bank.accounts.deposit(
            MoveCashCommand(
                account_id=ana.id, amount=Money(500_00), idempotency_key="d", operator_id="t"
            )
        )
        sent = await bank.pix.send(
            SendPixCommand(
                owner_id="ana",
                account_id=ana.id,
                idempotency_key="p1",
                amount=Money(300_00),
                key=PEER_KEY_EMAIL,
            )
        )
        e2e = sent.payment.end_to_end_id
        network = bank.container.pix().payment_network()
        assert isinstance(network, SimulatedSpi)
        peer = next(iter(network.institutions.values())).accounts[0]
        peer_before = peer.balance_cents
        with pytest.raises(NotFound):  # nothing reported yet: the peer has nothing to answer
            await bank.pix.med.simulate_peer_analysis(e2e, Decision.AGREED)

        await bank.pix.med.contest(
            ContestPixPaymentCommand(
                owner_id="ana", end_to_end_id=e2e, situation=FraudSituation.SCAM
            )
        )
        asked = await bank.pix.med.simulate_peer_analysis(e2e, Decision.AGREED)
        assert asked.status is CaseStatus.REFUND_REQUESTED
        directory = bank.container.pix_med().med_directory()
        assert isinstance(directory, SimulatedMedDirectory)
        assert [r.amount for r in directory.refund_requests.values()] == [Money(300_00)]

        closed = await bank.pix.med.simulate_peer_return(e2e, Money(300_00))
        assert closed.status is CaseStatus.CLOSED
        balance = await bank.accounts.balance(GetBalanceQuery(owner_id="ana", account_id=ana.id))
        assert balance.available == Money(500_00)
        assert peer.balance_cents == peer_before - 300_00  # the money left the peer's account
        [returned] = closed.returns
        assert [(i.key, i.direction) for i in network.settled if i.key == returned.return_id] == [
            (returned.return_id, Direction.IN)
        ]
        view = await bank.pix.med.view(MedViewQuery(end_to_end_id=e2e, owner_id="ana"))
        assert view.case is not None
        assert view.case.returned_amount == Money(300_00)
        payment = await bank.pix.get_payment(GetPixPaymentQuery(owner_id="ana", end_to_end_id=e2e))
        assert payment.refunded_amount == Money(300_00)
        [item] = [i for i in _items_of(payment) if i.key == returned.return_id]
        assert item.direction is Direction.IN  # reconciliation: the return came in
        published = bank.container.events().publisher().published
        assert [e.type for e in published].count(med_events.RETURN_RECEIVED) == 1


class _NetworkOfOurOwn:
    """An embedder's payment network: it answers, but it is not the sandbox's SPI."""

    async def send_payment(self, order: PaymentOrder) -> NetworkResult:
        raise ServiceUnavailable("not reached in this test")

    async def send_return(self, order: ReturnOrder) -> NetworkResult:
        raise ServiceUnavailable("not reached in this test")


async def test_the_sandbox_peer_cannot_return_money_over_a_network_that_is_not_the_sandbox() -> (
    None
):
    """The containers choose the sandbox's peer: with another network there is none."""
    async with open_bank(profile="memory", payment_network=_NetworkOfOurOwn()) as bank:
        assert await provided(bank.container.pix_med().peer_med_returns) is None
        with pytest.raises(NotFound, match="sandbox network is not in use"):
            await bank.pix.med.simulate_peer_return("E" + "0" * 31, Money(1_00))
        # the directory is still the sandbox's: its peer answers (nothing was reported yet)
        analyses = await provided(bank.container.pix_med().peer_med_analyses)
        assert isinstance(analyses, SimulatedMedDirectory)
        with pytest.raises(NotFound, match="no report was sent"):
            await bank.pix.med.simulate_peer_analysis("E" + "0" * 31, Decision.AGREED)


async def test_the_sandbox_peer_is_the_networks_own_simulated_spi() -> None:
    async with open_bank(profile="memory") as bank:
        returns = await provided(bank.container.pix_med().peer_med_returns)
        assert returns is await provided(bank.container.pix().payment_network)
        analyses = await provided(bank.container.pix_med().peer_med_analyses)
        assert analyses is await provided(bank.container.pix_med().med_directory)
