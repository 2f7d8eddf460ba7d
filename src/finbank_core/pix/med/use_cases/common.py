"""What the MED use cases share: their ports, the catch-up steps, the events.

A deadline that passes changes nothing by itself in a store; the first
caller to look at a block or a case after it (a read, an analysis, a
request) finishes the step the deadline implies, once: the ledger steps
have derived ids and the record moves only from the version it was read
at, so concurrent callers apply it once and the losers read the outcome.
The ledger does not wait for them: a precautionary hold has the block's
timeout and is voided at its deadline on the ledger's clock anyway.

Events: each step publishes its event after its write, under an id derived
from the case (or block) and the step. A replay of a step (the same call
again, after a crash or a failed publish between the write and the event)
publishes the events the recorded state implies again under the same ids
(:meth:`MedDeps.republish_case`): the outbox keeps one per id while it
waits and consumers deduplicate, so an event is late at worst, never lost.

A refund request writes its returns into the payment's refunds before it
records them on the case; a request that stopped in between leaves refunds
in progress the case does not have. The first touch of the case
``REQUEST_LEASE`` after they were written removes them (the request was not
recorded: the payer's bank asks again); once the case has lapsed, or a
request is recorded on it, the first touch removes them whatever their age.
The request marks the case first (``MedCase.request_started_at``), so that
the case is due then (the sweeper touches it when nobody else does); the
touch that removes them moves the mark to the oldest refund still too young
to remove, or clears it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec

from finbank_core.accounts.ledger import PendingStatus
from finbank_core.accounts.ports import AccountRepository, Ledger
from finbank_core.pix.codes.identifiers import ReturnId
from finbank_core.pix.errors import PixVersionConflict
from finbank_core.pix.events import outcome_event_id
from finbank_core.pix.ledger_steps import PixEvents
from finbank_core.pix.med import events as med_events
from finbank_core.pix.med.errors import MedVersionConflict
from finbank_core.pix.med.ledger import MedLedger
from finbank_core.pix.med.model import (
    REQUEST_LEASE,
    BlockStatus,
    CaseStatus,
    HoldStatus,
    MedCase,
    MedRules,
    MedSide,
    PrecautionaryBlock,
    med_step_id,
    precautionary_hold_id,
)
from finbank_core.pix.med.ports import MedDirectory, MedRepository
from finbank_core.pix.payments import PixPayment
from finbank_core.pix.ports import PaymentNetwork, PixPaymentRepository
from finbank_core.pix.refunds import PixRefund, RefundNature, RefundStatus
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.ids import IdGenerator
from finbank_core.shared.inputs import check_text
from finbank_core.shared.money import Money

T = TypeVar("T")
#: how often a step re-reads and retries after losing a version race
RETRIES = 8

#: an operator's or analyst's id kept in a block or a case (``blocked_by``, ``released_by``,
#: ``analyst_id``): what a principal's subject holds (a username is at most 128)
MAX_OPERATOR_ID_LENGTH = 128


def check_operator_id(value: str, field: str) -> str:
    """``value`` if it is 1 to :data:`MAX_OPERATOR_ID_LENGTH` storable characters, else
    ``InvalidInput`` naming ``field``. Checked before the money is held or released: a
    record too big to store (a DynamoDB item is at most 400 KB) would leave the hold
    moved with no record of it."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_OPERATOR_ID_LENGTH:
        raise InvalidInput(f"{field} must be 1 to {MAX_OPERATOR_ID_LENGTH} characters", field=field)
    return check_text(value, field=field, name=field)


class MedDeps:
    """The ports and settings every MED use case takes (one object, built by the container)."""

    def __init__(
        self,
        *,
        ispb: str,
        repository: MedRepository,
        payments: PixPaymentRepository,
        accounts: AccountRepository,
        ledger: Ledger,
        network: PaymentNetwork,
        directory: MedDirectory,
        events: PixEvents,
        clock: Clock,
        ids: IdGenerator,
        rules: MedRules | None = None,
    ) -> None:
        self.ispb = ispb
        self.repository = repository
        self.payments = payments
        self.accounts = accounts
        self.raw_ledger = ledger
        self.ledger = MedLedger(ledger)
        self.network = network
        self.directory = directory
        self.events = events
        self.clock = clock
        self.ids = ids
        self.rules = rules or MedRules()

    # -- events ---------------------------------------------------------------------

    async def publish_case(self, type: str, case: MedCase, subject: str = "") -> None:
        """``type`` about ``case``, under an id derived from the report (and ``subject``)."""
        await self.events.publish(
            type,
            case.end_to_end_id,
            med_events.case_payload(case),
            event_id=outcome_event_id(type, f"{case.report_id}:{subject}"),
        )

    async def republish_case(self, case: MedCase) -> None:
        """Publish again every event ``case``'s recorded state implies (a replay's duty)."""
        opened = (
            med_events.REPORT_RECEIVED
            if case.side is MedSide.RECEIVER
            else med_events.REPORT_OPENED
        )
        await self.publish_case(opened, case)
        if case.analysed_at is not None:
            await self.publish_case(med_events.REPORT_ANALYSED, case)
        if case.status is not CaseStatus.DISAGREED and case.blocks_applied:
            await self.publish_case(med_events.FUNDS_BLOCKED, case)
        if case.refund_requested_at is not None:
            await self.publish_case(med_events.REFUND_REQUESTED, case)
        for ret in case.returns:
            await self.republish_return(case, ret.return_id)
        if case.status is CaseStatus.LAPSED:
            await self.publish_case(med_events.CASE_LAPSED, case)

    async def republish_return(self, case: MedCase, return_id: str) -> None:
        ret = case.find_return(return_id)
        if ret is None or ret.status is RefundStatus.EM_PROCESSAMENTO:
            return
        event = (
            med_events.RETURN_FAILED
            if ret.status is not RefundStatus.DEVOLVIDO
            else med_events.RETURN_RECEIVED
            if case.side is MedSide.PAYER
            else med_events.RETURN_COMPLETED
        )
        await self.publish_case(event, case, subject=return_id)

    async def republish_block(self, block: PrecautionaryBlock) -> None:
        await self.publish_block(med_events.BLOCK_PLACED, block)
        if block.hold_id != precautionary_hold_id(block.end_to_end_id):
            await self.publish_block(med_events.BLOCK_REDUCED, block)
        if block.status is BlockStatus.RELEASED:
            await self.publish_block(med_events.BLOCK_RELEASED, block)
        elif block.status is BlockStatus.KEPT_FOR_MED:
            await self.publish_block(med_events.BLOCK_KEPT_FOR_MED, block)

    async def publish_block(self, type: str, block: PrecautionaryBlock) -> None:
        await self.events.publish(
            type,
            block.end_to_end_id,
            med_events.block_payload(block),
            event_id=outcome_event_id(type, f"block:{block.end_to_end_id}"),
        )

    # -- catch-up ---------------------------------------------------------------------

    async def yield_block_to_case(self, end_to_end_id: str) -> PrecautionaryBlock | None:
        """Release the payment's precautionary block if its case holds, on the block's
        account, at least what the block holds, or across all its accounts all that it
        asks for; the block as it is then (``None``: there is none).

        A block placed while the payment's report was being accepted may be missed by
        the case's tracer (it looks for a block to move into the case's hold before
        the block is recorded) and the block in turn misses the case's holds (the case
        records them only once its walk is done): both would hold the amount, the
        customer's own money taken for the second. The block's caller and the tracer
        each call this after their own write, so at least one of them sees both. A
        block whose hold is no longer pending was moved into the case (or ended): it
        is left as it is. Releasing and moving void the hold under the same id, so
        the money is freed or moved, never both.
        """
        for _ in range(RETRIES):
            block = await self.repository.get_block(end_to_end_id)
            if block is None or block.status is not BlockStatus.ACTIVE:
                return block
            case = await self.repository.get_case(end_to_end_id)
            if case is None or not case.blocks_applied:
                return block  # the case holds nothing (yet): its tracer will see the block
            held = [b for b in case.blocks if b.status is HoldStatus.HELD]
            covered = sum(b.amount.cents for b in held if b.account_id == block.account_id)
            in_all = sum(b.amount.cents for b in held)
            asks = 0 if covered >= block.amount.cents else await self._unrefunded(end_to_end_id)
            if covered < block.amount.cents and in_all < asks:
                # The case holds neither what the block holds on its account nor, across
                # the accounts its tracer followed, all it asks for (it was refused, or
                # its tracer found that money already under the block): releasing the
                # block would free money nothing else holds. A case that holds all it
                # asks for elsewhere (the money had moved on, the block holds the
                # account's own money) needs nothing of the block; one that holds part
                # of it needs only the rest of the block.
                if in_all and block.amount.cents + in_all > asks:
                    reduced = await self._reduce_block(block, Money(asks - in_all))
                    if reduced is None:
                        continue  # another caller recorded the block meanwhile
                    return reduced
                return block
            if await self.ledger.status(block.hold_id) is not PendingStatus.PENDING:
                return block  # moved into the case's hold (or ended): nothing held twice
            await self.ledger.release(block.hold_id)
            try:
                released = await self.repository.update_block(
                    block.release(self.clock.now(), "superseded_by_med"), block.version
                )
            except MedVersionConflict:
                continue
            await self.publish_block(med_events.BLOCK_RELEASED, released)
            return released
        raise MedVersionConflict()

    async def _reduce_block(
        self, block: PrecautionaryBlock, keep: Money
    ) -> PrecautionaryBlock | None:
        """The block holding only ``keep`` (what its case does not hold elsewhere): its
        hold moved, in one linked batch, to a smaller one under an id derived from it,
        with the same deadline, and recorded, then ``pix.med.block_reduced`` published
        (the customer's notice of the new amount). ``None`` when another caller changed
        the block first (read it again). Once only: a block already reduced, or whose
        hold is no longer pending (moved into the case, or ended), is answered as it is.

        A crash between the move and the record leaves the block recorded with its
        first hold, now void, and the smaller hold pending: the next read of the block
        (:meth:`current_block`) records it and publishes the event. The record says the
        event is owed (``reduction_owed``) until it is published, so a crash between
        the record and the event is finished by the next read too (and by the sweeper,
        which lists such a block at once).
        """
        first = precautionary_hold_id(block.end_to_end_id)
        if block.hold_id != first:
            return block  # reduced already
        smaller = med_step_id(first, "reduced")
        now = self.clock.now()
        if await self.ledger.status(first) is PendingStatus.PENDING:
            seconds = math.floor((block.expires_at - now).total_seconds())
            if seconds <= 0:
                return block  # its deadline: the first reader releases it
            moved = await self.ledger.move(
                first,
                smaller,
                block.account_id,
                keep,
                f"Bloqueio cautelar PIX {block.end_to_end_id}",
                timeout_seconds=seconds,
            )
            if moved is None:
                return block  # the hold ended meanwhile
        elif await self.ledger.status(smaller) is not PendingStatus.PENDING:
            return block  # moved into the case's hold, or ended: nothing was reduced
        amount = await self.ledger.held(smaller)
        try:
            reduced = await self.repository.update_block(
                msgspec.structs.replace(block, hold_id=smaller, amount=amount, reduction_owed=True),
                block.version,
            )
        except MedVersionConflict:
            return None
        return await self._announce_reduction(reduced)

    async def _announce_reduction(self, block: PrecautionaryBlock) -> PrecautionaryBlock:
        """Publish ``pix.med.block_reduced`` for a reduction recorded with its event owed,
        then clear ``reduction_owed``: until then the block stays due, so a crash in
        between is finished by the next reader or sweep (the event under its one id).
        Of callers at once, one write lands; the others read it."""
        await self.publish_block(med_events.BLOCK_REDUCED, block)
        try:
            return await self.repository.update_block(
                msgspec.structs.replace(block, reduction_owed=False), block.version
            )
        except MedVersionConflict:
            return await self._reread_block(block.end_to_end_id)

    async def _unrefunded(self, end_to_end_id: str) -> int:
        """What the case's tracer asks for: the payment's amount less its customer
        refunds (its MED returns are the case's own)."""
        payment = await self.payments.get(end_to_end_id)
        refunded = sum(
            r.amount.cents
            for r in payment.refunds
            if r.counts_against_original and r.nature is not RefundNature.MED_FRAUDE
        )
        return payment.amount.cents - refunded

    async def current_block(self, end_to_end_id: str) -> PrecautionaryBlock | None:
        """The payment's block, released first if its deadline has come (see the module),
        its reduction recorded first if a crash stopped it (:meth:`_reduce_block`)."""
        block = await self.repository.get_block(end_to_end_id)
        if block is not None and block.reduction_owed:
            block = await self._announce_reduction(block)
        if (
            block is not None
            and block.status is BlockStatus.ACTIVE
            and block.hold_id == precautionary_hold_id(end_to_end_id)
            and await self.ledger.status(block.hold_id) is not PendingStatus.PENDING
        ):
            # its first hold ended or moved: into its case's hold, or to a smaller one
            # that a crash left unrecorded, which this records
            block = await self._reduce_block(block, Money(0)) or await self._reread_block(
                end_to_end_id
            )
        if block is None or not block.expired(self.clock.now()):
            return block
        await self.ledger.release(block.hold_id)  # voided by the ledger already, most likely
        for _ in range(RETRIES):
            if not block.expired(self.clock.now()):
                return block  # another caller recorded it
            try:
                block = await self.repository.update_block(
                    block.release(self.clock.now(), "expired"), block.version
                )
            except MedVersionConflict:
                block = await self._reread_block(end_to_end_id)
                continue
            await self.publish_block(med_events.BLOCK_RELEASED, block)
            return block
        raise MedVersionConflict()

    async def current_case(self, end_to_end_id: str) -> MedCase | None:
        """The payment's case, lapsed first if its return was not requested in time.

        The lapse is recorded first and its holds are voided after: a request
        recorded in time by a caller whose clock was still before the deadline
        wins the version race, and then finds its holds still in place. Every
        read of a lapsed case voids them again (safe to repeat), so a crash
        between the record and the voids is finished by the next reader; until
        one records ``lapse_finished``, a read also publishes the lapse's event
        again (under its id), so a crash before it loses nothing.
        """
        case = await self.repository.get_case(end_to_end_id)
        if case is not None:
            await self.drop_unrecorded_refunds(case)
        if case is not None and case.status is CaseStatus.LAPSED:
            await self.release_released_holds(case)
            if not case.lapse_finished:  # a lapse that may have stopped before its event
                await self.publish_case(med_events.CASE_LAPSED, case)
            return await self._finish_lapse(case)
        if case is None:
            return None
        if not case.refund_lapsed(self.clock.now()):
            return await self._settle_request_mark(case)
        for _ in range(RETRIES):
            if not case.refund_lapsed(self.clock.now()):
                return case
            try:
                case = await self.repository.update_case(case.lapse(), case.version)
            except MedVersionConflict:
                case = await self._reread_case(end_to_end_id)
                continue
            await self.release_released_holds(case)
            await self.publish_case(med_events.CASE_LAPSED, case)
            await self.drop_unrecorded_refunds(case)
            return await self._finish_lapse(case)
        raise MedVersionConflict()

    async def _finish_lapse(self, case: MedCase) -> MedCase:
        """Record ``lapse_finished`` on a lapsed case whose holds the caller voided, whose
        unrecorded refunds it removed and whose ``pix.med.case_lapsed`` it published
        (each safe to repeat; the event under its one id), once: until then the case
        stays due, so the sweeper finishes a lapse that stopped in between, its event
        included. Of callers at once, one write lands; the others read it."""
        if case.lapse_finished:
            return case
        try:
            return await self.repository.update_case(
                msgspec.structs.replace(case, lapse_finished=True), case.version
            )
        except MedVersionConflict:
            return await self._reread_case(case.end_to_end_id)

    async def _settle_request_mark(self, case: MedCase) -> MedCase:
        """An accepted case whose request mark (``request_started_at``) is
        ``REQUEST_LEASE`` old or more, after :meth:`drop_unrecorded_refunds` ran:
        the mark moved to the oldest unrecorded refund still in the payment (one a
        request wrote after the mark, too young to remove yet), or cleared when there
        is none, so that the case is due again only when one is left to remove. Of
        callers at once, one write lands; the others read it."""
        mark = case.request_started_at
        if (
            case.status is not CaseStatus.AGREED
            or mark is None
            or self.clock.now() < mark + REQUEST_LEASE
        ):
            return case
        own = self.unrecorded_return_ids(case)
        payment = await self.payments.get(case.end_to_end_id)
        moved = min((r.requested_at for r in unrecorded_in_progress(payment, own)), default=None)
        if moved == mark:
            return case  # not removed (the payment kept changing): the next touch tries again
        try:
            return await self.repository.update_case(
                msgspec.structs.replace(case, request_started_at=moved), case.version
            )
        except MedVersionConflict:
            return await self._reread_case(case.end_to_end_id)

    async def release_released_holds(self, case: MedCase) -> None:
        """Void the holds of the case's blocks it records ``RELEASED`` without a return.

        A lapse (``MedCase.lapse``) and a refund request that gives a block no share
        (``MedCase.request_refund``) mark the block ``RELEASED``; the money is the
        customer's again only once the ledger voids its hold (a case's holds have no
        timeout). Callers run this after the record, and again on later runs: voiding
        is safe to repeat, so a crash in between is finished by the next. A block whose
        return failed was released by that return already, and is left to it. One
        ledger call voids them all, however many blocks the case has.
        """
        returned = {r.hold_id for r in case.returns}
        await self.ledger.release_all(
            [
                block.hold_id
                for block in case.blocks
                if block.status is HoldStatus.RELEASED and block.hold_id not in returned
            ]
        )

    async def drop_unrecorded_refunds(self, case: MedCase) -> None:
        """Remove MED refunds in progress the case never recorded (see the module docstring).

        Of an accepted case, only refunds written ``REQUEST_LEASE`` ago or more: a
        request still under way is left to finish, and a later request writes them
        again. Of a lapsed case, and of one whose request is recorded (it has
        returns), all of them at once: no request can record them any more (a
        request that lost the case to a lapse, or to another request that planned
        fewer returns, leaves none behind).
        """
        own = self.unrecorded_return_ids(case)
        if not own:
            return
        final = bool(case.returns) or case.status is CaseStatus.LAPSED
        for _ in range(RETRIES):
            payment = await self.payments.get(case.end_to_end_id)
            now = self.clock.now()
            stale = {
                r.return_id
                for r in unrecorded_in_progress(payment, own)
                if final or now >= r.requested_at + REQUEST_LEASE
            }
            if not stale:
                return
            kept = tuple(r for r in payment.refunds if r.return_id not in stale)
            try:
                await self.payments.update(
                    msgspec.structs.replace(payment, refunds=kept), payment.version
                )
                return
            except PixVersionConflict:
                continue

    async def _reread_block(self, end_to_end_id: str) -> PrecautionaryBlock:
        block = await self.repository.get_block(end_to_end_id)
        assert block is not None  # blocks are never deleted
        return block

    async def _reread_case(self, end_to_end_id: str) -> MedCase:
        case = await self.repository.get_case(end_to_end_id)
        assert case is not None  # cases are never deleted
        return case

    def unrecorded_return_ids(self, case: MedCase) -> set[str]:
        """The rtrIds a request could plan for the case (one per block) that its
        recorded returns do not have; none for a case not accepted, or ours as the
        payer (the receiving bank makes those rtrIds)."""
        if case.analysed_at is None or case.side is MedSide.PAYER:
            return set()
        recorded = {r.return_id for r in case.returns}
        return {self.return_id(case, i) for i in range(len(case.blocks))} - recorded

    def return_id(self, case: MedCase, index: int) -> str:
        """The rtrId of the case's ``index``-th return: the same for every caller.

        Derived from the report and the acceptance time, so concurrent
        requests plan the same ids and a replay finds its returns again.
        """
        assert case.analysed_at is not None
        seeded = random.Random(f"med-return:{case.report_id}:{index}")  # noqa: S311 - an id, not a secret
        return ReturnId.generate(self.ispb, case.analysed_at, seeded).value


def unrecorded_in_progress(payment: PixPayment, own: set[str]) -> list[PixRefund]:
    """The payment's MED refunds still in progress under the rtrIds ``own`` (those a
    request could plan that the case has not recorded: ``unrecorded_return_ids``)."""
    return [
        r
        for r in payment.refunds
        if r.return_id in own
        and r.nature is RefundNature.MED_FRAUDE
        and r.status is RefundStatus.EM_PROCESSAMENTO
    ]


async def with_retries(step: Callable[[], Awaitable[T]]) -> T:
    """Run ``step`` again while it loses version races (it re-reads what it changes)."""
    for _ in range(RETRIES - 1):
        try:
            return await step()
        except MedVersionConflict:
            continue
    return await step()


def is_final(case: MedCase) -> bool:
    return case.status in (CaseStatus.DISAGREED, CaseStatus.CLOSED, CaseStatus.LAPSED)
