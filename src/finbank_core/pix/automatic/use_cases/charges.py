"""Receiver side: schedule a recurring charge (``cobr``) 2 to 10 days before its due date.

The payer's side (this bank too) checks it at once: ``ATIVA`` (scheduled for
the due date) or ``REJEITADA`` when the amount is over the payer's maximum.
One charge per period of the recurrence; a charge with the same txid and
terms answers the first one again (``replayed``).

Across institutions: a charge of our receiver whose payer is elsewhere is
stored ``ATIVA`` with no attempt day (the payer's institution debits it) and
delivered through the ``RecurrenceNetwork``; its payment arrives as an
incoming PIX (:class:`ReceiveRecurringPayment`). A charge another
institution's receiver sends to one of our payers comes in through
:class:`ReceiveRecurringCharge` and is checked and scheduled as ours are.
"""

from __future__ import annotations

from datetime import date

import msgspec

from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.automatic.errors import (
    ChargeNotCancellable,
    ChargeOutsideWindow,
    DuplicateRecurringCharge,
    InvalidRecurrence,
    RecurrenceNotFound,
    RecurringChargeNotFound,
)
from finbank_core.pix.automatic.model import (
    CHARGE_MAX_DAYS_AHEAD,
    CHARGE_MIN_DAYS_AHEAD,
    ChargeStatus,
    RecurrenceStatus,
    RecurringCharge,
    StatusChange,
    business_date,
    new_txid,
)
from finbank_core.pix.automatic.ports import (
    OutgoingRecurringCharge,
    RecurrenceNetwork,
    RecurrenceStore,
)
from finbank_core.pix.automatic.use_cases.common import (
    publish_charge,
    retrying,
    visible_recurrence,
)
from finbank_core.pix.codes.identifiers import TxId
from finbank_core.pix.ledger_steps import PixEvents
from finbank_core.pix.network import IncomingPixOrder
from finbank_core.pix.payments import PaymentStatus, PixParty, PixPayment
from finbank_core.pix.use_cases.receive import ReceivePix
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.ids import IdGenerator
from finbank_core.shared.inputs import check_lookup_id
from finbank_core.shared.money import Money


class ScheduleChargeCommand(msgspec.Struct, frozen=True, kw_only=True):
    """One period's charge; ``txid`` (26-35 letters or digits) is generated if omitted."""

    owner_id: str
    recurrence_id: str
    amount: Money
    due_date: date
    txid: str | None = None


class ScheduleChargeResult(msgspec.Struct, frozen=True, kw_only=True):
    charge: RecurringCharge
    replayed: bool = False


class GetRecurringChargeQuery(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    txid: str


class ListRecurringChargesQuery(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    recurrence_id: str


class CancelRecurringChargeCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Cancel one scheduled charge (its payer or its receiver), until the day before it is due."""

    owner_id: str
    txid: str


class ReceiveRecurringChargeCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Payer side: a charge another institution's receiver sent for one of our payers."""

    recurrence_id: str
    txid: str
    amount: Money
    due_date: date


class ScheduleCharge:
    """The receiver sends a charge of an approved recurrence; the payer's side schedules it."""

    def __init__(
        self,
        *,
        store: RecurrenceStore,
        events: PixEvents,
        clock: Clock,
        ids: IdGenerator,
        network: RecurrenceNetwork | None = None,
        accounts: AccountRepository | None = None,
    ) -> None:
        """``network`` and ``accounts``: to send charges to payers at other institutions."""
        self._store = store
        self._events = events
        self._clock = clock
        self._ids = ids
        self._network = network
        self._accounts = accounts

    async def __call__(self, cmd: ScheduleChargeCommand) -> ScheduleChargeResult:
        check_lookup_id(cmd.recurrence_id, "recurrence_id")
        result = await self.schedule(cmd, from_network=False)
        charge = result.charge
        if charge.payer_party is not None and charge.status is ChargeStatus.ATIVA:
            if self._network is None or self._accounts is None:
                raise ServiceUnavailable("no network to reach the payer's institution")
            recurrence = await self._store.get_recurrence(charge.recurrence_id)
            assert recurrence is not None
            receiver = await self._accounts.get(charge.receiver_account_id)
            await self._network.send_charge(  # again on a replay: the network dedupes
                OutgoingRecurringCharge(
                    recurrence_id=charge.recurrence_id,
                    txid=charge.txid,
                    amount=charge.amount,
                    due_date=charge.due_date,
                    payer=charge.payer_party,
                    receiver=PixParty(
                        ispb=recurrence.receiver_ispb,
                        branch=receiver.branch,
                        account_number=receiver.number,
                        account_kind=receiver.kind.value,
                        name=recurrence.receiver_name,
                    ),
                )
            )
        return result

    async def schedule(
        self, cmd: ScheduleChargeCommand, *, from_network: bool
    ) -> ScheduleChargeResult:
        """Check and store the charge; ``from_network``: sent by a receiver elsewhere."""
        txid = TxId.parse(cmd.txid).value if cmd.txid is not None else None
        if txid is not None:
            existing = await self._store.get_charge(txid)
            if existing is not None:
                return _replay(existing, cmd)
        recurrence = await self._store.get_recurrence(cmd.recurrence_id)
        if (
            recurrence is None
            or recurrence.receiver_owner_id != cmd.owner_id
            or recurrence.receiver_elsewhere is not from_network
        ):
            raise RecurrenceNotFound()
        recurrence.require(RecurrenceStatus.APROVADA)
        recurrence.check_amount(cmd.amount)
        now = self._clock.now()
        today = business_date(now)
        ahead = (cmd.due_date - today).days
        if not CHARGE_MIN_DAYS_AHEAD <= ahead <= CHARGE_MAX_DAYS_AHEAD:
            raise ChargeOutsideWindow(
                f"the due date must be {CHARGE_MIN_DAYS_AHEAD} to {CHARGE_MAX_DAYS_AHEAD} days "
                f"ahead (it is {ahead})",
                field="due_date",
            )
        if cmd.due_date < recurrence.start or (
            recurrence.end is not None and cmd.due_date > recurrence.end
        ):
            raise InvalidRecurrence("outside the recurrence's start and end", field="due_date")
        authorisation = recurrence.authorisation
        assert authorisation is not None  # APROVADA
        charge = RecurringCharge(
            txid=txid or new_txid(self._ids.new_id()),
            recurrence_id=recurrence.recurrence_id,
            cycle=recurrence.periodicity.cycle_of(recurrence.start, cmd.due_date),
            amount=cmd.amount,
            due_date=cmd.due_date,
            receiver_owner_id=recurrence.receiver_owner_id,
            receiver_account_id=recurrence.receiver_account_id,
            payer_owner_id=authorisation.payer_owner_id,
            payer_account_id=authorisation.payer_account_id,
            retry_policy=recurrence.retry_policy,
            created_at=now,
            status=ChargeStatus.ATIVA,
            # a payer elsewhere is debited by its institution, not by our scheduler
            next_attempt_on=None if authorisation.payer_party else cmd.due_date,
            history=(StatusChange(ChargeStatus.CRIADA.value, now),),
            receiver_party=recurrence.receiver_party,
            payer_party=authorisation.payer_party,
        )
        maximum = authorisation.max_amount
        if maximum is not None and cmd.amount > maximum:
            charge = charge.moved(
                ChargeStatus.REJEITADA,
                now,
                next_attempt_on=None,
                reason="amount_over_payer_maximum",
            )
        else:
            charge = charge.moved(ChargeStatus.ATIVA, now)
        try:
            stored = await self._store.add_charge(charge)
        except DuplicateRecurringCharge:
            if txid is not None and (again := await self._store.get_charge(txid)) is not None:
                return _replay(again, cmd)  # the same request, concurrently
            raise
        await publish_charge(self._events, stored)
        return ScheduleChargeResult(charge=stored)


class ReceiveRecurringCharge:
    """Payer side: schedule a charge a receiver at another institution sent (or reject it).

    The same checks as our receivers' charges (the 2-10 day window, the
    recurrence's terms, the payer's maximum: ``REJEITADA`` over it); the
    debit then runs on the due date and goes out as a PIX payment to the
    receiver's account there. The same txid and terms again is a replay.
    """

    def __init__(self, *, schedule: ScheduleCharge) -> None:
        self._schedule = schedule

    async def __call__(self, cmd: ReceiveRecurringChargeCommand) -> ScheduleChargeResult:
        return await self._schedule.schedule(
            ScheduleChargeCommand(
                owner_id="",  # the receiver has no owner here
                recurrence_id=cmd.recurrence_id,
                amount=cmd.amount,
                due_date=cmd.due_date,
                txid=cmd.txid,
            ),
            from_network=True,
        )


class ReceiveRecurringPaymentResult(msgspec.Struct, frozen=True, kw_only=True):
    payment: PixPayment
    #: the charge it paid, ``CONCLUIDA``; None if it names none of ours
    charge: RecurringCharge | None


class ReceiveRecurringPayment:
    """Receiver side: the payment of a charge whose payer is at another institution.

    The payer's institution debits on the due date and sends a PIX payment
    naming the charge's txid: it is credited as any incoming payment
    (``ReceivePix``: once per EndToEndId), then the charge is ``CONCLUIDA``
    if the payment matches it (its amount, to its receiver's account, from
    the institution it was sent to). A payment that matches no charge is
    still credited (the money arrived) and reported with ``charge=None``.
    """

    def __init__(
        self, *, store: RecurrenceStore, receive: ReceivePix, events: PixEvents, clock: Clock
    ) -> None:
        self._store = store
        self._receive = receive
        self._events = events
        self._clock = clock

    async def __call__(self, order: IncomingPixOrder) -> ReceiveRecurringPaymentResult:
        received = await self._receive(order)
        payment = received.payment
        txid = order.txid
        if txid is None or payment.status is not PaymentStatus.SETTLED:
            return ReceiveRecurringPaymentResult(payment=payment, charge=None)

        async def conclude() -> RecurringCharge | None:
            charge = await self._store.get_charge(txid)
            if charge is None or charge.payer_party is None:
                return None
            if charge.status is ChargeStatus.CONCLUIDA and charge.paid_by == payment.end_to_end_id:
                return charge  # a replay
            if (
                charge.status is not ChargeStatus.ATIVA
                or payment.amount != charge.amount
                or payment.payee.account_id != charge.receiver_account_id
                or payment.payer.ispb != charge.payer_party.ispb
            ):
                return None
            return await self._store.update_charge(
                charge.moved(
                    ChargeStatus.CONCLUIDA,
                    self._clock.now(),
                    paid_by=payment.end_to_end_id,
                    reason=None,
                )
            )

        charge = await retrying(conclude)
        if charge is not None:
            await publish_charge(self._events, charge)
        return ReceiveRecurringPaymentResult(payment=payment, charge=charge)


def _replay(existing: RecurringCharge, cmd: ScheduleChargeCommand) -> ScheduleChargeResult:
    if (
        existing.receiver_owner_id != cmd.owner_id
        or existing.recurrence_id != cmd.recurrence_id
        or existing.amount != cmd.amount
        or existing.due_date != cmd.due_date
    ):
        raise DuplicateRecurringCharge("this txid is taken by another charge", field="txid")
    return ScheduleChargeResult(charge=existing, replayed=True)


class GetRecurringCharge:
    """A recurring charge, for its receiver or its payer."""

    def __init__(self, *, store: RecurrenceStore) -> None:
        self._store = store

    async def __call__(self, query: GetRecurringChargeQuery) -> RecurringCharge:
        check_lookup_id(query.txid, "txid")
        charge = await self._store.get_charge(query.txid)
        if charge is None or query.owner_id not in (
            charge.receiver_owner_id,
            charge.payer_owner_id,
        ):
            raise RecurringChargeNotFound()
        return charge


class ListRecurringCharges:
    """The charges of a recurrence the caller receives or pays."""

    def __init__(self, *, store: RecurrenceStore) -> None:
        self._store = store

    async def __call__(self, query: ListRecurringChargesQuery) -> list[RecurringCharge]:
        check_lookup_id(query.recurrence_id, "recurrence_id")
        await visible_recurrence(self._store, query.owner_id, query.recurrence_id)
        return await self._store.list_charges(query.recurrence_id)


class CancelRecurringCharge:
    """Cancel one ``ATIVA`` charge; the recurrence goes on.

    The payer (or the receiver) may do so until 23:59:59 in Brasília on the
    day before the due date; from 00:00 on the due date the debit is the
    scheduler's (``ChargeNotCancellable``). Cancelling a cancelled charge
    answers it again.
    """

    def __init__(self, *, store: RecurrenceStore, events: PixEvents, clock: Clock) -> None:
        self._store = store
        self._events = events
        self._clock = clock

    async def __call__(self, cmd: CancelRecurringChargeCommand) -> RecurringCharge:
        check_lookup_id(cmd.txid, "txid")

        async def cancel() -> RecurringCharge:
            charge = await self._store.get_charge(cmd.txid)
            if charge is None or cmd.owner_id not in (
                charge.receiver_owner_id,
                charge.payer_owner_id,
            ):
                raise RecurringChargeNotFound()
            if charge.status is ChargeStatus.CANCELADA:
                return charge
            now = self._clock.now()
            if charge.status is not ChargeStatus.ATIVA or charge.attempts:
                raise ChargeNotCancellable(
                    f"the charge is {charge.status.value}", status=charge.status.value
                )
            if business_date(now) >= charge.due_date:
                raise ChargeNotCancellable(
                    "a charge is cancelled by the day before its due date", field="due_date"
                )
            by = "payer" if cmd.owner_id == charge.payer_owner_id else "receiver"
            return await self._store.update_charge(
                charge.moved(
                    ChargeStatus.CANCELADA, now, next_attempt_on=None, reason=f"cancelled_by_{by}"
                )
            )

        charge = await retrying(cancel)
        await publish_charge(self._events, charge)
        return charge


__all__ = [
    "CancelRecurringCharge",
    "CancelRecurringChargeCommand",
    "GetRecurringCharge",
    "GetRecurringChargeQuery",
    "ListRecurringCharges",
    "ListRecurringChargesQuery",
    "ReceiveRecurringCharge",
    "ReceiveRecurringChargeCommand",
    "ReceiveRecurringPayment",
    "ReceiveRecurringPaymentResult",
    "ScheduleCharge",
    "ScheduleChargeCommand",
    "ScheduleChargeResult",
]
