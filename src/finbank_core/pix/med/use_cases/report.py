"""Infraction reports: a customer's self-service contestation, and a report another bank sends.

* :class:`ContestPixPayment`: our customer says a PIX they paid was a
  fraud (self-service, no human in between). We open the report as the
  payer's bank: sent to the receiving bank through the directory
  (``MedDirectory``) when the payee is elsewhere (side ``PAYER``), or kept
  here for our own analysis when the payee is ours too (side ``ON_US``).
* :class:`ReceiveInfractionReport`: another bank reports a PIX one of our
  customers received from its customer (side ``RECEIVER``); we analyse it
  (:mod:`.analysis`).

Either way only within ``MedRules.report_window_days`` after the payment
(``MedDeadlinePassed`` after), one case per payment.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from finbank_core.pix.errors import PixPaymentNotFound
from finbank_core.pix.med import events as med_events
from finbank_core.pix.med.errors import MedCaseAlreadyExists, MedDeadlinePassed, MedNotAllowed
from finbank_core.pix.med.model import CaseStatus, FraudSituation, MedCase, MedSide
from finbank_core.pix.med.ports import InfractionReportMessage
from finbank_core.pix.med.use_cases.common import MedDeps
from finbank_core.pix.payments import PaymentStatus, PixFlow, PixPayment
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.inputs import check_lookup_id, check_text, checked_enums


class ContestPixPaymentCommand(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    end_to_end_id: str
    situation: FraudSituation


#: a report's id as the directory gives it (checked before anything is stored: it is the
#: case's key beside the EndToEndId, and its events' ids derive from it)
MAX_REPORT_ID_LENGTH = 64


def check_report_id(value: str) -> str:
    """``value`` if it is 1 to :data:`MAX_REPORT_ID_LENGTH` storable characters, else
    ``InvalidInput`` naming ``report_id``."""
    if not 1 <= len(value) <= MAX_REPORT_ID_LENGTH:
        raise InvalidInput(
            f"report_id must be 1 to {MAX_REPORT_ID_LENGTH} characters", field="report_id"
        )
    return check_text(value, field="report_id", name="report_id")


class ReceiveInfractionReportCommand(msgspec.Struct, frozen=True, kw_only=True):
    end_to_end_id: str
    #: the directory's id of the report
    report_id: str
    situation: FraudSituation
    #: the reporting (payer's) institution
    reporter_ispb: str


class InfractionReportResult(msgspec.Struct, frozen=True, kw_only=True):
    case: MedCase
    replayed: bool = False


def _check_window(payment: PixPayment, now: datetime, deps: MedDeps) -> datetime:
    if payment.status is not PaymentStatus.SETTLED or payment.settled_at is None:
        raise MedNotAllowed("only a settled payment can be reported", field="end_to_end_id")
    if now > payment.settled_at + timedelta(days=deps.rules.report_window_days):
        raise MedDeadlinePassed(
            f"a payment can be reported up to {deps.rules.report_window_days} days after it",
            deadline="report_window",
            field="end_to_end_id",
        )
    return payment.settled_at


class ContestPixPayment:
    """Self-service contestation by the payer (see the module docstring).

    The payment must be the caller's, paid by them (``PixPaymentNotFound``
    for anyone else's; ``MedNotAllowed`` for one they received). Contesting
    again answers the case recorded first (``replayed``), and sends the
    report again if it is ours to send (the directory drops the copy).
    """

    def __init__(self, deps: MedDeps) -> None:
        self._d = deps

    async def __call__(self, cmd: ContestPixPaymentCommand) -> InfractionReportResult:
        cmd = checked_enums(cmd)  # the situation: stored in the case, and in its events
        check_lookup_id(cmd.end_to_end_id, "end_to_end_id")
        d = self._d
        payment = await d.payments.get(cmd.end_to_end_id)
        if not payment.is_visible_to(cmd.owner_id):
            raise PixPaymentNotFound()
        if payment.payer.owner_id != cmd.owner_id or payment.flow is PixFlow.INCOMING:
            raise MedNotAllowed("only the payer can contest a payment", field="end_to_end_id")
        existing = await d.current_case(payment.end_to_end_id)
        if existing is not None:
            return await self._replay(existing, cmd.owner_id)
        now = d.clock.now()
        paid_at = _check_window(payment, now, d)
        case = MedCase(
            end_to_end_id=payment.end_to_end_id,
            report_id=str(d.ids.new_id()),
            side=MedSide.ON_US if payment.flow is PixFlow.ON_US else MedSide.PAYER,
            situation=cmd.situation,
            status=CaseStatus.OPEN,
            amount=payment.amount,
            paid_at=paid_at,
            opened_at=now,
            analysis_deadline=now + timedelta(days=d.rules.analysis_days),
            payer_ispb=payment.payer.ispb,
            payee_ispb=payment.payee.ispb,
            payee_account_id=payment.payee.account_id,
            hold_ids=2,
            payer_account_id=payment.payer.account_id,
            reporter_owner_id=cmd.owner_id,
        )
        try:
            stored = await d.repository.add_case(case)
        except MedCaseAlreadyExists:
            first = await d.repository.get_case(payment.end_to_end_id)
            assert first is not None
            return await self._replay(first, cmd.owner_id)
        await self._send(stored)
        await d.publish_case(med_events.REPORT_OPENED, stored)
        return InfractionReportResult(case=stored)

    async def _replay(self, case: MedCase, owner_id: str) -> InfractionReportResult:
        if case.reporter_owner_id != owner_id:
            raise MedCaseAlreadyExists()
        await self._send(case)
        await self._d.republish_case(case)  # its events, in case a crash lost them
        return InfractionReportResult(case=case, replayed=True)

    async def _send(self, case: MedCase) -> None:
        if case.side is not MedSide.PAYER or case.status is not CaseStatus.OPEN:
            return
        await self._d.directory.send_infraction_report(
            InfractionReportMessage(
                report_id=case.report_id,
                end_to_end_id=case.end_to_end_id,
                situation=case.situation,
                reported_at=case.opened_at,
                to_ispb=case.payee_ispb,
            )
        )


class ReceiveInfractionReport:
    """Another bank reports a PIX our customer received; we have it analysed in time.

    The payment must be an incoming one from the reporting institution
    (``MedNotAllowed`` otherwise). The same report again answers the case
    recorded first (``replayed``); another report on a payment that has one
    is refused (``MedCaseAlreadyExists``).
    """

    def __init__(self, deps: MedDeps) -> None:
        self._d = deps

    async def __call__(self, cmd: ReceiveInfractionReportCommand) -> InfractionReportResult:
        check_lookup_id(cmd.end_to_end_id, "end_to_end_id")
        check_report_id(cmd.report_id)
        cmd = checked_enums(cmd)
        d = self._d
        payment = await d.payments.get(cmd.end_to_end_id)
        if payment.flow is not PixFlow.INCOMING or payment.payer.ispb != cmd.reporter_ispb:
            raise MedNotAllowed(
                "a report comes from the bank that paid us this payment", field="reporter_ispb"
            )
        existing = await d.current_case(payment.end_to_end_id)
        if existing is not None:
            return await self._replay(existing, cmd.report_id)
        now = d.clock.now()
        paid_at = _check_window(payment, now, d)
        case = MedCase(
            end_to_end_id=payment.end_to_end_id,
            report_id=cmd.report_id,
            side=MedSide.RECEIVER,
            situation=cmd.situation,
            status=CaseStatus.OPEN,
            amount=payment.amount,
            paid_at=paid_at,
            opened_at=now,
            analysis_deadline=now + timedelta(days=d.rules.analysis_days),
            payer_ispb=payment.payer.ispb,
            payee_ispb=payment.payee.ispb,
            payee_account_id=payment.payee.account_id,
            hold_ids=2,
        )
        try:
            stored = await d.repository.add_case(case)
        except MedCaseAlreadyExists:
            first = await d.repository.get_case(payment.end_to_end_id)
            assert first is not None
            return await self._replay(first, cmd.report_id)
        await d.publish_case(med_events.REPORT_RECEIVED, stored)
        return InfractionReportResult(case=stored)

    async def _replay(self, case: MedCase, report_id: str) -> InfractionReportResult:
        if case.report_id != report_id:
            raise MedCaseAlreadyExists()
        await self._d.republish_case(case)  # its events, in case a crash lost them
        return InfractionReportResult(case=case, replayed=True)
