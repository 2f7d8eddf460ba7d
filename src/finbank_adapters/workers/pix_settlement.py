"""``finbank worker pix-settlement``: finishes what PIX requests left for the worker.

Consumes ``finbank.pix.v1`` as consumer group ``finbank-pix-settlement``
with the Kafka consumer runner and dispatches by event type:
``pix.payment_requested`` -> ``SettlePixPayment``, ``pix.refund_requested``
-> ``SettlePixRefund``, ``pix.incoming_accepted`` -> ``ReceivePix`` (the
order rebuilt from the payload). Other types are skipped; a payload that
lacks what its use case needs raises ``MalformedPixEvent``, which the runner
treats as permanent (straight to the DLQ). A ``pix.payment_requested``
whose record cannot be found is tried again a few times
(:class:`MissingRecordPolicy`), then its reservation is voided and an alert
logged (ids only).

Effects happen once over at-least-once delivery: the inbox skips an event
id it has seen, and every use case is idempotent on its own (ledger ids
derived from the EndToEndId or return id, the network's first answer,
versioned records that leave ``PENDING`` once, outcome events re-announced
under the same id). The reasoning in full: ``docs/architecture.md``, "The
PIX settlement worker: exactly-once effects over at-least-once delivery".

This module holds the handler, which receives its use cases and inbox; the
process (the handler and its consumer runner resolved from the bank's
containers, run until stopped) is :class:`finbank.runtime.PixSettlementWorker`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import msgspec

from finbank_adapters import metrics, tracing
from finbank_core.accounts.ledger import PendingStatus
from finbank_core.pix.errors import MalformedPixEvent, PixPaymentNotFound
from finbank_core.pix.events import INCOMING_ACCEPTED, PAYMENT_REQUESTED, REFUND_REQUESTED
from finbank_core.pix.network import IncomingPixOrder
from finbank_core.pix.payments import PaymentStatus, PixPayment, pix_transfer_id
from finbank_core.pix.use_cases.receive import IncomingAccepted, ReceivePixResult
from finbank_core.pix.use_cases.refund import RefundPixResult, SettlePixRefundCommand
from finbank_core.pix.use_cases.settle import SettlePixPaymentCommand
from finbank_core.shared.events import EventEnvelope

log = logging.getLogger(__name__)

SETTLEMENT_GROUP = "finbank-pix-settlement"

T = TypeVar("T")

#: ``SettlePixPayment``: EndToEndId -> the payment, final or still ``PENDING``
SettlePayment = Callable[[SettlePixPaymentCommand], Awaitable[PixPayment]]
#: ``SettlePixRefund``: (EndToEndId, return id) -> the payment and the refund
SettleRefund = Callable[[SettlePixRefundCommand], Awaitable[RefundPixResult]]
#: ``ReceivePix``: the incoming order -> the credited payment
Receive = Callable[[IncomingPixOrder], Awaitable[ReceivePixResult]]
#: ``SettlePixPayment.release_unrecorded``: EndToEndId -> the reservation's status after
ReleaseUnrecorded = Callable[[str], Awaitable[PendingStatus | None]]

#: ``outcomes`` value of a payment whose record was missing for good
UNRECORDED = "UNRECORDED"

#: the span name of each event type's use case (``finbank_adapters.tracing``)
_USE_CASES = {
    PAYMENT_REQUESTED: "SettlePixPayment",
    REFUND_REQUESTED: "SettlePixRefund",
    INCOMING_ACCEPTED: "ReceivePix",
}


@dataclass(frozen=True)
class MissingRecordPolicy:
    """How long a ``pix.payment_requested`` waits for its payment record to show up.

    ``attempts`` runs of the use case in all, ``delay_seconds * attempt``
    between them (about 1.5 s in all by default); the event's partition
    waits meanwhile (and, with an inbox, its transaction holds a pooled
    connection), which is fine for something that should never happen.
    """

    attempts: int = 4
    delay_seconds: float = 0.25

    def delay(self, attempt: int) -> float:
        return self.delay_seconds * attempt


class EventInbox(Protocol):
    """What the handler needs of an inbox (``PostgresInbox`` has it)."""

    async def process_once(
        self, event: EventEnvelope, effect: Callable[[Any], Awaitable[None]]
    ) -> bool: ...


class _PaymentRequested(msgspec.Struct, frozen=True):
    end_to_end_id: str


class _RefundRequested(msgspec.Struct, frozen=True):
    end_to_end_id: str
    return_id: str


def _decode(payload: Mapping[str, Any], kind: type[T], event_type: str) -> T:
    try:
        return msgspec.convert(payload, kind)
    except msgspec.ValidationError as exc:
        raise MalformedPixEvent(f"not a {event_type} payload: {exc}") from None


class PixSettlementHandler:
    """The consumer runner's handler: dispatches the three worker events to their use cases.

    ``payment_requested`` -> ``settle_payment``, ``refund_requested`` ->
    ``settle_refund``, ``incoming_accepted`` -> ``receive``, each inside the
    inbox when there is one. The counters say what this process did, for
    logs and tests. Calls for different aggregates may overlap (a runner
    may handle partitions side by side): nothing here is per call but the
    counters, updated without an ``await`` in between, and a payment's
    events (its refunds' included) share its EndToEndId as key, so they
    still come one after the other, in order.
    """

    def __init__(
        self,
        settle_payment: SettlePayment,
        settle_refund: SettleRefund,
        receive: Receive,
        inbox: EventInbox | None = None,
        *,
        release_unrecorded: ReleaseUnrecorded | None = None,
        missing_record: MissingRecordPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settle_payment = settle_payment
        self._settle_refund = settle_refund
        self._receive = receive
        self._inbox = inbox
        self._release_unrecorded = release_unrecorded
        self._missing_record = missing_record or MissingRecordPolicy()
        self._sleep = sleep
        #: payments whose record never showed up, their reservation released (an alert each)
        self.unrecorded_released = 0
        #: EndToEndId -> the reservation's status after the release (``None``: never made)
        self.unrecorded: dict[str, PendingStatus | None] = {}
        #: final (or current) status per EndToEndId or return id, as this process last saw it
        self.outcomes: dict[str, str] = {}
        #: use case runs, and events the inbox had already seen, in all and per event type
        self.runs = 0
        self.duplicates = 0
        self.runs_by_type: collections.Counter[str] = collections.Counter()
        self.duplicates_by_type: collections.Counter[str] = collections.Counter()
        #: events of other types, left alone
        self.skipped = 0

    async def __call__(self, event: EventEnvelope) -> None:
        # Decoded before the inbox: a malformed payload must not leave an inbox row behind.
        apply = self._use_case_for(event)
        if apply is None:
            self.skipped += 1
            return

        async def effect(_conn: Any) -> None:
            # tracing on: the use case's span, a child of the consumer's process span
            with tracing.span(
                _USE_CASES[event.type],
                {"finbank.event.type": event.type, "messaging.message.id": str(event.event_id)},
            ):
                key, status = await apply()
            self.runs += 1
            self.runs_by_type[event.type] += 1
            self.outcomes[key] = status

        if self._inbox is None:
            await effect(None)
        elif not await self._inbox.process_once(event, effect):
            self.duplicates += 1
            self.duplicates_by_type[event.type] += 1
            log.info("pix-settlement: event %s already processed", event.event_id)

    def _use_case_for(
        self, event: EventEnvelope
    ) -> Callable[[], Awaitable[tuple[str, str]]] | None:
        """The use case run for ``event``, returning (id, status); ``None`` to skip it."""
        if event.type == PAYMENT_REQUESTED:
            payment = _decode(
                {"end_to_end_id": event.aggregate_id, **event.payload},
                _PaymentRequested,
                event.type,
            )

            async def settle_payment() -> tuple[str, str]:
                return payment.end_to_end_id, await self._settle_or_release(payment.end_to_end_id)

            return settle_payment
        if event.type == REFUND_REQUESTED:
            refund = _decode(event.payload, _RefundRequested, event.type)

            async def settle_refund() -> tuple[str, str]:
                result = await self._settle_refund(
                    SettlePixRefundCommand(
                        end_to_end_id=refund.end_to_end_id, return_id=refund.return_id
                    )
                )
                return refund.return_id, result.refund.status.value

            return settle_refund
        if event.type == INCOMING_ACCEPTED:
            order = IncomingAccepted.from_payload(event.payload).order()

            async def receive() -> tuple[str, str]:
                result = await self._receive(order)
                return order.end_to_end_id, result.payment.status.value

            return receive
        return None

    async def _settle_or_release(self, end_to_end_id: str) -> str:
        """Settle the payment; if its record stays missing, release its reservation."""
        policy = self._missing_record
        attempt = 1
        while True:
            try:
                settled = await self._settle_payment(
                    SettlePixPaymentCommand(end_to_end_id=end_to_end_id)
                )
                _observe_settlement(settled)
                return settled.status.value
            except PixPaymentNotFound:
                if self._release_unrecorded is None:
                    raise
                if attempt >= policy.attempts:
                    break
            await self._sleep(policy.delay(attempt))
            attempt += 1
        status = await self._release_unrecorded(end_to_end_id)
        self.unrecorded_released += 1
        self.unrecorded[end_to_end_id] = status
        # ALERT: ids and statuses only; the payer, payee and amount are not logged.
        log.error(
            "ALERT pix-settlement: payment %s has no record after %d attempts;"
            " its reservation (ledger transfer %s) is now %s",
            end_to_end_id,
            attempt,
            pix_transfer_id(end_to_end_id, "pending"),
            status.value if status is not None else "absent (never made)",
        )
        return UNRECORDED


def _observe_settlement(payment: PixPayment) -> None:
    """``PixSettlementLatency``: request (record created) to SETTLED, both on the bank's clock."""
    if payment.status is PaymentStatus.SETTLED and payment.settled_at is not None:
        latency = (payment.settled_at - payment.created_at).total_seconds()
        metrics.recorder().observe(metrics.SETTLEMENT_LATENCY, max(0.0, latency))
