"""Pix Automático on the sandbox network: its peer bank's recurrences, and its payers.

:class:`SandboxRecurrenceNetwork` serves the core's ``RecurrenceNetwork``
port beside :class:`~finbank_adapters.sandbox.spi.SimulatedSpi` (the same
network). As the peer bank it:

* **serves recurrences** of its receivers at ``pix.bancosimulado.example/rec/{idRec}``
  (:meth:`SandboxRecurrenceNetwork.offer`, which also returns the
  recurrence-only BR Code a payer of ours scans). A real adapter fetches the
  URL and verifies the JWS the receiver's institution signed; here the
  payload is the peer's own record, so there is nothing to verify;
* **records** what our payers answer (:attr:`answers`), the charges our
  receivers send to its payers (:attr:`charges`) and our receivers'
  cancellations (:attr:`cancellations`);
* **acts for its customers**: :meth:`peer_answer` (a payer there authorises
  one of our receivers' recurrences), :meth:`peer_charge` (its receiver
  charges one of our payers), :meth:`peer_cancels` (its receiver cancels)
  and :meth:`peer_pays` (its payer's institution debits a charge on the due
  date: a payment to our receiver through :meth:`SimulatedSpi.originate_payment`).

Messages are answered once per recurrence and status / txid, as the SPI
answers an EndToEndId once.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from finbank_adapters.sandbox.spi import RemoteAccount, SimulatedInstitution, SimulatedSpi
from finbank_core.pix.automatic.errors import RecurrenceNotFound
from finbank_core.pix.automatic.model import (
    Periodicity,
    RecurrenceStatus,
    RetryPolicy,
    business_date,
    new_recurrence_id,
)
from finbank_core.pix.automatic.ports import (
    OutgoingRecurringCharge,
    RecurrenceAnswer,
    RecurrenceCancellation,
    RemoteRecurrence,
)
from finbank_core.pix.automatic.use_cases import ReceiveRecurringChargeCommand
from finbank_core.pix.codes.brcode import BRCode, ascii_fold
from finbank_core.pix.network import IncomingPixOrder
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import InvalidInput, NotFound
from finbank_core.shared.money import Money

__all__ = ["PEER_LOCATION_HOST", "SandboxRecurrenceNetwork", "sandbox_recurrence_network"]

#: where the sandbox peer bank serves its recurrences
PEER_LOCATION_HOST = "pix.bancosimulado.example"


class SandboxRecurrenceNetwork:
    """The sandbox's ``RecurrenceNetwork`` (see the module docstring)."""

    def __init__(self, spi: SimulatedSpi, clock: Clock) -> None:
        self._spi = spi
        #: the network's institutions (none on a fake network)
        self._institutions: dict[str, SimulatedInstitution] = getattr(spi, "institutions", {})
        self._clock = clock
        self._served: dict[str, RemoteRecurrence] = {}
        self._answers: dict[tuple[str, RecurrenceStatus], RecurrenceAnswer] = {}
        self._charges: dict[str, OutgoingRecurringCharge] = {}
        self._cancellations: dict[str, RecurrenceCancellation] = {}

    # -- the port ----------------------------------------------------------------

    async def fetch_recurrence(self, location_url: str) -> RemoteRecurrence:
        found = self._served.get(_url_key(location_url))
        if found is None:
            raise RecurrenceNotFound("no institution of the network serves that recurrence")
        return found

    async def send_answer(self, answer: RecurrenceAnswer) -> None:
        if answer.receiver_ispb not in self._institutions:
            raise RecurrenceNotFound("the receiver's institution is not on the network")
        self._answers.setdefault((answer.recurrence_id, answer.status), answer)

    async def send_charge(self, charge: OutgoingRecurringCharge) -> None:
        if charge.payer.ispb not in self._institutions:
            raise InvalidInput("the payer's institution is not on the network")
        self._charges.setdefault(charge.txid, charge)

    async def send_cancellation(self, cancellation: RecurrenceCancellation) -> None:
        if cancellation.payer_ispb not in self._institutions:
            raise InvalidInput("the payer's institution is not on the network")
        self._cancellations.setdefault(cancellation.recurrence_id, cancellation)

    # -- what the peer bank was told ---------------------------------------------

    @property
    def cancellations(self) -> list[RecurrenceCancellation]:
        return list(self._cancellations.values())

    def peer_cancels(
        self, recurrence_id: str, *, payer_ispb: str, reason: str | None = None
    ) -> RecurrenceCancellation:
        """The peer's receiver cancels one of its recurrences (what our payer side is sent)."""
        if not any(r.recurrence_id == recurrence_id for r in self._served.values()):
            raise NotFound("the peer bank serves no such recurrence")
        return RecurrenceCancellation(
            recurrence_id=recurrence_id,
            payer_ispb=payer_ispb,
            at=self._clock.now(),
            reason=reason,
        )

    @property
    def answers(self) -> list[RecurrenceAnswer]:
        return list(self._answers.values())

    @property
    def charges(self) -> list[OutgoingRecurringCharge]:
        return list(self._charges.values())

    # -- the peer bank's customers act ---------------------------------------------

    def offer(
        self,
        *,
        ispb: str,
        account_number: str,
        contract: str,
        debtor_name: str,
        periodicity: Periodicity,
        start: date,
        retry_policy: RetryPolicy = RetryPolicy.PERMITE_3R_7D,
        fixed_amount: Money | None = None,
        min_amount: Money | None = None,
        end: date | None = None,
        purpose: str | None = None,
    ) -> tuple[RemoteRecurrence, str]:
        """A receiver of the peer bank offers a recurrence: it and its journey-2 BR Code."""
        institution, account = self._account(ispb, account_number)
        now = self._clock.now()
        # random, as an institution's ids are unique in the SPI: a counter of this process
        # gave the same id in every run, and a second run on a kept database found the
        # first one's recurrence under it (already authorised by another payer)
        recurrence_id = new_recurrence_id(ispb, retry_policy, business_date(now), uuid.uuid4())
        url = f"{PEER_LOCATION_HOST}/rec/{recurrence_id}"
        served = RemoteRecurrence(
            recurrence_id=recurrence_id,
            location_url=url,
            receiver=account.party(institution.ispb),
            contract=contract,
            purpose=purpose,
            debtor_name=debtor_name,
            periodicity=periodicity,
            start=start,
            end=end,
            retry_policy=retry_policy,
            fixed_amount=fixed_amount,
            min_amount=min_amount,
        )
        self._served[_url_key(url)] = served
        code = BRCode.recurrence_only(
            recurrence_url=url,
            merchant_name=ascii_fold(account.holder_name)[:25] or "RECEBEDOR",
            merchant_city="SAO PAULO",
        )
        return served, code.encode()

    def peer_charge(
        self, recurrence_id: str, *, txid: str, amount: Money, due_date: date
    ) -> ReceiveRecurringChargeCommand:
        """The peer's receiver charges one of its recurrences (what we are sent)."""
        if not any(r.recurrence_id == recurrence_id for r in self._served.values()):
            raise NotFound("the peer bank serves no such recurrence")
        return ReceiveRecurringChargeCommand(
            recurrence_id=recurrence_id, txid=txid, amount=amount, due_date=due_date
        )

    def peer_answer(
        self,
        *,
        recurrence_id: str,
        receiver_ispb: str,
        ispb: str,
        account_number: str,
        status: RecurrenceStatus = RecurrenceStatus.APROVADA,
        at: datetime | None = None,
    ) -> RecurrenceAnswer:
        """A payer of the peer bank answers one of our receivers' recurrences."""
        institution, account = self._account(ispb, account_number)
        return RecurrenceAnswer(
            recurrence_id=recurrence_id,
            receiver_ispb=receiver_ispb,
            status=status,
            at=at or self._clock.now(),
            payer=account.party(institution.ispb),
        )

    def peer_pays(self, txid: str) -> IncomingPixOrder:
        """The payer's institution debits a charge we sent it: the payment to our receiver."""
        charge = self._charges.get(txid)
        if charge is None:
            raise NotFound("the peer bank was sent no such charge")
        return self._spi.originate_payment(
            from_ispb=charge.payer.ispb,
            from_account_number=charge.payer.account_number or "",
            amount=charge.amount,
            to_branch=charge.receiver.branch,
            to_account_number=charge.receiver.account_number,
            txid=charge.txid,
            description=f"Pix Automatico {charge.recurrence_id}",
        )

    def _account(self, ispb: str, number: str) -> tuple[SimulatedInstitution, RemoteAccount]:
        institution = self._institutions.get(ispb)
        account = (
            next((a for a in institution.accounts if a.account_number == number), None)
            if institution
            else None
        )
        if institution is None or account is None:
            raise NotFound("no such simulated institution or account")
        return institution, account


def sandbox_recurrence_network(network: Any, clock: Clock) -> SandboxRecurrenceNetwork:
    """The recurrence side of the sandbox network (``network``: what serves ``PaymentNetwork``).

    A fake put in the network's place (``open_bank(payment_network=...)``) has
    no institutions: every other institution's recurrence is then not found.
    """
    return SandboxRecurrenceNetwork(network, clock)


def _url_key(url: str) -> str:
    return url.removeprefix("https://").removeprefix("http://").lower()
