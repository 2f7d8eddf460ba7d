"""``bank.pix.med``: precautionary blocks and MED (infraction reports, analysis, returns).

Customer-facing: :meth:`MedFacade.contest` (self-service contestation of a
PIX the customer paid) and :meth:`MedFacade.view` with the customer's
``owner_id``. The rest is the back office's and the network's: analysts
place and release blocks and analyse reports; reports and refund requests
from other banks arrive through :meth:`receive_report` and
:meth:`request_refund`. The rules and their sources: ``docs/pix-med.md``.
"""

from __future__ import annotations

from finbank._provided import provided
from finbank_adapters.containers import BankContainer
from finbank_core.pix.med import use_cases as uc
from finbank_core.pix.med.model import Decision, MedCase, MedView
from finbank_core.shared.errors import NotFound
from finbank_core.shared.inputs import checked_types
from finbank_core.shared.money import Money

__all__ = ["MedFacade"]


class MedFacade:
    """Precautionary blocks and MED: ``bank.pix.med``."""

    def __init__(self, container: BankContainer) -> None:
        self._c = container.pix_med()

    async def place_block(
        self, command: uc.PlacePrecautionaryBlockCommand
    ) -> uc.PrecautionaryBlockResult:
        """Hold an incoming PIX to a natural person's account (at most 72 h after the credit)."""
        return await (await provided(self._c.place_precautionary_block))(checked_types(command))

    async def release_block(
        self, command: uc.ReleasePrecautionaryBlockCommand
    ) -> uc.PrecautionaryBlockResult:
        """End a precautionary block early: the money is the customer's again."""
        return await (await provided(self._c.release_precautionary_block))(checked_types(command))

    async def contest(self, command: uc.ContestPixPaymentCommand) -> uc.InfractionReportResult:
        """The payer's self-service contestation: opens an infraction report."""
        return await (await provided(self._c.contest_pix_payment))(checked_types(command))

    async def receive_report(
        self, command: uc.ReceiveInfractionReportCommand
    ) -> uc.InfractionReportResult:
        """An infraction report from the payer's bank about a PIX we received."""
        return await (await provided(self._c.receive_infraction_report))(checked_types(command))

    async def analyse(self, command: uc.AnalyseInfractionReportCommand) -> uc.AnalysisResult:
        """Accept (block what is left, tracing it) or reject a report, within 7 days."""
        return await (await provided(self._c.analyse_infraction_report))(checked_types(command))

    async def request_refund(self, command: uc.RequestMedRefundCommand) -> uc.MedRefundResult:
        """The refund request of an accepted report; the returns are executed in the call."""
        return await (await provided(self._c.request_med_refund))(checked_types(command))

    async def execute_returns(self, command: uc.ExecuteMedReturnsCommand) -> MedCase:
        """Execute returns left in progress (a network that could not be reached)."""
        return await (await provided(self._c.execute_med_returns))(checked_types(command))

    async def receive_analysis(self, command: uc.ReceiveMedAnalysisCommand) -> MedCase:
        """The receiving bank's answer to a report we sent; on acceptance we ask the money back."""
        return await (await provided(self._c.receive_med_analysis))(checked_types(command))

    async def receive_return(self, command: uc.ReceiveMedReturnCommand) -> MedCase:
        """A return (pacs.004) of a reported payment we sent: our customer is credited."""
        return await (await provided(self._c.receive_med_return))(checked_types(command))

    async def simulate_peer_analysis(self, end_to_end_id: str, decision: Decision) -> MedCase:
        """Sandbox: the bank we paid answers the report we sent it."""
        peer = await provided(self._c.peer_med_analyses)
        if peer is None:
            raise NotFound("the sandbox directory is not in use")
        return await self.receive_analysis(peer.answer(end_to_end_id, decision))

    async def simulate_peer_return(
        self, end_to_end_id: str, amount: Money, *, final: bool = True
    ) -> MedCase:
        """Sandbox: the bank we paid returns (part of) a reported payment through the SPI."""
        network = await provided(self._c.peer_med_returns)
        if network is None:
            raise NotFound("the sandbox network is not in use")
        command = network.originate_med_return(
            original_end_to_end_id=end_to_end_id, amount=amount, final=final
        )
        return await self.receive_return(command)

    async def view(self, query: uc.MedViewQuery) -> MedView:
        """A payment's MED case and precautionary block, deadlines applied."""
        return await (await provided(self._c.get_med_view))(checked_types(query))

    async def sweep(self, command: uc.SweepMedCommand | None = None) -> uc.SweepMedResult:
        """One pass over what is due and nobody read: lapses, stopped returns, expired
        blocks (``finbank med sweep``; run it on a schedule, see ``docs/pix-med.md``)."""
        return await (await provided(self._c.sweep_med))(
            checked_types(command or uc.SweepMedCommand())
        )
