"""Re-seal the TOTP secrets of ``auth_users`` with the current key-encryption key;
count them by the key that sealed them (``finbank secrets status``).

Run after adding a new key (it goes first in ``FINBANK_AUTH_SECRETS_KEYS``,
or in ``FINBANK_AUTH_SECRETS_KMS_KEY_ID`` with the old one moved to
``..._PREVIOUS_KMS_KEY_IDS``), and once after migration 0016 to seal the
secrets written in plaintext before it::

    FINBANK_PROFILE=local finbank secrets rewrap

It reads the rows whose ``secrets_key_id`` is not the current key (plaintext
rows have none), opens their secrets with whichever configured key sealed
them, seals them again and writes them back with a compare-and-set on the
old values: a row changed meanwhile (an enrolment) is skipped, as its new
values were sealed with the current key anyway. Safe to run again, and
beside the running service; when it reports nothing left, the old key can
be removed from the configuration.
"""

from __future__ import annotations

import asyncpg
import msgspec

from finbank_adapters.crypto.envelope import EnvelopeCipher, is_sealed
from finbank_adapters.postgres.users import secret_context

_PENDING = (
    "SELECT subject, totp_secret, pending_totp_secret FROM auth_users"
    " WHERE (totp_secret IS NOT NULL OR pending_totp_secret IS NOT NULL)"
    " AND secrets_key_id IS DISTINCT FROM $1 AND subject > $2"
    " ORDER BY subject LIMIT $3"
)
_REPLACE = (
    "UPDATE auth_users SET totp_secret = $2, pending_totp_secret = $3, secrets_key_id = $4"
    " WHERE subject = $1 AND totp_secret IS NOT DISTINCT FROM $5"
    " AND pending_totp_secret IS NOT DISTINCT FROM $6"
)


_STATUS = (
    "SELECT secrets_key_id,"
    " (totp_secret IS NOT NULL AND totp_secret NOT LIKE 'fbx1.%')"
    " OR (pending_totp_secret IS NOT NULL AND pending_totp_secret NOT LIKE 'fbx1.%')"
    " AS plaintext, count(*) AS rows FROM auth_users"
    " WHERE totp_secret IS NOT NULL OR pending_totp_secret IS NOT NULL"
    " GROUP BY 1, 2"
)


class SecretsStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Where the users' TOTP secrets stand (``finbank secrets status``)."""

    #: the key every write seals with now
    current_key_id: str
    #: rows whose secrets are sealed, by the id of the key that sealed them
    sealed_by_key: dict[str, int]
    #: rows holding a secret in plaintext (written before migration 0016)
    plaintext: int

    @property
    def pending(self) -> int:
        """Rows ``rewrap`` would re-seal: plaintext ones and those of another key."""
        others = sum(n for key, n in self.sealed_by_key.items() if key != self.current_key_id)
        return self.plaintext + others


async def secrets_status(pool: asyncpg.Pool, cipher: EnvelopeCipher) -> SecretsStatus:
    """How many rows are sealed under which key id, and how many are still plaintext.

    Reads only the key ids and whether a value is sealed: nothing is opened.
    """
    sealed: dict[str, int] = {}
    plaintext = 0
    for row in await pool.fetch(_STATUS):
        if row["plaintext"] or row["secrets_key_id"] is None:
            plaintext += row["rows"]
        else:
            key_id = row["secrets_key_id"]
            sealed[key_id] = sealed.get(key_id, 0) + row["rows"]
    return SecretsStatus(
        current_key_id=cipher.current_key_id, sealed_by_key=sealed, plaintext=plaintext
    )


class RewrapReport(msgspec.Struct, frozen=True, kw_only=True):
    #: rows re-sealed with the current key
    rewrapped: int
    #: rows changed by someone else between the read and the write (already current)
    skipped: int


async def rewrap_user_secrets(
    pool: asyncpg.Pool, cipher: EnvelopeCipher, *, batch_size: int = 500
) -> RewrapReport:
    """Re-seal every row not sealed with ``cipher``'s current key (see the module doc)."""
    rewrapped = skipped = 0
    after = ""
    current = cipher.current_key_id
    while True:
        rows = await pool.fetch(_PENDING, current, after, batch_size)
        if not rows:
            return RewrapReport(rewrapped=rewrapped, skipped=skipped)
        for row in rows:
            subject = row["subject"]
            after = subject
            fresh = [
                await _reseal(cipher, subject, column, row[column])
                for column in ("totp_secret", "pending_totp_secret")
            ]
            status = await pool.execute(
                _REPLACE, subject, *fresh, current, row["totp_secret"], row["pending_totp_secret"]
            )
            if status.endswith(" 1"):
                rewrapped += 1
            else:
                skipped += 1


async def _reseal(
    cipher: EnvelopeCipher, subject: str, column: str, stored: str | None
) -> str | None:
    if stored is None:
        return None
    context = secret_context(subject, column)
    plaintext = await cipher.open(stored, context) if is_sealed(stored) else stored
    return await cipher.seal(plaintext, context)
