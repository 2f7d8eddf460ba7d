"""Errors of Pix Automático (recurrences, their authorisations and recurring charges).

Each subclasses a shared family (so HTTP maps it to a status) and has a
stable ``code``. Messages name the rule and the field, never a document, a
key or a code's content.
"""

from __future__ import annotations

from finbank_core.shared.errors import Conflict, InvalidInput, NotFound, RuleViolation


class RecurrenceNotFound(NotFound):
    """No such recurrence, or not one the caller may see."""

    code = "pix_recurrence_not_found"
    title = "Recurrence not found"


class RecurringChargeNotFound(NotFound):
    """No such recurring charge, or not one the caller may see."""

    code = "pix_recurring_charge_not_found"
    title = "Recurring charge not found"


class InvalidRecurrence(InvalidInput):
    """A recurrence or charge field breaks a rule of Pix Automático (``field`` names it)."""

    code = "invalid_pix_recurrence"
    title = "Invalid Pix Automático recurrence"


class RecurrenceNotActive(RuleViolation):
    """The recurrence is not in a status that allows the operation (``status`` says which)."""

    code = "pix_recurrence_not_active"
    title = "Recurrence not in a status that allows this"


class RecurrenceRequestExpired(RuleViolation):
    """A journey-1 authorisation request was answered after its deadline."""

    code = "pix_recurrence_request_expired"
    title = "Authorisation request expired"


class ChargeOutsideWindow(RuleViolation):
    """A recurring charge must be sent 2 to 10 days before its due date."""

    code = "pix_recurring_charge_outside_window"
    title = "Recurring charge outside its scheduling window"


class ChargeNotCancellable(RuleViolation):
    """A charge is cancelled only while scheduled, until the day before its due date."""

    code = "pix_recurring_charge_not_cancellable"
    title = "Recurring charge can no longer be cancelled"


class DuplicateRecurringCharge(Conflict):
    """The txid is taken, or the recurrence already has a charge for that period."""

    code = "pix_recurring_charge_duplicate"
    title = "Recurring charge already exists"


class StaleAutomaticRecord(Conflict):
    """A recurrence or charge changed since it was read (a concurrent writer won)."""

    code = "pix_automatic_stale_record"
    title = "Changed concurrently; read it again"


__all__ = [
    "ChargeNotCancellable",
    "ChargeOutsideWindow",
    "DuplicateRecurringCharge",
    "InvalidRecurrence",
    "RecurrenceNotActive",
    "RecurrenceNotFound",
    "RecurrenceRequestExpired",
    "RecurringChargeNotFound",
    "StaleAutomaticRecord",
]
