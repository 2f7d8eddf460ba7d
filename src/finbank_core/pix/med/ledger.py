"""The ledger side of MED: holds (pending transfers) placed, released, moved and posted.

A hold is a pending transfer from the customer's account to the bank's
suspense account, flagged ``BALANCING_DEBIT`` so that it takes as much of
the asked amount as the account has available, atomically (no read of the
balance that a concurrent payment could make stale). Holds stay off the PIX
settlement account on purpose: reconciliation treats a pending transfer
there older than an hour as an orphan to void, and a MED hold lives for
days. A return posts (part of) the hold to suspense and, in the same linked
batch, moves it on: to the settlement account for a pacs.004 (with the
rtrId in the statement text, as reconciliation expects), or straight to the
payer's account on-us. Every step has an id derived from the hold
(:func:`~finbank_core.pix.med.model.med_step_id`), so repeating any of them
applies it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import msgspec

from finbank_core.accounts.ledger import (
    CreateTransferResult,
    PendingStatus,
    Transfer,
    TransferCode,
    TransferFlags,
)
from finbank_core.accounts.ports import Ledger
from finbank_core.accounts.use_cases import BankAccounts, raise_for_transfer_result
from finbank_core.pix.med.model import med_step_id
from finbank_core.shared.money import Money

R = CreateTransferResult
#: the hold was there already (this call or a concurrent one made it)
_ALREADY = {R.EXISTS, R.EXISTS_WITH_DIFFERENT_FIELDS}
#: a void or post that finds the hold already resolved
_RESOLVED = {
    R.PENDING_TRANSFER_ALREADY_VOIDED,
    R.PENDING_TRANSFER_EXPIRED,
}
#: what a void answers when the hold is free, or ends free (:meth:`MedLedger.release`)
_RELEASED = {R.OK, R.EXISTS, R.PENDING_TRANSFER_NOT_FOUND, *_RESOLVED}


class MedLedger:
    """Holds for precautionary blocks and MED cases; every method is safe to repeat."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def hold(
        self,
        hold_id: uuid.UUID,
        account_id: uuid.UUID,
        most: Money,
        memo: str,
        *,
        timeout_seconds: int = 0,
    ) -> Money:
        """Hold up to ``most`` of the account's available money; what is held (maybe 0)."""
        [result] = await self._ledger.create_transfers(
            [self._hold(hold_id, account_id, most, memo, timeout_seconds)]
        )
        if result is R.EXCEEDS_CREDITS:
            return Money(0)  # nothing available
        if result is not R.OK and result not in _ALREADY:
            raise_for_transfer_result(result)
        return await self.held(hold_id)

    async def move(
        self,
        from_hold: uuid.UUID,
        to_hold: uuid.UUID,
        account_id: uuid.UUID,
        most: Money,
        memo: str,
        *,
        timeout_seconds: int = 0,
    ) -> Money | None:
        """Void ``from_hold`` and place ``to_hold`` in one linked batch: the money never frees.

        ``None`` when ``from_hold`` is no longer pending (expired, voided):
        nothing was moved and the caller holds afresh. ``timeout_seconds``: the
        new hold's (0: none, as a case's holds).
        """
        void = msgspec.structs.replace(
            Transfer.void(med_step_id(from_hold, "void"), from_hold),
            flags=TransferFlags.VOID_PENDING_TRANSFER | TransferFlags.LINKED,
        )
        results = await self._ledger.create_transfers(
            [void, self._hold(to_hold, account_id, most, memo, timeout_seconds)]
        )
        if all(r is R.OK for r in results):
            return await self.held(to_hold)
        if await self.status(to_hold) is not None:
            return await self.held(to_hold)  # a concurrent caller moved it
        return None

    async def release(self, hold_id: uuid.UUID) -> None:
        """Void the hold (the money is the customer's again); nothing if it already ended."""
        await self.release_all((hold_id,))

    async def release_all(self, hold_ids: Sequence[uuid.UUID]) -> None:
        """:meth:`release` of every hold in ``hold_ids``, in one ledger call.

        The voids are not linked: each succeeds or finds its hold ended on its
        own, as separate calls would. The first void refused for another reason
        is raised, after the others were applied.
        """
        distinct = dict.fromkeys(hold_ids)  # one void per hold, in their order
        if not distinct:
            return
        results = await self._ledger.create_transfers(
            [Transfer.void(med_step_id(hold_id, "void"), hold_id) for hold_id in distinct]
        )
        for result in results:
            if result not in _RELEASED:
                raise_for_transfer_result(result)

    async def post(
        self,
        hold_id: uuid.UUID,
        amount: Money,
        memo: str,
        *,
        then_credit: uuid.UUID | None = None,
    ) -> None:
        """Post ``amount`` of the hold (the rest is released) and pay it out, linked.

        Suspense -> ``then_credit`` (an on-us return to the payer), or
        suspense -> PIX settlement (a return through the network). Applied
        once whoever repeats it.
        """
        post_id = med_step_id(hold_id, "post")
        if await self._ledger.lookup_transfers([post_id]):
            return
        post = Transfer(
            id=post_id,
            debit_account_id=None,
            credit_account_id=None,
            amount=amount.cents,
            code=0,
            flags=TransferFlags.POST_PENDING_TRANSFER,
            pending_id=hold_id,
            user_data=memo,
        )
        post = msgspec.structs.replace(post, flags=post.flags | TransferFlags.LINKED)
        batch = [
            post,
            Transfer(
                id=med_step_id(hold_id, "out"),
                debit_account_id=BankAccounts.SUSPENSE,
                credit_account_id=then_credit or BankAccounts.PIX_SETTLEMENT,
                amount=amount.cents,
                code=TransferCode.PIX_REFUND_IN if then_credit else TransferCode.PIX_REFUND_OUT,
                user_data=memo,
            ),
        ]
        results = await self._ledger.create_transfers(batch)
        if all(r is R.OK for r in results) or await self._ledger.lookup_transfers([post_id]):
            return
        failing = next((r for r in results if r not in (R.OK, R.LINKED_EVENT_FAILED)), results[0])
        raise_for_transfer_result(failing)

    async def status(self, hold_id: uuid.UUID) -> PendingStatus | None:
        found = await self._ledger.lookup_transfers([hold_id])
        return found[0].status if found else None

    async def held(self, hold_id: uuid.UUID) -> Money:
        """The amount of the hold (what it took); 0 if there is none."""
        found = await self._ledger.lookup_transfers([hold_id])
        return Money(found[0].amount) if found else Money(0)

    async def posted(self, hold_id: uuid.UUID) -> bool:
        return bool(await self._ledger.lookup_transfers([med_step_id(hold_id, "post")]))

    @staticmethod
    def _hold(
        hold_id: uuid.UUID, account_id: uuid.UUID, most: Money, memo: str, timeout_seconds: int
    ) -> Transfer:
        return Transfer(
            id=hold_id,
            debit_account_id=account_id,
            credit_account_id=BankAccounts.SUSPENSE,
            amount=most.cents,
            code=TransferCode.PIX_REFUND_OUT,
            flags=TransferFlags.PENDING | TransferFlags.BALANCING_DEBIT,
            timeout_seconds=timeout_seconds,
            user_data=memo,
        )
