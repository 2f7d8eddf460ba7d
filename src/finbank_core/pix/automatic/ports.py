"""The port Pix Automático keeps its recurrences and recurring charges behind.

Adapters: ``InMemoryRecurrenceStore`` and ``PostgresRecurrenceStore``, held
to one contract suite (tests/contract/test_pix_automatic_contract.py).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from finbank_core.pix.automatic.model import Recurrence, RecurringCharge


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


__all__ = ["RecurrenceStore"]
