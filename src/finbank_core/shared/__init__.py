"""Building blocks shared by every bounded context: money, ids, time, errors, events.

Also the request fields every context's commands share (:data:`IdempotencyKey`,
:data:`Memo`) and the idempotency helpers (in-flight claims, fingerprints).
"""

from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import (
    AccountNotActive,
    AccountNotFound,
    AuthenticationFailed,
    Conflict,
    DomainError,
    DuplicateAccount,
    IdempotencyKeyReused,
    InvalidAmount,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleViolation,
    SameAccount,
    ServiceUnavailable,
    TooManyRequests,
    TransferRejected,
)
from finbank_core.shared.events import EventEnvelope, EventPublisher, decode_event, encode_event
from finbank_core.shared.idempotency import (
    InFlightGuard,
    RequestClaims,
    RequestInProgress,
    fingerprint,
)
from finbank_core.shared.ids import IdGenerator, uuid7
from finbank_core.shared.inputs import (
    MAX_DEVICE_ID_LENGTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_MEMO_LENGTH,
    DeviceId,
    IdempotencyKey,
    Memo,
    check_device_id,
    check_idempotency_key,
    check_lookup_id,
    check_memo,
    check_text,
    checked_enums,
    checked_types,
    find_unstorable,
)
from finbank_core.shared.money import Money
from finbank_core.shared.outbox import Outbox, OutboxItem

__all__ = [
    "MAX_DEVICE_ID_LENGTH",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "MAX_MEMO_LENGTH",
    "AccountNotActive",
    "AccountNotFound",
    "AuthenticationFailed",
    "Clock",
    "Conflict",
    "DeviceId",
    "DomainError",
    "DuplicateAccount",
    "EventEnvelope",
    "EventPublisher",
    "IdGenerator",
    "IdempotencyKey",
    "IdempotencyKeyReused",
    "InFlightGuard",
    "InvalidAmount",
    "InvalidInput",
    "Memo",
    "Money",
    "NotFound",
    "Outbox",
    "OutboxItem",
    "PermissionDenied",
    "RequestClaims",
    "RequestInProgress",
    "RuleViolation",
    "SameAccount",
    "ServiceUnavailable",
    "TooManyRequests",
    "TransferRejected",
    "check_device_id",
    "check_idempotency_key",
    "check_lookup_id",
    "check_memo",
    "check_text",
    "checked_enums",
    "checked_types",
    "decode_event",
    "encode_event",
    "find_unstorable",
    "fingerprint",
    "uuid7",
]
