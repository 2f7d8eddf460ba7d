"""Settling what ``SendPix`` started, and reading payments.

Every use case here is idempotent: ledger steps have ids derived from the
EndToEndId and records are written conditionally, so a worker may run the
same message twice (at-least-once delivery) without moving money twice.
Incoming payments are in :mod:`finbank_core.pix.use_cases.receive`, refunds in
:mod:`finbank_core.pix.use_cases.refund`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Protocol

import msgspec

from finbank_core.accounts.ledger import PendingStatus, TransferCode
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.errors import (
    PixPaymentNotFound,
    PixVersionConflict,
)
from finbank_core.pix.events import outcome_event_id, payment_outcomes, payment_payload
from finbank_core.pix.ledger_steps import PixEvents, PixLedgerSteps, memo
from finbank_core.pix.network import PaymentOrder
from finbank_core.pix.payments import PaymentStatus, PixFlow, PixPayment
from finbank_core.pix.ports import (
    AccountLimitsStore,
    ChargeRepository,
    PaymentNetwork,
    PixPaymentRepository,
)
from finbank_core.pix.use_cases.charge import conclude_matching_charge
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.events import EventEnvelope
from finbank_core.shared.inputs import check_lookup_id


class AnnouncedTransitionRecorder(Protocol):
    """Stores a payment's transition and its outcome events in one write.

    ``update_announced`` is ``PixPaymentRepository.update`` (the same
    conditions and errors) that also stores ``events`` for publishing, only
    when the record changed: both or neither. For a store and an event
    outbox in one database (PostgreSQL), one round trip instead of two.
    """

    async def update_announced(
        self, payment: PixPayment, expected_version: int, events: Sequence[EventEnvelope]
    ) -> PixPayment: ...


async def _store_transition(
    payments: PixPaymentRepository, before: PixPayment, after: PixPayment
) -> PixPayment:
    """Write a transition; if another worker wrote first, return what it wrote."""
    try:
        return await payments.update(after, before.version)
    except PixVersionConflict:
        current = await payments.get(before.end_to_end_id)
        if current.status is PaymentStatus.PENDING:
            raise
        return current


async def settle_on_us(
    payment: PixPayment,
    *,
    steps: PixLedgerSteps,
    payments: PixPaymentRepository,
    events: PixEvents,
    charges: ChargeRepository,
    clock: Clock,
) -> PixPayment:
    """Post the payer's reservation and credit the payee together; mark ``SETTLED``.

    Safe to repeat (the settlement worker finishes what a crash interrupted).
    """
    assert payment.payee.account_id is not None
    e2e = payment.end_to_end_id
    await steps.post(
        e2e,
        TransferCode.PIX_OUT,
        memo("PIX enviado", payment),
        then_credit=payment.payee.account_id,
        credit_code=TransferCode.PIX_IN,
        credit_memo=memo("PIX recebido", payment),
    )
    now = clock.now()
    settled = await _store_transition(payments, payment, payment.settle(now))
    await events.publish_payment_outcome(settled)
    await conclude_matching_charge(events, charges, settled, now)
    return settled


class SettlePixPaymentCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Settle the payment ``end_to_end_id`` (what a ``pix.payment_requested`` event asks)."""

    end_to_end_id: str


class GetPixPaymentQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A payment the caller sent or received, by EndToEndId."""

    owner_id: str
    end_to_end_id: str


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

    def __init__(
        self,
        *,
        payments: PixPaymentRepository,
        steps: PixLedgerSteps,
        events: PixEvents,
        clock: Clock,
        network: PaymentNetwork,
        charges: ChargeRepository,
        limits: AccountLimitsStore | None = None,
        recorder: AnnouncedTransitionRecorder | None = None,
    ) -> None:
        """``recorder``: writes a transition and its outcome events at once (else
        ``payments.update``, then ``events.publish_payment_outcome``)."""
        self._payments = payments
        self._steps = steps
        self._events = events
        self._clock = clock
        self._network = network
        self._charges = charges
        #: where a rejected payment's share of the PIX limits is given back at once
        self._limits = limits
        self._recorder = recorder

    async def __call__(self, cmd: SettlePixPaymentCommand) -> PixPayment:
        check_lookup_id(cmd.end_to_end_id, "end_to_end_id")
        end_to_end_id = cmd.end_to_end_id
        payment = await self._payments.get(end_to_end_id)
        if payment.flow is PixFlow.INCOMING:
            return payment
        if payment.status is not PaymentStatus.PENDING:
            await self._events.publish_payment_outcome(payment)
            return payment
        if payment.flow is PixFlow.ON_US:
            return await self.settle_on_us(payment)
        reservation = await self._steps.pending_status(end_to_end_id)
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
            await self._steps.post(
                end_to_end_id, TransferCode.PIX_OUT, memo("PIX enviado", payment)
            )
            return await self._settled(payment)
        await self._steps.void(end_to_end_id, TransferCode.PIX_OUT)
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
        status = await self._steps.pending_status(end_to_end_id)
        if status is not PendingStatus.PENDING:
            return status
        await self._steps.void(end_to_end_id, TransferCode.PIX_OUT)
        return await self._steps.pending_status(end_to_end_id)

    async def settle_on_us(self, payment: PixPayment) -> PixPayment:
        """Settle an on-us payment in the call (see :func:`settle_on_us`)."""
        return await settle_on_us(
            payment,
            steps=self._steps,
            payments=self._payments,
            events=self._events,
            charges=self._charges,
            clock=self._clock,
        )

    async def _settled(self, payment: PixPayment) -> PixPayment:
        return await self._conclude(payment, payment.settle(self._clock.now()))

    async def _conclude(self, before: PixPayment, after: PixPayment) -> PixPayment:
        """Record the final ``after`` and publish its outcome events (or, if another
        run recorded an outcome first, publish that one's again and return it)."""
        if self._recorder is None:
            stored = await _store_transition(self._payments, before, after)
            await self._events.publish_payment_outcome(stored)
            return stored
        e2e = after.end_to_end_id
        events = [
            self._events.envelope(
                type, e2e, payment_payload(after), event_id=outcome_event_id(type, e2e)
            )
            for type in payment_outcomes(after)
        ]
        try:
            return await self._recorder.update_announced(after, before.version, events)
        except PixVersionConflict:
            current = await self._payments.get(e2e)
            if current.status is PaymentStatus.PENDING:
                raise
        await self._events.publish_payment_outcome(current)
        return current

    async def _rejected(self, payment: PixPayment, reason: IsoReason) -> PixPayment:
        rejected = await self._conclude(payment, payment.reject(reason, self._clock.now()))
        if self._limits is not None and payment.payer.account_id is not None:
            # A rejected payment used none of the limits. Releasing applies once; if
            # the store cannot be reached, the next payment that needs the room
            # reclaims it (PixLimiter), so the outcome is not held back for this.
            with contextlib.suppress(ServiceUnavailable):
                await self._limits.release_usage(payment.payer.account_id, payment.end_to_end_id)
        return rejected


class GetPixPayment:
    """A payment the caller sent or received (``PixPaymentNotFound`` otherwise)."""

    def __init__(self, payments: PixPaymentRepository) -> None:
        self._payments = payments

    async def __call__(self, query: GetPixPaymentQuery) -> PixPayment:
        check_lookup_id(query.end_to_end_id, "end_to_end_id")
        payment = await self._payments.get(query.end_to_end_id)
        if not payment.is_visible_to(query.owner_id):
            raise PixPaymentNotFound()
        return payment
