"""The sandbox's side of the directory's MED messages (``MedDirectory``).

Remembers every infraction report and refund request this bank sends,
once per report id (a repeat is dropped, as the directory does), so a test
or the demo can see what went out. The receiving bank's answers are not
simulated: a report we send stays open in the sandbox.
"""

from __future__ import annotations

from finbank_core.pix.med.ports import InfractionReportMessage, RefundRequestMessage


class SimulatedMedDirectory:
    """What the sandbox directory received from us (see the module docstring)."""

    def __init__(self) -> None:
        self.reports: dict[str, InfractionReportMessage] = {}
        self.refund_requests: dict[str, RefundRequestMessage] = {}

    async def send_infraction_report(self, message: InfractionReportMessage) -> None:
        self.reports.setdefault(message.report_id, message)

    async def send_refund_request(self, message: RefundRequestMessage) -> None:
        self.refund_requests.setdefault(message.report_id, message)
