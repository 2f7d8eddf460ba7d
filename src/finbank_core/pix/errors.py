"""Errors of the PIX context.

The first group are ``InvalidInput``: a value from outside (a typed key, a
pasted code, a document number) is not what the PIX rules allow. The rest
belong to the directory, payments, refunds, charges and limits. Messages name
the rule and the field, never the value itself: keys and documents are
personal data and messages end up in logs and HTTP responses.
"""

from __future__ import annotations

from typing import Any

from finbank_core.shared.errors import Conflict, InvalidInput, NotFound, RuleViolation


class InvalidDocument(InvalidInput):
    """A CPF or CNPJ is malformed or its check digits do not match."""

    code = "invalid_document"
    title = "Invalid CPF or CNPJ"


class InvalidPixKey(InvalidInput):
    """A PIX key does not follow the directory's (DICT) format for its type."""

    code = "invalid_pix_key"
    title = "Invalid PIX key"


class InvalidIdentifier(InvalidInput):
    """An EndToEndId, return id, txid or ISPB is malformed."""

    code = "invalid_identifier"
    title = "Invalid PIX identifier"


class InvalidBRCode(InvalidInput):
    """A BR Code ("Pix Copia e Cola") is malformed or breaks a rule of the manual.

    ``field`` is the EMV id of the offending field, ``"26-01"`` style for a
    sub-field; it is in ``details["field"]`` and at the start of the message,
    so a client can point at the culprit without parsing prose.
    """

    code = "invalid_br_code"
    title = "Invalid BR Code"

    def __init__(self, message: str, *, field: str, **details: Any) -> None:
        self.field = field
        super().__init__(f"BR Code field {field}: {message}", field=field, **details)


# -- directory (DICT) ---------------------------------------------------------------


class PixKeyAlreadyRegistered(Conflict):
    """The key already belongs to an account (this one or another, here or elsewhere)."""

    code = "pix_key_already_registered"
    title = "PIX key already registered"


class PixKeyNotFound(NotFound):
    """No such key in the directory, or (for a delete) not one of the caller's."""

    code = "pix_key_not_found"
    title = "PIX key not found"


class PixKeyLimitReached(RuleViolation):
    """The account already holds as many keys as its holder type allows (5 or 20)."""

    code = "pix_key_limit_reached"
    title = "Too many PIX keys for this account"


class PixKeyNotOwned(RuleViolation):
    """A CPF/CNPJ key must be the account holder's own document."""

    code = "pix_key_not_owned"
    title = "The key does not belong to the account holder"


# -- payments and refunds -------------------------------------------------------------


class PixPaymentNotFound(NotFound):
    code = "pix_payment_not_found"
    title = "PIX payment not found"


class PixRefundNotFound(NotFound):
    """The payment has no refund with that return id (rtrId)."""

    code = "pix_refund_not_found"
    title = "PIX refund not found"


class PixPaymentAlreadyExists(Conflict):
    """A conditional write found a record with the same EndToEndId or idempotency key."""

    code = "pix_payment_already_exists"
    title = "PIX payment already exists"


class PixVersionConflict(Conflict):
    """An optimistic update lost a race: the record changed since it was read."""

    code = "pix_version_conflict"
    title = "The PIX record was changed concurrently; retry"


class IllegalPixTransition(Conflict):
    """A payment, refund or charge was asked to move to a state its machine forbids."""

    code = "illegal_pix_transition"
    title = "Illegal PIX state transition"


class MalformedPixEvent(InvalidInput):
    """A PIX event's payload lacks what its consumer needs; retrying cannot fix it."""

    code = "malformed_pix_event"
    title = "Malformed PIX event"


class PixRecipientInvalid(RuleViolation):
    """The recipient account does not exist, is not active or does not match (ISO AC03)."""

    code = "pix_recipient_invalid"
    title = "Invalid PIX recipient"


class PixLimitExceeded(RuleViolation):
    """A transaction or period limit refuses the payment; ``details["limit"]`` names it."""

    code = "pix_limit_exceeded"
    title = "PIX limit exceeded"


class PixPaymentNotRefundable(RuleViolation):
    """Only a settled payment the caller received can be refunded."""

    code = "pix_payment_not_refundable"
    title = "This PIX payment cannot be refunded"


class PixRefundWindowExpired(RuleViolation):
    """The refund comes more than 90 days after the settlement (ISO DT05)."""

    code = "pix_refund_window_expired"
    title = "Refund period expired"


class PixRefundExceedsOriginal(RuleViolation):
    """Refunds would add up to more than the original amount (ISO AM09)."""

    code = "pix_refund_exceeds_original"
    title = "Refunds exceed the original amount"


# -- charges (cob) ---------------------------------------------------------------------


class ChargeNotFound(NotFound):
    code = "pix_charge_not_found"
    title = "PIX charge not found"


class ChargeAlreadyExists(Conflict):
    """A charge with this txid (or the same first 25 characters) already exists."""

    code = "pix_charge_already_exists"
    title = "PIX charge already exists"


class ChargeNotPayable(RuleViolation):
    """The charge is expired, concluded or removed."""

    code = "pix_charge_not_payable"
    title = "PIX charge cannot be paid"
