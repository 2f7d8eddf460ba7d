"""Errors of the accounts context (the families are in ``finbank_core.shared.errors``)."""

from __future__ import annotations

from finbank_core.shared.errors import RuleViolation


class InsufficientFunds(RuleViolation):
    """The debited account's available balance does not cover the amount."""

    code = "insufficient_funds"
    title = "Insufficient funds"
