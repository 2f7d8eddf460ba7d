"""Errors of key claims and key look-ups; messages never carry the key or a document."""

from __future__ import annotations

from finbank_core.shared.errors import (
    Conflict,
    DomainError,
    NotFound,
    RuleViolation,
    TooManyRequests,
)


class KeyClaimError(DomainError):
    """Base of the key claim errors (each subclass has its own stable ``code``)."""

    code = "pix_key_claim_error"
    title = "PIX key claim error"


class KeyClaimNotFound(KeyClaimError, NotFound):
    """No such claim, or not one the caller is a side of."""

    code = "pix_key_claim_not_found"
    title = "PIX key claim not found"


class KeyClaimAlreadyOpen(KeyClaimError, Conflict):
    """The key already has an open, waiting or confirmed claim."""

    code = "pix_key_claim_already_open"
    title = "The key already has an active claim"


class KeyClaimNotAllowed(KeyClaimError, RuleViolation):
    """The claim breaks a directory rule (key type, holder, who may take the step)."""

    code = "pix_key_claim_not_allowed"
    title = "PIX key claim not allowed"


class IllegalKeyClaimTransition(KeyClaimError, Conflict):
    """The claim's status does not allow the step (e.g. completing a cancelled claim)."""

    code = "illegal_pix_key_claim_transition"
    title = "Illegal PIX key claim transition"


class KeyClaimPeriodEnded(KeyClaimError, RuleViolation):
    """The period in which the step was allowed has ended (``details["period"]``)."""

    code = "pix_key_claim_period_ended"
    title = "The claim's period has ended"


class KeyClaimVersionConflict(KeyClaimError, Conflict):
    """An optimistic update lost a race: the claim changed since it was read."""

    code = "pix_key_claim_version_conflict"
    title = "The claim was changed concurrently; retry"


class PixKeyUnderClaim(KeyClaimError, Conflict):
    """The key has an active claim (open, waiting or confirmed): it cannot be deleted now.

    The holder confirms or cancels the claim (or waits for it to end) first,
    so that a key given up by a claim is never freed for someone else.
    """

    code = "pix_key_under_claim"
    title = "The PIX key has an active claim"


class KeyLookupRateLimited(KeyClaimError, TooManyRequests):
    """The customer's key look-up bucket is empty; ``details["retry_after_seconds"]``."""

    code = "pix_key_lookup_rate_limited"
    title = "Too many PIX key look-ups"
