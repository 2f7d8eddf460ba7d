"""MED cases (infraction reports, blocks, returns) and precautionary blocks.

Two aggregates, both keyed by the EndToEndId of the payment they are about
and written under an optimistic ``version``:

* :class:`PrecautionaryBlock` (*bloqueio cautelar*): the receiving bank
  holds an incoming PIX to a natural person's account for at most
  ``MedRules.precautionary_block_hours`` after the credit. On the ledger it
  is a pending transfer of the received amount (as much as is still there)
  with that timeout: released = voided (by the ledger at the deadline, or
  earlier by an analyst), kept for MED = the pending amount moves into the
  MED case's hold, returned = that hold posted to the return.
* :class:`MedCase`: one infraction report (*notificação de infração*) and
  what follows it: the receiving bank's analysis, the blocks it placed
  (on the receiving account and, tracing the money, on the accounts here it
  moved on to), the refund request (*solicitação de devolução*) and the
  returns (pacs.004), one per blocked account.

Deadlines come from :class:`MedRules`; every check takes ``now`` from the
injected clock. "Within N" means allowed up to and including the deadline
instant, refused just after; a block is in force while ``now <
expires_at`` and released at ``expires_at``.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta

import msgspec

from finbank_core.accounts.use_cases import FINBANK_NAMESPACE
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.med.errors import MedDeadlinePassed, MedNotAllowed
from finbank_core.pix.refunds import RefundStatus
from finbank_core.shared.ids import uuid5_of
from finbank_core.shared.money import Money

#: the clock's resolution: "after a deadline" is from one microsecond after it
_INSTANT = timedelta(microseconds=1)
#: how long a refund request has from writing the payment's refunds to recording the case
#: (``MedCase.request_started_at``; the use cases' ``drop_unrecorded_refunds``)
REQUEST_LEASE = timedelta(seconds=60)


class MedRules(msgspec.Struct, frozen=True, kw_only=True):
    """The MED and precautionary-block deadlines (sources in ``docs/pix-med.md``)."""

    #: the payer's bank may open an infraction report up to this many days after the payment
    report_window_days: int = 80
    #: the receiving bank analyses a report within this many days of receiving it
    analysis_days: int = 7
    #: the payer's bank requests the return within this many hours of the acceptance
    refund_request_hours: int = 72
    #: the receiving bank executes the return within this many hours of the request
    return_hours: int = 24
    #: a precautionary block lasts at most this many hours after the credit
    precautionary_block_hours: int = 72
    #: how many transfers onwards the money is followed inside this bank (MED 2.0)
    trace_depth: int = 5


class MedSide(enum.StrEnum):
    """Which side of the reported payment this bank is on."""

    RECEIVER = "RECEIVER"  #: another bank's customer paid ours; that bank reported it
    PAYER = "PAYER"  #: our customer paid another bank's; we reported it there
    ON_US = "ON_US"  #: both accounts are here: we report and analyse


class FraudSituation(enum.StrEnum):
    """What the payer says happened (the directory's situation types)."""

    SCAM = "SCAM"
    ACCOUNT_TAKEOVER = "ACCOUNT_TAKEOVER"
    COERCION = "COERCION"
    FRAUDULENT_ACCESS = "FRAUDULENT_ACCESS"
    OTHER = "OTHER"


class Decision(enum.StrEnum):
    """The receiving bank's analysis of a report."""

    AGREED = "AGREED"
    DISAGREED = "DISAGREED"


class CaseStatus(enum.StrEnum):
    OPEN = "OPEN"  #: reported, waiting for the receiving bank's analysis
    AGREED = "AGREED"  #: fraud accepted: what could be found is blocked
    DISAGREED = "DISAGREED"  #: rejected: nothing blocked (final)
    REFUND_REQUESTED = "REFUND_REQUESTED"  #: returns planned, being executed
    CLOSED = "CLOSED"  #: every return final (final)
    LAPSED = "LAPSED"  #: accepted, but no return was requested in time: blocks released (final)


class HoldStatus(enum.StrEnum):
    HELD = "HELD"
    RELEASED = "RELEASED"
    RETURNED = "RETURNED"


class MedBlock(msgspec.Struct, frozen=True, kw_only=True):
    """Money held for a case on one account (the receiving one, ``depth`` 0, or a traced one)."""

    account_id: uuid.UUID
    amount: Money
    depth: int
    #: the ledger's pending transfer that holds it
    hold_id: uuid.UUID
    status: HoldStatus = HoldStatus.HELD
    #: the transfer that brought the money to this account (EndToEndId or ledger transfer id)
    via: str = ""


class MedReturn(msgspec.Struct, frozen=True, kw_only=True):
    """One return (pacs.004, rtrId ``return_id``) of part of a case's blocked money."""

    return_id: str
    account_id: uuid.UUID
    hold_id: uuid.UUID
    amount: Money
    status: RefundStatus
    requested_at: datetime
    completed_at: datetime | None = None
    failure_reason: IsoReason | None = None
    #: when a caller last took the return to execute it (see ``ExecuteMedReturns``)
    attempted_at: datetime | None = None

    def claimable(self, now: datetime, lease: timedelta) -> bool:
        """In progress and nobody took it, or whoever did has had ``lease`` to finish."""
        return self.status is RefundStatus.EM_PROCESSAMENTO and (
            self.attempted_at is None or now >= self.attempted_at + lease
        )


class MedCase(msgspec.Struct, frozen=True, kw_only=True):
    """An infraction report and its outcome (see the module docstring)."""

    end_to_end_id: str
    report_id: str
    side: MedSide
    situation: FraudSituation
    status: CaseStatus
    #: what the reported payment moved
    amount: Money
    paid_at: datetime
    opened_at: datetime
    analysis_deadline: datetime
    payer_ispb: str
    payee_ispb: str
    payee_account_id: uuid.UUID | None = None
    payer_account_id: uuid.UUID | None = None
    #: the customer who contested (self-service), if one did
    reporter_owner_id: str | None = None
    analysed_at: datetime | None = None
    analysed_by: str | None = None
    refund_deadline: datetime | None = None
    #: False between an acceptance being recorded and its blocks being recorded
    blocks_applied: bool = False
    blocks: tuple[MedBlock, ...] = ()
    refund_requested_at: datetime | None = None
    requested_amount: Money | None = None
    return_deadline: datetime | None = None
    returns: tuple[MedReturn, ...] = ()
    #: how the case's hold ids are derived (:meth:`hold_id_for`): 2 for every case made
    #: now; 1, the default, for records stored before the field existed
    hold_ids: int = 1
    #: of a lapsed case: its holds were voided and its unrecorded refunds removed after
    #: the lapse was recorded (until then the sweeper lists it); ``False`` for a case
    #: stored before the field existed, whose next read does both again
    lapse_finished: bool = False
    #: of an accepted case: when a refund request began writing its returns into the
    #: payment, before recording them here. A request that stopped in between leaves
    #: refunds in progress the case does not have; until a reader has removed them
    #: (``REQUEST_LEASE`` after they were written) the case stays due. A reader moves
    #: it to the oldest of them still too young to remove, or clears it
    request_started_at: datetime | None = None
    version: int = 0

    # -- views ---------------------------------------------------------------------

    @property
    def blocked_amount(self) -> Money:
        """What is held for the case now."""
        return Money(sum(b.amount.cents for b in self.blocks if b.status is HoldStatus.HELD))

    @property
    def returned_amount(self) -> Money:
        """What the case returned so far."""
        return Money(
            sum(r.amount.cents for r in self.returns if r.status is RefundStatus.DEVOLVIDO)
        )

    def hold_id_for(self, account_id: uuid.UUID) -> uuid.UUID:
        """The ledger id of this case's hold on ``account_id``.

        From the report id, the account and (``hold_ids`` 2) the payment: the
        report id comes from the bank that reported, and two payments reported
        under one id must not share a hold (the second case would take the
        first's hold and then its post as its own). A case stored before keeps
        the ids it derived then, so a walk interrupted before an upgrade finds
        its holds again.
        """
        if self.hold_ids >= 2:
            return med_hold_id(self.report_id, account_id, self.end_to_end_id)
        return med_hold_id(self.report_id, account_id)

    def is_visible_to(self, owner_id: str) -> bool:
        return self.reporter_owner_id == owner_id

    def find_return(self, return_id: str) -> MedReturn | None:
        return next((r for r in self.returns if r.return_id == return_id), None)

    def refund_lapsed(self, now: datetime) -> bool:
        """Accepted, no return requested, and the request deadline has passed."""
        return (
            self.status is CaseStatus.AGREED
            and self.refund_deadline is not None
            and now > self.refund_deadline
        )

    def attention_at(self) -> datetime | None:
        """From when a reader of the case would move it on by itself (``None``: never).

        What :class:`~finbank_core.pix.med.use_cases.SweepMed` looks for, so that
        nothing waits for a reader who may never come:

        * an accepted case with no request yet lapses just after its
          ``refund_deadline`` (one microsecond, the clock's resolution, after it);
          and once lapsed, it stays due until its holds are voided
          (``lapse_finished``: a lapse can stop between its record and its voids);
        * a return left ``EM_PROCESSAMENTO`` (as the payer's bank, one whose
          delivery stopped before the credit or the record; as the receiving
          bank, one whose pacs.004 could not be sent) is due from when it was
          last taken, or requested;
        * an accepted case whose refund request began writing the payment's
          refunds (``request_started_at``) is due ``REQUEST_LEASE`` after it:
          a request that stopped before recording them here left refunds in
          progress that only a reader removes.

        Stores keep it beside the case, so that the due cases can be found
        without reading them all.
        """
        due = [
            r.attempted_at or r.requested_at
            for r in self.returns
            if r.status is RefundStatus.EM_PROCESSAMENTO
        ]
        lapsing = self.status is CaseStatus.AGREED or (
            self.status is CaseStatus.LAPSED and not self.lapse_finished
        )
        if lapsing and self.refund_deadline is not None:
            due.append(self.refund_deadline + _INSTANT)
        if self.status is CaseStatus.AGREED and self.request_started_at is not None:
            due.append(self.request_started_at + REQUEST_LEASE)
        return min(due, default=None)

    # -- transitions ------------------------------------------------------------------

    def decide(self, decision: Decision, analyst: str, now: datetime, rules: MedRules) -> MedCase:
        """``OPEN -> AGREED | DISAGREED`` within the analysis deadline."""
        if self.side is MedSide.PAYER:
            raise MedNotAllowed("the receiving bank analyses this report, not us")
        if self.status is not CaseStatus.OPEN:
            raise MedNotAllowed(f"a {self.status.value} report cannot be analysed")
        if now > self.analysis_deadline:
            raise MedDeadlinePassed(
                f"reports are analysed within {rules.analysis_days} days",
                deadline="analysis",
                field="decision",
            )
        if decision is Decision.DISAGREED:
            return msgspec.structs.replace(
                self,
                status=CaseStatus.DISAGREED,
                analysed_at=now,
                analysed_by=analyst,
                blocks_applied=True,
            )
        return msgspec.structs.replace(
            self,
            status=CaseStatus.AGREED,
            analysed_at=now,
            analysed_by=analyst,
            refund_deadline=now + timedelta(hours=rules.refund_request_hours),
        )

    def with_blocks(self, blocks: tuple[MedBlock, ...]) -> MedCase:
        return msgspec.structs.replace(self, blocks=blocks, blocks_applied=True)

    def lapse(self) -> MedCase:
        """``AGREED -> LAPSED``: the blocks are released."""
        released = tuple(
            msgspec.structs.replace(b, status=HoldStatus.RELEASED)
            if b.status is HoldStatus.HELD
            else b
            for b in self.blocks
        )
        return msgspec.structs.replace(self, status=CaseStatus.LAPSED, blocks=released)

    def request_refund(
        self, requested: Money, return_ids: list[str], now: datetime, rules: MedRules
    ) -> MedCase:
        """``AGREED -> REFUND_REQUESTED``: one return per held block, first blocks first.

        Returns add up to ``requested`` at most (the caller caps it at what
        the payment still has unrefunded); a block that gets nothing, or
        only part, has the rest released when its return posts.
        """
        if self.status is CaseStatus.LAPSED or (
            self.status is CaseStatus.AGREED
            and (self.refund_deadline is None or now > self.refund_deadline)
        ):
            raise MedDeadlinePassed(
                f"returns are requested within {rules.refund_request_hours} hours of the"
                " acceptance",
                deadline="refund_request",
                field="amount",
            )
        if self.status is not CaseStatus.AGREED:
            raise MedNotAllowed(f"a return cannot be requested for a {self.status.value} report")
        left = requested.cents
        returns: list[MedReturn] = []
        blocks: list[MedBlock] = []
        ids = iter(return_ids)
        for block in self.blocks:
            if block.status is not HoldStatus.HELD:
                blocks.append(block)
                continue
            share = min(block.amount.cents, left)
            if share == 0:
                blocks.append(msgspec.structs.replace(block, status=HoldStatus.RELEASED))
                continue
            left -= share
            returns.append(
                MedReturn(
                    return_id=next(ids),
                    account_id=block.account_id,
                    hold_id=block.hold_id,
                    amount=Money(share),
                    status=RefundStatus.EM_PROCESSAMENTO,
                    requested_at=now,
                )
            )
            blocks.append(block)
        status = CaseStatus.REFUND_REQUESTED if returns else CaseStatus.CLOSED
        return msgspec.structs.replace(
            self,
            status=status,
            blocks=tuple(blocks),
            returns=tuple(returns),
            refund_requested_at=now,
            requested_amount=requested,
            return_deadline=now + timedelta(hours=rules.return_hours),
        )

    def attempt_return(self, return_id: str, now: datetime) -> MedCase:
        """Mark the return taken by a caller at ``now`` (recorded under the case's version)."""
        returns = tuple(
            msgspec.structs.replace(r, attempted_at=now) if r.return_id == return_id else r
            for r in self.returns
        )
        return msgspec.structs.replace(self, returns=returns)

    def finish_return(self, done: MedReturn) -> MedCase:
        """Record a return's outcome; its block is returned (or released if it failed)."""
        returns = tuple(r if r.return_id != done.return_id else done for r in self.returns)
        hold = HoldStatus.RETURNED if done.status is RefundStatus.DEVOLVIDO else HoldStatus.RELEASED
        blocks = tuple(
            msgspec.structs.replace(b, status=hold) if b.hold_id == done.hold_id else b
            for b in self.blocks
        )
        final = all(r.status is not RefundStatus.EM_PROCESSAMENTO for r in returns)
        status = CaseStatus.CLOSED if final else self.status
        return msgspec.structs.replace(self, returns=returns, blocks=blocks, status=status)


class BlockStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"  #: the money is held
    RELEASED = "RELEASED"  #: voided: by an analyst, or at the deadline (final)
    KEPT_FOR_MED = "KEPT_FOR_MED"  #: moved into the payment's MED case (final here)


class PrecautionaryBlock(msgspec.Struct, frozen=True, kw_only=True):
    """A precautionary block of an incoming PIX (see the module docstring)."""

    end_to_end_id: str
    account_id: uuid.UUID
    owner_id: str
    #: what is held: the received amount, or what was left of it
    amount: Money
    status: BlockStatus
    blocked_at: datetime
    expires_at: datetime
    hold_id: uuid.UUID
    blocked_by: str
    resolved_at: datetime | None = None
    #: why it ended: ``expired``, ``released`` (by an analyst) or ``kept_for_med``
    resolution: str | None = None
    #: who released it early (the operator or analyst); ``None`` while it holds, and
    #: when its deadline or its MED case ended it
    released_by: str | None = None
    #: between a reduction's record and its ``pix.med.block_reduced``: the next reader
    #: (the sweeper included) publishes it, then clears this
    reduction_owed: bool = False
    version: int = 0

    def in_force(self, now: datetime) -> bool:
        return self.status is BlockStatus.ACTIVE and now < self.expires_at

    def attention_at(self) -> datetime | None:
        """From when a reader would move the block on by itself; ``None``: never.

        A reduction whose event is owed (``reduction_owed``) at once (from when the
        block was placed, which has passed); else, while it is recorded active, its
        deadline: the ledger voids its hold at that moment on its own, the record and
        ``pix.med.block_released`` wait for a reader
        (:class:`~finbank_core.pix.med.use_cases.SweepMed` is one).
        """
        if self.reduction_owed:
            return self.blocked_at
        return self.expires_at if self.status is BlockStatus.ACTIVE else None

    def expired(self, now: datetime) -> bool:
        """Still recorded active, but its deadline has come: release it."""
        return self.status is BlockStatus.ACTIVE and now >= self.expires_at

    def release(self, now: datetime, resolution: str, by: str | None = None) -> PrecautionaryBlock:
        """Released: at its deadline (``expired``), or early ``by`` someone (``released``)."""
        if self.status is not BlockStatus.ACTIVE:
            raise MedNotAllowed(f"a {self.status.value} block cannot be released")
        return msgspec.structs.replace(
            self,
            status=BlockStatus.RELEASED,
            resolved_at=min(now, self.expires_at) if resolution == "expired" else now,
            resolution=resolution,
            released_by=by,
        )

    def keep_for_med(self, now: datetime) -> PrecautionaryBlock:
        if not self.in_force(now):
            raise MedNotAllowed("only a block in force can be kept for MED")
        return msgspec.structs.replace(
            self, status=BlockStatus.KEPT_FOR_MED, resolved_at=now, resolution="kept_for_med"
        )


#: ``uuid.uuid5(FINBANK_NAMESPACE, name)``, bit for bit (ids already stored must not move)
_derive_id = uuid5_of(FINBANK_NAMESPACE)


def med_hold_id(
    report_id: str, account_id: uuid.UUID, end_to_end_id: str | None = None
) -> uuid.UUID:
    """The ledger id of a case's hold on one account (one per account, so repeats collide);
    see :meth:`MedCase.hold_id_for` for ``end_to_end_id``."""
    if end_to_end_id is None:
        return _derive_id(f"med-hold\x1f{report_id}\x1f{account_id}")
    return _derive_id(f"med-hold\x1f{end_to_end_id}\x1f{report_id}\x1f{account_id}")


def precautionary_hold_id(end_to_end_id: str) -> uuid.UUID:
    """The ledger id of the precautionary hold of a payment."""
    return _derive_id(f"med-precautionary\x1f{end_to_end_id}")


def med_step_id(hold_id: uuid.UUID, step: str) -> uuid.UUID:
    """The ledger id of a step (``void``, ``post``, ``credit``) on a hold."""
    return _derive_id(f"med-step\x1f{hold_id}\x1f{step}")


class MedView(msgspec.Struct, frozen=True, kw_only=True):
    """What a payment shows of MED: its case and its precautionary block, if any."""

    end_to_end_id: str
    case: MedCase | None = None
    block: PrecautionaryBlock | None = None


class MedDue(msgspec.Struct, frozen=True, order=True):
    """A case or a block a reader should look at from ``at`` (its ``attention_at``).

    Ordered by ``(at, end_to_end_id)``, the order stores list them in, so one
    is also where a page of them ends (the ``after`` of the next page).
    """

    at: datetime
    end_to_end_id: str
