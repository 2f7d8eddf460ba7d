"""``PostgresRecurrenceStore``: Pix Automático recurrences and charges (migration 0013).

Each write is one statement: an insert (the primary key and the
one-charge-per-cycle partial unique index decide races) or an update
conditional on the version. ``lease_due_charges`` picks due charges with
``FOR UPDATE SKIP LOCKED`` and stamps a lease in the same statement, so
several schedulers split the due charges between them.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

import asyncpg
import msgspec

from finbank_adapters.postgres.errors import translated
from finbank_core.pix.automatic.errors import (
    DuplicateRecurringCharge,
    RecurrenceNotFound,
    RecurringChargeNotFound,
    StaleAutomaticRecord,
)
from finbank_core.pix.automatic.model import Recurrence, RecurringCharge
from finbank_core.pix.automatic.use_cases.common import payer_owner_of
from finbank_core.shared.money import Money

_ENCODER = msgspec.json.Encoder()
_RECURRENCE = msgspec.json.Decoder(Recurrence)
_CHARGE = msgspec.json.Decoder(RecurringCharge)

_ON_RECURRENCE_UNIQUE = {
    "pix_automatic_recurrences_pkey": lambda: StaleAutomaticRecord("the recurrence id is taken"),
}
_ON_CHARGE_UNIQUE = {
    "pix_automatic_charges_pkey": lambda: DuplicateRecurringCharge(
        "this txid is taken", field="txid"
    ),
    "pix_automatic_charges_one_per_cycle": lambda: DuplicateRecurringCharge(
        "the recurrence already has a charge for this period", field="due_date"
    ),
}

_LEASE = """
UPDATE pix_automatic_charges AS c
   SET lease_until = $3, lease_holder = $4
  FROM (SELECT txid FROM pix_automatic_charges
         WHERE status = 'ATIVA' AND next_attempt_on <= $1
           AND (lease_until IS NULL OR lease_until <= $2)
         ORDER BY next_attempt_on, txid
         LIMIT $5
           FOR UPDATE SKIP LOCKED) AS due
 WHERE c.txid = due.txid
RETURNING c.txid, c.next_attempt_on
"""

_REMOVE_PAYER_LIMIT = "DELETE FROM pix_automatic_payer_limits WHERE account_id = $1"
_NO_PAYER_LIMIT = (
    "SELECT NOT EXISTS (SELECT 1 FROM pix_automatic_payer_limits WHERE account_id = $1)"
)
_SET_PAYER_LIMIT = (
    "INSERT INTO pix_automatic_payer_limits (account_id, daily_cents) VALUES ($1, $2)"
    " ON CONFLICT (account_id) DO UPDATE SET daily_cents = EXCLUDED.daily_cents"
    " RETURNING true"
)
# a limit where there is none, or one at or below the limit in force: never a raise
_LOWER_PAYER_LIMIT = (
    "INSERT INTO pix_automatic_payer_limits AS l (account_id, daily_cents) VALUES ($1, $2)"
    " ON CONFLICT (account_id) DO UPDATE SET daily_cents = EXCLUDED.daily_cents"
    " WHERE l.daily_cents >= EXCLUDED.daily_cents"
    " RETURNING true"
)

_BY_RECEIVER = (
    "SELECT body FROM pix_automatic_recurrences WHERE receiver_owner_id = $1"
    " ORDER BY created_at, recurrence_id"
)
_BY_PAYER = (
    "SELECT body FROM pix_automatic_recurrences WHERE payer_owner_id = $1"
    " ORDER BY created_at, recurrence_id"
)


def _body(record: Recurrence | RecurringCharge, version: int) -> str:
    return _ENCODER.encode(msgspec.structs.replace(record, version=version)).decode()


class PostgresRecurrenceStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add_recurrence(self, recurrence: Recurrence) -> Recurrence:
        with translated(_ON_RECURRENCE_UNIQUE):
            await self._pool.execute(
                "INSERT INTO pix_automatic_recurrences (recurrence_id, version, status,"
                " receiver_owner_id, payer_owner_id, created_at, body)"
                " VALUES ($1, 1, $2, $3, $4, $5, $6)",
                recurrence.recurrence_id,
                recurrence.status.value,
                recurrence.receiver_owner_id,
                payer_owner_of(recurrence),
                recurrence.created_at,
                _body(recurrence, 1),
            )
        return msgspec.structs.replace(recurrence, version=1)

    async def get_recurrence(self, recurrence_id: str) -> Recurrence | None:
        with translated():
            body = await self._pool.fetchval(
                "SELECT body FROM pix_automatic_recurrences WHERE recurrence_id = $1",
                recurrence_id,
            )
        return None if body is None else _RECURRENCE.decode(body)

    async def list_recurrences(
        self, *, receiver_owner_id: str | None = None, payer_owner_id: str | None = None
    ) -> list[Recurrence]:
        if (receiver_owner_id is None) == (payer_owner_id is None):
            raise ValueError("give exactly one of receiver_owner_id, payer_owner_id")
        query = _BY_RECEIVER if receiver_owner_id is not None else _BY_PAYER
        with translated():
            rows = await self._pool.fetch(query, receiver_owner_id or payer_owner_id)
        return [_RECURRENCE.decode(row["body"]) for row in rows]

    async def update_recurrence(self, recurrence: Recurrence) -> Recurrence:
        version = recurrence.version + 1
        with translated():
            updated = await self._pool.fetchval(
                "UPDATE pix_automatic_recurrences SET version = $3, status = $4,"
                " payer_owner_id = $5, body = $6"
                " WHERE recurrence_id = $1 AND version = $2 RETURNING true",
                recurrence.recurrence_id,
                recurrence.version,
                version,
                recurrence.status.value,
                payer_owner_of(recurrence),
                _body(recurrence, version),
            )
            if updated is None:
                exists = await self._pool.fetchval(
                    "SELECT true FROM pix_automatic_recurrences WHERE recurrence_id = $1",
                    recurrence.recurrence_id,
                )
                if exists is None:
                    raise RecurrenceNotFound()
                raise StaleAutomaticRecord("the recurrence changed since it was read")
        return msgspec.structs.replace(recurrence, version=version)

    async def add_charge(self, charge: RecurringCharge) -> RecurringCharge:
        with translated(_ON_CHARGE_UNIQUE):
            await self._pool.execute(
                "INSERT INTO pix_automatic_charges (txid, recurrence_id, cycle, version, status,"
                " due_date, next_attempt_on, body) VALUES ($1, $2, $3, 1, $4, $5, $6, $7)",
                charge.txid,
                charge.recurrence_id,
                charge.cycle,
                charge.status.value,
                charge.due_date,
                charge.next_attempt_on,
                _body(charge, 1),
            )
        return msgspec.structs.replace(charge, version=1)

    async def get_charge(self, txid: str) -> RecurringCharge | None:
        with translated():
            body = await self._pool.fetchval(
                "SELECT body FROM pix_automatic_charges WHERE txid = $1", txid
            )
        return None if body is None else _CHARGE.decode(body)

    async def list_charges(self, recurrence_id: str) -> list[RecurringCharge]:
        with translated():
            rows = await self._pool.fetch(
                "SELECT body FROM pix_automatic_charges WHERE recurrence_id = $1"
                " ORDER BY due_date, txid",
                recurrence_id,
            )
        return [_CHARGE.decode(row["body"]) for row in rows]

    async def update_charge(self, charge: RecurringCharge) -> RecurringCharge:
        version = charge.version + 1
        with translated(_ON_CHARGE_UNIQUE):
            updated = await self._pool.fetchval(
                "UPDATE pix_automatic_charges SET version = $3, status = $4,"
                " next_attempt_on = $5, body = $6"
                " WHERE txid = $1 AND version = $2 RETURNING true",
                charge.txid,
                charge.version,
                version,
                charge.status.value,
                charge.next_attempt_on,
                _body(charge, version),
            )
            if updated is None:
                exists = await self._pool.fetchval(
                    "SELECT true FROM pix_automatic_charges WHERE txid = $1", charge.txid
                )
                if exists is None:
                    raise RecurringChargeNotFound()
                raise StaleAutomaticRecord("the charge changed since it was read")
        return msgspec.structs.replace(charge, version=version)

    async def lease_due_charges(
        self, *, today: date, now: datetime, lease_until: datetime, holder: str, limit: int
    ) -> list[str]:
        with translated():
            rows = await self._pool.fetch(_LEASE, today, now, lease_until, holder, limit)
        return [row["txid"] for row in sorted(rows, key=lambda r: (r[1], r[0]))]

    async def set_payer_limit(
        self, account_id: uuid.UUID, daily: Money | None, *, allow_raise: bool = True
    ) -> bool:
        # One statement each: the check against the limit in force and the write are one
        # step. ON CONFLICT DO UPDATE locks the row and evaluates its WHERE on the newest
        # committed version (also under READ COMMITTED), so a change without allow_raise
        # never replaces a lower limit committed meanwhile.
        with translated():
            if daily is None:
                if allow_raise:
                    await self._pool.execute(_REMOVE_PAYER_LIMIT, account_id)
                    return True
                # removing where there is none changes nothing; where there is one, it raises
                none: bool = await self._pool.fetchval(_NO_PAYER_LIMIT, account_id)
                return none
            query = _SET_PAYER_LIMIT if allow_raise else _LOWER_PAYER_LIMIT
            applied = await self._pool.fetchval(query, account_id, daily.cents)
        return applied is not None

    async def get_payer_limit(self, account_id: uuid.UUID) -> Money | None:
        with translated():
            cents = await self._pool.fetchval(
                "SELECT daily_cents FROM pix_automatic_payer_limits WHERE account_id = $1",
                account_id,
            )
        return None if cents is None else Money(int(cents))
