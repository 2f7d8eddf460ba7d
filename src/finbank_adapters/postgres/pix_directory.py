"""``PostgresKeyDirectory``: the PIX key directory (DICT) on PostgreSQL (migration ``0012``).

``pix_keys`` holds one row per key (primary key ``(type, value)``: a key is
bound once, in any account) with the registration's msgspec JSON in
``body``; ``pix_key_accounts`` counts the keys of each account
(``account_ref``: the account id, or ``EXT#<ispb>#<branch>#<number>`` for an
account of another institution, as in the DynamoDB directory).

``register`` is one transaction that takes its locks in one order, the
account's counter row first, then the key:

1. the counter goes up by one, ``ON CONFLICT ... DO UPDATE ... WHERE keys <
   max`` (the row lock makes concurrent registrations on one account queue,
   and each sees the count the one before left);
2. the key row is inserted ``ON CONFLICT DO NOTHING``; a concurrent insert of
   the same key waits for the other transaction, then finds it.

A taken key raises ``PixKeyAlreadyRegistered`` even when the account is also
full (the memory and DynamoDB directories answer the same); the transaction
rolls back, so nothing is counted. ``delete`` reads where the key lives, then
locks the counter and deletes the key by its id in that order too, so a
registration and a deletion on one account never wait on each other in a
cycle. Before deleting it locks the key's row and refuses a key with an
active claim (``PixKeyUnderClaim``); a claim being stored holds that row
``FOR SHARE`` (``PostgresKeyClaimStore.add``), so of a deletion and a claim
at once either the claim is seen and the key kept, or the key is gone first.

Keys of the simulated institutions (``seed``) are inserted once per process
before the first operation, each only if free.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Sequence

import asyncpg
import msgspec

from finbank_adapters.postgres.errors import translated
from finbank_core.pix.claims.errors import PixKeyUnderClaim
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.directory import DirectoryEntry, KeyRegistration, NewKeyRegistration
from finbank_core.pix.errors import PixKeyAlreadyRegistered, PixKeyLimitReached, PixKeyNotFound
from finbank_core.shared.errors import InvalidInput, ServiceUnavailable

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(KeyRegistration)
_EVP_ATTEMPTS = 5

_COUNT = """
INSERT INTO pix_key_accounts AS c (account_ref, keys) VALUES ($1, 1)
ON CONFLICT (account_ref) DO UPDATE SET keys = c.keys + 1
WHERE $2::integer IS NULL OR c.keys < $2
RETURNING keys
"""
_INSERT = """
INSERT INTO pix_keys
    (key_type, key_value, id, account_ref, account_id, owner_id, created_at, body)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT DO NOTHING
RETURNING true
"""
_KEY_TAKEN = "SELECT EXISTS (SELECT 1 FROM pix_keys WHERE key_type = $1 AND key_value = $2)"
_WHERE = "SELECT account_ref, owner_id FROM pix_keys WHERE id = $1"
_LOCK_COUNT = "SELECT keys FROM pix_key_accounts WHERE account_ref = $1 FOR UPDATE"
_DELETE = "DELETE FROM pix_keys WHERE id = $1 AND owner_id = $2 RETURNING body, account_ref"
_UNCOUNT = "UPDATE pix_key_accounts SET keys = keys - 1 WHERE account_ref = $1"
#: the key's row locked, then its active claim (a claim being opened holds the row FOR SHARE)
_LOCK_KEY = "SELECT key_type, key_value FROM pix_keys WHERE id = $1 FOR UPDATE"
_ACTIVE_CLAIM = (
    "SELECT id, status FROM pix_key_claims WHERE key_type = $1 AND key_value = $2"
    " AND status IN ('OPEN', 'WAITING_RESOLUTION', 'CONFIRMED')"
)
_GET = "SELECT body FROM pix_keys WHERE key_type = $1 AND key_value = $2"
_BY_ACCOUNT = "SELECT body FROM pix_keys WHERE account_id = $1 ORDER BY created_at, id"


def account_ref(registration: NewKeyRegistration | KeyRegistration) -> str:
    """The counter row of the account a key is bound to."""
    if registration.account_id is not None:
        return str(registration.account_id)
    return f"EXT#{registration.ispb}#{registration.branch}#{registration.account_number}"


class PostgresKeyDirectory:
    """The ``KeyDirectory`` port on PostgreSQL (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool, *, seed: Sequence[KeyRegistration] = ()) -> None:
        self._pool = pool
        self._seed = list(seed)
        self._seeded = not self._seed
        self._seed_lock = asyncio.Lock()

    # -- writes ------------------------------------------------------------------------

    async def register(
        self, registration: NewKeyRegistration, *, max_keys_per_account: int
    ) -> KeyRegistration:
        await self._ensure_seeded()
        if registration.key is not None:
            return await self._register(
                KeyRegistration.of(registration, registration.key), max_keys_per_account
            )
        if registration.key_type is not PixKeyType.EVP:
            raise InvalidInput("only random keys (EVP) are issued by the directory")
        for _ in range(_EVP_ATTEMPTS):  # a clash of 122 random bits: practically never
            key = PixKey(PixKeyType.EVP, str(uuid.UUID(int=secrets.randbits(128), version=4)))
            try:
                return await self._register(
                    KeyRegistration.of(registration, key), max_keys_per_account
                )
            except PixKeyAlreadyRegistered:
                continue
        raise ServiceUnavailable("could not issue a random key; retry later")

    async def _register(self, stored: KeyRegistration, max_keys: int | None) -> KeyRegistration:
        ref = account_ref(stored)
        key = (stored.key.type.value, stored.key.value)
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                counted = await conn.fetchval(_COUNT, ref, max_keys)
                if counted is None:  # full; but a taken key is reported as taken first
                    if await conn.fetchval(_KEY_TAKEN, *key):
                        raise PixKeyAlreadyRegistered("this key is already registered")
                    raise PixKeyLimitReached(
                        f"an account of this kind holds at most {max_keys} keys",
                        max_keys=max_keys,
                    )
                inserted = await conn.fetchval(
                    _INSERT,
                    *key,
                    stored.id,
                    ref,
                    stored.account_id,
                    stored.owner_id,
                    stored.created_at,
                    _encoder.encode(stored).decode(),
                )
                if inserted is None:  # the key (or, a caller bug, the registration id) is taken
                    raise PixKeyAlreadyRegistered("this key is already registered")
        return stored

    async def delete(self, key_id: uuid.UUID, owner_id: str) -> KeyRegistration:
        await self._ensure_seeded()
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                where = await conn.fetchrow(_WHERE, key_id)
                if where is None or where["owner_id"] != owner_id:
                    raise PixKeyNotFound()
                await conn.execute(_LOCK_COUNT, where["account_ref"])
                locked = await conn.fetchrow(_LOCK_KEY, key_id)  # what the DELETE would lock
                if locked is not None:
                    claim = await conn.fetchrow(
                        _ACTIVE_CLAIM, locked["key_type"], locked["key_value"]
                    )
                    if claim is not None:
                        raise PixKeyUnderClaim(
                            "the key has an active claim: confirm or cancel it first",
                            field="key_id",
                            claim_id=str(claim["id"]),
                            status=claim["status"],
                        )
                deleted = await conn.fetchrow(_DELETE, key_id, owner_id)
                if deleted is None:  # deleted meanwhile by a concurrent call
                    raise PixKeyNotFound()
                await conn.execute(_UNCOUNT, deleted["account_ref"])
        return _decoder.decode(deleted["body"])

    # -- reads -------------------------------------------------------------------------

    async def lookup(self, key: PixKey) -> DirectoryEntry:
        return (await self.get(key)).entry()

    async def get(self, key: PixKey) -> KeyRegistration:
        await self._ensure_seeded()
        with translated():
            body: str | None = await self._pool.fetchval(_GET, key.type.value, key.value)
        if body is None:
            raise PixKeyNotFound()
        return _decoder.decode(body)

    async def list_by_account(self, account_id: uuid.UUID) -> list[KeyRegistration]:
        await self._ensure_seeded()
        with translated():
            rows = await self._pool.fetch(_BY_ACCOUNT, account_id)
        return [_decoder.decode(row["body"]) for row in rows]

    # -- plumbing ----------------------------------------------------------------------

    async def _ensure_seeded(self) -> None:
        if self._seeded:
            return
        async with self._seed_lock:
            if self._seeded:
                return
            for registration in self._seed:
                try:  # already there (another process seeded it), or taken: move on
                    await self._register(registration, None)
                except PixKeyAlreadyRegistered:
                    continue
            self._seeded = True
