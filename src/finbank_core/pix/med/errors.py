"""Errors of the MED and precautionary-block part of PIX (stable ``code`` each).

Messages name the rule and the field, never a document, key or free text a
customer typed: they end up in logs and HTTP responses.
"""

from __future__ import annotations

from finbank_core.shared.errors import Conflict, NotFound, RuleViolation


class MedError(RuleViolation):
    """Base of the MED rules a request breaks."""

    code = "med_error"
    title = "MED rule violated"


class MedDeadlinePassed(MedError):
    """A step came after its deadline (``details["deadline"]`` names which one)."""

    code = "med_deadline_passed"
    title = "MED deadline passed"


class MedNotAllowed(MedError):
    """The payment or the case is not in a state that allows this step."""

    code = "med_not_allowed"
    title = "MED step not allowed"


class NothingToBlock(MedError):
    """The account holds none of the money any more: nothing could be blocked."""

    code = "med_nothing_to_block"
    title = "Nothing left to block"


class MedCaseNotFound(NotFound):
    code = "med_case_not_found"
    title = "MED case not found"


class MedCaseAlreadyExists(Conflict):
    """A payment has one MED case (one infraction report) at a time."""

    code = "med_case_already_exists"
    title = "This payment already has an infraction report"


class PrecautionaryBlockAlreadyExists(Conflict):
    code = "precautionary_block_already_exists"
    title = "This payment is already under a precautionary block"


class MedVersionConflict(Conflict):
    """Another writer changed the case or block since it was read."""

    code = "med_version_conflict"
    title = "The MED record changed meanwhile; read it again"


class MedRefundAlreadyRequested(Conflict):
    """The case's returns were already requested with another amount.

    Asking again with the amount first asked (or with none) answers the
    recorded request; another amount is refused (``field`` = ``amount``,
    ``details["requested_amount"]`` what was asked first), never applied
    silently as if it had been.
    """

    code = "med_refund_already_requested"
    title = "The returns of this report were already requested with another amount"


class MedAlreadyDecided(Conflict):
    """The report was already analysed with the other decision."""

    code = "med_already_decided"
    title = "The infraction report was already analysed"
