"""The user store of the self-hosted identity provider (a port with domain types)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import msgspec

from finbank_core.shared.privacy import masked_repr


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
    #: the last accepted TOTP time step; only ``UserStore.claim_totp_step`` advances it
    totp_last_step: int | None = None
    roles: tuple[str, ...] = ()
    #: the stored record's revision: 0 when added, one more after each ``update`` or
    #: ``replace``; ``replace`` writes only over the revision it names
    version: int = 0
    #: one more at each password change (not at a rehash of the same password): a
    #: login or MFA challenge that checked an older password gets no session
    password_version: int = 0

    __repr__ = masked_repr(
        "password_hash",
        "totp_secret",
        "pending_totp_secret",
        "email",
        "phone_number",
        "username",
        "name",
    )


class UserStore(Protocol):
    async def add(self, user: UserRecord) -> None:
        """Store a new user; raises ``UsernameTaken`` if the username (case-folded) is taken."""
        ...

    async def get_by_username(self, username: str) -> UserRecord | None:
        """Find by username, case-insensitively; ``None`` if absent."""
        ...

    async def get(self, subject: str) -> UserRecord | None: ...

    async def update(self, user: UserRecord) -> None:
        """Replace the stored user with the same subject, whatever its version; raises
        ``NotFound`` if absent.

        Last writer wins: a record read before another write undoes that write. The
        provider writes with :meth:`replace`; this stays for tools and migrations.
        ``totp_last_step`` never moves backwards: a record read before a step was
        claimed keeps the stored (later) step, so an update cannot reopen a spent code.
        """
        ...

    async def replace(self, user: UserRecord) -> UserRecord | None:
        """Store ``user`` only if the stored record is still at ``user.version``.

        A compare-and-set of the whole record: of concurrent callers replacing
        the same version (in any number of processes sharing the store) exactly
        one succeeds. Returns the record as stored (``version`` one more), or
        ``None`` when another write came first: read again and reapply the
        change. Raises ``NotFound`` if the user is absent and ``UsernameTaken``
        if the username would change. ``totp_last_step`` merges as in
        :meth:`update` and claiming a step does not count as a write.
        """
        ...

    async def claim_totp_step(self, subject: str, step: int) -> bool:
        """Record ``step`` as the user's last accepted TOTP step if it is later than the stored one.

        A compare-and-set: of any number of concurrent callers (in any number of
        processes sharing the store) claiming the same step, exactly one gets
        ``True``; every other claim, and every later claim of that step or an
        earlier one, gets ``False``. ``False`` too for an unknown subject.
        """
        ...
