"""``PostgresUserStore``: users of the self-hosted identity provider in ``auth_users``.

Usernames are unique case-insensitively; the key is Python's ``casefold()``
(computed here, stored in ``username_key``) so it agrees with the in-memory
store for every script, not only ASCII.

With a ``cipher`` (the container always gives one) the TOTP secrets are
sealed on every write with the current key-encryption key (envelope
encryption, bound to the row's subject and the column) and opened on read
with whichever key sealed them; ``secrets_key_id`` records that key.
Plaintext secrets from before migration 0016 are still read, and sealed on
their next write or by ``finbank secrets rewrap``.
"""

from __future__ import annotations

import asyncpg
import msgspec

from finbank_adapters.crypto.envelope import EnvelopeCipher, SecretUnreadable, is_sealed
from finbank_adapters.postgres.errors import translated
from finbank_core.auth.errors import UsernameTaken
from finbank_core.auth.users import UserRecord
from finbank_core.shared.errors import NotFound

_INSERT = (
    "INSERT INTO auth_users (subject, username, password_hash, created_at, email, phone_number,"
    " name, confirmed, totp_secret, pending_totp_secret, mfa_enabled, totp_last_step, roles,"
    " secrets_key_id, username_key, password_version)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
)
_SELECT = (
    "SELECT subject, username, password_hash, created_at, email, phone_number, name, confirmed,"
    " totp_secret, pending_totp_secret, mfa_enabled, totp_last_step, roles, version,"
    " password_version FROM auth_users"
)
_BY_USERNAME = _SELECT + " WHERE username_key = $1"
_BY_SUBJECT = _SELECT + " WHERE subject = $1"
_CLAIM_TOTP_STEP = (
    "UPDATE auth_users SET totp_last_step = $2 WHERE subject = $1"
    " AND (totp_last_step IS NULL OR totp_last_step < $2) RETURNING true"
)
_UPDATE = (
    "UPDATE auth_users SET username = $2, password_hash = $3, created_at = $4,"
    " email = $5, phone_number = $6, name = $7, confirmed = $8, totp_secret = $9,"
    " pending_totp_secret = $10, mfa_enabled = $11,"
    # GREATEST ignores NULL; a stale record never moves the step back
    " totp_last_step = GREATEST(totp_last_step, $12),"
    " roles = $13, secrets_key_id = $14, version = version + 1, password_version = $16"
    " WHERE subject = $1 AND username_key = $15"
)
_IF_VERSION = " AND version = $17"
_RETURNING = " RETURNING version, totp_last_step"
_ON_UNIQUE = {"auth_users_pkey": UsernameTaken, "auth_users_username_key_key": UsernameTaken}


class PostgresUserStore:
    def __init__(self, pool: asyncpg.Pool, cipher: EnvelopeCipher | None = None) -> None:
        self._pool = pool
        self._cipher = cipher

    async def add(self, user: UserRecord) -> None:
        values = await self._values(user)
        with translated(_ON_UNIQUE):
            await self._pool.execute(
                _INSERT, *values, user.username.casefold(), user.password_version
            )

    async def get_by_username(self, username: str) -> UserRecord | None:
        with translated():
            row = await self._pool.fetchrow(_BY_USERNAME, username.casefold())
        return await self._user(row) if row is not None else None

    async def get(self, subject: str) -> UserRecord | None:
        with translated():
            row = await self._pool.fetchrow(_BY_SUBJECT, subject)
        return await self._user(row) if row is not None else None

    async def update(self, user: UserRecord) -> None:
        await self._write(user, None)

    async def replace(self, user: UserRecord) -> UserRecord | None:
        stored = await self._write(user, user.version)
        if stored is None:
            return None
        version, step = stored
        return msgspec.structs.replace(user, version=version, totp_last_step=step)

    async def _write(self, user: UserRecord, expected: int | None) -> tuple[int, int | None] | None:
        """The version and TOTP step as written; ``None`` if ``expected`` is not the
        stored version."""
        values = await self._values(user)
        with translated():
            row = await self._pool.fetchrow(
                _UPDATE + _RETURNING if expected is None else _UPDATE + _IF_VERSION + _RETURNING,
                *values,
                user.username.casefold(),
                user.password_version,
                *(() if expected is None else (expected,)),
            )
            if row is not None:
                return row["version"], row["totp_last_step"]
            stored = await self._pool.fetchrow(
                "SELECT username_key FROM auth_users WHERE subject = $1", user.subject
            )
        if stored is None:
            raise NotFound("user not found")
        if stored["username_key"] != user.username.casefold():
            raise UsernameTaken("usernames cannot change")
        return None

    async def claim_totp_step(self, subject: str, step: int) -> bool:
        # The row lock of the UPDATE serialises claimants in every process: the
        # second one re-reads the row, finds the step spent and updates nothing.
        with translated():
            claimed = await self._pool.fetchval(_CLAIM_TOTP_STEP, subject, step)
        return claimed is not None

    async def _values(self, user: UserRecord) -> tuple[object, ...]:
        totp_secret = await self._seal(user.subject, "totp_secret", user.totp_secret)
        pending = await self._seal(user.subject, "pending_totp_secret", user.pending_totp_secret)
        sealed_with = (
            self._cipher.current_key_id if self._cipher and (totp_secret or pending) else None
        )
        return (*_values(user, totp_secret, pending), sealed_with)

    async def _seal(self, subject: str, column: str, secret: str | None) -> str | None:
        if secret is None or self._cipher is None:
            return secret
        return await self._cipher.seal(secret, secret_context(subject, column))

    async def _open(self, subject: str, column: str, stored: str | None) -> str | None:
        if stored is None or not is_sealed(stored):
            return stored  # no secret, or plaintext from before migration 0016
        if self._cipher is None:
            raise SecretUnreadable("a sealed secret needs the store's cipher")
        return await self._cipher.open(stored, secret_context(subject, column))

    async def _user(self, row: asyncpg.Record) -> UserRecord:
        subject = row["subject"]
        return _user(
            row,
            totp_secret=await self._open(subject, "totp_secret", row["totp_secret"]),
            pending_totp_secret=await self._open(
                subject, "pending_totp_secret", row["pending_totp_secret"]
            ),
        )


def secret_context(subject: str, column: str) -> str:
    """What a sealed secret is bound to: it opens only in its own row and column."""
    return f"auth_users/{subject}/{column}"


def _values(user: UserRecord, totp_secret: str | None, pending: str | None) -> tuple[object, ...]:
    return (
        user.subject,
        user.username,
        user.password_hash,
        user.created_at,
        user.email,
        user.phone_number,
        user.name,
        user.confirmed,
        totp_secret,
        pending,
        user.mfa_enabled,
        user.totp_last_step,
        list(user.roles),
    )


def _user(
    row: asyncpg.Record, *, totp_secret: str | None, pending_totp_secret: str | None
) -> UserRecord:
    return UserRecord(
        subject=row["subject"],
        username=row["username"],
        password_hash=row["password_hash"],
        created_at=row["created_at"],
        email=row["email"],
        phone_number=row["phone_number"],
        name=row["name"],
        confirmed=row["confirmed"],
        totp_secret=totp_secret,
        pending_totp_secret=pending_totp_secret,
        mfa_enabled=row["mfa_enabled"],
        totp_last_step=row["totp_last_step"],
        roles=tuple(row["roles"]),
        version=row["version"],
        password_version=row["password_version"],
    )
