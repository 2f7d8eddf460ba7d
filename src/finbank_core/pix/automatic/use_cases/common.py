"""What the Pix Automático flows share: publishing changes, retrying lost races, access."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from finbank_core.pix.automatic.errors import RecurrenceNotFound, StaleAutomaticRecord
from finbank_core.pix.automatic.events import (
    charge_event,
    charge_payload,
    event_id,
    recurrence_event,
    recurrence_payload,
)
from finbank_core.pix.automatic.model import Recurrence, RecurringCharge
from finbank_core.pix.automatic.ports import RecurrenceStore
from finbank_core.pix.ledger_steps import PixEvents

#: how many times a flow re-reads and retries after losing a race (StaleAutomaticRecord)
MAX_RACES: Final = 50
T = TypeVar("T")


async def retrying(step: Callable[[], Awaitable[T]]) -> T:
    """Run ``step`` again (it re-reads) each time a concurrent writer won, a bounded number."""
    for _ in range(MAX_RACES - 1):
        try:
            return await step()
        except StaleAutomaticRecord:
            continue
    return await step()


async def publish_recurrence(events: PixEvents, recurrence: Recurrence) -> None:
    """Publish the event of the recurrence's current status under its derived id."""
    type = recurrence_event(recurrence)
    if type is None:
        return
    await events.publish(
        type,
        recurrence.recurrence_id,
        recurrence_payload(recurrence),
        event_id=event_id(type, recurrence.recurrence_id),
    )


async def publish_charge(events: PixEvents, charge: RecurringCharge) -> None:
    """Publish the event of the charge's current status under its derived id."""
    type = charge_event(charge)
    if type is None:
        return
    await events.publish(
        type, charge.txid, charge_payload(charge), event_id=event_id(type, charge.txid)
    )


async def visible_recurrence(
    store: RecurrenceStore, owner_id: str, recurrence_id: str
) -> Recurrence:
    """The recurrence if ``owner_id`` is its receiver or its payer; ``RecurrenceNotFound``."""
    found = await store.get_recurrence(recurrence_id)
    if found is None or owner_id not in (found.receiver_owner_id, payer_owner_of(found)):
        raise RecurrenceNotFound()
    return found


def payer_owner_of(recurrence: Recurrence) -> str | None:
    """The payer of a recurrence: who authorised it, or whom its request is addressed to."""
    if recurrence.authorisation is not None:
        # a payer at another institution has no owner here
        return recurrence.authorisation.payer_owner_id or None
    if recurrence.request is not None:
        return recurrence.request.payer_owner_id
    return None
