"""The sandbox's side of the directory's MED messages (``MedDirectory``).

Remembers every infraction report and refund request this bank sends,
once per report id (a repeat is dropped, as the directory does), so a test
or the demo can see what went out. :meth:`SimulatedMedDirectory.answer`
is the receiving bank's analysis of a report we sent, as the directory
delivers it (the receiving bank's returns come through the simulated SPI:
``SimulatedSpi.originate_med_return``).
"""

from __future__ import annotations

from finbank_core.pix.med.model import Decision
from finbank_core.pix.med.ports import InfractionReportMessage, RefundRequestMessage
from finbank_core.pix.med.use_cases.payer import ReceiveMedAnalysisCommand
from finbank_core.shared.errors import NotFound


class SimulatedMedDirectory:
    """What the sandbox directory received from us (see the module docstring)."""

    def __init__(self) -> None:
        self.reports: dict[str, InfractionReportMessage] = {}
        self.refund_requests: dict[str, RefundRequestMessage] = {}

    async def send_infraction_report(self, message: InfractionReportMessage) -> None:
        self.reports.setdefault(message.report_id, message)

    async def send_refund_request(self, message: RefundRequestMessage) -> None:
        self.refund_requests.setdefault(message.report_id, message)

    def answer(self, end_to_end_id: str, decision: Decision) -> ReceiveMedAnalysisCommand:
        """The receiving bank's analysis of the report we sent on ``end_to_end_id``."""
        sent = next((r for r in self.reports.values() if r.end_to_end_id == end_to_end_id), None)
        if sent is None:
            raise NotFound("no report was sent on this payment")
        return ReceiveMedAnalysisCommand(
            end_to_end_id=end_to_end_id,
            report_id=sent.report_id,
            decision=decision,
            analysed_by=sent.to_ispb,
        )
