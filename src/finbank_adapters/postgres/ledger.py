"""``PostgresLedger``: the ``Ledger`` port on PostgreSQL through asyncpg.

Each public method is **one** round trip: a call to a server-side function
(migration ``0002_ledger.sql``) that runs as its own READ COMMITTED
transaction (autocommit). ``ledger_create_transfers`` locks every stored
transfer it resolves or expires, then every account involved, each set
sorted by id (``SELECT ... ORDER BY id FOR UPDATE``), so concurrent batches
queue on shared accounts instead of deadlocking; it then computes the batch
in memory (balance checks, linked chains with rollback) and writes the
outcome set-based: accounts, transfers (the id is the primary key: the
idempotency key lives in the same transaction), entries with their running
balance, and outbox rows for ``events`` when at least one transfer was
applied.

Time comes from the injected ``Clock``, passed into SQL as a parameter:
transfer timestamps and pending timeouts follow the ledger's clock, never the
server's ``now()``. Like the in-memory ledger, every call first voids the
pending transfers due at that time (an index over live pending transfers
with a timeout makes this free when there are none).

A serialization failure or deadlock (which sorted locking should make rare:
it remains possible when two batches race to store the same transfer id with
different accounts) is retried a bounded number of times; driver errors leave
through :mod:`finbank_adapters.postgres.errors`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from finbank_adapters.postgres.errors import RetryPolicy, translated, with_retries
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    Entry,
    EntryPage,
    EntrySide,
    LedgerAccount,
    NewAccount,
    PendingStatus,
    Transfer,
    TransferFlags,
    TransferRecord,
)
from finbank_core.shared.clock import Clock
from finbank_core.shared.events import EventEnvelope, encode_event

_TRANSFER_RESULTS = {r.value: r for r in CreateTransferResult}
_ACCOUNT_RESULTS = {r.value: r for r in CreateAccountResult}

_CREATE_TRANSFERS = "SELECT ledger_create_transfers({})".format(
    ", ".join(f"${n}" for n in range(1, 17))
)
_CREATE_TRANSFERS_WITH_EVENTS = "SELECT ledger_create_transfers({})".format(
    ", ".join(f"${n}" for n in range(1, 23))
)
_CREATE_TRANSFER = "SELECT ledger_create_transfer({})".format(
    ", ".join(f"${n}" for n in range(1, 11))
)
_CREATE_TRANSFER_WITH_EVENTS = "SELECT ledger_create_transfer({})".format(
    ", ".join(f"${n}" for n in range(1, 17))
)
_ENTRIES = """
SELECT sequence, account_id, transfer_id, side, amount, balance_after, code, created_at,
       user_data
  FROM ledger_entries
 WHERE account_id = $1
   AND ($2::bigint IS NULL OR sequence > $2)
   AND ($3::timestamptz IS NULL OR created_at >= $3)
   AND ($4::timestamptz IS NULL OR created_at < $4)
 ORDER BY sequence
 LIMIT $5
"""


def event_columns(events: Sequence[EventEnvelope]) -> tuple[list[Any], ...]:
    """The six parallel arrays ``outbox_append`` takes."""
    return (
        [e.event_id for e in events],
        [e.aggregate_id for e in events],
        [e.type for e in events],
        [e.topic() for e in events],
        [e.occurred_at for e in events],
        [encode_event(e) for e in events],
    )


class PostgresLedger:
    """The ledger on PostgreSQL; ``pool`` is opened and closed by its owner (the container)."""

    def __init__(
        self, pool: asyncpg.Pool, clock: Clock, *, retry: RetryPolicy | None = None
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._retry = retry or RetryPolicy()
        #: how many attempts were retried after 40001/40P01 (for tests and metrics)
        self.retries = 0

    def _count_retry(self, _exc: BaseException) -> None:
        self.retries += 1

    async def _fetchval(self, query: str, *args: Any) -> Any:
        with translated():
            return await with_retries(
                lambda: self._pool.fetchval(query, *args), self._retry, self._count_retry
            )

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        with translated():
            return await with_retries(
                lambda: self._pool.fetch(query, *args), self._retry, self._count_retry
            )

    # -- accounts ---------------------------------------------------------------

    async def create_accounts(self, accounts: Sequence[NewAccount]) -> list[CreateAccountResult]:
        if not accounts:
            return []
        raw: list[str] = await self._fetchval(
            "SELECT ledger_create_accounts($1, $2, $3, $4, $5)",
            self._clock.now(),
            [a.id for a in accounts],
            [int(a.code) for a in accounts],
            [int(a.flags) for a in accounts],
            [int(a.ledger) for a in accounts],
        )
        return [_ACCOUNT_RESULTS[r] for r in raw]

    async def lookup_accounts(self, ids: Sequence[uuid.UUID]) -> list[LedgerAccount]:
        if not ids:
            return []
        rows = await self._fetch(
            "SELECT * FROM ledger_lookup_accounts($1, $2)", self._clock.now(), list(ids)
        )
        by_id = {row["id"]: row for row in rows}
        return [_account(by_id[i]) for i in ids if i in by_id]

    # -- transfers --------------------------------------------------------------

    async def create_transfers(
        self,
        transfers: Sequence[Transfer],
        *,
        events: Sequence[EventEnvelope] = (),
    ) -> list[CreateTransferResult]:
        if not transfers:
            return []
        if len(transfers) == 1 and not transfers[0].flags:
            single = await self._create_single(transfers[0], events)
            if single is not None:
                return [single]
        # What needs no database is worked out here (see ledger_create_transfers).
        first_position: dict[uuid.UUID, int] = {}
        firsts = [first_position.setdefault(t.id, n) for n, t in enumerate(transfers, 1)]
        pending_firsts = [
            first_position.get(t.pending_id) if t.pending_id is not None else None
            for t in transfers
        ]
        accounts = sorted(
            {
                a
                for t in transfers
                for a in (t.debit_account_id, t.credit_account_id)
                if a is not None
            }
        )  # uuid.UUID orders by its 128-bit value, as PostgreSQL orders uuid
        slot: dict[uuid.UUID | None, int] = {a: n for n, a in enumerate(accounts, 1)}
        args: list[Any] = [
            self._clock.now(),
            [t.id for t in transfers],
            [t.debit_account_id for t in transfers],
            [t.credit_account_id for t in transfers],
            [t.amount for t in transfers],
            [t.pending_id for t in transfers],
            [int(t.flags) for t in transfers],
            [int(t.code) for t in transfers],
            [int(t.ledger) for t in transfers],
            [t.timeout_seconds for t in transfers],
            [t.user_data for t in transfers],
            firsts,
            pending_firsts,
            accounts,
            [slot.get(t.debit_account_id) for t in transfers],
            [slot.get(t.credit_account_id) for t in transfers],
        ]
        query = _CREATE_TRANSFERS
        if events:
            args.extend(event_columns(events))
            query = _CREATE_TRANSFERS_WITH_EVENTS
        raw: list[str] = await self._fetchval(query, *args)
        return [_TRANSFER_RESULTS[r] for r in raw]

    async def _create_single(
        self, transfer: Transfer, events: Sequence[EventEnvelope]
    ) -> CreateTransferResult | None:
        """One single-phase transfer through ``ledger_create_transfer`` (one statement, no arrays).

        ``None`` when a pending transfer is due to expire: the batch function handles that.
        """
        args: list[Any] = [
            self._clock.now(),
            transfer.id,
            transfer.debit_account_id,
            transfer.credit_account_id,
            transfer.amount,
            transfer.pending_id,
            int(transfer.code),
            int(transfer.ledger),
            transfer.timeout_seconds,
            transfer.user_data,
        ]
        query = _CREATE_TRANSFER
        if events:
            args.extend(event_columns(events))
            query = _CREATE_TRANSFER_WITH_EVENTS
        raw: str | None = await self._fetchval(query, *args)
        return None if raw is None else _TRANSFER_RESULTS[raw]

    async def lookup_transfers(self, ids: Sequence[uuid.UUID]) -> list[TransferRecord]:
        if not ids:
            return []
        rows = await self._fetch(
            "SELECT * FROM ledger_lookup_transfers($1, $2)", self._clock.now(), list(ids)
        )
        by_id = {row["id"]: row for row in rows}
        return [_transfer(by_id[i]) for i in ids if i in by_id]

    async def expire_pending_transfers(self) -> int:
        count: int = await self._fetchval("SELECT ledger_expire($1)", self._clock.now())
        return count

    # -- statements -------------------------------------------------------------

    async def get_account_entries(
        self,
        account_id: uuid.UUID,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        after_sequence: int | None = None,
        limit: int = 100,
    ) -> EntryPage:
        if limit <= 0:
            return EntryPage(entries=[], next_after_sequence=None)
        rows = await self._fetch(_ENTRIES, account_id, after_sequence, since, until, limit + 1)
        entries = [_entry(row) for row in rows[:limit]]
        more = len(rows) > limit
        return EntryPage(
            entries=entries,
            next_after_sequence=entries[-1].sequence if more and entries else None,
        )


def _account(row: asyncpg.Record) -> LedgerAccount:
    return LedgerAccount(
        id=row["id"],
        code=row["code"],
        flags=AccountFlags(row["flags"]),
        ledger=row["ledger"],
        debits_pending=row["debits_pending"],
        debits_posted=row["debits_posted"],
        credits_pending=row["credits_pending"],
        credits_posted=row["credits_posted"],
        timestamp=row["created_at"],
    )


def _transfer(row: asyncpg.Record) -> TransferRecord:
    return TransferRecord(
        request=Transfer(
            id=row["id"],
            debit_account_id=row["req_debit_id"],
            credit_account_id=row["req_credit_id"],
            amount=row["req_amount"],
            code=row["code"],
            flags=TransferFlags(row["flags"]),
            pending_id=row["pending_id"],
            timeout_seconds=row["timeout_seconds"],
            ledger=row["ledger"],
            user_data=row["user_data"],
        ),
        debit_account_id=row["debit_account_id"],
        credit_account_id=row["credit_account_id"],
        amount=row["amount"],
        timestamp=row["created_at"],
        status=PendingStatus(row["status"]),
    )


def _entry(row: asyncpg.Record) -> Entry:
    return Entry(
        sequence=row["sequence"],
        account_id=row["account_id"],
        transfer_id=row["transfer_id"],
        side=EntrySide(row["side"]),
        amount=row["amount"],
        balance_after=row["balance_after"],
        code=row["code"],
        timestamp=row["created_at"],
        user_data=row["user_data"],
    )
