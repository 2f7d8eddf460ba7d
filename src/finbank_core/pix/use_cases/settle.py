"""Settling what ``SendPix`` started, and reading payments.

Every use case here is idempotent: ledger steps have ids derived from the
EndToEndId and records are written conditionally, so a worker may run the
same message twice (at-least-once delivery) without moving money twice.
Incoming payments are in :mod:`finbank_core.pix.use_cases.receive`, refunds in
:mod:`finbank_core.pix.use_cases.refund`.
"""

from __future__ import annotations

from finbank_core.accounts.ledger import PendingStatus, TransferCode
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.context import PixDeps, memo
from finbank_core.pix.errors import (
    PixPaymentNotFound,
    PixVersionConflict,
)
from finbank_core.pix.network import PaymentOrder
from finbank_core.pix.payments import PaymentStatus, PixFlow, PixPayment
from finbank_core.pix.ports import ChargeRepository, PaymentNetwork
from finbank_core.pix.use_cases.charge import conclude_matching_charge


async def _store_transition(deps: PixDeps, before: PixPayment, after: PixPayment) -> PixPayment:
    """Write a transition; if another worker wrote first, return what it wrote."""
    try:
        return await deps.payments.update(after, before.version)
    except PixVersionConflict:
        current = await deps.payments.get(before.end_to_end_id)
        if current.status is PaymentStatus.PENDING:
            raise
        return current


async def settle_on_us(deps: PixDeps, charges: ChargeRepository, payment: PixPayment) -> PixPayment:
    """Post the payer's reservation and credit the payee together; mark ``SETTLED``.

    Safe to repeat (the settlement worker finishes what a crash interrupted).
    """
    assert payment.payee.account_id is not None
    e2e = payment.end_to_end_id
    await deps.post(
        e2e,
        TransferCode.PIX_OUT,
        memo("PIX enviado", payment),
        then_credit=payment.payee.account_id,
        credit_code=TransferCode.PIX_IN,
        credit_memo=memo("PIX recebido", payment),
    )
    now = deps.clock.now()
    settled = await _store_transition(deps, payment, payment.settle(now))
    await deps.publish_payment_outcome(settled)
    await conclude_matching_charge(deps, charges, settled, now)
    return settled


class SettlePixPayment:
    """What the settlement worker runs for a ``pix.payment_requested`` event.

    Sends the order through the network; on acceptance posts the pending
    transfer and marks ``SETTLED``, on rejection voids it and marks
    ``REJECTED`` with the ISO reason. A payment no longer ``PENDING`` is
    returned unchanged, its outcome event published again under the same
    id (a crash may have come between recording and publishing it). If the
    ledger already resolved the reservation (a crash after posting, or an
    expiry), the record catches up without sending anything.
    ``ServiceUnavailable`` from the network propagates and leaves the
    payment ``PENDING`` for a retry.
    """

    def __init__(self, deps: PixDeps, network: PaymentNetwork, charges: ChargeRepository) -> None:
        self._deps = deps
        self._network = network
        self._charges = charges

    async def __call__(self, end_to_end_id: str) -> PixPayment:
        deps = self._deps
        payment = await deps.payments.get(end_to_end_id)
        if payment.flow is PixFlow.INCOMING:
            return payment
        if payment.status is not PaymentStatus.PENDING:
            await deps.publish_payment_outcome(payment)
            return payment
        if payment.flow is PixFlow.ON_US:
            return await settle_on_us(deps, self._charges, payment)
        reservation = await deps.pending_status(end_to_end_id)
        if reservation is PendingStatus.POSTED:
            return await self._settled(payment)
        if reservation is not PendingStatus.PENDING:
            # voided, expired or missing: nothing is reserved, so nothing may be sent
            return await self._rejected(payment, IsoReason.AB03)
        result = await self._network.send_payment(
            PaymentOrder(
                end_to_end_id=end_to_end_id,
                amount=payment.amount,
                payer=payment.payer,
                payee=payment.payee,
                initiation=payment.initiation,
                txid=payment.txid,
                description=payment.description,
            )
        )
        if result.accepted:
            await deps.post(end_to_end_id, TransferCode.PIX_OUT, memo("PIX enviado", payment))
            return await self._settled(payment)
        await deps.void(end_to_end_id, TransferCode.PIX_OUT)
        return await self._rejected(payment, result.reason or IsoReason.AB09)

    async def release_unrecorded(self, end_to_end_id: str) -> PendingStatus | None:
        """Void the reservation of a payment whose record does not exist; its status after.

        For an event whose payment record is missing (a store that lost an
        acknowledged write): no record means nothing will ever settle the
        reservation, so the money would stay held for good. The reservation is
        found by its id derived from the EndToEndId and voided if still
        ``PENDING`` (``VOIDED`` is returned); one already resolved (posted,
        voided, expired) or never made (``None``) is left as it is and its
        status returned, for the caller to alert on. Safe to repeat and to
        race: a void exists at most once and excludes a post. The caller
        decides when the record is missing for good (bounded retries first).
        """
        deps = self._deps
        status = await deps.pending_status(end_to_end_id)
        if status is not PendingStatus.PENDING:
            return status
        await deps.void(end_to_end_id, TransferCode.PIX_OUT)
        return await deps.pending_status(end_to_end_id)

    async def _settled(self, payment: PixPayment) -> PixPayment:
        settled = await _store_transition(
            self._deps, payment, payment.settle(self._deps.clock.now())
        )
        await self._deps.publish_payment_outcome(settled)
        return settled

    async def _rejected(self, payment: PixPayment, reason: IsoReason) -> PixPayment:
        rejected = await _store_transition(
            self._deps, payment, payment.reject(reason, self._deps.clock.now())
        )
        await self._deps.publish_payment_outcome(rejected)
        return rejected


class GetPixPayment:
    """A payment the caller sent or received (``PixPaymentNotFound`` otherwise)."""

    def __init__(self, deps: PixDeps) -> None:
        self._deps = deps

    async def __call__(self, owner_id: str, end_to_end_id: str) -> PixPayment:
        payment = await self._deps.payments.get(end_to_end_id)
        if not payment.is_visible_to(owner_id):
            raise PixPaymentNotFound()
        return payment
