"""``PostgresPixPaymentRepository``: PIX payment records on PostgreSQL (migration ``0012``).

A record is a row of ``pix_payments`` (the msgspec JSON of the
:class:`PixPayment` in ``body``, beside ``version`` and ``status``), with one
row per account of ours it touches in ``pix_payment_accounts`` (listing by
account) and one per settlement day in ``pix_payment_days`` (listing by
day). Every write is **one statement**, so one round trip and atomic:

* ``add`` inserts the record ``ON CONFLICT DO NOTHING`` (the EndToEndId and
  ``(payer owner, idempotency key)`` are unique) and, in the same statement,
  its account rows: a clash of either key writes nothing and raises
  ``PixPaymentAlreadyExists``, however late or concurrent the retry.
  ``add_announced`` (the ``AnnouncedPaymentRecorder`` port) is the same
  statement with the record's event appended to the outbox
  (``outbox_append``) only when the record went in: a new payment and its
  ``pix.payment_requested`` in one round trip, both or neither.
  ``add_announced_releasing`` also drops the request's in-flight claim
  (``pix_request_claims``) when the record goes in. ``update_announced``
  does the same as ``add_announced`` for a transition and its outcome events.
* ``update`` replaces the record ``WHERE version = expected`` and the stored
  status is ``PENDING`` or already the new one (a final record never goes
  back), the DynamoDB adapter's condition; the day rows of a settled record
  go in with it. When no row matched, one read tells ``PixPaymentNotFound``,
  ``PixVersionConflict`` and ``IllegalPixTransition`` apart.

Listings are keyset-paged, newest first by account, oldest settlement first
by day; the cursor is the last row's key, base64 JSON bound to the listing
it came from (another listing's cursor, or a tampered one, is
``InvalidInput`` naming ``cursor``). Driver errors leave through
:mod:`~finbank_adapters.postgres.errors`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

import asyncpg
import msgspec

from finbank_adapters.postgres.errors import translated
from finbank_adapters.postgres.ledger import event_columns
from finbank_core.pix.errors import (
    IllegalPixTransition,
    PixPaymentAlreadyExists,
    PixPaymentNotFound,
    PixVersionConflict,
)
from finbank_core.pix.payments import (
    SAO_PAULO,
    PaymentDirection,
    PaymentPage,
    PaymentStatus,
    PixPayment,
)
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.events import EventEnvelope

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(PixPayment)
_MAX_LIMIT = 1000

_ADD = """
WITH record AS (
    INSERT INTO pix_payments
        (end_to_end_id, version, status, flow, created_at, payer_owner_id, idempotency_key, body)
    VALUES ($1, 1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT DO NOTHING
    RETURNING end_to_end_id, created_at
), accounts AS (
    INSERT INTO pix_payment_accounts (account_id, created_at, end_to_end_id, sent, received)
    SELECT a.account_id, r.created_at, r.end_to_end_id, a.sent, a.received
    FROM record r,
         unnest($8::uuid[], $9::boolean[], $10::boolean[]) AS a(account_id, sent, received)
)
SELECT count(*) FROM record
"""

# _ADD and, only when the record went in, its event appended to the outbox in the same
# statement (the final SELECT reads `announced`, so the call is made, once, after the insert).
_ADD_ANNOUNCED = _ADD.replace(
    "SELECT count(*) FROM record",
    """, announced AS (
    SELECT outbox_append($11, $12, $13, $14, $15, $16) FROM record
)
SELECT count(*) FROM record, announced""",
)

# _ADD_ANNOUNCED that, when the record went in, also drops the request's in-flight claim
# if the caller's token holds it (``add_announced_releasing``): one write fewer a request.
_ADD_ANNOUNCED_RELEASING = _ADD_ANNOUNCED.replace(
    "SELECT count(*) FROM record, announced",
    """, released AS (
    DELETE FROM pix_request_claims c USING record
    WHERE c.claim_id = $17 AND c.token = $18
)
SELECT count(*) FROM record, announced""",
)

_UPDATE = """
WITH record AS (
    UPDATE pix_payments SET version = $2 + 1, status = $3, body = $4
    WHERE end_to_end_id = $1 AND version = $2 AND (status = $3 OR status = 'PENDING')
    RETURNING end_to_end_id
), days AS (
    INSERT INTO pix_payment_days (day, settled_at, end_to_end_id)
    SELECT d.day, $5, r.end_to_end_id FROM record r, unnest($6::date[]) AS d(day)
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM record
"""

# _UPDATE and, only when the record changed, its outcome events appended to the outbox in
# the same statement (``update_announced``): a final status and its events, both or neither.
_UPDATE_ANNOUNCED = _UPDATE.replace(
    "SELECT count(*) FROM record",
    """, announced AS (
    SELECT outbox_append($7, $8, $9, $10, $11, $12) FROM record
)
SELECT count(*) FROM record, announced""",
)

_GET = "SELECT body FROM pix_payments WHERE end_to_end_id = $1"
_STATE = "SELECT version, status FROM pix_payments WHERE end_to_end_id = $1"
_BY_KEY = "SELECT body FROM pix_payments WHERE payer_owner_id = $1 AND idempotency_key = $2"

# Keyset paging: ($after_at, $after_e2e) is the last row of the page before.
_BY_ACCOUNT = """
SELECT a.created_at, a.end_to_end_id, p.body
FROM pix_payment_accounts a JOIN pix_payments p USING (end_to_end_id)
WHERE a.account_id = $1
  AND ($2::timestamptz IS NULL OR a.created_at >= $2)
  AND ($3::timestamptz IS NULL OR a.created_at < $3)
  AND ($4::timestamptz IS NULL OR (a.created_at, a.end_to_end_id) < ($4, $5))
  AND ($6::text[] IS NULL OR p.status = ANY($6))
  AND ($7::boolean IS NULL OR ($7 AND a.sent) OR (NOT $7 AND a.received))
ORDER BY a.created_at DESC, a.end_to_end_id DESC
LIMIT $8
"""

_BY_DAY = """
SELECT d.settled_at, d.end_to_end_id, p.body
FROM pix_payment_days d JOIN pix_payments p USING (end_to_end_id)
WHERE d.day = $1 AND p.status = 'SETTLED'
  AND ($2::timestamptz IS NULL OR (d.settled_at, d.end_to_end_id) > ($2, $3))
ORDER BY d.settled_at, d.end_to_end_id
LIMIT $4
"""


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= _MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {_MAX_LIMIT}", field="limit")


class _Cursor(msgspec.Struct, frozen=True, array_like=True):
    listing: str
    at: datetime
    e2e: str


def _encode_cursor(listing: str, at: datetime, e2e: str) -> str:
    raw = msgspec.json.encode(_Cursor(listing, at, e2e))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, listing: str) -> _Cursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = msgspec.json.decode(raw, type=_Cursor)
    except (msgspec.DecodeError, msgspec.ValidationError, binascii.Error, ValueError):
        raise InvalidInput("invalid cursor", field="cursor") from None
    if decoded.listing != listing or decoded.at.tzinfo is None:
        raise InvalidInput("invalid cursor", field="cursor")
    return decoded


def _sides(payment: PixPayment) -> tuple[list[uuid.UUID], list[bool], list[bool]]:
    ids = list(dict.fromkeys(payment.account_ids()))
    sent = [payment.payer.account_id == a for a in ids]
    received = [payment.payee.account_id == a for a in ids]
    return ids, sent, received


class PostgresPixPaymentRepository:
    """The ``PixPaymentRepository`` port on PostgreSQL (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool, *, timezone: str = SAO_PAULO) -> None:
        self._pool = pool
        self._timezone = timezone

    # -- writes ------------------------------------------------------------------------

    async def add_announced(self, payment: PixPayment, event: EventEnvelope) -> PixPayment:
        """``add`` and ``event`` in the outbox, one statement (``AnnouncedPaymentRecorder``).

        For a publisher writing to the outbox of this same database; a clash
        stores neither the record nor the event.
        """
        return await self._add(payment, _ADD_ANNOUNCED, event_columns([event]))

    async def add_announced_releasing(
        self, payment: PixPayment, event: EventEnvelope, claim_id: str, token: str
    ) -> PixPayment:
        """``add_announced`` that also releases the request claim ``claim_id`` held by
        ``token`` (``pix_request_claims``, this database) when the record goes in
        (``ClaimReleasingRecorder``); a clash releases nothing."""
        return await self._add(
            payment, _ADD_ANNOUNCED_RELEASING, (*event_columns([event]), claim_id, token)
        )

    async def add(self, payment: PixPayment) -> PixPayment:
        return await self._add(payment, _ADD, ())

    async def _add(self, payment: PixPayment, sql: str, extra: tuple[Any, ...]) -> PixPayment:
        stored = msgspec.structs.replace(payment, version=1)
        ids, sent, received = _sides(stored)
        owner = stored.payer.owner_id if stored.idempotency_key is not None else None
        with translated():
            added: int = await self._pool.fetchval(
                sql,
                stored.end_to_end_id,
                stored.status.value,
                stored.flow.value,
                stored.created_at,
                owner,
                stored.idempotency_key if owner is not None else None,
                _encoder.encode(stored).decode(),
                ids,
                sent,
                received,
                *extra,
            )
        if not added:
            raise PixPaymentAlreadyExists("a payment with this id or idempotency key exists")
        return stored

    async def update(self, payment: PixPayment, expected_version: int) -> PixPayment:
        return await self._update(payment, expected_version, _UPDATE, ())

    async def update_announced(
        self, payment: PixPayment, expected_version: int, events: Sequence[EventEnvelope]
    ) -> PixPayment:
        """``update`` and ``events`` in the outbox, one statement (``AnnouncedTransitionRecorder``).

        For a publisher writing to the outbox of this same database; when the
        record does not change (a conflict), neither event is stored.
        """
        if not events:
            return await self.update(payment, expected_version)
        return await self._update(
            payment, expected_version, _UPDATE_ANNOUNCED, event_columns(events)
        )

    async def _update(
        self, payment: PixPayment, expected_version: int, sql: str, extra: tuple[Any, ...]
    ) -> PixPayment:
        stored = msgspec.structs.replace(payment, version=expected_version + 1)
        settled = stored.status is PaymentStatus.SETTLED and stored.settled_at is not None
        days = sorted(stored.settlement_days(self._timezone)) if settled else []
        with translated():
            updated: int = await self._pool.fetchval(
                sql,
                stored.end_to_end_id,
                expected_version,
                stored.status.value,
                _encoder.encode(stored).decode(),
                stored.settled_at,
                days,
                *extra,
            )
            if updated:
                return stored
            row = await self._pool.fetchrow(_STATE, stored.end_to_end_id)
        if row is None:
            raise PixPaymentNotFound()
        if row["version"] != expected_version:
            raise PixVersionConflict()
        current: str = row["status"]
        raise IllegalPixTransition(
            f"a payment cannot go from {current} to {stored.status.value}",
            current=current,
            target=stored.status.value,
        )

    # -- reads -------------------------------------------------------------------------

    async def get(self, end_to_end_id: str) -> PixPayment:
        with translated():
            body: str | None = await self._pool.fetchval(_GET, end_to_end_id)
        if body is None:
            raise PixPaymentNotFound()
        return _decoder.decode(body)

    async def get_by_idempotency_key(self, owner_id: str, key: str) -> PixPayment | None:
        with translated():
            body: str | None = await self._pool.fetchval(_BY_KEY, owner_id, key)
        return None if body is None else _decoder.decode(body)

    async def list_by_account(
        self,
        account_id: uuid.UUID,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
        statuses: Collection[PaymentStatus] | None = None,
        direction: PaymentDirection | None = None,
    ) -> PaymentPage:
        _check_limit(limit)
        listing = f"account:{account_id}"
        after = _decode_cursor(cursor, listing) if cursor else None
        with translated():
            rows = await self._pool.fetch(
                _BY_ACCOUNT,
                account_id,
                since,
                until,
                after.at if after else None,
                after.e2e if after else None,
                None if statuses is None else sorted(s.value for s in statuses),
                None if direction is None else direction is PaymentDirection.SENT,
                limit + 1,
            )
        return self._page(rows, limit, listing)

    async def list_by_settlement_day(
        self, day: date, *, limit: int = 100, cursor: str | None = None
    ) -> PaymentPage:
        _check_limit(limit)
        listing = f"day:{day.isoformat()}"
        after = _decode_cursor(cursor, listing) if cursor else None
        with translated():
            rows = await self._pool.fetch(
                _BY_DAY,
                day,
                after.at if after else None,
                after.e2e if after else None,
                limit + 1,
            )
        return self._page(rows, limit, listing)

    @staticmethod
    def _page(rows: list[Any], limit: int, listing: str) -> PaymentPage:
        more = len(rows) > limit
        rows = rows[:limit]
        items = [_decoder.decode(row["body"]) for row in rows]
        next_cursor = _encode_cursor(listing, rows[-1][0], rows[-1][1]) if more and rows else None
        return PaymentPage(items=items, next_cursor=next_cursor)
