"""Journey 3 as one step: pay the immediate charge and authorise its recurrence.

A journey-3 code is a dynamic code (the immediate charge: the first
payment, an adhesion fee) plus the recurrence. In the manual's journey the
payer confirms once and the payer's institution does both: the payment and
the authorisation. ``PayAndAuthorise`` makes the pair one use case:

1. **Check before paying.** The code is read and everything the
   authorisation needs is checked first (a journey-3 code, the recurrence
   still ``CRIADA`` and offered to this payer, the maximum): a refusal there
   pays nothing.
2. **Pay** the immediate charge (``SendPix``, under the caller's idempotency
   key, so a repeat never pays twice). Refused or rejected: nothing is
   authorised (neither happened). Still pending at the network: nothing is
   authorised yet (``authorised=False``, ``reason="payment_pending"``); the
   same command again, once settled, authorises.
3. **Authorise** once the payment settled. The only way this step fails
   after a payment is a concurrent change to the recurrence between 1 and 3
   (its receiver cancelled it, say). The payment is then not reversed here:
   it is the receiver's immediate charge, a payment the payer chose in its
   own right, and a return (``devolução``) is the receiver's to make. It is
   clearly reported instead: ``authorised=False`` with the refusal's code,
   and a ``pix.automatic.journey3_authorisation_failed`` event naming the
   payment's EndToEndId and the recurrence, so the receiver's side (and
   support) can return it.

Calling it again with the same command is safe at any point: the payment
is replayed by its idempotency key and an authorisation already given by
this payer and account is returned as it is.
"""

from __future__ import annotations

import uuid

import msgspec

from finbank_core.pix.automatic.errors import InvalidRecurrence
from finbank_core.pix.automatic.events import event_id
from finbank_core.pix.automatic.model import Journey, Recurrence, RecurrenceStatus
from finbank_core.pix.automatic.use_cases.authorisations import (
    AuthoriseRecurrence,
    AuthoriseRecurrenceCommand,
    ReadRecurrenceCode,
    ReadRecurrenceCodeQuery,
    check_maximum,
)
from finbank_core.pix.ledger_steps import PixEvents
from finbank_core.pix.payments import PaymentStatus, PixPayment
from finbank_core.pix.use_cases.send import SendPix, SendPixCommand
from finbank_core.shared.errors import DomainError
from finbank_core.shared.inputs import IdempotencyKey
from finbank_core.shared.money import Money
from finbank_core.shared.privacy import masked_repr

JOURNEY3_AUTHORISATION_FAILED = "pix.automatic.journey3_authorisation_failed"


class PayAndAuthoriseCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Pay a journey-3 code's immediate charge from ``account_id`` and authorise its recurrence."""

    owner_id: str
    account_id: uuid.UUID
    br_code: str
    idempotency_key: IdempotencyKey
    max_amount: Money | None = None
    device_id: str | None = None

    __repr__ = masked_repr("br_code")


class PayAndAuthoriseResult(msgspec.Struct, frozen=True, kw_only=True):
    payment: PixPayment
    recurrence: Recurrence
    #: both happened; False: the payment is reported alone (see ``reason``)
    authorised: bool
    #: why not authorised: ``payment_pending``, ``payment_rejected_<ISO>`` or an error code
    reason: str | None = None


class PayAndAuthorise:
    """Journey 3 in one call (see the module docstring for what "both or neither" means)."""

    def __init__(
        self,
        *,
        read: ReadRecurrenceCode,
        authorise: AuthoriseRecurrence,
        send: SendPix,
        events: PixEvents,
    ) -> None:
        self._read = read
        self._authorise = authorise
        self._send = send
        self._events = events

    async def __call__(self, cmd: PayAndAuthoriseCommand) -> PayAndAuthoriseResult:
        offer = await self._read(
            ReadRecurrenceCodeQuery(owner_id=cmd.owner_id, br_code=cmd.br_code)
        )
        if offer.journey is not Journey.JORNADA_3:
            raise InvalidRecurrence(
                "not a journey-3 code (an immediate charge plus a recurrence)", field="br_code"
            )
        recurrence = offer.recurrence
        done = _authorised_by(recurrence, cmd)
        if not done:
            recurrence.require(RecurrenceStatus.CRIADA)
            check_maximum(recurrence, cmd.max_amount)
        sent = await self._send(
            SendPixCommand(
                owner_id=cmd.owner_id,
                account_id=cmd.account_id,
                idempotency_key=cmd.idempotency_key,
                br_code=cmd.br_code,
                device_id=cmd.device_id,
            )
        )
        payment = sent.payment
        if payment.status is PaymentStatus.REJECTED:
            reason = payment.reject_reason.value if payment.reject_reason else "unknown"
            return PayAndAuthoriseResult(
                payment=payment,
                recurrence=recurrence,
                authorised=False,
                reason=f"payment_rejected_{reason}",
            )
        if payment.status is not PaymentStatus.SETTLED:
            return PayAndAuthoriseResult(
                payment=payment, recurrence=recurrence, authorised=False, reason="payment_pending"
            )
        if done:
            return PayAndAuthoriseResult(payment=payment, recurrence=recurrence, authorised=True)
        try:
            recurrence = await self._authorise(
                AuthoriseRecurrenceCommand(
                    owner_id=cmd.owner_id,
                    account_id=cmd.account_id,
                    br_code=cmd.br_code,
                    max_amount=cmd.max_amount,
                )
            )
        except DomainError as refused:
            now = await self._read(
                ReadRecurrenceCodeQuery(owner_id=cmd.owner_id, br_code=cmd.br_code)
            )
            if _authorised_by(now.recurrence, cmd):  # the same command, concurrently, won
                return PayAndAuthoriseResult(
                    payment=payment, recurrence=now.recurrence, authorised=True
                )
            await self._events.publish(
                JOURNEY3_AUTHORISATION_FAILED,
                recurrence.recurrence_id,
                {
                    "recurrence_id": recurrence.recurrence_id,
                    "end_to_end_id": payment.end_to_end_id,
                    "amount_cents": payment.amount.cents,
                    "reason": refused.code,
                },
                event_id=event_id(JOURNEY3_AUTHORISATION_FAILED, payment.end_to_end_id),
            )
            return PayAndAuthoriseResult(
                payment=payment, recurrence=recurrence, authorised=False, reason=refused.code
            )
        return PayAndAuthoriseResult(payment=payment, recurrence=recurrence, authorised=True)


def _authorised_by(recurrence: Recurrence, cmd: PayAndAuthoriseCommand) -> bool:
    auth = recurrence.authorisation
    return (
        recurrence.status is RecurrenceStatus.APROVADA
        and auth is not None
        and (auth.payer_owner_id, auth.payer_account_id) == (cmd.owner_id, cmd.account_id)
    )


__all__ = [
    "JOURNEY3_AUTHORISATION_FAILED",
    "PayAndAuthorise",
    "PayAndAuthoriseCommand",
    "PayAndAuthoriseResult",
]
