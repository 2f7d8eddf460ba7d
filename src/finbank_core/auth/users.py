"""The user store of the self-hosted identity provider (a port with domain types)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import msgspec


class UserRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A user of the self-hosted provider. ``password_hash`` is an argon2id hash."""

    subject: str
    username: str
    password_hash: str
    created_at: datetime
    email: str | None = None
    phone_number: str | None = None
    name: str | None = None
    confirmed: bool = True
    totp_secret: str | None = None  # secret; only set once enrolment is verified
    pending_totp_secret: str | None = None
    mfa_enabled: bool = False
    totp_last_step: int | None = None  # last accepted TOTP time step (single use)
    roles: tuple[str, ...] = ()


class UserStore(Protocol):
    async def add(self, user: UserRecord) -> None:
        """Store a new user; raises ``UsernameTaken`` if the username (case-folded) is taken."""
        ...

    async def get_by_username(self, username: str) -> UserRecord | None:
        """Find by username, case-insensitively; ``None`` if absent."""
        ...

    async def get(self, subject: str) -> UserRecord | None: ...

    async def update(self, user: UserRecord) -> None:
        """Replace the stored user with the same subject; raises ``NotFound`` if absent."""
        ...
