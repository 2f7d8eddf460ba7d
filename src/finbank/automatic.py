"""``bank.pix.automatic``: Pix Automático, the receiver's side and the payer's.

Receiver: :meth:`AutomaticFacade.create` a recurrence, send it to a payer
here (:meth:`request`, journey 1) or issue its QR code (:meth:`code`,
journeys 2-4), :meth:`schedule` each period's charge 2 to 10 days before
its due date, :meth:`recurrences` to list them. Payer: :meth:`read` a code,
:meth:`authorise` (with an optional maximum) or :meth:`reject`,
:meth:`authorisations`; either side may :meth:`cancel`. The scheduler
(``finbank worker pix-automatic``) calls :meth:`run_due`; :meth:`execute`
runs one charge. With other institutions (through the payment network):
:meth:`record_answer`, :meth:`receive_charge`, :meth:`receive_payment`.
The rules and their sources: ``docs/pix-automatic.md``.
"""

from __future__ import annotations

from finbank._provided import provided
from finbank_adapters.containers import BankContainer
from finbank_core.pix.automatic import use_cases as uc
from finbank_core.pix.automatic.model import Recurrence, RecurringCharge
from finbank_core.pix.automatic.ports import RecurrenceAnswer, RecurrenceCancellation
from finbank_core.pix.network import IncomingPixOrder
from finbank_core.shared.inputs import checked_types

__all__ = ["AutomaticFacade"]


class AutomaticFacade:
    """Pix Automático: ``bank.pix.automatic``."""

    def __init__(self, container: BankContainer) -> None:
        self._c = container.pix_automatic()

    async def create(self, command: uc.CreateRecurrenceCommand) -> Recurrence:
        """Receiver: a new recurrence (``CRIADA``) on one of the caller's accounts."""
        return await (await provided(self._c.create_recurrence))(checked_types(command))

    async def get(self, query: uc.GetRecurrenceQuery) -> Recurrence:
        """A recurrence, for its receiver or its payer."""
        return await (await provided(self._c.get_recurrence))(checked_types(query))

    async def recurrences(self, query: uc.ListRecurrencesQuery) -> list[Recurrence]:
        """The caller's recurrences as receiver (or as payer)."""
        return await (await provided(self._c.list_recurrences))(checked_types(query))

    async def request(self, command: uc.RequestAuthorisationCommand) -> Recurrence:
        """Receiver, journey 1: send the recurrence to a payer's account here."""
        return await (await provided(self._c.request_authorisation))(checked_types(command))

    async def code(self, query: uc.RecurrenceCodeQuery) -> uc.RecurrenceCode:
        """Receiver: the composite BR Code of journey 2, 3 or 4."""
        return await (await provided(self._c.issue_recurrence_code))(checked_types(query))

    async def schedule(self, command: uc.ScheduleChargeCommand) -> uc.ScheduleChargeResult:
        """Receiver: one period's charge, 2 to 10 days before its due date."""
        return await (await provided(self._c.schedule_charge))(checked_types(command))

    async def cancel_charge(self, command: uc.CancelRecurringChargeCommand) -> RecurringCharge:
        """Payer or receiver: cancel one scheduled charge, until the day before it is due."""
        return await (await provided(self._c.cancel_recurring_charge))(checked_types(command))

    async def charge(self, query: uc.GetRecurringChargeQuery) -> RecurringCharge:
        """A recurring charge, for its receiver or its payer."""
        return await (await provided(self._c.get_recurring_charge))(checked_types(query))

    async def charges(self, query: uc.ListRecurringChargesQuery) -> list[RecurringCharge]:
        """The charges of a recurrence."""
        return await (await provided(self._c.list_recurring_charges))(checked_types(query))

    async def read(self, query: uc.ReadRecurrenceCodeQuery) -> uc.RecurrenceOffer:
        """Payer: what a Pix Automático code asks, before answering."""
        return await (await provided(self._c.read_recurrence_code))(checked_types(query))

    async def authorise(self, command: uc.AuthoriseRecurrenceCommand) -> Recurrence:
        """Payer: authorise (``APROVADA``), with an optional maximum per charge."""
        return await (await provided(self._c.authorise_recurrence))(checked_types(command))

    async def pay_and_authorise(
        self, command: uc.PayAndAuthoriseCommand
    ) -> uc.PayAndAuthoriseResult:
        """Payer, journey 3: pay the immediate charge and authorise, as one step."""
        return await (await provided(self._c.pay_and_authorise))(checked_types(command))

    async def set_limit(self, command: uc.SetAutomaticLimitCommand) -> uc.AutomaticLimit:
        """Payer: the account's own daily Pix Automático limit (None removes it).

        Lowering applies at once. Raising or removing it needs ``allow_raise=True``
        (the embedder checked the caller re-authenticated) or ``step_up``, a callable
        the use case awaits once, after the ownership and figure checks, right before
        the write (over HTTP it spends the request's ``pix_limit_raise`` step-up
        token, so a refused request leaves the token usable); ``StepUpRequired``
        otherwise, and nothing changes. The store sets it by compare-and-set, so a
        lowering racing another never ends above the lower one.
        """
        return await (await provided(self._c.set_automatic_limit))(checked_types(command))

    async def limit(self, query: uc.AutomaticLimitQuery) -> uc.AutomaticLimit:
        """Payer: the account's own daily Pix Automático limit."""
        return await (await provided(self._c.get_automatic_limit))(checked_types(query))

    async def reject(self, command: uc.RejectRecurrenceCommand) -> Recurrence:
        """Payer: decline (``REJEITADA``)."""
        return await (await provided(self._c.reject_recurrence))(checked_types(command))

    async def authorisations(self, query: uc.ListAuthorisationsQuery) -> list[Recurrence]:
        """Payer: the recurrences they authorised or were asked to."""
        return await (await provided(self._c.list_authorisations))(checked_types(query))

    async def cancel(self, command: uc.CancelRecurrenceCommand) -> Recurrence:
        """Receiver or payer: cancel; the charges that have not run are cancelled."""
        return await (await provided(self._c.cancel_recurrence))(checked_types(command))

    async def execute(self, command: uc.ExecuteDebitCommand) -> RecurringCharge:
        """Run a charge's due debit now (what the scheduler does); safe to repeat."""
        return await (await provided(self._c.execute_due_debit))(checked_types(command))

    async def run_due(self, command: uc.RunDueDebitsCommand) -> uc.RunDueDebitsResult:
        """One scheduler round: lease the due charges and run each."""
        return await (await provided(self._c.run_due_debits))(checked_types(command))

    # -- with other institutions (what the network delivers) ----------------------------

    async def record_answer(self, answer: RecurrenceAnswer) -> Recurrence:
        """Receiver side: a payer at another institution answered one of our recurrences."""
        return await (await provided(self._c.record_recurrence_answer))(checked_types(answer))

    async def record_cancellation(self, cancellation: RecurrenceCancellation) -> Recurrence:
        """Payer side: the receiver of a recurrence at another institution cancelled it."""
        return await (await provided(self._c.record_receiver_cancellation))(
            checked_types(cancellation)
        )

    async def receive_charge(
        self, command: uc.ReceiveRecurringChargeCommand
    ) -> uc.ScheduleChargeResult:
        """Payer side: a receiver at another institution sent a charge for one of ours."""
        return await (await provided(self._c.receive_recurring_charge))(checked_types(command))

    async def receive_payment(self, order: IncomingPixOrder) -> uc.ReceiveRecurringPaymentResult:
        """Receiver side: the payment of a charge whose payer is elsewhere (credited once)."""
        return await (await provided(self._c.receive_recurring_payment))(checked_types(order))
