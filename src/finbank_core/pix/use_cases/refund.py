"""``RefundPix``: the receiver of a payment returns all or part of it (devolução).

Flow: check the rules on the payment aggregate (settled, received by the
caller, within 90 days, total <= original), reserve customer -> settlement
(``InsufficientFunds`` refuses at once, nothing recorded), record the refund
``EM_PROCESSAMENTO`` under the payment's version and publish
``pix.refund_requested``. Different refunds of one payment take turns for
those steps (a claim on the payment, waited for up to about 1.5 s, then
``RequestInProgress``), so none is refused for money another one holds
for a moment; a write it loses all the same (a MED return, a refund settled
meanwhile, a caller without claims) voids its reservation and starts again
on the payment as it now is, so concurrent refunds are answered as they
would be one after another (``PixVersionConflict`` only when the payment
keeps changing through 16 attempts). The receiver's refund id is its idempotency key:
the same id and body answer the refund recorded first (``replayed=True``);
while the first request with it is in flight (a durable claim, see
:mod:`finbank_core.shared.idempotency`) the same id gets
``RequestInProgress`` (409 + ``Retry-After``), never a refusal caused by the
first request's own reservation. Then :class:`SettlePixRefund` settles it: an
on-us payment's payer is credited in the same linked batch as the post; an
incoming one is returned through the network (pacs.004), posted on
acceptance, voided on rejection (``NAO_REALIZADO`` with the reason).

With ``settle_inline`` (memory profile, sandbox) ``RefundPix`` runs it in
the request, and a network that cannot be reached leaves the refund
``EM_PROCESSAMENTO``. Without it (local and aws profiles) the request ends
at ``EM_PROCESSAMENTO`` and the settlement worker runs ``SettlePixRefund``
for the ``pix.refund_requested`` event.
"""

from __future__ import annotations

import contextlib
import random

import msgspec

from finbank_core.accounts.access import owned_active_account
from finbank_core.accounts.errors import InsufficientFunds
from finbank_core.accounts.ledger import PendingStatus, TransferCode
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.codes.identifiers import ReturnId
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.errors import (
    PixPaymentNotFound,
    PixPaymentNotRefundable,
    PixRefundNotFound,
    PixVersionConflict,
)
from finbank_core.pix.events import (
    REFUND_COMPLETED,
    REFUND_FAILED,
    REFUND_REQUESTED,
    outcome_event_id,
)
from finbank_core.pix.ledger_steps import PixEvents, PixLedgerSteps
from finbank_core.pix.network import ReturnOrder
from finbank_core.pix.payments import PixFlow, PixPayment
from finbank_core.pix.ports import PaymentNetwork, PixPaymentRepository
from finbank_core.pix.refunds import REFUND_WINDOW_DAYS, PixRefund, RefundNature, RefundStatus
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import IdempotencyKeyReused, ServiceUnavailable
from finbank_core.shared.idempotency import InFlightGuard, RequestClaims, fingerprint
from finbank_core.shared.ids import IdGenerator
from finbank_core.shared.inputs import (
    IdempotencyKey,
    Memo,
    check_idempotency_key,
    check_lookup_id,
    check_memo,
    check_text,
    checked_enums,
)
from finbank_core.shared.money import Money

#: how many times a refund starts again on a payment that another write changed
#: between its read and its own write (each such write records or settles another
#: refund of the payment, so the room runs out within a few)
_RECORD_ATTEMPTS = 16


class RefundPixCommand(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    end_to_end_id: str
    amount: Money
    #: the receiver's idempotency key for this refund
    client_refund_id: IdempotencyKey
    nature: RefundNature = RefundNature.ORIGINAL
    description: Memo | None = None


class RefundPixResult(msgspec.Struct, frozen=True, kw_only=True):
    payment: PixPayment
    refund: PixRefund
    replayed: bool = False


class RefundPix:
    """Return (part of) a payment the caller received; see the module docstring."""

    def __init__(
        self,
        *,
        ispb: str,
        accounts: AccountRepository,
        payments: PixPaymentRepository,
        steps: PixLedgerSteps,
        events: PixEvents,
        clock: Clock,
        ids: IdGenerator,
        network: PaymentNetwork,
        window_days: int = REFUND_WINDOW_DAYS,
        settle_inline: bool = True,
        claims: RequestClaims | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``rng``: seeded in tests; ``None`` draws the random part of rtrIds from the OS
        generator (``os.urandom``)."""
        self._ispb = ispb
        self._accounts = accounts
        self._payments = payments
        self._steps = steps
        self._events = events
        self._clock = clock
        self._rng = rng
        #: None (a single caller, some unit tests): concurrent replays are not held back
        self._in_flight = None if claims is None else InFlightGuard(claims, clock, ids)
        self._settle = SettlePixRefund(
            payments=payments, steps=steps, events=events, clock=clock, network=network
        )
        self._window_days = window_days
        self._settle_inline = settle_inline

    async def __call__(self, cmd: RefundPixCommand) -> RefundPixResult:
        cmd = checked_enums(cmd)  # the refund's nature
        check_lookup_id(cmd.end_to_end_id, "end_to_end_id")
        check_idempotency_key(cmd.client_refund_id, field="client_refund_id", name="refund id")
        check_memo(cmd.description)  # these two before the fingerprint encodes them
        check_text(cmd.owner_id, field="owner_id", name="owner id")
        cmd.amount.require_positive()
        payment = await self._payments.get(cmd.end_to_end_id)
        if not payment.is_visible_to(cmd.owner_id):
            raise PixPaymentNotFound()
        if payment.payee.owner_id != cmd.owner_id or payment.payee.account_id is None:
            raise PixPaymentNotRefundable("only the receiver of a payment can refund it")
        request_fingerprint = fingerprint(cmd)
        existing = payment.find_refund(cmd.client_refund_id)
        if existing is not None and (
            self._in_flight is None
            or existing.status is not RefundStatus.EM_PROCESSAMENTO
            or existing.request_fingerprint != request_fingerprint
        ):
            return _replay(payment, existing, request_fingerprint)
        if self._in_flight is None:
            return await self._refund(cmd, payment, request_fingerprint)
        # Until the first request with this refund id has answered, the others
        # get RequestInProgress (409) rather than reserving the amount again.
        key = (cmd.owner_id, cmd.end_to_end_id, cmd.client_refund_id)
        async with self._in_flight.hold("pix-refund", *key):
            # Different refunds of one payment take turns to reserve and record: one
            # that reserved beside another about to be recorded could be refused
            # insufficient_funds for money that other one then takes or gives back.
            async with self._in_flight.hold(
                "pix-refund-payment",
                cmd.end_to_end_id,
                wait=True,
                busy="another refund of this payment is being recorded",
            ):
                payment = await self._payments.get(cmd.end_to_end_id)  # as the last one left it
                recorded = await self._record(cmd, payment, request_fingerprint)
            if isinstance(recorded, RefundPixResult):
                return recorded
            return await self._settled(*recorded)

    async def _refund(
        self, cmd: RefundPixCommand, payment: PixPayment, request_fingerprint: str
    ) -> RefundPixResult:
        recorded = await self._record(cmd, payment, request_fingerprint)
        if isinstance(recorded, RefundPixResult):
            return recorded
        return await self._settled(*recorded)

    async def _record(
        self, cmd: RefundPixCommand, payment: PixPayment, request_fingerprint: str
    ) -> RefundPixResult | tuple[PixPayment, PixRefund]:
        """Reserve the amount and record the refund ``EM_PROCESSAMENTO``; the payment and
        refund recorded, or the answer to a replay.

        A refund recorded meanwhile by another caller (a write this one's version
        check loses) is not this one's refusal: its reservation is voided and it
        starts again on the payment as it now is, under a new return id, where the
        rules answer it as they would have in turn (``PixRefundExceedsOriginal``
        when the other took the room). So is a reservation refused while the
        payment changed, which may have been for the other's money in flight.
        """
        assert payment.payee.account_id is not None  # checked by the caller
        account_id = payment.payee.account_id
        for attempt in range(1, _RECORD_ATTEMPTS + 1):
            existing = payment.find_refund(cmd.client_refund_id)
            if existing is not None:  # the first request with this refund id has answered
                return _replay(payment, existing, request_fingerprint)
            now = self._clock.now()
            refund = PixRefund(
                return_id=ReturnId.generate(self._ispb, now, self._rng).value,
                client_refund_id=cmd.client_refund_id,
                amount=cmd.amount,
                nature=cmd.nature,
                status=RefundStatus.EM_PROCESSAMENTO,
                requested_at=now,
                request_fingerprint=request_fingerprint,
                description=check_memo(cmd.description),
            )
            with_refund = payment.add_refund(refund, window_days=self._window_days)
            if attempt == 1:  # the payment's rules first, then the account's
                await owned_active_account(self._accounts, cmd.owner_id, account_id)
            rtr = refund.return_id
            try:
                await self._steps.reserve(
                    rtr, account_id, cmd.amount, TransferCode.PIX_REFUND_OUT, f"Devolução PIX {rtr}"
                )
            except InsufficientFunds:
                current = await self._payments.get(cmd.end_to_end_id)
                if current.version == payment.version or attempt == _RECORD_ATTEMPTS:
                    raise
                payment = current
                continue
            try:
                payment = await self._payments.update(with_refund, payment.version)
            except PixVersionConflict:
                current = await self._payments.get(cmd.end_to_end_id)
                if current.refund_by_return_id(rtr) is None:
                    await self._steps.void(rtr, TransferCode.PIX_REFUND_OUT)
                    if attempt == _RECORD_ATTEMPTS:
                        raise
                    payment = current
                    continue
                # our own write went through (its answer was lost and the store's retry
                # found the version moved by it): the refund is recorded and reserved
                payment = current
            except Exception:
                # the store refused or could not be reached: give the reservation back
                # unless the refund was recorded after all (then it stays, for settlement)
                with contextlib.suppress(Exception):
                    recorded = await self._payments.get(cmd.end_to_end_id)
                    if recorded.refund_by_return_id(rtr) is None:
                        await self._steps.void(rtr, TransferCode.PIX_REFUND_OUT)
                raise
            await self._events.publish(
                REFUND_REQUESTED, payment.end_to_end_id, _payload(payment, refund)
            )
            return payment, refund
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _settled(self, payment: PixPayment, refund: PixRefund) -> RefundPixResult:
        """Settle the refund just recorded when this use case settles inline."""
        if not self._settle_inline:
            return RefundPixResult(payment=payment, refund=refund)  # the worker settles it
        try:
            return await self._settle.settle(payment, refund)
        except ServiceUnavailable:
            # recorded and reserved: EM_PROCESSAMENTO until SettlePixRefund runs again
            # (the worker, wherever one consumes pix.refund_requested)
            return RefundPixResult(payment=payment, refund=refund)


class SettlePixRefundCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Settle the refund ``return_id`` of payment ``end_to_end_id`` (a ``pix.refund_requested``)."""

    end_to_end_id: str
    return_id: str


class SettlePixRefund:
    """What the settlement worker runs for a ``pix.refund_requested`` event.

    Settles the refund ``return_id`` of payment ``end_to_end_id``: an on-us
    payment's payer is credited in the same linked batch as the post; any
    other refund is returned through the network (pacs.004), posted on
    acceptance, voided on rejection. The refund is then recorded
    ``DEVOLVIDO`` / ``NAO_REALIZADO`` and ``pix.refund_completed`` /
    ``pix.refund_failed`` published. A refund already final is returned
    unchanged (``replayed=True``).

    Safe to run twice, or twice at once: the ledger steps have ids derived
    from the return id (a post or a void exists once, and excludes the
    other), the network answers a return id with its first result, and the
    refund is recorded only while it is still ``EM_PROCESSAMENTO`` (a run
    that finds another one's outcome recorded returns it and publishes
    nothing). If the ledger already resolved the reservation (a crash after
    posting, a void by reconciliation, an expiry) the record catches up
    without asking the network again. ``ServiceUnavailable`` from the
    network propagates and leaves the refund ``EM_PROCESSAMENTO`` for a
    retry.
    """

    def __init__(
        self,
        *,
        payments: PixPaymentRepository,
        steps: PixLedgerSteps,
        events: PixEvents,
        clock: Clock,
        network: PaymentNetwork,
    ) -> None:
        self._payments = payments
        self._steps = steps
        self._events = events
        self._clock = clock
        self._network = network

    async def __call__(self, cmd: SettlePixRefundCommand) -> RefundPixResult:
        check_lookup_id(cmd.end_to_end_id, "end_to_end_id")
        payment = await self._payments.get(cmd.end_to_end_id)
        refund = payment.refund_by_return_id(cmd.return_id)
        if refund is None:
            raise PixRefundNotFound(f"payment {cmd.end_to_end_id} has no refund {cmd.return_id}")
        if refund.status is not RefundStatus.EM_PROCESSAMENTO:
            await self._publish_outcome(payment, refund)  # lost to a crash, maybe
            return RefundPixResult(payment=payment, refund=refund, replayed=True)
        return await self.settle(payment, refund)

    async def settle(self, payment: PixPayment, refund: PixRefund) -> RefundPixResult:
        """Settle ``refund`` (recorded ``EM_PROCESSAMENTO`` in ``payment``), record the outcome."""
        rtr = refund.return_id
        reservation = await self._steps.pending_status(rtr)
        if reservation is PendingStatus.POSTED:
            return await self._finish(payment, refund.complete(self._clock.now()))
        if reservation is not PendingStatus.PENDING:
            # voided, expired or missing: nothing is reserved, so nothing may be returned
            return await self._finish(payment, refund.fail(IsoReason.AB03, self._clock.now()))
        if payment.flow is PixFlow.ON_US:
            await self._steps.post(
                rtr,
                TransferCode.PIX_REFUND_OUT,
                f"Devolução PIX {rtr}",
                then_credit=payment.payer.account_id,
                credit_code=TransferCode.PIX_REFUND_IN,
                credit_memo=f"Devolução PIX recebida {rtr}",
            )
            return await self._finish(payment, refund.complete(self._clock.now()))
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
        if result.accepted:
            await self._steps.post(rtr, TransferCode.PIX_REFUND_OUT, f"Devolução PIX {rtr}")
            return await self._finish(payment, refund.complete(self._clock.now()))
        await self._steps.void(rtr, TransferCode.PIX_REFUND_OUT)
        return await self._finish(
            payment, refund.fail(result.reason or IsoReason.AB09, self._clock.now())
        )

    async def _finish(self, payment: PixPayment, done: PixRefund) -> RefundPixResult:
        stored, recorded = await self._store(payment, done)
        await self._publish_outcome(stored, recorded)
        if recorded is not done:
            # another run recorded the outcome first (its event has the same id)
            return RefundPixResult(payment=stored, refund=recorded, replayed=True)
        return RefundPixResult(payment=stored, refund=done)

    async def _publish_outcome(self, payment: PixPayment, refund: PixRefund) -> None:
        """``pix.refund_completed`` / ``_failed`` under the id derived from the return id."""
        event = REFUND_COMPLETED if refund.status is RefundStatus.DEVOLVIDO else REFUND_FAILED
        await self._events.publish(
            event,
            payment.end_to_end_id,
            _payload(payment, refund),
            event_id=outcome_event_id(event, refund.return_id),
        )

    async def _store(self, payment: PixPayment, done: PixRefund) -> tuple[PixPayment, PixRefund]:
        """Record ``done`` unless the refund already left ``EM_PROCESSAMENTO``.

        Returns the stored payment and the refund as recorded: ``done``, or
        the outcome another run recorded first.
        """
        for _ in range(5):  # another refund of the same payment may have been recorded meanwhile
            current = payment.refund_by_return_id(done.return_id)
            if current is None:
                raise PixRefundNotFound(f"payment {payment.end_to_end_id} lost {done.return_id}")
            if current.status is not RefundStatus.EM_PROCESSAMENTO:
                return payment, current
            try:
                stored = await self._payments.update(payment.replace_refund(done), payment.version)
            except PixVersionConflict:
                payment = await self._payments.get(payment.end_to_end_id)
            else:
                return stored, done
        raise PixVersionConflict("the payment kept changing while its refund was recorded")


def _replay(payment: PixPayment, refund: PixRefund, request_fingerprint: str) -> RefundPixResult:
    if refund.request_fingerprint != request_fingerprint:
        raise IdempotencyKeyReused("this refund id was already used for a different refund")
    return RefundPixResult(payment=payment, refund=refund, replayed=True)


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
