"""Pix Automático: recurrences, their authorisation, recurring charges and their debits.

Model in :mod:`.model`, the store port in :mod:`.ports`, errors in
:mod:`.errors`, events in :mod:`.events`, use cases in :mod:`.use_cases`
(one module per flow). The rules and their sources: docs/pix-automatic.md.
"""

from finbank_core.pix.automatic.errors import (
    ChargeNotCancellable,
    ChargeOutsideWindow,
    DuplicateRecurringCharge,
    InvalidRecurrence,
    RecurrenceNotActive,
    RecurrenceNotFound,
    RecurrenceRequestExpired,
    RecurringChargeNotFound,
    StaleAutomaticRecord,
)
from finbank_core.pix.automatic.model import (
    BRASILIA,
    ELSEWHERE,
    AttemptStatus,
    Authorisation,
    AuthorisationRequest,
    ChargeStatus,
    DebitAttempt,
    Journey,
    Party,
    Periodicity,
    Recurrence,
    RecurrenceStatus,
    RecurringCharge,
    RetryPolicy,
    business_date,
)
from finbank_core.pix.automatic.ports import (
    OutgoingRecurringCharge,
    RecurrenceAnswer,
    RecurrenceCancellation,
    RecurrenceNetwork,
    RecurrenceStore,
    RemoteRecurrence,
)
from finbank_core.pix.automatic.use_cases import *  # noqa: F403
from finbank_core.pix.automatic.use_cases import __all__ as _use_cases

__all__ = [
    "BRASILIA",
    "ELSEWHERE",
    "OutgoingRecurringCharge",
    "RecurrenceAnswer",
    "RecurrenceCancellation",
    "RecurrenceNetwork",
    "RemoteRecurrence",
    "AttemptStatus",
    "Authorisation",
    "AuthorisationRequest",
    "ChargeNotCancellable",
    "ChargeOutsideWindow",
    "ChargeStatus",
    "DebitAttempt",
    "DuplicateRecurringCharge",
    "InvalidRecurrence",
    "Journey",
    "Party",
    "Periodicity",
    "Recurrence",
    "RecurrenceNotActive",
    "RecurrenceNotFound",
    "RecurrenceRequestExpired",
    "RecurrenceStatus",
    "RecurrenceStore",
    "RecurringCharge",
    "RecurringChargeNotFound",
    "RetryPolicy",
    "StaleAutomaticRecord",
    "business_date",
    *_use_cases,
]
