"""Key directory claims (portability, ownership) and key look-up protection.

The model and its rules (:mod:`.model`, :mod:`.lookups`), the ports
(:mod:`.ports`), errors (:mod:`.errors`), events (:mod:`.events`) and the
use cases (:mod:`.use_cases`, one module per flow). docs/pix-claims.md has
the rules and their sources.
"""

from finbank_core.pix.claims.errors import (
    IllegalKeyClaimTransition,
    KeyClaimAlreadyOpen,
    KeyClaimError,
    KeyClaimNotAllowed,
    KeyClaimNotFound,
    KeyClaimPeriodEnded,
    KeyClaimVersionConflict,
    KeyLookupRateLimited,
    PixKeyUnderClaim,
)
from finbank_core.pix.claims.lookups import BucketPolicy, BucketTake, LookupLimitSettings
from finbank_core.pix.claims.model import (
    CancelReason,
    ClaimAccount,
    ClaimParty,
    ClaimSettings,
    ClaimStatus,
    ClaimType,
    KeyClaim,
)
from finbank_core.pix.claims.ports import (
    ClaimableKeyDirectory,
    ClaimsNetwork,
    KeyClaimStore,
    LookupBuckets,
)

__all__ = [
    "BucketPolicy",
    "BucketTake",
    "CancelReason",
    "ClaimAccount",
    "ClaimParty",
    "ClaimSettings",
    "ClaimStatus",
    "ClaimType",
    "ClaimableKeyDirectory",
    "ClaimsNetwork",
    "IllegalKeyClaimTransition",
    "KeyClaim",
    "KeyClaimAlreadyOpen",
    "KeyClaimError",
    "KeyClaimNotAllowed",
    "KeyClaimNotFound",
    "KeyClaimPeriodEnded",
    "KeyClaimStore",
    "KeyClaimVersionConflict",
    "KeyLookupRateLimited",
    "LookupBuckets",
    "LookupLimitSettings",
    "PixKeyUnderClaim",
]
