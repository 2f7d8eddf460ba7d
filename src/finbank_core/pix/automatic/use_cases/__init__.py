"""The Pix Automático use cases, one module per flow.

``recurrences`` (receiver: create, journey-1 request, QR codes, read/list),
``authorisations`` (payer: read a code, authorise, reject, list; cancel by
either side), ``charges`` (receiver: schedule a recurring charge; read/list)
and ``debits`` (the due debit and the scheduler's round).
"""

from finbank_core.pix.automatic.use_cases.authorisations import (
    AuthoriseRecurrence,
    AuthoriseRecurrenceCommand,
    CancelRecurrence,
    CancelRecurrenceCommand,
    ListAuthorisations,
    ListAuthorisationsQuery,
    ReadRecurrenceCode,
    ReadRecurrenceCodeQuery,
    RecurrenceOffer,
    RejectRecurrence,
    RejectRecurrenceCommand,
)
from finbank_core.pix.automatic.use_cases.charges import (
    CancelRecurringCharge,
    CancelRecurringChargeCommand,
    GetRecurringCharge,
    GetRecurringChargeQuery,
    ListRecurringCharges,
    ListRecurringChargesQuery,
    ScheduleCharge,
    ScheduleChargeCommand,
    ScheduleChargeResult,
)
from finbank_core.pix.automatic.use_cases.debits import (
    ExecuteDebitCommand,
    ExecuteDueDebit,
    RunDueDebits,
    RunDueDebitsCommand,
    RunDueDebitsResult,
)
from finbank_core.pix.automatic.use_cases.recurrences import (
    CreateRecurrence,
    CreateRecurrenceCommand,
    GetRecurrence,
    GetRecurrenceQuery,
    IssueRecurrenceCode,
    ListRecurrences,
    ListRecurrencesQuery,
    RecurrenceCode,
    RecurrenceCodeQuery,
    RecurrenceRole,
    RequestAuthorisation,
    RequestAuthorisationCommand,
)

__all__ = [
    "AuthoriseRecurrence",
    "AuthoriseRecurrenceCommand",
    "CancelRecurrence",
    "CancelRecurrenceCommand",
    "CancelRecurringCharge",
    "CancelRecurringChargeCommand",
    "CreateRecurrence",
    "CreateRecurrenceCommand",
    "ExecuteDebitCommand",
    "ExecuteDueDebit",
    "GetRecurrence",
    "GetRecurrenceQuery",
    "GetRecurringCharge",
    "GetRecurringChargeQuery",
    "IssueRecurrenceCode",
    "ListAuthorisations",
    "ListAuthorisationsQuery",
    "ListRecurrences",
    "ListRecurrencesQuery",
    "ListRecurringCharges",
    "ListRecurringChargesQuery",
    "ReadRecurrenceCode",
    "ReadRecurrenceCodeQuery",
    "RecurrenceCode",
    "RecurrenceCodeQuery",
    "RecurrenceOffer",
    "RecurrenceRole",
    "RejectRecurrence",
    "RejectRecurrenceCommand",
    "RequestAuthorisation",
    "RequestAuthorisationCommand",
    "RunDueDebits",
    "RunDueDebitsCommand",
    "RunDueDebitsResult",
    "ScheduleCharge",
    "ScheduleChargeCommand",
    "ScheduleChargeResult",
]
