"""Request and response bodies of the MED routes (``routes/pix_med.py``).

A customer sees the state of their payment's case (status, deadlines,
totals) and the precautionary block of their own account; the accounts a
case traced the money to belong to other customers and are shown to the
back office only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from finbank_core.pix.med.model import (
    BlockStatus,
    CaseStatus,
    Decision,
    FraudSituation,
    HoldStatus,
    MedCase,
    MedSide,
    MedView,
    PrecautionaryBlock,
)
from finbank_core.pix.refunds import RefundStatus
from finbank_http.schemas import AmountOut, AmountText, PositiveAmountText, signed_amount

IspbText = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Z]{8}$(?!\n)", examples=["88888888"])]
ReportIdText = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
#: a return's rtrId: ``D``, the returning bank's ISPB, yyyyMMddHHmm (UTC), 11 letters or digits
ReturnIdText = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^D[0-9A-Z]{8}[0-9]{12}[A-Za-z0-9]{11}$(?!\n)",
        examples=["D8888888820260406140012345abcdef"],
    ),
]


class ContestIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    situation: FraudSituation


class DecisionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    decision: Decision


class ReportIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An infraction report from the payer's bank (what the directory delivers)."""

    end_to_end_id: str
    report_id: ReportIdText
    situation: FraudSituation
    reporter_ispb: IspbText


class RefundRequestIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The payer's bank's refund request; no amount: everything still unrefunded."""

    requested_by: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    amount: AmountText | None = None


class PeerAnalysisIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The receiving bank's analysis of a report we sent it (what the directory delivers)."""

    report_id: ReportIdText
    decision: Decision
    #: the institution that analysed it: the one the payment went to
    analysed_by: IspbText


class IncomingReturnIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A return (pacs.004) of a reported payment we sent (what the SPI delivers)."""

    #: the return's rtrId: the same one again is a replay, credited once
    return_id: ReturnIdText
    amount: PositiveAmountText
    #: the institution that returns it: the one the payment went to
    from_ispb: IspbText
    #: the last return that bank will send for this report (closes the case)
    final: bool = True


class BlockOut(msgspec.Struct, kw_only=True):
    status: BlockStatus
    amount: AmountOut
    blocked_at: datetime
    expires_at: datetime
    resolved_at: datetime | None
    resolution: str | None

    @classmethod
    def of(cls, block: PrecautionaryBlock) -> BlockOut:
        return cls(
            status=block.status,
            amount=signed_amount(block.amount),
            blocked_at=block.blocked_at,
            expires_at=block.expires_at,
            resolved_at=block.resolved_at,
            resolution=block.resolution,
        )


class HeldOut(msgspec.Struct, kw_only=True):
    account_id: uuid.UUID
    amount: AmountOut
    depth: int
    status: HoldStatus


class ReturnOut(msgspec.Struct, kw_only=True):
    return_id: str
    account_id: uuid.UUID
    amount: AmountOut
    status: RefundStatus
    completed_at: datetime | None
    failure_reason: str | None


class CaseOut(msgspec.Struct, kw_only=True):
    report_id: str
    side: MedSide
    situation: FraudSituation
    status: CaseStatus
    opened_at: datetime
    analysis_deadline: datetime
    refund_deadline: datetime | None
    blocked_amount: AmountOut
    returned_amount: AmountOut
    #: back office only: where the money was held (traced accounts are other customers')
    blocks: list[HeldOut] | None = None
    returns: list[ReturnOut] | None = None

    @classmethod
    def of(cls, case: MedCase, *, back_office: bool = False) -> CaseOut:
        return cls(
            report_id=case.report_id,
            side=case.side,
            situation=case.situation,
            status=case.status,
            opened_at=case.opened_at,
            analysis_deadline=case.analysis_deadline,
            refund_deadline=case.refund_deadline,
            blocked_amount=signed_amount(case.blocked_amount),
            returned_amount=signed_amount(case.returned_amount),
            blocks=[
                HeldOut(
                    account_id=b.account_id,
                    amount=signed_amount(b.amount),
                    depth=b.depth,
                    status=b.status,
                )
                for b in case.blocks
            ]
            if back_office
            else None,
            returns=[
                ReturnOut(
                    return_id=r.return_id,
                    account_id=r.account_id,
                    amount=signed_amount(r.amount),
                    status=r.status,
                    completed_at=r.completed_at,
                    failure_reason=r.failure_reason.value if r.failure_reason else None,
                )
                for r in case.returns
            ]
            if back_office
            else None,
        )


class MedOut(msgspec.Struct, kw_only=True):
    """A payment's MED state: its infraction report's case and its precautionary block."""

    end_to_end_id: str
    case: CaseOut | None
    block: BlockOut | None

    @classmethod
    def of(cls, view: MedView, owner_id: str | None = None) -> MedOut:
        """For the customer ``owner_id``: the block only if it is on their account."""
        block = view.block
        if block is not None and owner_id is not None and block.owner_id != owner_id:
            block = None
        return cls(
            end_to_end_id=view.end_to_end_id,
            case=CaseOut.of(view.case, back_office=owner_id is None) if view.case else None,
            block=BlockOut.of(block) if block else None,
        )
