"""The PIX payment aggregate and its state machine.

``PENDING -> SETTLED | REJECTED``; both ends are final (a settled payment is
undone by a refund, never by a transition). Transitions return a new value;
the repository stores it under the optimistic ``version`` it was read with.

One record per EndToEndId, whichever side of it this bank is on:

* ``OUTGOING``: our customer pays someone at another institution;
* ``INCOMING``: someone at another institution pays our customer;
* ``ON_US``: both accounts are here; payer and payee both see the record.

Ledger transfers of a payment have ids derived from its EndToEndId
(:func:`pix_transfer_id`), so every step can be replayed safely.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from finbank_core.accounts.use_cases import FINBANK_NAMESPACE
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.errors import (
    IllegalPixTransition,
    PixPaymentNotRefundable,
    PixRefundExceedsOriginal,
    PixRefundWindowExpired,
)
from finbank_core.pix.refunds import REFUND_WINDOW_DAYS, PixRefund, RefundStatus
from finbank_core.shared.ids import uuid5_of
from finbank_core.shared.money import Money
from finbank_core.shared.privacy import masked_repr

SAO_PAULO = "America/Sao_Paulo"


class PaymentStatus(enum.StrEnum):
    PENDING = "PENDING"
    SETTLED = "SETTLED"
    REJECTED = "REJECTED"


class PixFlow(enum.StrEnum):
    OUTGOING = "OUTGOING"
    INCOMING = "INCOMING"
    ON_US = "ON_US"


class PaymentDirection(enum.StrEnum):
    """An account's side of a payment: it paid (``SENT``) or was paid (``RECEIVED``)."""

    SENT = "SENT"
    RECEIVED = "RECEIVED"


class Initiation(enum.StrEnum):
    """How the payer named the payee (the SPI's ``LocalInstrument``)."""

    MANUAL = "MANU"  #: account data typed in
    KEY = "DICT"  #: a PIX key looked up in the directory
    STATIC_QR = "QRES"  #: a static BR Code
    DYNAMIC_QR = "QRDN"  #: a dynamic BR Code (a charge at a location URL)


class PixParty(msgspec.Struct, frozen=True, kw_only=True):
    """One side of a payment as the network knows it.

    ``account_id`` and ``owner_id`` are set only when the account is in this
    bank. ``document_masked`` is what may be shown to the other side.
    """

    ispb: str
    branch: str | None = None
    account_number: str | None = None
    account_kind: str | None = None
    name: str | None = None
    document_masked: str | None = None
    account_id: uuid.UUID | None = None
    owner_id: str | None = None

    __repr__ = masked_repr("name")


#: the most refunds one payment records (failed ones too): each is kept in the payment's
#: record, which DynamoDB holds to 400 KB (a refund with a 140-emoji description and a
#: 255-character refund id takes about 1.1 KB; past ~350 the write failed, 503)
MAX_REFUNDS_PER_PAYMENT = 100


class PixPayment(msgspec.Struct, frozen=True, kw_only=True):
    """A PIX payment record (see the module docstring for flows and states)."""

    end_to_end_id: str
    flow: PixFlow
    status: PaymentStatus
    amount: Money
    payer: PixParty
    payee: PixParty
    initiation: Initiation
    created_at: datetime
    version: int = 0
    settled_at: datetime | None = None
    rejected_at: datetime | None = None
    reject_reason: IsoReason | None = None
    txid: str | None = None
    description: str | None = None
    #: the payer's client idempotency key (outgoing and on-us payments)
    idempotency_key: str | None = None
    request_fingerprint: str | None = None
    device_id: str | None = None
    refunds: tuple[PixRefund, ...] = ()

    # -- state machine -------------------------------------------------------------

    def settle(self, now: datetime) -> PixPayment:
        """``PENDING -> SETTLED``; ``IllegalPixTransition`` from any other state."""
        self._require_pending(PaymentStatus.SETTLED)
        return msgspec.structs.replace(self, status=PaymentStatus.SETTLED, settled_at=now)

    def reject(self, reason: IsoReason, now: datetime) -> PixPayment:
        """``PENDING -> REJECTED`` with the ISO reason; ``IllegalPixTransition`` otherwise."""
        self._require_pending(PaymentStatus.REJECTED)
        return msgspec.structs.replace(
            self, status=PaymentStatus.REJECTED, rejected_at=now, reject_reason=reason
        )

    def _require_pending(self, target: PaymentStatus) -> None:
        if self.status is not PaymentStatus.PENDING:
            raise IllegalPixTransition(
                f"a payment cannot go from {self.status.value} to {target.value}",
                current=self.status.value,
                target=target.value,
            )

    # -- views -----------------------------------------------------------------------

    def is_visible_to(self, owner_id: str) -> bool:
        """True when ``owner_id`` holds the payer's or the payee's account here."""
        return owner_id in (self.payer.owner_id, self.payee.owner_id)

    def account_ids(self) -> tuple[uuid.UUID, ...]:
        """This bank's accounts the payment touches (one, or two for on-us)."""
        return tuple(p.account_id for p in (self.payer, self.payee) if p.account_id is not None)

    def directions(self, account_id: uuid.UUID) -> set[PaymentDirection]:
        """The account's sides of the payment: empty if it touches another account only."""
        sides: set[PaymentDirection] = set()
        if self.payer.account_id == account_id:
            sides.add(PaymentDirection.SENT)
        if self.payee.account_id == account_id:
            sides.add(PaymentDirection.RECEIVED)
        return sides

    def settlement_day(self, timezone: str = SAO_PAULO) -> date | None:
        """The business date of the settlement, in ``timezone``; ``None`` if not settled."""
        if self.settled_at is None:
            return None
        return self.settled_at.astimezone(ZoneInfo(timezone)).date()

    def settlement_days(self, timezone: str = SAO_PAULO) -> set[date]:
        """Business dates on which money of this record settled: the payment's and its refunds'."""
        zone = ZoneInfo(timezone)
        days = {self.settled_at.astimezone(zone).date()} if self.settled_at else set()
        days.update(
            r.completed_at.astimezone(zone).date()
            for r in self.refunds
            if r.status is RefundStatus.DEVOLVIDO and r.completed_at is not None
        )
        return days

    @property
    def refunded_amount(self) -> Money:
        """What refunds in progress or done take out of the original amount."""
        return Money(sum(r.amount.cents for r in self.refunds if r.counts_against_original))

    def find_refund(self, client_refund_id: str) -> PixRefund | None:
        return next((r for r in self.refunds if r.client_refund_id == client_refund_id), None)

    def refund_by_return_id(self, return_id: str) -> PixRefund | None:
        """The refund the network knows as ``return_id`` (rtrId), if this payment has it."""
        return next((r for r in self.refunds if r.return_id == return_id), None)

    # -- refunds ------------------------------------------------------------------------

    def add_refund(self, refund: PixRefund, *, window_days: int = REFUND_WINDOW_DAYS) -> PixPayment:
        """Record a new refund, enforcing the refund rules (see ``docs/pix.md``).

        Only a settled payment received by one of our accounts; within
        ``window_days`` of its settlement (``PixRefundWindowExpired``, DT05);
        all refunds not failed add up to at most the original amount
        (``PixRefundExceedsOriginal``, AM09); at most
        :data:`MAX_REFUNDS_PER_PAYMENT` refunds (``PixPaymentNotRefundable``).
        """
        if (
            self.status is not PaymentStatus.SETTLED
            or self.flow is PixFlow.OUTGOING
            or self.settled_at is None
        ):
            raise PixPaymentNotRefundable("only a settled payment you received can be refunded")
        if refund.requested_at > self.settled_at + timedelta(days=window_days):
            raise PixRefundWindowExpired(
                f"refunds are possible for {window_days} days after the settlement",
                reason=IsoReason.DT05.value,
            )
        if self.refunded_amount.cents + refund.amount.cents > self.amount.cents:
            raise PixRefundExceedsOriginal(
                f"refunds would exceed the original amount of {self.amount}",
                reason=IsoReason.AM09.value,
            )
        if len(self.refunds) >= MAX_REFUNDS_PER_PAYMENT:
            raise PixPaymentNotRefundable(
                f"a payment takes at most {MAX_REFUNDS_PER_PAYMENT} refunds"
            )
        return msgspec.structs.replace(self, refunds=(*self.refunds, refund))

    def replace_refund(self, refund: PixRefund) -> PixPayment:
        """The payment with ``refund`` (same return id) in its new state."""
        refunds = tuple(r if r.return_id != refund.return_id else refund for r in self.refunds)
        return msgspec.structs.replace(self, refunds=refunds)


#: ``uuid.uuid5(FINBANK_NAMESPACE, name)``, bit for bit (ids already stored must not move)
_derive_id = uuid5_of(FINBANK_NAMESPACE)


def pix_transfer_id(spi_id: str, step: str) -> uuid.UUID:
    """The ledger transfer id of one step (``pending``, ``post``...) of a payment or return."""
    return _derive_id(f"pix\x1f{spi_id}\x1f{step}")


class PaymentPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[PixPayment]
    #: pass back as ``cursor`` for the next page; ``None`` on the last page
    next_cursor: str | None = None
