"""PIX key claims and key look-up buckets on PostgreSQL (migration ``0015``).

``PostgresKeyClaimStore`` keeps each claim in ``pix_key_claims``; the
partial unique index ``pix_key_claims_one_active`` lets a key have one
active claim, so of concurrent claims on a key exactly one ``INSERT``
succeeds. Updates are ``UPDATE ... WHERE version = $expected``. Built with
``outbox=True`` (the events backend is this database's outbox), a write and
the events it is given are one transaction (``outbox_append``): a claim step
is never stored without its event, nor its event without it.
``PostgresLookupBuckets`` calls ``pix_lookup_take``, which refills and takes
under the bucket row's lock. Times are the injected clock's, passed in.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from finbank_adapters.postgres.errors import translated
from finbank_adapters.postgres.ledger import event_columns
from finbank_adapters.postgres.pix_directory import PostgresKeyDirectory, account_ref
from finbank_core.pix.claims.errors import (
    KeyClaimAlreadyOpen,
    KeyClaimNotFound,
    KeyClaimVersionConflict,
)
from finbank_core.pix.claims.lookups import BucketPolicy, BucketTake
from finbank_core.pix.claims.model import KeyClaim
from finbank_core.pix.codes.keys import PixKey
from finbank_core.pix.directory import KeyRegistration, NewKeyRegistration
from finbank_core.pix.errors import PixKeyLimitReached, PixKeyNotFound
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.events import EventEnvelope

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(KeyClaim)

_INSERT = (
    "INSERT INTO pix_key_claims (id, key_type, key_value, status, claimer_owner_id,"
    " donor_owner_id, opened_at, version, body) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8)"
)
_UPDATE = (
    "UPDATE pix_key_claims SET status = $2, version = version + 1, body = $3"
    " WHERE id = $1 AND version = $4"
)
_GET = "SELECT version, body FROM pix_key_claims WHERE id = $1"
_ACTIVE = (
    "SELECT version, body FROM pix_key_claims WHERE key_type = $1 AND key_value = $2"
    " AND status IN ('OPEN', 'WAITING_RESOLUTION', 'CONFIRMED')"
)
_BY_OWNER = (
    "SELECT version, body FROM pix_key_claims WHERE claimer_owner_id = $1 OR donor_owner_id = $1"
    " ORDER BY opened_at, id"
)
_TAKE = "SELECT allowed, tokens FROM pix_lookup_take($1, $2, $3, $4, $5)"
_APPEND = "SELECT outbox_append($1, $2, $3, $4, $5, $6)"
_HOLD_KEY = "SELECT 1 FROM pix_keys WHERE key_type = $1 AND key_value = $2 FOR SHARE"


def _decode(row: asyncpg.Record) -> KeyClaim:
    return msgspec.structs.replace(_decoder.decode(row["body"]), version=row["version"])


class PostgresKeyClaimStore:
    """``KeyClaimStore`` on ``pix_key_claims`` (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool, *, outbox: bool = False) -> None:
        self._pool = pool
        self.appends_events = outbox

    def _check_events(self, events: Sequence[EventEnvelope]) -> None:
        if events and not self.appends_events:
            raise ValueError("this claim store was built without the outbox (outbox=False)")

    async def add(self, claim: KeyClaim, *, events: Sequence[EventEnvelope] = ()) -> KeyClaim:
        self._check_events(events)
        stored = msgspec.structs.replace(claim, version=1)
        with translated(
            {
                "pix_key_claims_one_active": lambda: KeyClaimAlreadyOpen(
                    "the key already has an active claim"
                ),
                "pix_key_claims_pkey": lambda: KeyClaimAlreadyOpen("the claim already exists"),
            }
        ):
            async with self._pool.acquire() as conn, conn.transaction():
                # the key's row held against a concurrent deletion (see PostgresKeyDirectory)
                await conn.execute(_HOLD_KEY, claim.key.type.value, claim.key.value)
                await conn.execute(
                    _INSERT,
                    claim.id,
                    claim.key.type.value,
                    claim.key.value,
                    claim.status.value,
                    claim.claimer.owner_id,
                    claim.donor.owner_id,
                    claim.opened_at,
                    _encoder.encode(stored).decode(),
                )
                if events:
                    await conn.fetchval(_APPEND, *event_columns(events))
        return stored

    async def get(self, claim_id: uuid.UUID) -> KeyClaim:
        with translated():
            row = await self._pool.fetchrow(_GET, claim_id)
        if row is None:
            raise KeyClaimNotFound()
        return _decode(row)

    async def update(
        self, claim: KeyClaim, expected_version: int, *, events: Sequence[EventEnvelope] = ()
    ) -> KeyClaim:
        self._check_events(events)
        stored = msgspec.structs.replace(claim, version=expected_version + 1)
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                status = await conn.execute(
                    _UPDATE,
                    claim.id,
                    claim.status.value,
                    _encoder.encode(stored).decode(),
                    expected_version,
                )
                if status == "UPDATE 1" and events:
                    await conn.fetchval(_APPEND, *event_columns(events))
        if status != "UPDATE 1":
            await self.get(claim.id)  # KeyClaimNotFound if there is no such claim
            raise KeyClaimVersionConflict()
        return stored

    async def active_for_key(self, key: PixKey) -> KeyClaim | None:
        with translated():
            row = await self._pool.fetchrow(_ACTIVE, key.type.value, key.value)
        return _decode(row) if row is not None else None

    async def list_by_owner(self, owner_id: str) -> list[KeyClaim]:
        with translated():
            rows = await self._pool.fetch(_BY_OWNER, owner_id)
        return [_decode(row) for row in rows]


class PostgresLookupBuckets:
    """``LookupBuckets`` on ``pix_lookup_buckets`` through ``pix_lookup_take``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def take(self, bucket: str, cost: int, policy: BucketPolicy, now: datetime) -> BucketTake:
        with translated():
            row = await self._pool.fetchrow(
                _TAKE,
                bucket,
                float(policy.capacity),
                float(policy.refill_per_minute),
                float(cost),
                now,
            )
        assert row is not None
        tokens = float(row["tokens"])
        if row["allowed"]:
            return BucketTake(allowed=True, tokens=tokens)
        return BucketTake(
            allowed=False, tokens=tokens, retry_after_seconds=policy.retry_after(tokens)
        )


_LOCK_KEY = (
    "SELECT id, account_ref, body FROM pix_keys WHERE key_type = $1 AND key_value = $2 FOR UPDATE"
)
_ENSURE_COUNTER = (
    "INSERT INTO pix_key_accounts (account_ref, keys) VALUES ($1, 0) ON CONFLICT DO NOTHING"
)
_LOCK_COUNTERS = (
    "SELECT account_ref, keys FROM pix_key_accounts WHERE account_ref = ANY($1::text[])"
    " ORDER BY account_ref FOR UPDATE"
)
_MOVE = (
    "UPDATE pix_keys SET id = $3, account_ref = $4, account_id = $5, owner_id = $6,"
    " created_at = $7, body = $8 WHERE key_type = $1 AND key_value = $2"
)
_ADD_COUNT = "UPDATE pix_key_accounts SET keys = keys + $2 WHERE account_ref = $1"
_registration = msgspec.json.Decoder(KeyRegistration)


class PostgresClaimableKeyDirectory(PostgresKeyDirectory):
    """The PostgreSQL key directory with a completed claim's key move (``transfer``).

    One transaction: the key's row is locked, both accounts' counters are
    locked in account order (so opposite moves queue instead of
    deadlocking), the receiving account's limit is checked and the row is
    rewritten for the claimer: the key is on one account before and after.
    """

    async def transfer(
        self, from_key_id: uuid.UUID, to: NewKeyRegistration, *, max_keys_per_account: int
    ) -> KeyRegistration:
        await self._ensure_seeded()
        if to.key is None:
            raise InvalidInput("a transfer names its key")
        stored = KeyRegistration.of(to, to.key)
        key = (to.key.type.value, to.key.value)
        new_ref = account_ref(stored)
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(_LOCK_KEY, *key)
                if row is not None and row["id"] == to.id:
                    return _registration.decode(row["body"])
                if row is None or row["id"] != from_key_id:
                    raise PixKeyNotFound()
                old_ref = row["account_ref"]
                await conn.execute(_ENSURE_COUNTER, new_ref)
                counters = {
                    r["account_ref"]: r["keys"]
                    for r in await conn.fetch(_LOCK_COUNTERS, sorted({old_ref, new_ref}))
                }
                if new_ref != old_ref and counters[new_ref] >= max_keys_per_account:
                    raise PixKeyLimitReached(
                        f"an account of this kind holds at most {max_keys_per_account} keys",
                        max_keys=max_keys_per_account,
                    )
                await conn.execute(
                    _MOVE,
                    *key,
                    stored.id,
                    new_ref,
                    stored.account_id,
                    stored.owner_id,
                    stored.created_at,
                    _encoder.encode(stored).decode(),
                )
                if new_ref != old_ref:
                    await conn.execute(_ADD_COUNT, old_ref, -1)
                    await conn.execute(_ADD_COUNT, new_ref, 1)
        return stored
