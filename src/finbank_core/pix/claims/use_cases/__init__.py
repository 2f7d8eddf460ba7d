"""Use cases of key claims and key look-ups, one module per flow."""

from finbank_core.pix.claims.use_cases.lookup import LookupPixKey, LookupPixKeyCommand
from finbank_core.pix.claims.use_cases.open import (
    OpenKeyClaim,
    OpenKeyClaimCommand,
    ReceiveKeyClaim,
    ReceiveKeyClaimCommand,
)
from finbank_core.pix.claims.use_cases.query import (
    GetKeyClaim,
    GetKeyClaimQuery,
    ListKeyClaims,
    ListKeyClaimsQuery,
)
from finbank_core.pix.claims.use_cases.resolve import (
    CancelKeyClaim,
    CancelKeyClaimCommand,
    CompleteKeyClaim,
    CompleteKeyClaimCommand,
    ConfirmKeyClaim,
    ConfirmKeyClaimCommand,
)
from finbank_core.pix.claims.use_cases.steps import ClaimSteps

__all__ = [
    "CancelKeyClaim",
    "CancelKeyClaimCommand",
    "ClaimSteps",
    "CompleteKeyClaim",
    "CompleteKeyClaimCommand",
    "ConfirmKeyClaim",
    "ConfirmKeyClaimCommand",
    "GetKeyClaim",
    "GetKeyClaimQuery",
    "ListKeyClaims",
    "ListKeyClaimsQuery",
    "LookupPixKey",
    "LookupPixKeyCommand",
    "OpenKeyClaim",
    "OpenKeyClaimCommand",
    "ReceiveKeyClaim",
    "ReceiveKeyClaimCommand",
]
