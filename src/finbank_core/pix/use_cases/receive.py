"""Payments other institutions send to our customers: accepting them, then crediting them.

The network (SPI) asks a receiving PSP, synchronously, whether it takes an
incoming order: the EndToEndId must parse, the amount be positive, the payer
be another institution, and the payee an active account here (else
``PixRecipientInvalid`` with ``AC03`` / ``AC06``, which the network turns
into ``RJCT``). :class:`AcceptIncomingPix` gives that answer. The credit
itself (:class:`ReceivePix`) may follow in the same call (memory profile,
sandbox) or in the settlement worker, from a ``pix.incoming_accepted``
event (local and aws profiles): the answer to the network does not wait for
the ledger and the payment records.

The event names the payee by account (id, branch and number), never by the
PIX key the payer used: keys are personal data and stay out of events.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from finbank_core.accounts.ledger import TransferCode
from finbank_core.accounts.model import AccountStatus, CustomerAccount
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.codes.identifiers import EndToEndId
from finbank_core.pix.codes.keys import PixKey
from finbank_core.pix.directory import safe_mask
from finbank_core.pix.errors import (
    MalformedPixEvent,
    PixKeyNotFound,
    PixPaymentAlreadyExists,
    PixPaymentNotFound,
    PixRecipientInvalid,
)
from finbank_core.pix.events import INCOMING_ACCEPTED, outcome_event_id
from finbank_core.pix.ledger_steps import PixEvents, PixLedgerSteps, memo
from finbank_core.pix.network import IncomingPixOrder
from finbank_core.pix.payments import Initiation, PaymentStatus, PixFlow, PixParty, PixPayment
from finbank_core.pix.ports import ChargeRepository, KeyDirectory, PixPaymentRepository
from finbank_core.pix.use_cases.charge import conclude_matching_charge
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import AccountNotFound, InvalidAmount, InvalidInput
from finbank_core.shared.inputs import check_memo, find_unstorable
from finbank_core.shared.money import MAX_BCB_CENTS, Money
from finbank_core.shared.privacy import masked_repr

#: what :class:`AcceptIncomingPixResult` says while the worker has the credit
ACCEPTED = "ACCEPTED"
#: an incoming order's txid: a charge's (26 to 35), a static code's (1 to 25) or ``***``
_TXID_MAX = 35
_ALNUM = re.compile(r"[A-Za-z0-9]+")


async def recorded_incoming(
    payments: PixPaymentRepository, order: IncomingPixOrder
) -> tuple[str, PixPayment | None]:
    """The order's EndToEndId (parsed), and its record if it was credited before.

    Raises ``InvalidIdentifier`` for a malformed EndToEndId and
    ``InvalidInput`` for an amount that is not positive or is more than a PIX
    carries (R$ 9.999.999.999,99), or for text that no
    backend can store (a NUL or an unpaired surrogate in the txid, the
    description, a party's name...) or past the network's limits (a txid of
    1 to 35 letters or digits or ``***``, a description of at most 140
    characters), naming the field: checked here, before the credit, so an
    order that could not be recorded is never credited.
    """
    unstorable = find_unstorable(order)
    if unstorable is not None:
        field, wrong = unstorable
        raise InvalidInput(f"{field} must not contain {wrong}", field=field)
    # the network's own limits (a charge's txid; a remittance note of 140 characters), so
    # that what is credited can always be recorded (a DynamoDB item is at most 400 KB)
    txid = order.txid
    if txid and txid != "***" and not (len(txid) <= _TXID_MAX and _ALNUM.fullmatch(txid)):
        raise InvalidInput(f"a txid is 1 to {_TXID_MAX} letters or digits, or ***", field="txid")
    check_memo(order.description)
    e2e = EndToEndId.parse(order.end_to_end_id).value
    if order.amount.require_positive().cents > MAX_BCB_CENTS:
        raise InvalidAmount("a PIX carries at most R$ 9.999.999.999,99")
    try:
        return e2e, await payments.get(e2e)
    except PixPaymentNotFound:
        return e2e, None


async def payee_account(
    ispb: str, accounts: AccountRepository, directory: KeyDirectory, order: IncomingPixOrder
) -> CustomerAccount:
    """The active account here that ``order`` pays into, named by key or by branch/number.

    ``InvalidInput`` if the payer is this institution or the payee is not
    named; ``PixRecipientInvalid`` ``AC03`` for no such account (or a key
    that is not ours), ``AC06`` for an account that is not active.
    """
    if order.payer.ispb == ispb:
        raise InvalidInput("an incoming payment comes from another institution", field="payer")
    try:
        if order.payee_key is not None:
            registration = await directory.get(PixKey.parse(order.payee_key))
            if registration.account_id is None or registration.ispb != ispb:
                raise AccountNotFound()
            account = await accounts.get(registration.account_id)
        elif order.payee_branch and order.payee_account_number:
            account = await accounts.get_by_number(order.payee_branch, order.payee_account_number)
        else:
            raise InvalidInput("the payee is named by a key or by branch and number")
    except (AccountNotFound, PixKeyNotFound):
        raise PixRecipientInvalid("no such account here (AC03)", reason="AC03") from None
    if account.status is not AccountStatus.ACTIVE:
        raise PixRecipientInvalid("the recipient account is not active (AC06)", reason="AC06")
    return account


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

    def __init__(
        self,
        *,
        ispb: str,
        accounts: AccountRepository,
        payments: PixPaymentRepository,
        steps: PixLedgerSteps,
        events: PixEvents,
        clock: Clock,
        directory: KeyDirectory,
        charges: ChargeRepository,
    ) -> None:
        self._ispb = ispb
        self._accounts = accounts
        self._payments = payments
        self._steps = steps
        self._events = events
        self._clock = clock
        self._directory = directory
        self._charges = charges

    async def __call__(self, order: IncomingPixOrder) -> ReceivePixResult:
        e2e, recorded = await recorded_incoming(self._payments, order)
        if recorded is not None:
            await self._events.publish_payment_outcome(recorded)  # lost to a crash, maybe
            return ReceivePixResult(payment=recorded, replayed=True)
        account = await payee_account(self._ispb, self._accounts, self._directory, order)
        return await self.credit(e2e, order, account)

    async def credit(
        self, end_to_end_id: str, order: IncomingPixOrder, account: CustomerAccount
    ) -> ReceivePixResult:
        """Credit ``account``, which the caller resolved and checked (:func:`payee_account`)."""
        now = self._clock.now()
        payment = PixPayment(
            end_to_end_id=end_to_end_id,
            flow=PixFlow.INCOMING,
            status=PaymentStatus.SETTLED,
            amount=order.amount,
            payer=order.payer,
            payee=PixParty(
                ispb=self._ispb,
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
        await self._steps.credit_from_settlement(
            end_to_end_id,
            account.id,
            order.amount,
            TransferCode.PIX_IN,
            memo("PIX recebido", payment),
        )
        try:
            stored = await self._payments.add(payment)
        except PixPaymentAlreadyExists:
            recorded = await self._payments.get(end_to_end_id)
            await self._events.publish_payment_outcome(recorded)
            return ReceivePixResult(payment=recorded, replayed=True)
        await self._events.publish_payment_outcome(stored)
        await conclude_matching_charge(self._events, self._charges, stored, now)
        return ReceivePixResult(payment=stored)


class IncomingAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of ``pix.incoming_accepted`` (version 1): what :class:`ReceivePix` needs.

    The payee is named by account, never by key; the payer's document is
    masked (``***.982.247-**``), as the network shows it to the payee.
    """

    end_to_end_id: str
    amount_cents: Annotated[int, msgspec.Meta(gt=0, le=MAX_BCB_CENTS)]
    payer_ispb: str
    payee_ispb: str
    payee_account_id: uuid.UUID
    payee_branch: str
    payee_account_number: str
    initiation: Initiation
    payer_branch: str | None = None
    payer_account_number: str | None = None
    payer_account_kind: str | None = None
    payer_name: str | None = None
    payer_document_masked: str | None = None
    txid: str | None = None
    description: str | None = None

    @classmethod
    def of(
        cls, end_to_end_id: str, order: IncomingPixOrder, account: CustomerAccount, ispb: str
    ) -> IncomingAccepted:
        payer = order.payer
        return cls(
            end_to_end_id=end_to_end_id,
            amount_cents=order.amount.cents,
            payer_ispb=payer.ispb,
            payee_ispb=ispb,
            payee_account_id=account.id,
            payee_branch=account.branch,
            payee_account_number=account.number,
            initiation=order.initiation,
            payer_branch=payer.branch,
            payer_account_number=payer.account_number,
            payer_account_kind=payer.account_kind,
            payer_name=payer.name,
            payer_document_masked=_masked(payer.document_masked),
            txid=order.txid,
            description=order.description,
        )

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> IncomingAccepted:
        """Decode an event's payload; ``MalformedPixEvent`` if it is not one of these."""
        try:
            accepted = msgspec.convert(payload, cls)
            EndToEndId.parse(accepted.end_to_end_id)
        except (msgspec.ValidationError, InvalidInput) as exc:
            raise MalformedPixEvent(f"not a {INCOMING_ACCEPTED} payload: {exc}") from None
        return accepted

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = msgspec.to_builtins(self)
        return payload

    def order(self) -> IncomingPixOrder:
        """The order again, for :class:`ReceivePix`: its payee named by branch and number."""
        return IncomingPixOrder(
            end_to_end_id=self.end_to_end_id,
            amount=Money(self.amount_cents),
            payer=PixParty(
                ispb=self.payer_ispb,
                branch=self.payer_branch,
                account_number=self.payer_account_number,
                account_kind=self.payer_account_kind,
                name=self.payer_name,
                document_masked=self.payer_document_masked,
            ),
            payee_branch=self.payee_branch,
            payee_account_number=self.payee_account_number,
            txid=self.txid,
            description=self.description,
            initiation=self.initiation,
        )

    __repr__ = masked_repr("payer_name")


def _masked(document: str | None) -> str | None:
    # The network shows payers masked; mask anyway if an unmasked one came in.
    if document is None or "*" in document:
        return document
    return safe_mask(document)


class AcceptIncomingPixResult(msgspec.Struct, frozen=True, kw_only=True):
    """Our answer to an incoming order: taken. ``payment`` is the record once credited."""

    end_to_end_id: str
    #: set when the credit happened in the call, or before (``replayed``); else the worker has it
    payment: PixPayment | None = None
    replayed: bool = False

    @property
    def status(self) -> str:
        """``ACCEPTED`` while the credit is pending, else the payment's status."""
        return self.payment.status.value if self.payment is not None else ACCEPTED


class AcceptIncomingPix:
    """Answer the network for an incoming order, then credit it now or through the worker.

    Checks what a receiving PSP must check before it answers (see the
    module docstring; raises ``PixRecipientInvalid`` ``AC03`` / ``AC06``,
    ``InvalidInput``). An order credited before is answered with its record
    (``replayed``). Then, with ``credit_inline``, runs :class:`ReceivePix`
    and returns the payment; without it, publishes ``pix.incoming_accepted``
    (aggregate: the EndToEndId) for the settlement worker and returns an
    acceptance without a payment. A second acceptance of the same order
    before the worker ran publishes the event again under the same id (it
    derives from the EndToEndId), which the worker's inbox drops; a copy
    that got past it still credits once (``ReceivePix`` is idempotent by
    EndToEndId).
    """

    def __init__(
        self,
        *,
        ispb: str,
        accounts: AccountRepository,
        payments: PixPaymentRepository,
        events: PixEvents,
        directory: KeyDirectory,
        receive: ReceivePix,
        credit_inline: bool = True,
    ) -> None:
        self._ispb = ispb
        self._accounts = accounts
        self._payments = payments
        self._events = events
        self._directory = directory
        self._receive = receive
        self._credit_inline = credit_inline

    async def __call__(self, order: IncomingPixOrder) -> AcceptIncomingPixResult:
        e2e, recorded = await recorded_incoming(self._payments, order)
        if recorded is not None:
            return AcceptIncomingPixResult(end_to_end_id=e2e, payment=recorded, replayed=True)
        account = await payee_account(self._ispb, self._accounts, self._directory, order)
        if self._credit_inline:
            result = await self._receive.credit(e2e, order, account)
            return AcceptIncomingPixResult(
                end_to_end_id=e2e, payment=result.payment, replayed=result.replayed
            )
        accepted = IncomingAccepted.of(e2e, order, account, self._ispb)
        await self._events.publish(
            INCOMING_ACCEPTED,
            e2e,
            accepted.to_payload(),
            event_id=outcome_event_id(INCOMING_ACCEPTED, e2e),
        )
        return AcceptIncomingPixResult(end_to_end_id=e2e)
