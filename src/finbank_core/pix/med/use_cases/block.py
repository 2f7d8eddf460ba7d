"""Precautionary blocks (bloqueio cautelar) of incoming PIX: place one, release one.

The receiving bank may hold an incoming PIX to a natural person's account
when it suspects fraud, for at most ``MedRules.precautionary_block_hours``
after the credit, and must tell the customer (``pix.med.block_placed``,
which the notification service consumes). The block ends when an analyst
releases it, when the payment's MED case keeps it
(:mod:`.analysis`), or at its deadline: the ledger voids the hold then, and
the first caller that reads the block records it (``common.MedDeps.current_block``).
"""

from __future__ import annotations

import math
from datetime import timedelta

import msgspec

from finbank_core.accounts.model import HolderType
from finbank_core.pix.med import events as med_events
from finbank_core.pix.med.errors import (
    MedDeadlinePassed,
    MedNotAllowed,
    NothingToBlock,
    PrecautionaryBlockAlreadyExists,
)
from finbank_core.pix.med.model import BlockStatus, PrecautionaryBlock, precautionary_hold_id
from finbank_core.pix.med.use_cases.common import MedDeps, check_operator_id, with_retries
from finbank_core.pix.payments import PaymentStatus, PixFlow
from finbank_core.shared.errors import NotFound
from finbank_core.shared.inputs import check_lookup_id
from finbank_core.shared.money import Money


class PlacePrecautionaryBlockCommand(msgspec.Struct, frozen=True, kw_only=True):
    end_to_end_id: str
    #: who decided it (an analyst id or the fraud engine's name); kept with the block
    blocked_by: str


class ReleasePrecautionaryBlockCommand(msgspec.Struct, frozen=True, kw_only=True):
    end_to_end_id: str
    #: who released it (an analyst or operator id); kept with the block, as ``blocked_by``
    released_by: str


class PrecautionaryBlockResult(msgspec.Struct, frozen=True, kw_only=True):
    block: PrecautionaryBlock
    replayed: bool = False


class PlacePrecautionaryBlock:
    """Hold an incoming PIX to a natural person's account (see the module docstring).

    Only a settled payment this bank received, into an individual's
    account, before the block's deadline (``MedDeadlinePassed`` after it);
    holds what is still available of the amount (``NothingToBlock`` if
    nothing is). One block per payment: a repeat, or a concurrent caller,
    gets the block recorded first (``replayed``). A block placed while the
    payment's report is accepted gives way to the case if the case placed
    holds of its own beside it: it is answered ``RELEASED`` (resolution
    ``superseded_by_med``), so the amount is held once
    (``MedDeps.yield_block_to_case``).
    """

    def __init__(self, deps: MedDeps) -> None:
        self._d = deps

    async def __call__(self, cmd: PlacePrecautionaryBlockCommand) -> PrecautionaryBlockResult:
        check_lookup_id(cmd.end_to_end_id, "end_to_end_id")
        check_operator_id(cmd.blocked_by, "blocked_by")  # stored with it
        d = self._d
        existing = await d.current_block(cmd.end_to_end_id)
        if existing is not None:
            await d.republish_block(existing)  # in case a crash lost its events
            return PrecautionaryBlockResult(block=existing, replayed=True)
        payment = await d.payments.get(cmd.end_to_end_id)
        case = await d.current_case(cmd.end_to_end_id)
        if case is not None and case.blocks:
            raise MedNotAllowed(
                "the payment's MED case already holds what was found", field="end_to_end_id"
            )
        account_id = payment.payee.account_id
        if (
            payment.flow is PixFlow.OUTGOING
            or payment.status is not PaymentStatus.SETTLED
            or payment.settled_at is None
            or account_id is None
        ):
            raise MedNotAllowed(
                "only a settled payment received here can be blocked", field="end_to_end_id"
            )
        account = await d.accounts.get(account_id)
        if account.holder_type is not HolderType.INDIVIDUAL:
            raise MedNotAllowed(
                "precautionary blocks apply to natural persons' accounts", field="end_to_end_id"
            )
        now = d.clock.now()
        deadline = payment.settled_at + timedelta(hours=d.rules.precautionary_block_hours)
        seconds = math.floor((deadline - now).total_seconds())
        if seconds <= 0:
            raise MedDeadlinePassed(
                f"a precautionary block lasts at most {d.rules.precautionary_block_hours} hours"
                " after the credit",
                deadline="precautionary_block",
                field="end_to_end_id",
            )
        hold_id = precautionary_hold_id(payment.end_to_end_id)
        held = await d.ledger.hold(
            hold_id,
            account_id,
            Money(payment.amount.cents - payment.refunded_amount.cents),
            f"Bloqueio cautelar PIX {payment.end_to_end_id}",
            timeout_seconds=seconds,
        )
        if held.cents == 0:
            raise NothingToBlock("the account has none of the money left", field="end_to_end_id")
        block = PrecautionaryBlock(
            end_to_end_id=payment.end_to_end_id,
            account_id=account_id,
            owner_id=account.owner_id,
            amount=held,
            status=BlockStatus.ACTIVE,
            blocked_at=now,
            expires_at=now + timedelta(seconds=seconds),
            hold_id=hold_id,
            blocked_by=cmd.blocked_by,
        )
        try:
            stored = await d.repository.add_block(block)
        except PrecautionaryBlockAlreadyExists:
            first = await d.repository.get_block(payment.end_to_end_id)
            assert first is not None
            return PrecautionaryBlockResult(block=first, replayed=True)
        await d.publish_block(med_events.BLOCK_PLACED, stored)
        # the payment's report may have been accepted meanwhile, its case holding the
        # money without having seen this block: then the block gives way, and is
        # answered released (``superseded_by_med``), as every later call answers it
        after = await d.yield_block_to_case(payment.end_to_end_id)
        return PrecautionaryBlockResult(block=after or stored)


class ReleasePrecautionaryBlock:
    """An analyst ends a block early: the hold is voided, the money is the customer's again.

    A block already released answers as it is (``replayed``); one kept for
    MED cannot be released here (``MedNotAllowed``): its case decides.
    """

    def __init__(self, deps: MedDeps) -> None:
        self._d = deps

    async def __call__(self, cmd: ReleasePrecautionaryBlockCommand) -> PrecautionaryBlockResult:
        check_lookup_id(cmd.end_to_end_id, "end_to_end_id")
        check_operator_id(cmd.released_by, "released_by")  # stored with it
        return await with_retries(lambda: self._release(cmd))

    async def _release(self, cmd: ReleasePrecautionaryBlockCommand) -> PrecautionaryBlockResult:
        d = self._d
        block = await d.current_block(cmd.end_to_end_id)
        if block is None:
            raise NotFound("this payment has no precautionary block")
        if block.status is BlockStatus.RELEASED:
            await d.republish_block(block)  # in case a crash lost its events
            return PrecautionaryBlockResult(block=block, replayed=True)
        if block.status is BlockStatus.KEPT_FOR_MED:
            raise MedNotAllowed("the block was kept for MED; its case decides", field="status")
        await d.ledger.release(block.hold_id)
        stored = await d.repository.update_block(
            block.release(d.clock.now(), "released", by=cmd.released_by), block.version
        )
        await d.publish_block(med_events.BLOCK_RELEASED, stored)
        return PrecautionaryBlockResult(block=stored)


__all__ = [
    "PlacePrecautionaryBlock",
    "PlacePrecautionaryBlockCommand",
    "PrecautionaryBlockResult",
    "ReleasePrecautionaryBlock",
    "ReleasePrecautionaryBlockCommand",
]
