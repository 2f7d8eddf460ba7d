"""Errors of the accounts context (the families are in ``finbank_core.shared.errors``)."""

from __future__ import annotations

from finbank_core.shared.errors import InvalidInput, RuleViolation


class InsufficientFunds(RuleViolation):
    """The debited account's available balance does not cover the amount."""

    code = "insufficient_funds"
    title = "Insufficient funds"


class InvalidHolder(InvalidInput):
    """The holder's name, type or document is refused; ``details['field']`` names which.

    The message names the rule, never the value (a document is personal data).
    """

    code = "invalid_holder"
    title = "Invalid account holder"
