"""MED as the payer's bank: the receiving bank's answer to our report, and its returns.

When our customer contests a PIX paid to another bank (side ``PAYER``), the
report goes to that bank through the directory. What comes back:

* :class:`ReceiveMedAnalysis`: that bank's analysis. ``DISAGREED`` closes
  the case (final). ``AGREED`` records the acceptance and, at once, our
  refund request (*solicitação de devolução*) for all the payment still has
  unrefunded, sent through ``MedDirectory.send_refund_request``: the case is
  ``REFUND_REQUESTED``. The same answer again is a replay (the request is
  sent again, the directory keeps one per report, and the events are
  published again under their ids); the other answer is ``MedAlreadyDecided``.
* :class:`ReceiveMedReturn`: a return (pacs.004) of that bank into our
  customer's account, all or part of what was asked. Its amount is first
  reserved in the payment's refunds (``EM_PROCESSAMENTO``, nature
  ``MED_FRAUDE``, under the payment's version: of returns arriving at once,
  those that would together pass the payment's amount cannot all get in).
  Then the case takes it, still ``EM_PROCESSAMENTO``, under the case's
  version; the return marked ``final`` (or the one that completes the amount
  asked) closes the case to other returns there. Only then is the money
  credited (settlement -> the payer's account, one ledger transfer whose id
  derives from the rtrId), and the return recorded ``DEVOLVIDO`` on the case
  and in the payment's refunds: the case never says money came back before
  it did (``returned_amount`` counts only what did), and no money moves for
  a return the case did not take. Of returns arriving at once, those the
  case refuses once another closed it are refused before any credit, and
  their reservations are given back. The same rtrId again is a replay:
  nothing is credited twice, and a delivery that stopped before the money
  (or before the record) is finished by the next, or by the next read of the
  case (:func:`finish_taken_returns`, called by ``bank.pix.med.view``): the
  case took the return only once its pacs.004 had settled into our account,
  so the credit is owed even if the network never delivers it again. A
  return that would take
  the returns past what was asked is refused (``MedNotAllowed``,
  ``field="amount"``), and so is one whose rtrId another bank made
  (``field="return_id"``: the returning bank makes it, ``D`` + its ISPB).
"""

from __future__ import annotations

from datetime import timedelta

import msgspec

from finbank_core.accounts.ledger import TransferCode
from finbank_core.pix.codes.identifiers import ReturnId
from finbank_core.pix.errors import PixVersionConflict
from finbank_core.pix.ledger_steps import PixLedgerSteps
from finbank_core.pix.med import events as med_events
from finbank_core.pix.med.errors import (
    MedAlreadyDecided,
    MedCaseNotFound,
    MedNotAllowed,
    MedVersionConflict,
)
from finbank_core.pix.med.model import CaseStatus, Decision, MedCase, MedReturn, MedSide
from finbank_core.pix.med.ports import RefundRequestMessage
from finbank_core.pix.med.use_cases.common import RETRIES, MedDeps
from finbank_core.pix.med.use_cases.refund import _as_refund, sync_payment
from finbank_core.pix.payments import pix_transfer_id
from finbank_core.pix.refunds import RefundStatus
from finbank_core.shared.inputs import check_lookup_id, checked_enums
from finbank_core.shared.money import Money


class ReceiveMedAnalysisCommand(msgspec.Struct, frozen=True, kw_only=True):
    """The receiving bank's analysis of a report we sent (from the directory)."""

    end_to_end_id: str
    report_id: str
    decision: Decision
    #: the institution that analysed it (the payee's ISPB)
    analysed_by: str


class ReceiveMedReturnCommand(msgspec.Struct, frozen=True, kw_only=True):
    """A return (pacs.004) of a reported payment, into our customer's account."""

    end_to_end_id: str
    #: the return's rtrId
    return_id: str
    amount: Money
    #: the institution that returns it (the payee's ISPB)
    from_ispb: str
    #: the last return the receiving bank will send for this report
    final: bool = True


_DECIDED = {
    CaseStatus.AGREED: Decision.AGREED,
    CaseStatus.REFUND_REQUESTED: Decision.AGREED,
    CaseStatus.CLOSED: Decision.AGREED,
    CaseStatus.DISAGREED: Decision.DISAGREED,
}


async def _payer_case(deps: MedDeps, end_to_end_id: str, ispb: str, field: str) -> MedCase:
    case = await deps.current_case(end_to_end_id)
    if case is None:
        raise MedCaseNotFound()
    if case.side is not MedSide.PAYER:
        raise MedNotAllowed(
            "only a report we sent to another bank is answered by it", field="end_to_end_id"
        )
    if ispb != case.payee_ispb:
        raise MedNotAllowed("the answer comes from the bank the payment went to", field=field)
    return case


class ReceiveMedAnalysis:
    """Record the receiving bank's analysis and, on acceptance, request the refund."""

    def __init__(self, deps: MedDeps) -> None:
        self._d = deps

    async def __call__(self, cmd: ReceiveMedAnalysisCommand) -> MedCase:
        cmd = checked_enums(cmd)  # the decision, compared by identity
        check_lookup_id(cmd.end_to_end_id, "end_to_end_id")
        d = self._d
        for _ in range(RETRIES):
            case = await _payer_case(d, cmd.end_to_end_id, cmd.analysed_by, "analysed_by")
            if case.report_id != cmd.report_id:
                raise MedNotAllowed("no such report on this payment", field="report_id")
            decided = _DECIDED.get(case.status)
            if decided is not None:
                if decided is not cmd.decision:
                    raise MedAlreadyDecided(
                        f"the report was already answered: {decided.value}", field="decision"
                    )
                if case.status is CaseStatus.AGREED:
                    return await self._request(case)  # a crash before the request
                await self._send_request(case)
                await d.republish_case(case)
                return case
            if case.status is not CaseStatus.OPEN:  # lapsed
                raise MedNotAllowed(
                    f"a {case.status.value} report takes no answer", field="decision"
                )
            now = d.clock.now()
            answered = msgspec.structs.replace(
                case,
                status=(
                    CaseStatus.AGREED if cmd.decision is Decision.AGREED else CaseStatus.DISAGREED
                ),
                analysed_at=now,
                analysed_by=cmd.analysed_by,
                blocks_applied=True,  # the holds are the other bank's
                refund_deadline=(
                    now + timedelta(hours=d.rules.refund_request_hours)
                    if cmd.decision is Decision.AGREED
                    else None
                ),
            )
            try:
                stored = await d.repository.update_case(answered, case.version)
            except MedVersionConflict:
                continue
            await d.publish_case(med_events.REPORT_ANALYSED, stored)
            if stored.status is CaseStatus.AGREED:
                return await self._request(stored)
            return stored
        raise MedVersionConflict()

    async def _request(self, case: MedCase) -> MedCase:
        """``AGREED -> REFUND_REQUESTED`` for all the payment has unrefunded; then send it."""
        d = self._d
        for _ in range(RETRIES):
            payment = await d.payments.get(case.end_to_end_id)
            now = d.clock.now()
            requested = msgspec.structs.replace(
                case,
                status=CaseStatus.REFUND_REQUESTED,
                refund_requested_at=now,
                requested_amount=Money(payment.amount.cents - payment.refunded_amount.cents),
                return_deadline=now + timedelta(hours=d.rules.return_hours),
            )
            try:
                stored = await d.repository.update_case(requested, case.version)
            except MedVersionConflict:
                reread = await d.repository.get_case(case.end_to_end_id)
                assert reread is not None  # cases are never deleted
                if reread.status is not CaseStatus.AGREED:
                    return reread  # a concurrent answer requested it
                case = reread
                continue
            await self._send_request(stored)
            await d.publish_case(med_events.REFUND_REQUESTED, stored)
            return stored
        raise MedVersionConflict()

    async def _send_request(self, case: MedCase) -> None:
        if case.refund_requested_at is None or case.requested_amount is None:
            return
        await self._d.directory.send_refund_request(
            RefundRequestMessage(
                report_id=case.report_id,
                end_to_end_id=case.end_to_end_id,
                amount=case.requested_amount,
                requested_at=case.refund_requested_at,
                to_ispb=case.payee_ispb,
            )
        )


class ReceiveMedReturn:
    """Credit our customer with a return of a reported payment and record it (module doc)."""

    def __init__(self, deps: MedDeps) -> None:
        self._d = deps
        self._steps = PixLedgerSteps(deps.raw_ledger)

    async def __call__(self, cmd: ReceiveMedReturnCommand) -> MedCase:
        cmd.amount.require_positive()
        rtr_id = ReturnId(cmd.return_id)  # InvalidIdentifier for a malformed rtrId
        if rtr_id.ispb != cmd.from_ispb:  # the returning bank makes its rtrId: D + its ISPB
            raise MedNotAllowed("the rtrId is not the returning bank's", field="return_id")
        d = self._d
        # the payment's reservation this call made and no case holds yet: given back if
        # the case refuses the return, so that a refused return leaves nothing behind
        reserved = False
        try:
            for _ in range(RETRIES):
                case = await _payer_case(d, cmd.end_to_end_id, cmd.from_ispb, "from_ispb")
                known = case.find_return(cmd.return_id)
                if known is not None:
                    reserved = False  # the case holds it (a delivery of the same rtrId)
                    if known.amount != cmd.amount:
                        raise MedNotAllowed("this rtrId returned another amount", field="amount")
                    if known.status is RefundStatus.DEVOLVIDO:  # a replay: all done already
                        await d.republish_return(case, cmd.return_id)
                        return case
                    # taken by a delivery that stopped before the money: finish it
                    return await self._finish(case, known, cmd.end_to_end_id)
                if case.status is not CaseStatus.REFUND_REQUESTED or case.requested_amount is None:
                    raise MedNotAllowed(
                        f"a {case.status.value} report takes no return", field="end_to_end_id"
                    )
                if case.payer_account_id is None:
                    raise MedNotAllowed("the payer's account is not here", field="end_to_end_id")
                # every return the case took counts, those whose money is still on its way too
                total = sum(r.amount.cents for r in case.returns) + cmd.amount.cents
                if total > case.requested_amount.cents:
                    raise MedNotAllowed("returns never exceed what was asked back", field="amount")
                received = MedReturn(
                    return_id=cmd.return_id,
                    account_id=case.payer_account_id,
                    hold_id=pix_transfer_id(cmd.return_id, "credit"),
                    amount=cmd.amount,
                    status=RefundStatus.EM_PROCESSAMENTO,
                    requested_at=case.refund_requested_at or d.clock.now(),
                )
                if not reserved:
                    await self._reserve(case, received)
                    reserved = True
                # The case takes the return before any money moves, under its version:
                # of returns arriving at once, one final return (or those completing what
                # was asked) closes it, and the others re-read it and are refused here,
                # with nothing credited. Crediting first paid them all while the case,
                # closed by the first, recorded one.
                closed = cmd.final or total == case.requested_amount.cents
                taken = msgspec.structs.replace(
                    case,
                    returns=(*case.returns, received),
                    status=CaseStatus.CLOSED if closed else CaseStatus.REFUND_REQUESTED,
                )
                try:
                    stored = await d.repository.update_case(taken, case.version)
                except MedVersionConflict:
                    continue
                reserved = False
                return await self._finish(stored, received, cmd.end_to_end_id)
            raise MedVersionConflict()
        finally:
            if reserved:
                await self._give_back(cmd.end_to_end_id, cmd.return_id)

    async def _finish(self, case: MedCase, taken: MedReturn, end_to_end_id: str) -> MedCase:
        """The money of a return the case took (``EM_PROCESSAMENTO``), then ``DEVOLVIDO``
        on the case and in the payment's refunds: the case never says it came back
        before it did. Each step is safe to repeat (a redelivery finishes a crash)."""
        d = self._d
        await self._reserve(case, taken)  # made already, unless given back meanwhile
        await self._steps.credit_from_settlement(
            taken.return_id,
            taken.account_id,
            taken.amount,
            TransferCode.PIX_REFUND_IN,
            f"Devolução MED recebida {taken.return_id}",
        )
        for _ in range(RETRIES):
            current = case.find_return(taken.return_id)
            if current is not None and current.status is RefundStatus.DEVOLVIDO:
                await d.republish_return(case, taken.return_id)  # another delivery finished it
                return case
            done = msgspec.structs.replace(
                taken, status=RefundStatus.DEVOLVIDO, completed_at=d.clock.now()
            )
            recorded = msgspec.structs.replace(
                case,
                returns=tuple(done if r.return_id == done.return_id else r for r in case.returns),
            )
            await sync_payment(d, recorded)
            try:
                stored = await d.repository.update_case(recorded, case.version)
            except MedVersionConflict:
                reread = await d.repository.get_case(end_to_end_id)
                assert reread is not None  # cases are never deleted
                case = reread
                continue
            await d.publish_case(med_events.RETURN_RECEIVED, stored, subject=taken.return_id)
            return stored
        raise MedVersionConflict()

    async def finish_taken(self, case: MedCase) -> MedCase:
        """``case`` with every return it took finished (credited, ``DEVOLVIDO``): those
        left ``EM_PROCESSAMENTO`` by a delivery that stopped before the money or before
        the record. A delivery still under way finishes the same ones: every step is
        safe to run twice at once (the credit's id derives from the rtrId, the record
        moves only from the version it read)."""
        for taken in case.returns:
            if taken.status is RefundStatus.EM_PROCESSAMENTO:
                case = await self._finish(case, taken, case.end_to_end_id)
        return case

    async def _reserve(self, case: MedCase, pending: MedReturn) -> None:
        """Add ``pending`` (``EM_PROCESSAMENTO``) to the payment's refunds, within its amount.

        The payment's version makes it atomic: of different returns arriving at
        once, those that together would pass the payment's amount cannot all be
        reserved, so they cannot all be credited. One already there (the same
        rtrId delivered again, or a crash after this step) is left as it is.
        """
        d = self._d
        for _ in range(RETRIES):
            payment = await d.payments.get(case.end_to_end_id)
            there = payment.refund_by_return_id(pending.return_id)
            if there is not None:
                if there.amount != pending.amount:
                    raise MedNotAllowed("this rtrId returned another amount", field="amount")
                return
            taken = payment.refunded_amount.cents  # in progress or done
            if taken + pending.amount.cents > payment.amount.cents:
                raise MedNotAllowed("returns never exceed what was asked back", field="amount")
            reserved = msgspec.structs.replace(
                payment, refunds=(*payment.refunds, _as_refund(case, pending))
            )
            try:
                await d.payments.update(reserved, payment.version)
            except PixVersionConflict:
                continue
            return
        raise PixVersionConflict("the payment kept changing while a MED return was reserved")

    async def _give_back(self, end_to_end_id: str, return_id: str) -> None:
        """Take out of the payment's refunds the reservation of a return the case refused
        (still ``EM_PROCESSAMENTO``: no money moved for it)."""
        d = self._d
        for _ in range(RETRIES):
            case = await d.repository.get_case(end_to_end_id)
            if case is not None and case.find_return(return_id) is not None:
                return  # a delivery of the same rtrId got it into the case: it is theirs
            payment = await d.payments.get(end_to_end_id)
            there = payment.refund_by_return_id(return_id)
            if there is None or there.status is not RefundStatus.EM_PROCESSAMENTO:
                return
            freed = msgspec.structs.replace(
                payment, refunds=tuple(r for r in payment.refunds if r.return_id != return_id)
            )
            try:
                await d.payments.update(freed, payment.version)
            except PixVersionConflict:
                continue
            return
        raise PixVersionConflict("the payment kept changing while a MED return was given back")


async def finish_taken_returns(deps: MedDeps, case: MedCase | None) -> MedCase | None:
    """``case`` with the returns it took and did not finish finished, when we are the
    payer's bank (:meth:`ReceiveMedReturn.finish_taken`); any other case as it is."""
    if (
        case is None
        or case.side is not MedSide.PAYER
        or all(r.status is not RefundStatus.EM_PROCESSAMENTO for r in case.returns)
    ):
        return case
    return await ReceiveMedReturn(deps).finish_taken(case)


__all__ = [
    "ReceiveMedAnalysis",
    "ReceiveMedAnalysisCommand",
    "ReceiveMedReturn",
    "ReceiveMedReturnCommand",
    "finish_taken_returns",
]
