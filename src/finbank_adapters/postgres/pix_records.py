"""Charges, account limits, limit usage and devices on PostgreSQL (migration ``0012``).

* ``PostgresChargeRepository``: ``pix_charges``, the msgspec JSON of the
  :class:`Charge` in ``body`` (its claim, ``claimed_by``, included). ``add``
  is one ``INSERT ... ON CONFLICT DO NOTHING``: the txid, its first 25
  characters and the location are each unique, so a clash of any of them
  writes nothing (``ChargeAlreadyExists``). ``update`` replaces ``WHERE
  version = expected`` (``PixVersionConflict``; ``ChargeNotFound`` if
  missing): of concurrent claims read at one version, one wins.
* ``PostgresAccountLimitsStore``: choices in ``pix_limits`` (``update``: a
  compare-and-set on the body read, ``put`` replaces); usage counters in
  ``pix_limit_usage`` and one hold per payment in ``pix_limit_holds``. A
  counter row is keyed by ``(the id it is kept under, period)``: the hold's
  account, or the counter's scope (a new device's day, shared by the owner's
  accounts; migration ``0033``). ``reserve_usage`` is one call of the
  ``pix_reserve_scoped_usage`` function (migration ``0033``), so one round
  trip and one transaction: the hold row and any missing counter first (a
  hold id recorded before is ``ALREADY_HELD``: nothing added), then the
  hold's counters locked in ``(id, period)`` order (``FOR UPDATE``) and
  raised together; what they then hold is checked in the hold's order
  against the caps, under those locks, and over a cap all of it is undone
  and the first limit passed named. ``release_usage`` deletes the hold
  (``RETURNING`` it: exactly one caller gets it) and takes its amount back
  from the counters it names (a hold recorded before ``0033``: all the
  account's) in the same transaction. Locks are always taken hold first,
  then counters by ``(id, period)``, one order across accounts and scopes, so
  concurrent reservations and releases queue without deadlocks. A hold's
  scoped counters are listed in its ``scoped`` column (``<id>/<period>``) for
  ``usage_holds`` of a scope.
* ``PostgresDeviceRegistry``: ``pix_devices``, ``INSERT ... ON CONFLICT DO
  NOTHING``: the first use stays, kept as ISO 8601 with its offset.

Driver errors leave through :mod:`~finbank_adapters.postgres.errors`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import asyncpg
import msgspec

from finbank_adapters.postgres.errors import RetryPolicy, translated, with_retries
from finbank_core.pix.charges import Charge
from finbank_core.pix.errors import ChargeAlreadyExists, ChargeNotFound, PixVersionConflict
from finbank_core.pix.limits import AccountLimits, ReserveOutcome, UsageHold, UsageReservation
from finbank_core.shared.errors import ServiceUnavailable

_encoder = msgspec.json.Encoder()
_charge_decoder = msgspec.json.Decoder(Charge)
_limits_decoder = msgspec.json.Decoder(AccountLimits)
_hold_decoder = msgspec.json.Decoder(UsageHold)
#: a deadlock or serialization failure rolls the whole transaction back: run it again
_RETRIES = RetryPolicy()

_ADD_CHARGE = """
INSERT INTO pix_charges (txid, static_txid, location_id, account_id, version, body)
VALUES ($1, $2, $3, $4, 1, $5)
ON CONFLICT DO NOTHING
RETURNING true
"""
_UPDATE_CHARGE = """
UPDATE pix_charges SET version = $2 + 1, body = $3 WHERE txid = $1 AND version = $2
RETURNING true
"""
_GET_CHARGE = "SELECT body FROM pix_charges WHERE txid = $1"
_FIND_CHARGE = """
SELECT body, account_id FROM pix_charges WHERE txid = $1 OR static_txid = $1
ORDER BY (txid = $1) DESC LIMIT 1
"""
_CHARGE_AT = "SELECT body FROM pix_charges WHERE location_id = $1"


class PostgresChargeRepository:
    """The ``ChargeRepository`` port on PostgreSQL (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, charge: Charge) -> Charge:
        stored = msgspec.structs.replace(charge, version=1)
        with translated():
            added = await self._pool.fetchval(
                _ADD_CHARGE,
                stored.txid,
                stored.static_txid,
                stored.location_id,
                stored.account_id,
                _encoder.encode(stored).decode(),
            )
        if added is None:
            raise ChargeAlreadyExists("a charge with this txid already exists")
        return stored

    async def get(self, txid: str) -> Charge:
        with translated():
            body: str | None = await self._pool.fetchval(_GET_CHARGE, txid)
        if body is None:
            raise ChargeNotFound()
        return _charge_decoder.decode(body)

    async def find(self, account_id: uuid.UUID, reference: str) -> Charge | None:
        with translated():
            row = await self._pool.fetchrow(_FIND_CHARGE, reference)
        if row is None or row["account_id"] != account_id:
            return None
        return _charge_decoder.decode(row["body"])

    async def get_by_location(self, location_id: str) -> Charge:
        with translated():
            body: str | None = await self._pool.fetchval(_CHARGE_AT, location_id)
        if body is None:
            raise ChargeNotFound()
        return _charge_decoder.decode(body)

    async def update(self, charge: Charge, expected_version: int) -> Charge:
        stored = msgspec.structs.replace(charge, version=expected_version + 1)
        with translated():
            updated = await self._pool.fetchval(
                _UPDATE_CHARGE, stored.txid, expected_version, _encoder.encode(stored).decode()
            )
            if updated is None:
                exists = await self._pool.fetchval(_GET_CHARGE, stored.txid)
        if updated is None:
            if exists is None:
                raise ChargeNotFound()
            raise PixVersionConflict()
        return stored


_PUT_LIMITS = """
INSERT INTO pix_limits (account_id, body) VALUES ($1, $2)
ON CONFLICT (account_id) DO UPDATE SET body = EXCLUDED.body
"""
_GET_LIMITS = "SELECT body FROM pix_limits WHERE account_id = $1"
# compare-and-set on the body read (the text as stored, not a re-encoding of it)
_CREATE_LIMITS = """
INSERT INTO pix_limits (account_id, body) VALUES ($1, $2)
ON CONFLICT (account_id) DO NOTHING RETURNING true
"""
_REPLACE_LIMITS = (
    "UPDATE pix_limits SET body = $2 WHERE account_id = $1 AND body = $3 RETURNING true"
)
#: tries of an ``update`` that others' writes keep overtaking (each try, one of them wins)
LIMITS_UPDATE_ATTEMPTS = 100
# The hold, its missing counters, the counters raised under their locks and checked
# against the caps, all or nothing, in one call (see migration 0033).
_RESERVE = "SELECT pix_reserve_scoped_usage($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
# Move the counters (distinct (id, period) pairs) by an amount, locking them in
# (id, period) order as the reservation does (releasing a hold).
_ADD_USAGE = """
WITH locked AS (
    SELECT u.account_id, u.period FROM pix_limit_usage u
    JOIN unnest($1::uuid[], $2::text[]) AS c(id, period)
        ON u.account_id = c.id AND u.period = c.period
    ORDER BY u.account_id, u.period FOR UPDATE OF u
)
UPDATE pix_limit_usage u SET used = u.used + $3
FROM locked WHERE u.account_id = locked.account_id AND u.period = locked.period
RETURNING u.period, u.used
"""
_DROP_HOLD = "DELETE FROM pix_limit_holds WHERE account_id = $1 AND hold_id = $2 RETURNING body"
# the account's own counter (by its key), or a scope's (by the partial index of 0033)
_HOLDS = """
SELECT body FROM pix_limit_holds
WHERE (account_id = $1 AND $2 = ANY(periods))
   OR (scoped <> '{}' AND scoped @> ARRAY[$3::text])
"""
_USED = "SELECT used FROM pix_limit_usage WHERE account_id = $1 AND period = $2"


class PostgresAccountLimitsStore:
    """The ``AccountLimitsStore`` port on PostgreSQL (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, account_id: uuid.UUID) -> AccountLimits | None:
        with translated():
            body: str | None = await self._pool.fetchval(_GET_LIMITS, account_id)
        return None if body is None else _limits_decoder.decode(body)

    async def put(self, limits: AccountLimits) -> None:
        with translated():
            await self._pool.execute(
                _PUT_LIMITS, limits.account_id, _encoder.encode(limits).decode()
            )

    async def update(
        self,
        account_id: uuid.UUID,
        change: Callable[[AccountLimits | None], AccountLimits | None],
    ) -> AccountLimits | None:
        # Optimistic: read, change, write only over the body read. Whoever wrote in
        # between made this write miss; read again and change the newer value.
        for _ in range(LIMITS_UPDATE_ATTEMPTS):
            with translated():
                body: str | None = await self._pool.fetchval(_GET_LIMITS, account_id)
            current = None if body is None else _limits_decoder.decode(body)
            changed = change(current)
            if changed is None:
                return current
            new = _encoder.encode(changed).decode()
            with translated():
                if body is None:
                    applied = await self._pool.fetchval(_CREATE_LIMITS, account_id, new)
                else:
                    applied = await self._pool.fetchval(_REPLACE_LIMITS, account_id, new, body)
            if applied:
                return changed
        raise ServiceUnavailable("the account's limits keep changing; try again")

    async def reserve_usage(self, hold: UsageHold) -> UsageReservation:
        # the arrays pix_reserve_scoped_usage (0033) takes, prepared here
        keys = hold.counter_keys()  # distinct, sorted: the lock order
        position = {key: n for n, key in enumerate(keys, 1)}
        ends: dict[tuple[uuid.UUID, str], datetime] = {}
        for counter in hold.counters:
            ends.setdefault((hold.kept_under(counter), counter.period), counter.ends_at)
        periods = [period for kept, period in keys if kept == hold.account_id]
        scoped = sorted(f"{kept}/{period}" for kept, period in keys if kept != hold.account_id)

        async def reserve() -> str:
            # one round trip: the whole transaction is pix_reserve_scoped_usage (0033)
            answer: str = await self._pool.fetchval(
                _RESERVE,
                hold.account_id,
                hold.hold_id,
                periods,
                scoped,
                _encoder.encode(hold).decode(),
                hold.amount,
                [kept for kept, _ in keys],
                [period for _, period in keys],
                [ends[key] for key in keys],
                [position[(hold.kept_under(c), c.period)] for c in hold.counters],
                [c.cap for c in hold.counters],
                [c.limit for c in hold.counters],
            )
            return answer

        with translated():
            answer = await with_retries(reserve, _RETRIES)
        if answer == "RESERVED":
            return UsageReservation(outcome=ReserveOutcome.RESERVED)
        if answer == "ALREADY_HELD":
            return UsageReservation(outcome=ReserveOutcome.ALREADY_HELD)
        return UsageReservation(
            outcome=ReserveOutcome.EXCEEDED, limit=answer.removeprefix("EXCEEDED:")
        )

    async def release_usage(self, account_id: uuid.UUID, hold_id: str) -> bool:
        async def release() -> bool:
            async with self._pool.acquire() as conn, conn.transaction():
                body = await conn.fetchval(_DROP_HOLD, account_id, hold_id)
                if body is None:
                    return False
                hold = _hold_decoder.decode(body)
                keys = hold.counter_keys()  # a hold from before 0033: all the account's
                await conn.fetch(
                    _ADD_USAGE, [k for k, _ in keys], [p for _, p in keys], -hold.amount
                )
            return True

        with translated():
            return await with_retries(release, _RETRIES)

    async def usage_holds(self, account_id: uuid.UUID, period: str) -> list[UsageHold]:
        with translated():
            rows = await self._pool.fetch(_HOLDS, account_id, period, f"{account_id}/{period}")
        return [_hold_decoder.decode(row["body"]) for row in rows]

    async def used(self, account_id: uuid.UUID, period: str) -> int:
        with translated():
            used: int | None = await self._pool.fetchval(_USED, account_id, period)
        return used or 0


_RECORD_USE = """
INSERT INTO pix_devices (owner_id, device_id, first_seen) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING
"""
_FIRST_SEEN = "SELECT first_seen FROM pix_devices WHERE owner_id = $1 AND device_id = $2"


class PostgresDeviceRegistry:
    """The ``DeviceRegistry`` port on PostgreSQL: the first use of a device stays."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def first_seen(self, owner_id: str, device_id: str) -> datetime | None:
        with translated():
            seen: str | None = await self._pool.fetchval(_FIRST_SEEN, owner_id, device_id)
        return None if seen is None else datetime.fromisoformat(seen)

    async def record_use(self, owner_id: str, device_id: str, at: datetime) -> None:
        with translated():
            await self._pool.execute(_RECORD_USE, owner_id, device_id, at.isoformat())

    async def list_by_owner(self, owner_id: str) -> list[tuple[str, datetime]]:
        with translated():
            rows = await self._pool.fetch(
                "SELECT device_id, first_seen FROM pix_devices WHERE owner_id = $1", owner_id
            )
        return [(r["device_id"], datetime.fromisoformat(r["first_seen"])) for r in rows]
