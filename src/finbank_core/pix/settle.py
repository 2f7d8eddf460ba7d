"""Settling what ``SendPix`` started, receiving payments from other banks, reading them.

Every use case here is idempotent: ledger steps have ids derived from the
EndToEndId and records are written conditionally, so a worker may run the
same message twice (at-least-once delivery) without moving money twice.
"""

from __future__ import annotations

import msgspec

from finbank_core.accounts.ledger import PendingStatus, TransferCode
from finbank_core.accounts.model import AccountStatus, CustomerAccount
from finbank_core.pix.charge_use_cases import conclude_matching_charge
from finbank_core.pix.context import PixDeps, memo
from finbank_core.pix.directory import safe_mask
from finbank_core.pix.errors import (
    PixKeyNotFound,
    PixPaymentAlreadyExists,
    PixPaymentNotFound,
    PixRecipientInvalid,
    PixVersionConflict,
)
from finbank_core.pix.events import (
    PAYMENT_RECEIVED,
    PAYMENT_REJECTED,
    PAYMENT_SETTLED,
    payment_payload,
)
from finbank_core.pix.identifiers import EndToEndId
from finbank_core.pix.keys import PixKey
from finbank_core.pix.network import IncomingPixOrder, PaymentOrder
from finbank_core.pix.payments import PaymentStatus, PixFlow, PixParty, PixPayment
from finbank_core.pix.ports import ChargeRepository, KeyDirectory, PaymentNetwork
from finbank_core.pix.reasons import IsoReason
from finbank_core.shared.errors import AccountNotFound, InvalidInput


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
    await deps.publish(PAYMENT_SETTLED, e2e, payment_payload(settled))
    await deps.publish(PAYMENT_RECEIVED, e2e, payment_payload(settled))
    await conclude_matching_charge(deps, charges, settled, now)
    return settled


class SettlePixPayment:
    """What the settlement worker runs for a ``pix.payment_requested`` event.

    Sends the order through the network; on acceptance posts the pending
    transfer and marks ``SETTLED``, on rejection voids it and marks
    ``REJECTED`` with the ISO reason. A payment no longer ``PENDING`` is
    returned unchanged. If the ledger already resolved the reservation (a
    crash after posting, or an expiry), the record catches up without
    sending anything. ``ServiceUnavailable`` from the network propagates and
    leaves the payment ``PENDING`` for a retry.
    """

    def __init__(self, deps: PixDeps, network: PaymentNetwork, charges: ChargeRepository) -> None:
        self._deps = deps
        self._network = network
        self._charges = charges

    async def __call__(self, end_to_end_id: str) -> PixPayment:
        deps = self._deps
        payment = await deps.payments.get(end_to_end_id)
        if payment.status is not PaymentStatus.PENDING or payment.flow is PixFlow.INCOMING:
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

    async def _settled(self, payment: PixPayment) -> PixPayment:
        settled = await _store_transition(
            self._deps, payment, payment.settle(self._deps.clock.now())
        )
        await self._deps.publish(PAYMENT_SETTLED, payment.end_to_end_id, payment_payload(settled))
        return settled

    async def _rejected(self, payment: PixPayment, reason: IsoReason) -> PixPayment:
        rejected = await _store_transition(
            self._deps, payment, payment.reject(reason, self._deps.clock.now())
        )
        await self._deps.publish(PAYMENT_REJECTED, payment.end_to_end_id, payment_payload(rejected))
        return rejected


class ReceivePixResult(msgspec.Struct, frozen=True, kw_only=True):
    payment: PixPayment
    replayed: bool = False


class ReceivePix:
    """Credit one of our customers with a payment another institution settled.

    Idempotent by EndToEndId: the credit's ledger id derives from it and the
    record is added conditionally, so a redelivered order credits once and
    returns the first record (``replayed=True``). Born ``SETTLED``: the
    network settled it before telling us. An unknown or inactive recipient
    raises ``PixRecipientInvalid`` (the network turns it into ``RJCT``).
    """

    def __init__(self, deps: PixDeps, directory: KeyDirectory, charges: ChargeRepository) -> None:
        self._deps = deps
        self._directory = directory
        self._charges = charges

    async def __call__(self, order: IncomingPixOrder) -> ReceivePixResult:
        deps = self._deps
        e2e = EndToEndId.parse(order.end_to_end_id).value
        order.amount.require_positive()
        try:
            return ReceivePixResult(payment=await deps.payments.get(e2e), replayed=True)
        except PixPaymentNotFound:
            pass
        if order.payer.ispb == deps.ispb:
            raise InvalidInput("an incoming payment comes from another institution", field="payer")
        account = await self._payee_account(order)
        now = deps.clock.now()
        payment = PixPayment(
            end_to_end_id=e2e,
            flow=PixFlow.INCOMING,
            status=PaymentStatus.SETTLED,
            amount=order.amount,
            payer=order.payer,
            payee=PixParty(
                ispb=deps.ispb,
                branch=account.branch,
                account_number=account.number,
                account_kind=account.kind.value,
                name=account.holder_name,
                document_masked=safe_mask(account.holder_document),
                account_id=account.id,
                owner_id=account.owner_id,
            ),
            initiation=order.initiation,
            created_at=now,
            settled_at=now,
            txid=order.txid,
            description=order.description,
        )
        await deps.credit_from_settlement(
            e2e, account.id, order.amount, TransferCode.PIX_IN, memo("PIX recebido", payment)
        )
        try:
            stored = await deps.payments.add(payment)
        except PixPaymentAlreadyExists:
            return ReceivePixResult(payment=await deps.payments.get(e2e), replayed=True)
        await deps.publish(PAYMENT_RECEIVED, e2e, payment_payload(stored))
        await conclude_matching_charge(deps, self._charges, stored, now)
        return ReceivePixResult(payment=stored)

    async def _payee_account(self, order: IncomingPixOrder) -> CustomerAccount:
        deps = self._deps
        try:
            if order.payee_key is not None:
                registration = await self._directory.get(PixKey.parse(order.payee_key))
                if registration.account_id is None or registration.ispb != deps.ispb:
                    raise AccountNotFound()
                account = await deps.accounts.get(registration.account_id)
            elif order.payee_branch and order.payee_account_number:
                account = await deps.accounts.get_by_number(
                    order.payee_branch, order.payee_account_number
                )
            else:
                raise InvalidInput("the payee is named by a key or by branch and number")
        except (AccountNotFound, PixKeyNotFound):
            raise PixRecipientInvalid("no such account here (AC03)", reason="AC03") from None
        if account.status is not AccountStatus.ACTIVE:
            raise PixRecipientInvalid("the recipient account is not active (AC06)", reason="AC06")
        return account


class GetPixPayment:
    """A payment the caller sent or received (``PixPaymentNotFound`` otherwise)."""

    def __init__(self, deps: PixDeps) -> None:
        self._deps = deps

    async def __call__(self, owner_id: str, end_to_end_id: str) -> PixPayment:
        payment = await self._deps.payments.get(end_to_end_id)
        if not payment.is_visible_to(owner_id):
            raise PixPaymentNotFound()
        return payment
