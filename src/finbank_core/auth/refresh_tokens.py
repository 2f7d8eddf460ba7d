"""Rotating refresh tokens of the self-hosted provider: families and reuse detection.

A login starts a *family*; each refresh replaces the family's one valid token
with a new one. Presenting a token of the family that is no longer the
current one means a copy was stolen (either the thief or the user already
used it), so the whole family is revoked: both parties must log in again.
A family expires at a fixed time set at login; rotation does not extend it.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Protocol


class RotationOutcome(enum.StrEnum):
    ROTATED = "rotated"  # the presented token was current; the new one replaces it
    REUSED = "reused"  # a superseded token was presented; the family is now revoked
    REVOKED = "revoked"  # the family was revoked (sign-out or an earlier reuse)
    UNKNOWN = "unknown"  # no such family, or it expired


class RefreshTokenStore(Protocol):
    """Refresh-token families; time is the injected clock's.

    Backends that fail raise ``ServiceUnavailable``.
    """

    async def start_family(
        self, family_id: str, subject: str, token_id: str, expires_at: datetime
    ) -> None:
        """Record a new family whose current token is ``token_id``."""
        ...

    async def rotate(
        self, family_id: str, presented_token_id: str, next_token_id: str
    ) -> RotationOutcome:
        """Atomically: if ``presented_token_id`` is current, make ``next_token_id`` current.

        Two concurrent rotations of the same token: exactly one gets
        ``ROTATED``; the other sees reuse and the family is revoked.
        """
        ...

    async def revoke_family(self, family_id: str) -> None:
        """Revoke one family (idempotent)."""
        ...

    async def revoke_subject(self, subject: str) -> tuple[str, ...]:
        """Revoke every family of the user (global sign-out); returns their ids.

        The ids are those of the families still alive when revoked, so the caller
        can deny their access tokens too.
        """
        ...
