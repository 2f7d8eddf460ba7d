"""The return of an accepted case's money: the refund request, then the returns themselves.

:class:`RequestMedRefund` records the *solicitação de devolução* within
``MedRules.refund_request_hours`` of the acceptance (``MedDeadlinePassed``
after): one return per blocked account, first the receiving account, then
the traced ones, adding up to the amount asked at most, never more than the
payment still has unrefunded (``MedNotAllowed`` for an amount over it). A
block that gets less than it holds has the rest released when its return
posts; one that gets nothing has its hold voided once the request is
recorded (again by every replay and by :class:`ExecuteMedReturns`, in case
a crash came between). The returns are also written into the payment's record as refunds of
nature ``MED_FRAUDE`` (ISO ``FR01``) under the payment's version, *before*
the case is updated, so they take their room in "refunds add up to at most
the original" atomically with any customer refund. A request that loses the
case's version race to another (another amount, written into the payment
in between) writes the recorded returns back over its own before it
answers, and first removes those of its own the winner did not plan (a
smaller amount can plan fewer returns); every later touch of the recorded
case removes them too (``MedDeps.drop_unrecorded_refunds``). Before it
writes the payment, the first request marks the case
(``MedCase.request_started_at``): a request that stops in between leaves a
case that is due ``REQUEST_LEASE`` later, so the sweeper removes its
refunds when nobody else touches the case. A later request marks it again
unless the mark is younger than half the lease (see the comment in
:meth:`RequestMedRefund.__call__`: a request is assumed to write the payment
within that half, as it is to record the case within the lease).

:class:`ExecuteMedReturns` then returns the money, once per return whoever
runs it: on-us, post the hold and credit the payer in one linked batch;
otherwise send the pacs.004 through ``PaymentNetwork.send_return`` (the
network answers an rtrId with its first result) and post the hold on
acceptance, release it on rejection. Posting names the rtrId in the
statement text, which is how reconciliation ties it to the central bank's
statement.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec

from finbank_core.accounts.ledger import PendingStatus
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.errors import PixRefundExceedsOriginal, PixVersionConflict
from finbank_core.pix.med import events as med_events
from finbank_core.pix.med.errors import (
    MedCaseNotFound,
    MedNotAllowed,
    MedRefundAlreadyRequested,
    MedVersionConflict,
)
from finbank_core.pix.med.model import REQUEST_LEASE, CaseStatus, MedCase, MedReturn, MedSide
from finbank_core.pix.med.use_cases.common import RETRIES, MedDeps
from finbank_core.pix.med.use_cases.tracing import BlockTracer
from finbank_core.pix.network import ReturnOrder
from finbank_core.pix.payments import PixPayment
from finbank_core.pix.refunds import PixRefund, RefundNature, RefundStatus
from finbank_core.shared.errors import InvalidInput, ServiceUnavailable
from finbank_core.shared.inputs import check_lookup_id, check_text
from finbank_core.shared.money import Money

#: how long a caller that took a return has to finish it before another may
CLAIM_LEASE = timedelta(seconds=60)
#: the fingerprint of MED refunds in the payment record (they have no client request)
MED_FINGERPRINT = "med"
#: the requesting institution's reference, as the directory's API limits it
MAX_REQUESTED_BY_LENGTH = 64


class RequestMedRefundCommand(msgspec.Struct, frozen=True, kw_only=True):
    end_to_end_id: str
    #: how much to return; ``None``: all the payment still has unrefunded
    amount: Money | None = None
    #: who asks: the payer's institution (ISPB) or, on-us, our analyst
    requested_by: str


class ExecuteMedReturnsCommand(msgspec.Struct, frozen=True, kw_only=True):
    end_to_end_id: str


class MedRefundResult(msgspec.Struct, frozen=True, kw_only=True):
    case: MedCase
    replayed: bool = False


def _as_refund(case: MedCase, ret: MedReturn) -> PixRefund:
    return PixRefund(
        return_id=ret.return_id,
        client_refund_id=f"med-{ret.return_id}",
        amount=ret.amount,
        nature=RefundNature.MED_FRAUDE,
        status=ret.status,
        requested_at=ret.requested_at,
        request_fingerprint=MED_FINGERPRINT,
        description=f"MED {case.report_id}",
        completed_at=ret.completed_at,
        failure_reason=ret.failure_reason,
    )


def _room(payment: PixPayment, own: set[str]) -> int:
    """What the payment still has unrefunded, not counting the case's own returns."""
    taken = sum(
        r.amount.cents
        for r in payment.refunds
        if r.counts_against_original and r.return_id not in own
    )
    return payment.amount.cents - taken


async def sync_payment(deps: MedDeps, case: MedCase) -> PixPayment:
    """Write the case's returns into the payment's refunds (added or brought up to date).

    A refund the payment already records as final (``DEVOLVIDO``,
    ``NAO_REALIZADO``) is kept: a return ends once, and a case read before it
    ended must not write it back as in progress.

    Raises ``PixRefundExceedsOriginal`` if they would take the payment's
    refunds past its amount; nothing is written then.
    """
    for _ in range(RETRIES):
        payment = await deps.payments.get(case.end_to_end_id)
        own = {r.return_id for r in case.returns}
        wanted = payment
        for ret in case.returns:
            refund = _as_refund(case, ret)
            recorded = wanted.refund_by_return_id(ret.return_id)
            if recorded is None:
                wanted = msgspec.structs.replace(wanted, refunds=(*wanted.refunds, refund))
            elif recorded.status is RefundStatus.EM_PROCESSAMENTO:
                wanted = wanted.replace_refund(refund)
            # else: a final return is never taken back by a case read before it ended
        if wanted == payment:
            return payment
        mine = sum(
            r.amount.cents
            for r in wanted.refunds
            if r.return_id in own and r.counts_against_original
        )
        if mine > _room(payment, own):
            raise PixRefundExceedsOriginal(
                "MED returns and refunds would exceed the original amount",
                reason=IsoReason.AM09.value,
                field="amount",
            )
        try:
            return await deps.payments.update(wanted, payment.version)
        except PixVersionConflict:
            continue
    raise PixVersionConflict("the payment kept changing while its MED returns were recorded")


class RequestMedRefund:
    """Record the refund request of an accepted case (see the module docstring).

    The same amount again (or none) answers the recorded request
    (``replayed``) and finishes returns still in progress; another amount is
    refused with ``MedRefundAlreadyRequested``; with ``execute_inline`` the returns
    are executed in the call (a network that cannot be reached leaves them
    ``EM_PROCESSAMENTO`` for :class:`ExecuteMedReturns`).
    """

    def __init__(self, deps: MedDeps, *, execute_inline: bool = True) -> None:
        self._d = deps
        self._tracer = BlockTracer(deps)
        self._execute = ExecuteMedReturns(deps)
        self._inline = execute_inline

    async def __call__(self, cmd: RequestMedRefundCommand) -> MedRefundResult:
        check_lookup_id(cmd.end_to_end_id, "end_to_end_id")
        if not 1 <= len(cmd.requested_by) <= MAX_REQUESTED_BY_LENGTH:
            raise InvalidInput(
                f"requested_by must be 1 to {MAX_REQUESTED_BY_LENGTH} characters",
                field="requested_by",
            )
        check_text(cmd.requested_by, field="requested_by", name="requested_by")
        if cmd.amount is not None:
            cmd.amount.require_positive()
        d = self._d
        for _ in range(RETRIES):
            case = await d.current_case(cmd.end_to_end_id)
            if case is None:
                raise MedCaseNotFound()
            if case.side is MedSide.PAYER:
                raise MedNotAllowed(
                    "the receiving bank returns this payment; we asked it through the directory",
                    field="end_to_end_id",
                )
            if case.status in (CaseStatus.REFUND_REQUESTED, CaseStatus.CLOSED):
                first = case.requested_amount
                if cmd.amount is not None and first is not None and cmd.amount != first:
                    raise MedRefundAlreadyRequested(
                        "the returns of this report were already requested with another amount",
                        field="amount",
                        requested_amount=first.to_bcb(),
                    )
                finished = await self._finish(case)
                await d.republish_case(finished)  # in case a crash lost them
                return MedRefundResult(case=finished, replayed=True)
            if case.status is CaseStatus.LAPSED:
                await d.republish_case(case)
            case = await self._tracer.apply(case)
            payment = await d.payments.get(case.end_to_end_id)
            own = (
                {d.return_id(case, i) for i in range(len(case.blocks))}
                if case.analysed_at
                else set()
            )
            room = _room(payment, own)
            asked = cmd.amount.cents if cmd.amount is not None else room
            if asked > room:
                raise MedNotAllowed(
                    "a return never exceeds what the payment still has unrefunded",
                    field="amount",
                )
            ids = [d.return_id(case, i) for i in range(len(case.blocks))]
            now = d.clock.now()
            planned = case.request_refund(Money(asked), ids, now, d.rules)  # may refuse
            mark = case.request_started_at
            if mark is None or now >= mark + REQUEST_LEASE / 2:
                # Due from REQUEST_LEASE on, in case we stop after writing the payment's
                # refunds. A mark younger than half the lease covers ours: no reader
                # acts on it before it is REQUEST_LEASE old, by when our refunds are
                # written (a request takes far less), and that reader moves the mark on
                # to them while they are too young to remove. An older mark could be
                # cleared between our read and our write: we write our own.
                try:
                    case = await d.repository.update_case(
                        msgspec.structs.replace(case, request_started_at=now), case.version
                    )
                except MedVersionConflict:
                    continue
                planned = case.request_refund(Money(asked), ids, now, d.rules)
            await sync_payment(d, planned)  # takes the room first (see the module docstring)
            try:
                stored = await d.repository.update_case(planned, case.version)
            except MedVersionConflict:
                # Our plan, written into the payment above, lost: if another request's
                # returns are the record now, they go back over ours (its own syncs may
                # all have run before our write).
                current = await d.repository.get_case(cmd.end_to_end_id)
                if current is not None and current.returns:
                    await d.drop_unrecorded_refunds(current)  # ours the winner did not plan
                    await sync_payment(d, current)
                continue
            await d.publish_case(med_events.REFUND_REQUESTED, stored)
            return MedRefundResult(case=await self._finish(stored))
        raise MedVersionConflict()

    async def _finish(self, case: MedCase) -> MedCase:
        # a concurrent request may have planned other amounts, or more returns
        await self._d.drop_unrecorded_refunds(case)
        await sync_payment(self._d, case)
        if case.refund_requested_at is not None:
            await self._d.release_released_holds(case)  # the blocks given no share
        if not self._inline:
            return case
        try:
            return await self._execute(ExecuteMedReturnsCommand(end_to_end_id=case.end_to_end_id))
        except ServiceUnavailable:
            return case  # EM_PROCESSAMENTO until ExecuteMedReturns runs again


class ExecuteMedReturns:
    """Execute a case's returns still in progress; see the module docstring.

    Safe to run twice, or many times at once: the hold is posted once (its
    post has an id derived from the hold), the network answers an rtrId
    with its first result, and a return is recorded only out of
    ``EM_PROCESSAMENTO`` (a run that finds it final takes that outcome).
    ``ServiceUnavailable`` from the network propagates, leaving the return
    in progress.
    """

    def __init__(self, deps: MedDeps) -> None:
        self._d = deps

    async def __call__(self, cmd: ExecuteMedReturnsCommand) -> MedCase:
        check_lookup_id(cmd.end_to_end_id, "end_to_end_id")
        d = self._d
        end_to_end_id = cmd.end_to_end_id
        case = await d.current_case(end_to_end_id)
        if case is None:
            raise MedCaseNotFound()
        await sync_payment(d, case)
        if case.refund_requested_at is not None:
            await d.release_released_holds(case)  # the blocks given no share
        for ret in case.returns:
            if ret.status is not RefundStatus.EM_PROCESSAMENTO:
                await d.republish_return(case, ret.return_id)  # in case a crash lost it
                continue
            claimed = await self._claim(end_to_end_id, ret.return_id)
            if claimed is None:
                continue  # another caller is executing it
            case, ret = claimed
            done = await self._execute(case, ret)
            case = await self._record(end_to_end_id, done)
            recorded = case.find_return(ret.return_id)
            assert recorded is not None
            await sync_payment(d, case)
            event = (
                med_events.RETURN_COMPLETED
                if recorded.status is RefundStatus.DEVOLVIDO
                else med_events.RETURN_FAILED
            )
            await d.publish_case(event, case, subject=recorded.return_id)
        return case

    async def _claim(self, end_to_end_id: str, return_id: str) -> tuple[MedCase, MedReturn] | None:
        """Take the return for this caller, under the case's version; ``None`` if taken.

        Only the taker sends the pacs.004, so concurrent callers never send
        one return twice at once; a taker that stopped is replaced after
        ``CLAIM_LEASE`` (the network answers a repeated rtrId with its
        first result, so a late repeat is harmless).
        """
        d = self._d
        for _ in range(RETRIES):
            case = await d.repository.get_case(end_to_end_id)
            assert case is not None
            ret = case.find_return(return_id)
            assert ret is not None
            now = d.clock.now()
            if not ret.claimable(now, CLAIM_LEASE):
                return None
            try:
                case = await d.repository.update_case(
                    case.attempt_return(return_id, now), case.version
                )
            except MedVersionConflict:
                continue
            taken = case.find_return(return_id)
            assert taken is not None
            return case, taken
        return None

    async def _execute(self, case: MedCase, ret: MedReturn) -> MedReturn:
        d = self._d
        memo = f"Devolução MED {ret.return_id}"
        if await d.ledger.posted(ret.hold_id):
            return self._done(ret)  # posted before a crash
        if await d.ledger.status(ret.hold_id) is not PendingStatus.PENDING:
            return self._failed(ret, IsoReason.AB03)  # nothing held any more
        if case.side is MedSide.ON_US:
            await d.ledger.post(ret.hold_id, ret.amount, memo, then_credit=case.payer_account_id)
            return self._done(ret)
        result = await d.network.send_return(
            ReturnOrder(
                return_id=ret.return_id,
                original_end_to_end_id=case.end_to_end_id,
                amount=ret.amount,
                nature=RefundNature.MED_FRAUDE,
                to_ispb=case.payer_ispb,
            )
        )
        if result.accepted:
            await d.ledger.post(ret.hold_id, ret.amount, memo)
            return self._done(ret)
        await d.ledger.release(ret.hold_id)
        return self._failed(ret, result.reason or IsoReason.AB09)

    def _done(self, ret: MedReturn) -> MedReturn:
        return msgspec.structs.replace(
            ret, status=RefundStatus.DEVOLVIDO, completed_at=self._d.clock.now()
        )

    def _failed(self, ret: MedReturn, reason: IsoReason) -> MedReturn:
        return msgspec.structs.replace(
            ret,
            status=RefundStatus.NAO_REALIZADO,
            completed_at=self._d.clock.now(),
            failure_reason=reason,
        )

    async def _record(self, end_to_end_id: str, done: MedReturn) -> MedCase:
        d = self._d
        for _ in range(RETRIES):
            case = await d.repository.get_case(end_to_end_id)
            assert case is not None
            current = case.find_return(done.return_id)
            assert current is not None
            if current.status is not RefundStatus.EM_PROCESSAMENTO:
                return case  # another run recorded it first
            try:
                return await d.repository.update_case(case.finish_return(done), case.version)
            except MedVersionConflict:
                continue
        raise MedVersionConflict()
