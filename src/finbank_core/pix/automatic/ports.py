"""The port Pix Automático keeps its recurrences and recurring charges behind.

Adapters: ``InMemoryRecurrenceStore`` and ``PostgresRecurrenceStore``, held
to one contract suite (tests/contract/test_pix_automatic_contract.py).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Protocol

import msgspec

from finbank_core.pix.automatic.model import (
    Periodicity,
    Recurrence,
    RecurrenceStatus,
    RecurringCharge,
    RetryPolicy,
)
from finbank_core.pix.payments import PixParty
from finbank_core.shared.money import Money
from finbank_core.shared.privacy import masked_repr


class RecurrenceStore(Protocol):
    """Recurrences and their charges, each versioned (optimistic concurrency)."""

    async def add_recurrence(self, recurrence: Recurrence) -> Recurrence:
        """Store a new recurrence; returned with ``version=1``.

        ``DuplicateRecurringCharge`` is never raised here; a taken
        ``recurrence_id`` raises ``StaleAutomaticRecord``.
        """
        ...

    async def get_recurrence(self, recurrence_id: str) -> Recurrence | None:
        """The recurrence, or None."""
        ...

    async def list_recurrences(
        self, *, receiver_owner_id: str | None = None, payer_owner_id: str | None = None
    ) -> list[Recurrence]:
        """Recurrences of a receiver, or addressed to / authorised by a payer, oldest first.

        The payer of a recurrence is the owner of its journey-1 request or of
        its authorisation. Exactly one filter must be given.
        """
        ...

    async def update_recurrence(self, recurrence: Recurrence) -> Recurrence:
        """Replace the stored recurrence if its version is still ``recurrence.version``.

        Returns it with the version incremented; ``StaleAutomaticRecord`` if
        another writer got there first (nothing written), ``RecurrenceNotFound``
        if there is none.
        """
        ...

    async def add_charge(self, charge: RecurringCharge) -> RecurringCharge:
        """Store a new charge; returned with ``version=1``.

        ``DuplicateRecurringCharge`` if its txid is taken, or if its recurrence
        already has a charge for the same cycle that is not ``REJEITADA`` or
        ``CANCELADA`` (checked atomically: of concurrent adds, one wins).
        """
        ...

    async def get_charge(self, txid: str) -> RecurringCharge | None:
        """The charge, or None."""
        ...

    async def list_charges(self, recurrence_id: str) -> list[RecurringCharge]:
        """The charges of a recurrence, by due date then txid."""
        ...

    async def update_charge(self, charge: RecurringCharge) -> RecurringCharge:
        """Replace the stored charge if its version is still ``charge.version`` (as above).

        A charge moving out of ``REJEITADA``/``CANCELADA`` is not a thing; the
        cycle uniqueness of ``add_charge`` holds for updates too.
        """
        ...

    async def lease_due_charges(
        self, *, today: date, now: datetime, lease_until: datetime, holder: str, limit: int
    ) -> list[str]:
        """Lease up to ``limit`` txids of ``ATIVA`` charges due on or before ``today``.

        A charge is leased to one holder until ``lease_until``; a charge whose
        lease is still running at ``now`` is skipped, so several workers split
        the due charges instead of all taking the same ones. Oldest
        ``next_attempt_on`` first. A lease does not change the version.
        """
        ...

    async def set_payer_limit(
        self, account_id: uuid.UUID, daily: Money | None, *, allow_raise: bool = True
    ) -> bool:
        """Set (or with None, remove) the account's own daily Pix Automático limit.

        Atomic, in one step of the backend (no read, then write), so
        concurrent calls end at the value of the last one that applied.
        ``allow_raise=False`` applies the change only if it lets automatic
        debits take no more than the limit in force when it is written: a
        limit at or below the current one, any limit where there is none, or
        a removal where there is none. True if the change applied; False if
        it was refused because it would raise or remove the limit (nothing
        changed). ``allow_raise=True`` always applies and returns True.
        """
        ...

    async def get_payer_limit(self, account_id: uuid.UUID) -> Money | None:
        """The account's own daily Pix Automático limit; None if it set none."""
        ...


class RemoteRecurrence(msgspec.Struct, frozen=True, kw_only=True):
    """What another institution's recurrence URL serves, read from its verified JWS.

    The receiver's PSP signs the recurrence (``rec``) it serves at the URL of
    the code (a JWS, as for a dynamic code's payload); the adapter fetches
    it, checks the signature against that institution's certificate and the
    URL against the one asked, and returns its fields. ``receiver`` is the
    receiving account there (no ``account_id``/``owner_id``: not ours).
    """

    recurrence_id: str
    location_url: str
    receiver: PixParty
    contract: str
    purpose: str | None
    debtor_name: str
    periodicity: Periodicity
    start: date
    end: date | None
    retry_policy: RetryPolicy
    fixed_amount: Money | None = None
    min_amount: Money | None = None

    __repr__ = masked_repr("debtor_name")


class RecurrenceAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """The payer's institution tells the receiver's: approved, rejected or cancelled."""

    recurrence_id: str
    receiver_ispb: str
    status: RecurrenceStatus
    at: datetime
    #: the payer's account here (masked document), as the receiver's PSP records it
    payer: PixParty
    reason: str | None = None


class RecurrenceCancellation(msgspec.Struct, frozen=True, kw_only=True):
    """The receiver's institution tells the payer's: the receiver cancelled the recurrence."""

    recurrence_id: str
    payer_ispb: str
    at: datetime
    reason: str | None = None


class OutgoingRecurringCharge(msgspec.Struct, frozen=True, kw_only=True):
    """Receiver side: a charge we send to a payer's institution elsewhere to schedule."""

    recurrence_id: str
    txid: str
    amount: Money
    due_date: date
    payer: PixParty
    receiver: PixParty


class RecurrenceNetwork(Protocol):
    """Pix Automático between institutions: what the payment network carries for it.

    The network adapter that serves ``PaymentNetwork`` serves this too (the
    sandbox: its peer bank's recurrences). Answers are idempotent by
    recurrence id and status / txid, like payments by EndToEndId.
    """

    async def fetch_recurrence(self, location_url: str) -> RemoteRecurrence:
        """The recurrence another institution serves at ``location_url``.

        ``RecurrenceNotFound`` if it serves none there (or its signature does
        not verify); ``ServiceUnavailable`` if it cannot be reached now.
        """
        ...

    async def send_answer(self, answer: RecurrenceAnswer) -> None:
        """Deliver the payer's answer to the receiver's institution (``ServiceUnavailable``)."""
        ...

    async def send_charge(self, charge: OutgoingRecurringCharge) -> None:
        """Deliver a recurring charge to the payer's institution (``ServiceUnavailable``)."""
        ...

    async def send_cancellation(self, cancellation: RecurrenceCancellation) -> None:
        """Tell the payer's institution our receiver cancelled (``ServiceUnavailable``)."""
        ...


__all__ = [
    "OutgoingRecurringCharge",
    "RecurrenceAnswer",
    "RecurrenceCancellation",
    "RecurrenceNetwork",
    "RecurrenceStore",
    "RemoteRecurrence",
]
