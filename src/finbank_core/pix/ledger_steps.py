"""The ledger and event side of PIX: reserve, post, void and credit, and the events.

:class:`PixLedgerSteps` moves the money of a PIX payment or refund through
the ledger. Each step's transfer id is derived from the EndToEndId (or the
refund's rtrId) and the step's name (:func:`~finbank_core.pix.payments.pix_transfer_id`),
so any step may be repeated by a retry, a second worker or a replayed
message and still applies once. :class:`PixEvents` publishes the context's
events, with the outcome of a payment under an id derived from its
EndToEndId so a republication is recognised downstream.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from finbank_core.accounts.events import make_event
from finbank_core.accounts.ledger import (
    CreateTransferResult,
    PendingStatus,
    Transfer,
    TransferCode,
    TransferFlags,
)
from finbank_core.accounts.ports import Ledger
from finbank_core.accounts.use_cases import BankAccounts, raise_for_transfer_result
from finbank_core.pix.events import outcome_event_id, payment_outcomes, payment_payload
from finbank_core.pix.payments import PixPayment, pix_transfer_id
from finbank_core.shared.clock import Clock
from finbank_core.shared.events import EventEnvelope, EventPublisher
from finbank_core.shared.ids import IdGenerator
from finbank_core.shared.inputs import MAX_MEMO_LENGTH
from finbank_core.shared.money import Money

_OK = (CreateTransferResult.OK, CreateTransferResult.EXISTS)


class PixLedgerSteps:
    """The ledger steps of a PIX payment or refund, each safe to repeat."""

    def __init__(self, ledger: Ledger, *, pending_timeout_seconds: int = 0) -> None:
        """``pending_timeout_seconds``: timeout of the reservations; 0 = until voided."""
        self._ledger = ledger
        self._pending_timeout = pending_timeout_seconds

    async def reserve(
        self, spi_id: str, account_id: uuid.UUID, amount: Money, code: TransferCode, memo: str
    ) -> None:
        """Pending transfer customer -> settlement; ``InsufficientFunds`` if it does not fit."""
        transfer = Transfer(
            id=pix_transfer_id(spi_id, "pending"),
            debit_account_id=account_id,
            credit_account_id=BankAccounts.PIX_SETTLEMENT,
            amount=amount.cents,
            code=code,
            flags=TransferFlags.PENDING,
            timeout_seconds=self._pending_timeout,
            user_data=memo,
        )
        [result] = await self._ledger.create_transfers([transfer])
        raise_for_transfer_result(result)

    async def pending_status(self, spi_id: str) -> PendingStatus | None:
        """The status of the reservation of ``spi_id``; ``None`` if none was made."""
        found = await self._ledger.lookup_transfers([pix_transfer_id(spi_id, "pending")])
        return found[0].status if found else None

    async def post(
        self,
        spi_id: str,
        code: TransferCode,
        memo: str,
        *,
        then_credit: uuid.UUID | None = None,
        credit_memo: str | None = None,
        credit_code: TransferCode | None = None,
    ) -> None:
        """Post the pending transfer; with ``then_credit``, also settlement -> that account.

        Both in one linked batch: they happen together or not at all. Safe to
        repeat: a step already applied is recognised by its derived id.
        """
        post = Transfer(
            id=pix_transfer_id(spi_id, "post"),
            debit_account_id=None,
            credit_account_id=None,
            amount=0,
            code=code,
            flags=TransferFlags.POST_PENDING_TRANSFER,
            pending_id=pix_transfer_id(spi_id, "pending"),
            user_data=memo,
        )
        if then_credit is None:
            await self._apply([post], post.id)
            return
        pending = await self._ledger.lookup_transfers([pix_transfer_id(spi_id, "pending")])
        credit = Transfer(
            id=pix_transfer_id(spi_id, "credit"),
            debit_account_id=BankAccounts.PIX_SETTLEMENT,
            credit_account_id=then_credit,
            amount=pending[0].amount if pending else 0,
            code=credit_code or code,
            user_data=credit_memo or memo,
        )
        linked = msgspec.structs.replace(post, flags=post.flags | TransferFlags.LINKED)
        await self._apply([linked, credit], credit.id)

    async def void(self, spi_id: str, code: TransferCode) -> None:
        """Void the pending transfer of ``spi_id`` (the money is available again)."""
        void = Transfer(
            id=pix_transfer_id(spi_id, "void"),
            debit_account_id=None,
            credit_account_id=None,
            amount=0,
            code=code,
            flags=TransferFlags.VOID_PENDING_TRANSFER,
            pending_id=pix_transfer_id(spi_id, "pending"),
        )
        await self._apply([void], void.id)

    async def credit_from_settlement(
        self, spi_id: str, account_id: uuid.UUID, amount: Money, code: TransferCode, memo: str
    ) -> None:
        """A posted transfer settlement -> customer (money that arrived from the network)."""
        transfer = Transfer(
            id=pix_transfer_id(spi_id, "credit"),
            debit_account_id=BankAccounts.PIX_SETTLEMENT,
            credit_account_id=account_id,
            amount=amount.cents,
            code=code,
            user_data=memo,
        )
        await self._apply([transfer], transfer.id)

    async def _apply(self, transfers: Sequence[Transfer], marker: uuid.UUID) -> None:
        # Written first, looked up only when not every transfer is OK: the usual
        # first run costs one round trip, a repeat two. A replayed linked chain
        # fails as a whole on its first EXISTS, so "already done" is read from
        # the ledger (the marker, the chain's last transfer) rather than from
        # the results.
        results = await self._ledger.create_transfers(transfers)
        if all(r is CreateTransferResult.OK for r in results):
            return
        if await self._ledger.lookup_transfers([marker]):
            return  # a concurrent caller applied the same steps
        failing = next(
            (r for r in results if r not in (*_OK, CreateTransferResult.LINKED_EVENT_FAILED)),
            results[0],
        )
        raise_for_transfer_result(failing)


class PixEvents:
    """Publishes the PIX context's events, stamped by the injected clock and ids."""

    def __init__(self, publisher: EventPublisher, clock: Clock, ids: IdGenerator) -> None:
        self._publisher = publisher
        self._clock = clock
        self._ids = ids

    async def publish(
        self,
        type: str,
        aggregate_id: str,
        payload: dict[str, Any],
        correlation_id: str | None = None,
        *,
        event_id: uuid.UUID | None = None,
    ) -> None:
        """Publish one event; ``event_id`` fixes its id (see ``events.outcome_event_id``)."""
        event = self.envelope(type, aggregate_id, payload, correlation_id, event_id=event_id)
        await self._publisher.publish([event])

    def envelope(
        self,
        type: str,
        aggregate_id: str,
        payload: dict[str, Any],
        correlation_id: str | None = None,
        *,
        event_id: uuid.UUID | None = None,
    ) -> EventEnvelope:
        """The event :meth:`publish` would publish, for a store that writes it itself."""
        return make_event(
            event_id=event_id or self._ids.new_id(),
            type=type,
            occurred_at=self._clock.now(),
            aggregate_id=aggregate_id,
            payload=payload,
            correlation_id=correlation_id,
        )

    async def publish_payment_outcome(self, payment: PixPayment) -> None:
        """Publish the outcome events of ``payment`` (final) under their derived ids.

        Called when the outcome is recorded and again by any run that finds it
        already recorded, so a crash between the two never loses the event.
        """
        for type in payment_outcomes(payment):
            await self.publish(
                type,
                payment.end_to_end_id,
                payment_payload(payment),
                event_id=outcome_event_id(type, payment.end_to_end_id),
            )


def memo(prefix: str, payment: PixPayment) -> str:
    """The statement text of a PIX entry: what it is, its EndToEndId, the payer's note if any.

    The EndToEndId (or rtrId) in the text is also how daily reconciliation
    ties a settlement-account posting to the central bank's statement.
    """
    text = f"{prefix} {payment.end_to_end_id}"
    if not payment.description:
        return text
    return f"{text}: {payment.description}"[:MAX_MEMO_LENGTH]
