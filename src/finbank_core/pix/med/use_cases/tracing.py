"""Blocking a case's money where it is: the receiving account, then where it went (MED 2.0).

After an accepted report the receiving bank blocks what the receiving
account still has of the amount. If that is short, the money moved on: the
2025 rules let it follow the transfers out of that account after the
payment, to the next accounts, and block there too, hop by hop up to
``MedRules.trace_depth``. Inside this bank the trail is complete: internal
transfers (ledger) and on-us PIX (payment records) out of the account since
the money arrived, oldest first, each followed for at most its own amount
and at most what is still missing.

Every hold takes at most what the account has available (a balancing
pending transfer), its id derives from the report and the account, and an
account is visited once per case; repeating the whole walk finds the same
holds again.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from finbank_core.accounts.ledger import AccountFilter, PendingStatus, TransferCode
from finbank_core.pix.med import events as med_events
from finbank_core.pix.med.errors import MedVersionConflict
from finbank_core.pix.med.model import CaseStatus, MedBlock, MedCase, MedSide
from finbank_core.pix.med.use_cases.common import RETRIES, MedDeps
from finbank_core.pix.payments import PaymentStatus, PixFlow
from finbank_core.shared.money import Money

#: transfers looked at per account and hop
HOPS_PER_ACCOUNT = 100


class Hop(msgspec.Struct, frozen=True, kw_only=True):
    """Money that left an account for another account here."""

    to_account_id: uuid.UUID
    amount: Money
    at: datetime
    via: str


async def outgoing_hops(deps: MedDeps, account_id: uuid.UUID, since: datetime) -> list[Hop]:
    """Transfers out of ``account_id`` to accounts here since ``since``, oldest first."""
    transfers = await deps.raw_ledger.get_account_transfers(
        AccountFilter(
            account_id=account_id,
            code=TransferCode.INTERNAL_TRANSFER,
            timestamp_min=since,
            credits=False,
            limit=HOPS_PER_ACCOUNT,
        )
    )
    hops = [
        Hop(
            to_account_id=t.credit_account_id, amount=Money(t.amount), at=t.timestamp, via=str(t.id)
        )
        for t in transfers
        if t.status is PendingStatus.NONE and t.debit_account_id == account_id
    ]
    page = await deps.payments.list_by_account(account_id, since=since, limit=HOPS_PER_ACCOUNT)
    hops.extend(
        Hop(
            to_account_id=p.payee.account_id,
            amount=p.amount,
            at=p.settled_at,
            via=p.end_to_end_id,
        )
        for p in page.items
        if p.flow is PixFlow.ON_US
        and p.status is PaymentStatus.SETTLED
        and p.payer.account_id == account_id
        and p.payee.account_id is not None
        and p.settled_at is not None
    )
    return sorted(hops, key=lambda h: h.at)


class BlockTracer:
    """Places a case's holds (see the module docstring) and records them once."""

    def __init__(self, deps: MedDeps) -> None:
        self._d = deps

    async def apply(self, case: MedCase) -> MedCase:
        """Block the case's money and record the blocks; a case that has them is returned as is."""
        d = self._d
        if (
            case.blocks_applied
            or case.status is not CaseStatus.AGREED
            or case.side is MedSide.PAYER
            or case.payee_account_id is None
        ):
            return case
        payment = await d.payments.get(case.end_to_end_id)
        need = Money(payment.amount.cents - payment.refunded_amount.cents)
        blocks = await self._walk(case, case.payee_account_id, case.paid_at, need)
        for _ in range(RETRIES):
            try:
                stored = await d.repository.update_case(case.with_blocks(blocks), case.version)
            except MedVersionConflict:
                reread = await d.repository.get_case(case.end_to_end_id)
                assert reread is not None
                if reread.blocks_applied:
                    return reread  # a concurrent caller recorded the same holds
                if reread.status is not CaseStatus.AGREED:
                    # lapsed while the walk ran: its holds belong to no case any more
                    await d.ledger.release_all([block.hold_id for block in blocks])
                    return reread
                case = reread
                continue
            await d.publish_case(med_events.FUNDS_BLOCKED, stored)
            # a precautionary block recorded while the walk ran was not moved into the
            # case's hold: it gives way, so that the amount is held once
            await d.yield_block_to_case(case.end_to_end_id)
            return stored
        raise MedVersionConflict()

    async def _walk(
        self, case: MedCase, account_id: uuid.UUID, since: datetime, need: Money
    ) -> tuple[MedBlock, ...]:
        blocks: list[MedBlock] = []
        visited: set[uuid.UUID] = set()

        async def visit(
            account: uuid.UUID, since: datetime, want: int, depth: int, via: str
        ) -> int:
            if want <= 0 or account in visited:
                return 0
            visited.add(account)
            hold_id = case.hold_id_for(account)
            memo = f"Bloqueio MED {case.end_to_end_id}"
            held = Money(0)
            if depth == 0:
                held = await self._keep_precautionary(case, hold_id, account, Money(want), memo)
            if held.cents == 0:
                held = await self._d.ledger.hold(hold_id, account, Money(want), memo)
            if held.cents:
                blocks.append(
                    MedBlock(account_id=account, amount=held, depth=depth, hold_id=hold_id, via=via)
                )
            short = want - held.cents
            if short and depth < self._d.rules.trace_depth:
                for hop in await outgoing_hops(self._d, account, since):
                    if short <= 0:
                        break
                    share = min(hop.amount.cents, short)
                    short -= await visit(hop.to_account_id, hop.at, share, depth + 1, hop.via)
            return want - short

        await visit(account_id, since, need.cents, 0, case.end_to_end_id)
        return tuple(blocks)

    async def _keep_precautionary(
        self, case: MedCase, hold_id: uuid.UUID, account: uuid.UUID, want: Money, memo: str
    ) -> Money:
        """Move a precautionary block in force into the case's hold; 0 if there is none."""
        d = self._d
        block = await d.current_block(case.end_to_end_id)
        if block is None or not block.in_force(d.clock.now()):
            return Money(0)
        moved = await d.ledger.move(block.hold_id, hold_id, account, want, memo)
        if moved is None:
            return Money(0)
        for _ in range(RETRIES):
            if not block.in_force(d.clock.now()):
                break
            try:
                kept = await d.repository.update_block(
                    block.keep_for_med(d.clock.now()), block.version
                )
            except MedVersionConflict:
                reread = await d.repository.get_block(case.end_to_end_id)
                assert reread is not None
                block = reread
                continue
            await d.publish_block(med_events.BLOCK_KEPT_FOR_MED, kept)
            break
        return moved
