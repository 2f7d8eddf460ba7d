"""Fields every context's commands share, and the one place their rules live.

* :data:`IdempotencyKey`: a client's idempotency key, 1 to
  :data:`MAX_IDEMPOTENCY_KEY_LENGTH` characters; a retry with the same key is
  answered like the first request.
* :data:`Memo`: a free-text note shown on a statement (a transfer's or a PIX
  payment's ``description``), at most :data:`MAX_MEMO_LENGTH` characters.

Both are ``str`` annotated with their limits, so a command decoded by msgspec
is checked on the way in; a command built in Python is checked by the use
case with :func:`check_idempotency_key` and :func:`check_memo`, which raise
``InvalidInput`` (stable code ``invalid_input``) naming the field, never its
value.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from finbank_core.shared.errors import InvalidInput

MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_MEMO_LENGTH = 140

IdempotencyKey = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
        description="The client's idempotency key: a retry with it is answered like the first.",
    ),
]
Memo = Annotated[
    str,
    msgspec.Meta(
        max_length=MAX_MEMO_LENGTH,
        description="A free-text note shown on the statement.",
    ),
]


def check_idempotency_key(
    value: str, *, field: str = "idempotency_key", name: str = "idempotency key"
) -> str:
    """``value`` if it is a valid :data:`IdempotencyKey`, else ``InvalidInput``.

    ``field`` and ``name`` say which of the command's fields it is (a refund's
    ``client_refund_id`` is the receiver's idempotency key for that refund).
    """
    if not value or len(value) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidInput(
            f"{name} must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters", field=field
        )
    return value


def check_memo(value: str | None, *, field: str = "description") -> str | None:
    """``value`` if it is ``None`` or a valid :data:`Memo`, else ``InvalidInput``."""
    if value is not None and len(value) > MAX_MEMO_LENGTH:
        raise InvalidInput(f"{field} must be at most {MAX_MEMO_LENGTH} characters", field=field)
    return value
