"""``InMemoryRecurrenceStore``: Pix Automático recurrences and charges in process.

Each method yields to the event loop once before it reads, so concurrent
callers interleave as they would against a server, then checks and writes
without awaiting: a compare-and-set on the version is atomic on one loop.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime

import msgspec

from finbank_core.pix.automatic.errors import (
    DuplicateRecurringCharge,
    RecurrenceNotFound,
    RecurringChargeNotFound,
    StaleAutomaticRecord,
)
from finbank_core.pix.automatic.model import ChargeStatus, Recurrence, RecurringCharge
from finbank_core.pix.automatic.use_cases.common import payer_owner_of
from finbank_core.shared.money import Money

#: statuses that free a cycle for another charge
_CYCLE_FREE = (ChargeStatus.REJEITADA, ChargeStatus.CANCELADA)


class InMemoryRecurrenceStore:
    def __init__(self) -> None:
        self._recurrences: dict[str, Recurrence] = {}
        self._charges: dict[str, RecurringCharge] = {}
        self._leases: dict[str, tuple[datetime, str]] = {}
        self._payer_limits: dict[uuid.UUID, Money] = {}

    async def add_recurrence(self, recurrence: Recurrence) -> Recurrence:
        await asyncio.sleep(0)
        if recurrence.recurrence_id in self._recurrences:
            raise StaleAutomaticRecord("the recurrence id is taken")
        stored = msgspec.structs.replace(recurrence, version=1)
        self._recurrences[recurrence.recurrence_id] = stored
        return stored

    async def get_recurrence(self, recurrence_id: str) -> Recurrence | None:
        await asyncio.sleep(0)
        return self._recurrences.get(recurrence_id)

    async def list_recurrences(
        self, *, receiver_owner_id: str | None = None, payer_owner_id: str | None = None
    ) -> list[Recurrence]:
        if (receiver_owner_id is None) == (payer_owner_id is None):
            raise ValueError("give exactly one of receiver_owner_id, payer_owner_id")
        await asyncio.sleep(0)
        found = [
            r
            for r in self._recurrences.values()
            if (receiver_owner_id is not None and r.receiver_owner_id == receiver_owner_id)
            or (payer_owner_id is not None and payer_owner_of(r) == payer_owner_id)
        ]
        return sorted(found, key=lambda r: (r.created_at, r.recurrence_id))

    async def update_recurrence(self, recurrence: Recurrence) -> Recurrence:
        await asyncio.sleep(0)
        current = self._recurrences.get(recurrence.recurrence_id)
        if current is None:
            raise RecurrenceNotFound()
        if current.version != recurrence.version:
            raise StaleAutomaticRecord("the recurrence changed since it was read")
        stored = msgspec.structs.replace(recurrence, version=recurrence.version + 1)
        self._recurrences[recurrence.recurrence_id] = stored
        return stored

    def _cycle_taken(self, charge: RecurringCharge) -> bool:
        return any(
            other.txid != charge.txid
            and other.recurrence_id == charge.recurrence_id
            and other.cycle == charge.cycle
            and other.status not in _CYCLE_FREE
            for other in self._charges.values()
        )

    async def add_charge(self, charge: RecurringCharge) -> RecurringCharge:
        await asyncio.sleep(0)
        if charge.txid in self._charges:
            raise DuplicateRecurringCharge("this txid is taken", field="txid")
        if charge.status not in _CYCLE_FREE and self._cycle_taken(charge):
            raise DuplicateRecurringCharge(
                "the recurrence already has a charge for this period", field="due_date"
            )
        stored = msgspec.structs.replace(charge, version=1)
        self._charges[charge.txid] = stored
        return stored

    async def get_charge(self, txid: str) -> RecurringCharge | None:
        await asyncio.sleep(0)
        return self._charges.get(txid)

    async def list_charges(self, recurrence_id: str) -> list[RecurringCharge]:
        await asyncio.sleep(0)
        found = [c for c in self._charges.values() if c.recurrence_id == recurrence_id]
        return sorted(found, key=lambda c: (c.due_date, c.txid))

    async def update_charge(self, charge: RecurringCharge) -> RecurringCharge:
        await asyncio.sleep(0)
        current = self._charges.get(charge.txid)
        if current is None:
            raise RecurringChargeNotFound()
        if current.version != charge.version:
            raise StaleAutomaticRecord("the charge changed since it was read")
        if charge.status not in _CYCLE_FREE and self._cycle_taken(charge):
            raise DuplicateRecurringCharge(
                "the recurrence already has a charge for this period", field="due_date"
            )
        stored = msgspec.structs.replace(charge, version=charge.version + 1)
        self._charges[charge.txid] = stored
        return stored

    async def lease_due_charges(
        self, *, today: date, now: datetime, lease_until: datetime, holder: str, limit: int
    ) -> list[str]:
        await asyncio.sleep(0)
        due = sorted(
            (
                c
                for c in self._charges.values()
                if c.status is ChargeStatus.ATIVA
                and c.next_attempt_on is not None
                and c.next_attempt_on <= today
                and (c.txid not in self._leases or self._leases[c.txid][0] <= now)
            ),
            key=lambda c: (c.next_attempt_on or today, c.txid),
        )[:limit]
        for charge in due:
            self._leases[charge.txid] = (lease_until, holder)
        return [c.txid for c in due]

    async def set_payer_limit(
        self, account_id: uuid.UUID, daily: Money | None, *, allow_raise: bool = True
    ) -> bool:
        await asyncio.sleep(0)
        # from here on no await: the check and the write are one step on the loop
        current = self._payer_limits.get(account_id)
        raises = current is not None and (daily is None or daily.cents > current.cents)
        if raises and not allow_raise:
            return False
        if daily is None:
            self._payer_limits.pop(account_id, None)
        else:
            self._payer_limits[account_id] = daily
        return True

    async def get_payer_limit(self, account_id: uuid.UUID) -> Money | None:
        await asyncio.sleep(0)
        return self._payer_limits.get(account_id)
