"""The domain error hierarchy.

Every error carries a stable machine ``code`` (snake_case, part of the public
API: HTTP problem types and client code switch on it) and a human message that
never contains secrets or personal data. Delivery mechanisms map the *family*
(``NotFound``, ``Conflict``...) to their own status codes in one place.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every error the core and its adapters raise on purpose."""

    code: ClassVar[str] = "domain_error"
    title: ClassVar[str] = "Domain rule violated"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.title
        self.details: dict[str, Any] = details
        super().__init__(self.message)


# -- families -----------------------------------------------------------------


class InvalidInput(DomainError):
    """The request is malformed or a value is out of its domain."""

    code = "invalid_input"
    title = "Invalid input"


class NotFound(DomainError):
    """The resource does not exist *for this caller* (never reveals others')."""

    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    """The request clashes with the current state (duplicates, races)."""

    code = "conflict"
    title = "Conflict"


class RuleViolation(DomainError):
    """The request is well formed but a business rule refuses it."""

    code = "rule_violation"
    title = "Business rule violated"


class AuthenticationFailed(DomainError):
    """Credentials, code or token are wrong; deliberately vague."""

    code = "authentication_failed"
    title = "Authentication failed"


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""

    code = "permission_denied"
    title = "Permission denied"


class ServiceUnavailable(DomainError):
    """A dependency is down; the operation failed closed and may be retried."""

    code = "service_unavailable"
    title = "Service unavailable"


class TooManyRequests(DomainError):
    """A rate limit or lockout applies."""

    code = "too_many_requests"
    title = "Too many requests"


# -- money and accounts ---------------------------------------------------------


class InvalidAmount(InvalidInput):
    code = "invalid_amount"
    title = "Invalid amount"


class AccountNotFound(NotFound):
    code = "account_not_found"
    title = "Account not found"


class AccountNotActive(RuleViolation):
    code = "account_not_active"
    title = "Account is not active"


class SameAccount(InvalidInput):
    code = "same_account"
    title = "Source and destination accounts must differ"


class IdempotencyKeyReused(Conflict):
    """The same idempotency key was sent before with a different request."""

    code = "idempotency_key_reused"
    title = "Idempotency key already used with a different request"


class TransferRejected(RuleViolation):
    """The ledger refused a transfer for a reason with no more specific error."""

    code = "transfer_rejected"
    title = "Transfer rejected by the ledger"


class DuplicateAccount(Conflict):
    code = "duplicate_account"
    title = "Account already exists"
