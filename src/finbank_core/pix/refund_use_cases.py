"""``RefundPix``: the receiver of a payment returns all or part of it (devolução).

Flow: check the rules on the payment aggregate (settled, received by the
caller, within 90 days, total <= original), reserve customer -> settlement
(``InsufficientFunds`` refuses at once, nothing recorded), record the refund
``EM_PROCESSAMENTO`` under the payment's version (a concurrent refund loses
with ``PixVersionConflict`` and its reservation is voided), then settle: an
on-us payment's payer is credited in the same linked batch as the post; an
incoming one is returned through the network (pacs.004), posted on
acceptance, voided on rejection (``NAO_REALIZADO`` with the reason). If the
network cannot be reached, the refund stays ``EM_PROCESSAMENTO``.
"""

from __future__ import annotations

import msgspec

from finbank_core.accounts.ledger import TransferCode
from finbank_core.pix.context import PixDeps, check_description, fingerprint
from finbank_core.pix.errors import (
    PixPaymentNotFound,
    PixPaymentNotRefundable,
    PixVersionConflict,
)
from finbank_core.pix.events import REFUND_COMPLETED, REFUND_FAILED, REFUND_REQUESTED
from finbank_core.pix.identifiers import ReturnId
from finbank_core.pix.network import ReturnOrder
from finbank_core.pix.payments import PixFlow, PixPayment
from finbank_core.pix.ports import PaymentNetwork
from finbank_core.pix.reasons import IsoReason
from finbank_core.pix.refunds import REFUND_WINDOW_DAYS, PixRefund, RefundNature, RefundStatus
from finbank_core.shared.errors import IdempotencyKeyReused, InvalidInput, ServiceUnavailable
from finbank_core.shared.money import Money


class RefundPixCommand(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    end_to_end_id: str
    amount: Money
    #: the receiver's idempotency key for this refund
    client_refund_id: str
    nature: RefundNature = RefundNature.ORIGINAL
    description: str | None = None


class RefundPixResult(msgspec.Struct, frozen=True, kw_only=True):
    payment: PixPayment
    refund: PixRefund
    replayed: bool = False


class RefundPix:
    """Return (part of) a payment the caller received; see the module docstring."""

    def __init__(
        self, deps: PixDeps, network: PaymentNetwork, *, window_days: int = REFUND_WINDOW_DAYS
    ) -> None:
        self._deps = deps
        self._network = network
        self._window_days = window_days

    async def __call__(self, cmd: RefundPixCommand) -> RefundPixResult:
        deps = self._deps
        if not cmd.client_refund_id or len(cmd.client_refund_id) > 255:
            raise InvalidInput("refund id must be 1 to 255 characters", field="client_refund_id")
        cmd.amount.require_positive()
        payment = await deps.payments.get(cmd.end_to_end_id)
        if not payment.is_visible_to(cmd.owner_id):
            raise PixPaymentNotFound()
        if payment.payee.owner_id != cmd.owner_id or payment.payee.account_id is None:
            raise PixPaymentNotRefundable("only the receiver of a payment can refund it")
        request_fingerprint = fingerprint(cmd)
        existing = payment.find_refund(cmd.client_refund_id)
        if existing is not None:
            if existing.request_fingerprint != request_fingerprint:
                raise IdempotencyKeyReused("this refund id was already used for a different refund")
            return RefundPixResult(payment=payment, refund=existing, replayed=True)

        now = deps.clock.now()
        refund = PixRefund(
            return_id=ReturnId.generate(deps.ispb, now, deps.rng).value,
            client_refund_id=cmd.client_refund_id,
            amount=cmd.amount,
            nature=cmd.nature,
            status=RefundStatus.EM_PROCESSAMENTO,
            requested_at=now,
            request_fingerprint=request_fingerprint,
            description=check_description(cmd.description),
        )
        with_refund = payment.add_refund(refund, window_days=self._window_days)
        account_id = payment.payee.account_id
        await deps.owned_active_account(cmd.owner_id, account_id)
        rtr = refund.return_id
        await deps.reserve(
            rtr, account_id, cmd.amount, TransferCode.PIX_REFUND_OUT, f"Devolução PIX {rtr}"
        )
        try:
            payment = await deps.payments.update(with_refund, payment.version)
        except PixVersionConflict:
            await deps.void(rtr, TransferCode.PIX_REFUND_OUT)
            raise
        await deps.publish(REFUND_REQUESTED, payment.end_to_end_id, _payload(payment, refund))
        return await self._settle(payment, refund)

    async def _settle(self, payment: PixPayment, refund: PixRefund) -> RefundPixResult:
        deps = self._deps
        rtr = refund.return_id
        if payment.flow is PixFlow.ON_US:
            await deps.post(
                rtr,
                TransferCode.PIX_REFUND_OUT,
                f"Devolução PIX {rtr}",
                then_credit=payment.payer.account_id,
                credit_code=TransferCode.PIX_REFUND_IN,
                credit_memo=f"Devolução PIX recebida {rtr}",
            )
            done = refund.complete(deps.clock.now())
        else:
            try:
                result = await self._network.send_return(
                    ReturnOrder(
                        return_id=rtr,
                        original_end_to_end_id=payment.end_to_end_id,
                        amount=refund.amount,
                        nature=refund.nature,
                        to_ispb=payment.payer.ispb,
                        description=refund.description,
                    )
                )
            except ServiceUnavailable:
                return RefundPixResult(payment=payment, refund=refund)
            if result.accepted:
                await deps.post(rtr, TransferCode.PIX_REFUND_OUT, f"Devolução PIX {rtr}")
                done = refund.complete(deps.clock.now())
            else:
                await deps.void(rtr, TransferCode.PIX_REFUND_OUT)
                done = refund.fail(result.reason or IsoReason.AB09, deps.clock.now())
        stored = await self._store(payment, done)
        event = REFUND_COMPLETED if done.status is RefundStatus.DEVOLVIDO else REFUND_FAILED
        await deps.publish(event, payment.end_to_end_id, _payload(stored, done))
        return RefundPixResult(payment=stored, refund=done)

    async def _store(self, payment: PixPayment, refund: PixRefund) -> PixPayment:
        for _ in range(5):  # another refund of the same payment may have been recorded meanwhile
            try:
                return await self._deps.payments.update(
                    payment.replace_refund(refund), payment.version
                )
            except PixVersionConflict:
                payment = await self._deps.payments.get(payment.end_to_end_id)
        raise PixVersionConflict("the payment kept changing while its refund was recorded")


def _payload(payment: PixPayment, refund: PixRefund) -> dict[str, object]:
    return {
        "end_to_end_id": payment.end_to_end_id,
        "return_id": refund.return_id,
        "amount_cents": refund.amount.cents,
        "nature": refund.nature.value,
        "reason": refund.reason.value,
        "status": refund.status.value,
        "failure_reason": refund.failure_reason.value if refund.failure_reason else None,
        "account_id": str(payment.payee.account_id),
    }
