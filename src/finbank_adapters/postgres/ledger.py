"""``PostgresLedger``: the ``Ledger`` port on PostgreSQL through asyncpg.

Each public method is one round trip to a server-side function (migrations
``0002``, ``0007``, ``0009``, ``0010``; one plain transfer with one event:
``0025``) that runs as its own transaction; it
locks stored transfers, then accounts, each sorted by id, so concurrent
batches queue instead of deadlocking. Time comes from the injected
``Clock``. The rules are :mod:`finbank_core.accounts.ledger_rules`: the
checks that need no stored state are worked out here
(``_transfer_pre``/``_transfer_mid``/``_transfer_late`` and their account
twins) and passed to SQL as result codes; u32/u64 values are stored with
their bit pattern in signed columns (:func:`_s32`, :func:`_s64`).
Serialization failures and deadlocks are retried a bounded number of times;
driver errors leave through :mod:`finbank_adapters.postgres.errors`.

Group commit (``group_max_in_flight``): with that many transfer calls in
flight, groupable callers wait in a queue and go together as one call of
``ledger_create_transfer_group`` or ``ledger_create_transfers_grouped``
(migration ``0024``): one transaction, one commit, each caller answered with
its own slice and its events kept to its own transfers (``docs/postgres.md``,
"Group commit"). A group of plain transfers takes at most its share of the callers
in the ledger (``group_split``, :meth:`PostgresLedger._drain`).

An internal transfer's account checks (owner, status) can ride in the same call
and transaction: ``submit_checked`` and ``PostgresCheckedTransfers`` (the
``CheckedTransfers`` port), through ``ledger_create_checked_transfer_group``
(migration ``0026``; ``docs/postgres.md``, "Internal transfers in one call").

The design (locking, the fast path, the query functions and their indexes)
is in ``docs/architecture.md``, "The PostgreSQL ledger", and ``docs/postgres.md``.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import asyncpg.exceptions as pg

from finbank_adapters import tracing
from finbank_adapters.metrics import record_ledger_results
from finbank_adapters.postgres.errors import (
    RetriesExhausted,
    RetryPolicy,
    is_lost_connection,
    is_retryable,
    translate_error,
    translated,
    with_retries,
)
from finbank_core.accounts.access import ComposedCheckedTransfers
from finbank_core.accounts.ledger import (
    ACCOUNT_FLAGS_KNOWN,
    MAX_AMOUNT,
    MAX_U16,
    MAX_U32,
    MAX_U64,
    MAX_U128,
    AccountBalance,
    AccountFilter,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    Entry,
    EntryPage,
    EntrySide,
    LedgerAccount,
    NewAccount,
    PendingStatus,
    QueryFilter,
    SubmittedTransfer,
    Transfer,
    TransferFlags,
    TransferRecord,
    check_entry_window,
    check_filter,
    check_transfer_texts,
)
from finbank_core.accounts.ledger_rules import batch_check, out_of_range
from finbank_core.accounts.model import AccountStatus
from finbank_core.accounts.ports import AccountRepository
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import AccountNotActive, AccountNotFound
from finbank_core.shared.events import EventEnvelope, encode_event


def _uuid_from_bytes(data: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=data)


try:  # asyncpg's UUID (a uuid.UUID) encodes without a Python call
    from asyncpg.pgproto.pgproto import UUID as _AsyncpgUUID

    _PgUUID: Callable[[bytes], uuid.UUID] = _AsyncpgUUID
except ImportError:  # pragma: no cover - an asyncpg without it
    _PgUUID = _uuid_from_bytes

_TRANSFER_RESULTS = {r.value: r for r in CreateTransferResult}
_ACCOUNT_RESULTS = {r.value: r for r in CreateAccountResult}

R = CreateTransferResult
A = CreateAccountResult


def _call(function: str, arity: int) -> str:
    return "SELECT {}({})".format(function, ", ".join(f"${n}" for n in range(1, arity + 1)))


_CREATE_ACCOUNTS = _call("ledger_create_accounts", 13)
_CREATE_TRANSFERS = _call("ledger_create_transfers", 25)
_CREATE_TRANSFERS_WITH_EVENTS = _call("ledger_create_transfers", 31)
#: the time a single transfer's statement takes as its first argument: the interval
#: since the Unix epoch (``now - _UNIX_EPOCH``, a timedelta), made a timestamptz by the
#: server exactly (a timestamp without time zone plus an interval adds its days and
#: microseconds as they are, whatever the session's TimeZone; then read as UTC).
#: asyncpg's timestamptz encoder costs ~7k instructions a call (two comparisons with its
#: infinities, each calling the time zone's utcoffset by name); the subtraction and the
#: interval's encoding ~1.5k.
_AT_INTERVAL = "(timestamp '1970-01-01' + $1::interval) AT TIME ZONE interval '00:00'"
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _call_at(function: str, arity: int, times: tuple[int, ...] = (1,)) -> str:
    """``_call``, its arguments at ``times`` (the time, an event's) as intervals
    (``_AT_INTERVAL``)."""
    placeholders = (
        _AT_INTERVAL.replace("$1", f"${n}") if n in times else f"${n}" for n in range(1, arity + 1)
    )
    return "SELECT {}({})".format(function, ", ".join(placeholders))


_CREATE_TRANSFER = _call_at("ledger_create_transfer", 12)
_CREATE_TRANSFER_WITH_EVENTS = _call_at("ledger_create_transfer", 18)
#: one plain transfer and exactly one event, the event as scalars (0025): no arrays to
#: encode; its ``occurred_at`` (argument 17) as an interval too
_CREATE_TRANSFER_WITH_EVENT = _call_at("ledger_create_transfer_event", 18, (1, 17))
#: the three above with the times as timestamptz, for the two times asyncpg sends as
#: -infinity and infinity (``datetime.min`` and ``datetime.max`` in UTC): no clock's
_WITH_TIMESTAMPTZ = {
    _CREATE_TRANSFER: _call("ledger_create_transfer", 12),
    _CREATE_TRANSFER_WITH_EVENTS: _call("ledger_create_transfer", 18),
    _CREATE_TRANSFER_WITH_EVENT: _call("ledger_create_transfer_event", 18),
}
_MIN_SINCE_EPOCH = datetime.min.replace(tzinfo=UTC) - _UNIX_EPOCH
_MAX_SINCE_EPOCH = datetime.max.replace(tzinfo=UTC) - _UNIX_EPOCH
#: several callers' batches in one call, each caller's events kept to its own transfers (0024)
_CREATE_TRANSFERS_GROUPED = _call("ledger_create_transfers_grouped", 32)
#: several callers' single plain transfers, each through ledger_create_transfer, one commit
_CREATE_TRANSFER_GROUP = _call("ledger_create_transfer_group", 19)
#: the same, each member with an optional check of its two customer accounts (0026)
_CREATE_CHECKED_TRANSFER_GROUP = _call("ledger_create_checked_transfer_group", 20)
_EXPIRE = "SELECT ledger_expire($1)"
#: how many times a checked group is sent again after expiring what fell due
_CHECKED_GROUP_EXPIRY_ROUNDS = 3


def _set_returning(function: str, arity: int) -> str:
    # function names are the constants below, never input
    placeholders = ", ".join(f"${n}" for n in range(1, arity + 1))
    return f"SELECT * FROM {function}({placeholders})"  # noqa: S608


_QUERY_TRANSFERS = _set_returning("ledger_query_transfers", 13)
_ACCOUNT_BALANCES = _set_returning("ledger_account_balances_of", 12)

# Transfer flags as plain ints (IntFlag operators run Python code).
_LINKED = int(TransferFlags.LINKED)
_PENDING = int(TransferFlags.PENDING)
_POST = int(TransferFlags.POST_PENDING_TRANSFER)
_VOID = int(TransferFlags.VOID_PENDING_TRANSFER)
_BALANCING = int(TransferFlags.BALANCING_DEBIT | TransferFlags.BALANCING_CREDIT)
_CLOSING = int(TransferFlags.CLOSING_DEBIT | TransferFlags.CLOSING_CREDIT)
_IMPORTED = int(TransferFlags.IMPORTED)
_NOT_WITH_POST_OR_VOID = _PENDING | _BALANCING | _CLOSING
_ACCOUNT_LINKED = int(AccountFlags.LINKED)
_ACCOUNT_IMPORTED = int(AccountFlags.IMPORTED)
_ACCOUNT_CLOSED = int(AccountFlags.CLOSED)
_BOTH_LIMITS = int(
    AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
)
#: a post/void's request fields that were left 0/None (column ``inherited``)
_INH_CODE, _INH_LEDGER, _INH_USER_DATA, _INH_128, _INH_64, _INH_32 = 1, 2, 4, 8, 16, 32
_ZERO_UUID = uuid.UUID(int=0)


def _uuid_of(value: int) -> uuid.UUID:
    """A u128 as the UUID asyncpg encodes fastest: its own ``UUID`` type takes its 16
    bytes as they are, a ``uuid.UUID`` is asked for ``.bytes`` (a Python property)."""
    return _PgUUID(value.to_bytes(16, "big"))


#: ``user_data_128`` 0, the commonest, built once
_ZERO_PG_UUID = _uuid_of(0)
_NO_FLAGS = TransferFlags.NONE


def _s32(value: int) -> int:
    """An unsigned 32-bit value as the signed integer with the same bits (its column)."""
    return value - (1 << 32) if value >= 1 << 31 else value


def _u32(value: int) -> int:
    return value + (1 << 32) if value < 0 else value


def _s64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _u64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


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
    """The six parallel arrays ``outbox_append`` takes.

    With tracing on, events without a creation context get one (a create
    span each; ``finbank_adapters.tracing``) before they are encoded.
    """
    events = tracing.stamp(events)
    return (
        [e.event_id for e in events],
        [e.aggregate_id for e in events],
        [e.type for e in events],
        [e.topic() for e in events],
        [e.occurred_at for e in events],
        [encode_event(e) for e in events],
    )


def _event_scalars(event: EventEnvelope) -> tuple[Any, ...]:
    """One event as ``ledger_create_transfer_event`` takes it: ``event_columns``' six
    values for it, each alone instead of in a one-element array (stamped likewise)."""
    [event] = tracing.stamp((event,))
    occurred_at = event.occurred_at
    return (
        event.event_id,
        event.aggregate_id,
        event.type,
        event.topic(),
        # as an interval (_since_epoch), as the statement takes it
        (occurred_at if occurred_at.tzinfo is UTC else occurred_at.astimezone(UTC)) - _UNIX_EPOCH,
        encode_event(event),
    )


def _single_call(
    t: Transfer, now: datetime, events: Sequence[EventEnvelope]
) -> tuple[str, tuple[Any, ...]]:
    """The statement and arguments of one plain transfer through ``ledger_create_transfer``.

    Only for a transfer without flags, pending id, timeout or timestamp that
    passed the checks before ``exists``. Exactly one event goes as scalars
    (``ledger_create_transfer_event``), several as arrays.
    """
    # _transfer_mid(t, 0) is None when these hold (pending id and timeout are unset
    # here); asked only otherwise, for its result code. The ids compare by their
    # ints: UUID.__eq__ is a Python call.
    debit = t.debit_account_id
    credit = t.credit_account_id
    if (
        debit is not None
        and credit is not None
        and 0 < (debit_int := debit.int) < MAX_U128
        and 0 < (credit_int := credit.int) < MAX_U128
        and debit_int != credit_int
        and t.amount != 0
        and t.ledger != 0
        and t.code != 0
    ):
        mid = None
    else:
        mid = _transfer_mid(t, 0)
    ledger = t.ledger
    ud128 = t.user_data_128
    ud64 = t.user_data_64
    ud32 = t.user_data_32
    at = (now if now.tzinfo is UTC else now.astimezone(UTC)) - _UNIX_EPOCH  # _since_epoch
    args: tuple[Any, ...] = (
        at,
        t.id,
        debit,
        credit,
        t.amount,
        t.code,
        ledger - (1 << 32) if ledger >= 1 << 31 else ledger,  # _s32, inline
        t.user_data,
        _uuid_of(ud128) if ud128 else _ZERO_PG_UUID,
        ud64 - (1 << 64) if ud64 >= 1 << 63 else ud64,  # _s64
        ud32 - (1 << 32) if ud32 >= 1 << 31 else ud32,  # _s32
        mid,
    )
    if not events:
        query = _CREATE_TRANSFER
    elif len(events) == 1:
        query = _CREATE_TRANSFER_WITH_EVENT
        args = (*args, *_event_scalars(events[0]))
    else:
        query = _CREATE_TRANSFER_WITH_EVENTS
        args = (*args, *event_columns(events))
    if _MIN_SINCE_EPOCH < at < _MAX_SINCE_EPOCH and (
        query is not _CREATE_TRANSFER_WITH_EVENT or _MIN_SINCE_EPOCH < args[16] < _MAX_SINCE_EPOCH
    ):
        return query, args
    # a time asyncpg sends as an infinity: the statement with every time a timestamptz
    if query is _CREATE_TRANSFER_WITH_EVENT:
        args = (*args[:16], events[0].occurred_at, args[17])
    return _WITH_TIMESTAMPTZ[query], (now, *args[1:])


def _since_epoch(now: datetime) -> timedelta:
    """The time since the Unix epoch of the instant asyncpg would send for ``now`` as a
    timestamptz (a naive one read as local time, as asyncpg's ``astimezone`` reads it)."""
    return (now if now.tzinfo is UTC else now.astimezone(UTC)) - _UNIX_EPOCH


# -- the checks that need no stored state, in ledger_rules' order ---------------------


def _transfer_pre(t: Transfer, flags: int, batch: str | None) -> str | None:
    """Everything before the ``exists`` check: batch checks, types, reserved ids."""
    if batch is not None:
        return batch
    failed = out_of_range(t, flags)
    if failed is not None:
        return failed
    if t.id.int == 0:
        return R.ID_MUST_NOT_BE_ZERO
    if t.id.int == MAX_U128:
        return R.ID_MUST_NOT_BE_INT_MAX
    return None


def _transfer_mid(t: Transfer, flags: int) -> str | None:
    """The stateless checks right after ``exists`` (steps 6 and 7 up to the look-ups)."""
    if flags & (_POST | _VOID):
        if (flags & _POST and flags & _VOID) or flags & _NOT_WITH_POST_OR_VOID:
            return R.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        if t.pending_id is None:
            return R.PENDING_ID_REQUIRED
        if t.pending_id.int == 0:
            return R.PENDING_ID_MUST_NOT_BE_ZERO
        if t.pending_id.int == MAX_U128:
            return R.PENDING_ID_MUST_NOT_BE_INT_MAX
        if t.pending_id == t.id:
            return R.PENDING_ID_MUST_BE_DIFFERENT
        if t.timeout_seconds:
            return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        return None
    debit = t.debit_account_id  # unrolled: this runs for every transfer, plain ones too
    if debit is None:
        return R.DEBIT_ACCOUNT_ID_REQUIRED
    if debit.int == 0:
        return R.DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
    if debit.int == MAX_U128:
        return R.DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX
    credit = t.credit_account_id
    if credit is None:
        return R.CREDIT_ACCOUNT_ID_REQUIRED
    if credit.int == 0:
        return R.CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
    if credit.int == MAX_U128:
        return R.CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX
    if t.debit_account_id == t.credit_account_id:
        return R.ACCOUNTS_MUST_BE_DIFFERENT
    if t.pending_id is not None and t.pending_id.int != 0:
        return R.PENDING_ID_MUST_BE_ZERO
    if not flags & _PENDING:
        if t.timeout_seconds:
            return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        if flags & _CLOSING:
            return R.CLOSING_TRANSFER_MUST_BE_PENDING
    if t.amount == 0 and not flags & _CLOSING:
        return R.AMOUNT_MUST_NOT_BE_ZERO
    if t.ledger == 0:
        return R.LEDGER_MUST_NOT_BE_ZERO
    if t.code == 0:
        return R.CODE_MUST_NOT_BE_ZERO
    return None


def _transfer_late(
    t: Transfer, flags: int, timestamp: datetime
) -> tuple[str | None, datetime | None]:
    """The two stateless checks that come after stateful ones, and the expiry time."""
    if flags & (_POST | _VOID) or not t.timeout_seconds:
        return None, None
    if flags & _IMPORTED:
        return R.IMPORTED_EVENT_TIMEOUT_MUST_BE_ZERO, None
    try:
        return None, timestamp + timedelta(seconds=t.timeout_seconds)
    except OverflowError:
        return R.OVERFLOWS_TIMEOUT, None


class _TransferArgs:
    """The parallel arrays ``ledger_create_transfers`` takes."""

    __slots__ = (
        "amount",
        "code",
        "credit",
        "debit",
        "expires",
        "flags",
        "id",
        "late",
        "ledger",
        "mid",
        "pending",
        "pre",
        "timeout",
        "ts",
        "ud32",
        "ud64",
        "ud128",
        "user_data",
    )

    def __init__(self) -> None:
        self.id: list[uuid.UUID] = []
        self.debit: list[uuid.UUID | None] = []
        self.credit: list[uuid.UUID | None] = []
        self.amount: list[int] = []
        self.pending: list[uuid.UUID | None] = []
        self.flags: list[int] = []
        self.code: list[int] = []
        self.ledger: list[int] = []
        self.timeout: list[int] = []
        self.user_data: list[str | None] = []
        self.ud128: list[uuid.UUID] = []
        self.ud64: list[int] = []
        self.ud32: list[int] = []
        self.ts: list[datetime] = []
        self.expires: list[datetime | None] = []
        self.pre: list[str | None] = []
        self.mid: list[str | None] = []
        self.late: list[str | None] = []

    def add(self, t: Transfer, now: datetime, batch: str | None) -> None:
        flags = int(t.flags)
        pre = _transfer_pre(t, flags, batch)
        self.id.append(t.id)
        self.pre.append(pre)
        if pre is not None:  # the values may not fit their columns: send zeros
            self.debit.append(None)
            self.credit.append(None)
            self.amount.append(0)
            self.pending.append(None)
            self.flags.append(flags & _LINKED)
            self.code.append(0)
            self.ledger.append(0)
            self.timeout.append(0)
            self.user_data.append(None)
            self.ud128.append(_ZERO_UUID)
            self.ud64.append(0)
            self.ud32.append(0)
            self.ts.append(now)
            self.expires.append(None)
            self.mid.append(None)
            self.late.append(None)
            return
        timestamp = t.timestamp if flags & _IMPORTED and t.timestamp is not None else now
        late, expires = _transfer_late(t, flags, timestamp)
        self.debit.append(t.debit_account_id)
        self.credit.append(t.credit_account_id)
        self.amount.append(t.amount)
        self.pending.append(t.pending_id)
        self.flags.append(flags)
        self.code.append(t.code)
        self.ledger.append(_s32(t.ledger))
        self.timeout.append(_s32(t.timeout_seconds))
        self.user_data.append(t.user_data)
        self.ud128.append(uuid.UUID(int=t.user_data_128))
        self.ud64.append(_s64(t.user_data_64))
        self.ud32.append(_s32(t.user_data_32))
        self.ts.append(timestamp)
        self.expires.append(expires)
        self.mid.append(_transfer_mid(t, flags))
        self.late.append(late)


def _transfer_batch_checks(transfers: Sequence[Transfer], now: datetime) -> list[str | None]:
    """Steps 1-2 of ``ledger_rules.apply_batch`` per transfer (chains aside)."""
    count = len(transfers)
    batch_imported = bool(count and int(transfers[0].flags) & _IMPORTED)
    found: list[str | None] = []
    for index, t in enumerate(transfers):
        flags = int(t.flags)
        if (flags & _LINKED and index == count - 1) or batch_imported or flags & _IMPORTED:
            found.append(
                batch_check(
                    index, count, flags, _LINKED, _IMPORTED, batch_imported, t.timestamp, now
                )
            )
        elif t.timestamp is not None:
            found.append(R.TIMESTAMP_MUST_BE_ZERO)
        else:
            found.append(None)
    return found


def _account_pre(new: NewAccount, flags: int, batch: str | None) -> str | None:
    if batch is not None:
        return batch
    if flags & ~ACCOUNT_FLAGS_KNOWN or flags < 0:
        return A.RESERVED_FLAG
    if not 0 <= new.ledger <= MAX_U32:
        return A.LEDGER_OUT_OF_RANGE
    if not 0 <= new.code <= MAX_U16:
        return A.CODE_OUT_OF_RANGE
    if not 0 <= new.user_data_128 <= MAX_U128:
        return A.USER_DATA_128_OUT_OF_RANGE
    if not 0 <= new.user_data_64 <= MAX_U64:
        return A.USER_DATA_64_OUT_OF_RANGE
    if not 0 <= new.user_data_32 <= MAX_U32:
        return A.USER_DATA_32_OUT_OF_RANGE
    if new.id.int == 0:
        return A.ID_MUST_NOT_BE_ZERO
    if new.id.int == MAX_U128:
        return A.ID_MUST_NOT_BE_INT_MAX
    return None


def _account_mid(new: NewAccount, flags: int) -> str | None:
    if flags & _BOTH_LIMITS == _BOTH_LIMITS:
        return A.FLAGS_ARE_MUTUALLY_EXCLUSIVE
    if new.ledger == 0:
        return A.LEDGER_MUST_NOT_BE_ZERO
    if new.code == 0:
        return A.CODE_MUST_NOT_BE_ZERO
    return None


#: the batch checks of one plain transfer (it passes them all)
_ONE_UNCHECKED: tuple[str | None, ...] = (None,)


def _batch_arguments(args: _TransferArgs, now: datetime) -> list[Any]:
    """``ledger_create_transfers``' first 24 arguments (what needs no database is worked out)."""
    first_position: dict[uuid.UUID, int] = {}
    firsts = [first_position.setdefault(i, n) for n, i in enumerate(args.id, 1)]
    pending_firsts = [first_position.get(p) if p is not None else None for p in args.pending]
    accounts = sorted(
        {a for a in (*args.debit, *args.credit) if a is not None}
    )  # uuid.UUID orders by its 128-bit value, as PostgreSQL orders uuid
    slot: dict[uuid.UUID | None, int] = {a: n for n, a in enumerate(accounts, 1)}
    return [
        now,
        args.id,
        args.debit,
        args.credit,
        args.amount,
        args.pending,
        args.flags,
        args.code,
        args.ledger,
        args.timeout,
        args.user_data,
        args.ud128,
        args.ud64,
        args.ud32,
        args.ts,
        args.expires,
        args.pre,
        args.mid,
        args.late,
        firsts,
        pending_firsts,
        accounts,
        [slot.get(a) for a in args.debit],
        [slot.get(a) for a in args.credit],
    ]


class _Member:
    """One caller's batch waiting for a grouped call."""

    __slots__ = (
        "checks",
        "events",
        "future",
        "now",
        "owner",
        "plain",
        "refusal",
        "stored_at",
        "transfers",
    )

    def __init__(
        self,
        transfers: Sequence[Transfer],
        checks: Sequence[str | None],
        now: datetime,
        events: Sequence[EventEnvelope],
        *,
        plain: bool,
        owner: str | None = None,
    ) -> None:
        self.transfers = transfers
        self.checks = checks
        self.now = now
        #: the time its transfers were stored at: ``now``, or a batch group's latest time
        self.stored_at = now
        self.events = events
        #: one plain transfer that passed the checks before ``exists`` (ledger_create_transfer's)
        self.plain = plain
        #: checked (``submit_checked``): the owner its source account must have
        self.owner = owner
        #: a checked member's refusal by the account checks (``account_not_found``...)
        self.refusal: str | None = None
        self.future: asyncio.Future[list[CreateTransferResult]] | None = None


def _settle(
    member: _Member,
    results: list[CreateTransferResult] | None = None,
    *,
    exception: BaseException | None = None,
) -> None:
    """Answer a member's caller, unless it was cancelled meanwhile."""
    future = member.future
    if future is None or future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        assert results is not None
        future.set_result(results)


#: the answer that tells a waiting caller to send its batch itself, in the slot it was given
_GO_ALONE: list[CreateTransferResult] = []
#: the answer to a checked member refused by the account checks (``_Member.refusal`` says why)
_REFUSED: list[CreateTransferResult] = []


def _answer(member: _Member, raw: Sequence[str]) -> list[CreateTransferResult]:
    """A member's slice of a group's answer (a checked member's refusal kept aside)."""
    if member.owner is not None and raw[0] not in _TRANSFER_RESULTS:
        member.refusal = raw[0]
        return _REFUSED
    return [R(r) for r in raw]


def _raise_refusal(refusal: str) -> None:
    """The core error for an account check's refusal (0026's codes)."""
    if refusal == "account_not_found":
        raise AccountNotFound()
    prefix = "account_not_active:"
    if refusal.startswith(prefix):
        raise AccountNotActive(f"the account is {AccountStatus(refusal[len(prefix) :]).value}")
    raise AssertionError(f"unknown answer of the account checks: {refusal!r}")


def _told_to_go_alone(future: asyncio.Future[list[CreateTransferResult]]) -> bool:
    return (
        future.done()
        and not future.cancelled()
        and future.exception() is None
        and future.result() is _GO_ALONE
    )


def _outcome_unknown(exc: BaseException) -> bool:
    """The call may or may not have committed: the connection went away under it."""
    return isinstance(
        exc,
        OSError | TimeoutError | pg.PostgresConnectionError | pg.OperatorInterventionError,
    ) or is_lost_connection(exc)


def _plain_group_arguments(members: Sequence[_Member], *, owners: bool = True) -> list[Any]:
    """The arguments of ``ledger_create_transfer_group`` (members of one plain transfer
    each), with ``owners``: of ``ledger_create_checked_transfer_group`` (0026)."""
    nows: list[datetime] = []
    ids: list[uuid.UUID] = []
    debits: list[uuid.UUID | None] = []
    credits: list[uuid.UUID | None] = []
    amounts: list[int] = []
    codes: list[int] = []
    ledgers: list[int] = []
    user_data: list[str | None] = []
    ud128: list[uuid.UUID] = []
    ud64: list[int] = []
    ud32: list[int] = []
    mids: list[str | None] = []
    event_group: list[int] = []
    events: list[EventEnvelope] = []
    for group, member in enumerate(members, 1):
        t = member.transfers[0]
        nows.append(member.now)
        ids.append(t.id)
        debits.append(t.debit_account_id)
        credits.append(t.credit_account_id)
        amounts.append(t.amount)
        codes.append(t.code)
        ledgers.append(_s32(t.ledger))
        user_data.append(t.user_data)
        ud128.append(uuid.UUID(int=t.user_data_128) if t.user_data_128 else _ZERO_UUID)
        ud64.append(_s64(t.user_data_64))
        ud32.append(_s32(t.user_data_32))
        mids.append(_transfer_mid(t, 0))
        if member.events:
            events.extend(member.events)
            event_group.extend([group] * len(member.events))
    arguments: list[Any] = [
        nows,
        ids,
        debits,
        credits,
        amounts,
        codes,
        ledgers,
        user_data,
        ud128,
        ud64,
        ud32,
        mids,
    ]
    if owners:
        arguments.append([member.owner for member in members])
    arguments.append(event_group)
    arguments.extend(event_columns(events))
    return arguments


class PostgresLedger:
    """The ledger on PostgreSQL; ``pool`` is opened and closed by its owner (the container)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        *,
        retry: RetryPolicy | None = None,
        group_max_in_flight: int = 0,
        group_max_transfers: int = 512,
        group_split: bool = True,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._retry = retry or RetryPolicy()
        #: how many attempts were retried after 40001/40P01 (for tests and metrics)
        self.retries = 0
        # Group commit: with ``group_max_in_flight`` write calls already in flight,
        # a groupable call waits in ``_queue``; when a call in flight ends, what
        # waits goes as ONE ledger_create_transfers_grouped call (one commit), or,
        # with ``group_split``, a group of plain transfers takes its share (_drain).
        # 0 turns it off (every call goes straight out, as before).
        if group_max_in_flight < 0 or group_max_transfers < 1:
            raise ValueError("group_max_in_flight >= 0 and group_max_transfers >= 1")
        self._cap = group_max_in_flight or sys.maxsize
        self._group_max_transfers = group_max_transfers
        self._in_flight = 0
        # Callers whose call is in flight (alone or in a group), and whether a group
        # takes only its share of the callers (:meth:`_drain`).
        self._callers_out = 0
        self._split = group_split
        self._queue: deque[_Member] = deque()
        self._group_tasks: set[asyncio.Task[None]] = set()
        #: calls that carried several callers' batches, the callers they carried, and
        #: the grouped calls that raised and were sent again caller by caller
        self.grouped_calls = 0
        self.grouped_members = 0
        self.group_fallbacks = 0
        #: grouped calls that went through ledger_create_transfer_group (all plain)
        self.grouped_plain_calls = 0
        #: calls of ledger_create_checked_transfer_group (a checked member alone or grouped)
        self.checked_group_calls = 0

    @property
    def in_flight(self) -> int:
        """Groupable transfer calls (alone or grouped) sent and not yet answered."""
        return self._in_flight

    @property
    def callers_in_flight(self) -> int:
        """Callers whose call (alone or in a group) was sent and not yet answered: with
        :attr:`waiting`, the callers in the ledger that a split group takes a share of."""
        return self._callers_out

    @property
    def waiting(self) -> int:
        """Callers waiting for a grouped call (cancelled ones until they are dropped)."""
        return len(self._queue)

    def _count_retry(self, _exc: BaseException) -> None:
        self.retries += 1

    async def _fetchval(self, query: str, *args: Any, failed: Exception | None = None) -> Any:
        """One statement, retried on 40001/40P01, its errors translated.

        ``failed``: the first attempt was made by the caller and raised this.
        """
        # with_retries under translated(), unrolled: no closure or context manager per call
        try:
            return await self._fetchval_raw(query, *args, failed=failed)
        except Exception as exc:
            mapped = translate_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        with translated():
            return await with_retries(
                lambda: self._pool.fetch(query, *args), self._retry, self._count_retry
            )

    # -- accounts ---------------------------------------------------------------

    async def create_accounts(self, accounts: Sequence[NewAccount]) -> list[CreateAccountResult]:
        if not accounts:
            return []
        now = self._clock.now()
        count = len(accounts)
        batch_imported = bool(int(accounts[0].flags) & _ACCOUNT_IMPORTED)
        first_position: dict[uuid.UUID, int] = {}
        ids: list[uuid.UUID] = []
        codes: list[int] = []
        flags_: list[int] = []
        ledgers: list[int] = []
        ud128: list[uuid.UUID] = []
        ud64: list[int] = []
        ud32: list[int] = []
        stamps: list[datetime] = []
        pres: list[str | None] = []
        mids: list[str | None] = []
        for index, new in enumerate(accounts):
            flags = int(new.flags)
            batch = batch_check(
                index,
                count,
                flags,
                _ACCOUNT_LINKED,
                _ACCOUNT_IMPORTED,
                batch_imported,
                new.timestamp,
                now,
            )
            pre = _account_pre(new, flags, batch)
            ids.append(new.id)
            pres.append(pre)
            if pre is not None:  # may not fit the columns: zeros
                codes.append(0)
                flags_.append(flags & _ACCOUNT_LINKED)
                ledgers.append(0)
                ud128.append(_ZERO_UUID)
                ud64.append(0)
                ud32.append(0)
                stamps.append(now)
                mids.append(None)
                continue
            codes.append(new.code)
            flags_.append(flags)
            ledgers.append(_s32(new.ledger))
            ud128.append(uuid.UUID(int=new.user_data_128))
            ud64.append(_s64(new.user_data_64))
            ud32.append(_s32(new.user_data_32))
            imported = flags & _ACCOUNT_IMPORTED and new.timestamp is not None
            stamps.append(new.timestamp if imported and new.timestamp is not None else now)
            mids.append(_account_mid(new, flags))
        if count == 1 and pres[0] is not None:
            return [A(pres[0])]
        raw: list[str] = await self._fetchval(
            _CREATE_ACCOUNTS,
            now,
            ids,
            codes,
            flags_,
            ledgers,
            ud128,
            ud64,
            ud32,
            stamps,
            pres,
            mids,
            [first_position.setdefault(i, n) for n, i in enumerate(ids, 1)],
            batch_imported,
        )
        return [A(r) for r in raw]

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
        # Every answer goes to record_ledger_results (what counts_ledger_results does,
        # without its coroutine frame); an empty batch counts nothing.
        if not transfers:
            return []
        if len(transfers) == 1:
            t = transfers[0]
            if (
                t.flags is _NO_FLAGS
                and t.pending_id is None
                and not t.timeout_seconds
                and t.timestamp is None
            ):
                # the commonest call: one plain transfer, which passes the batch checks;
                # check_transfer_texts and _transfer_pre's checks in one expression, in
                # their order (flags 0, timeout 0: in range), each asked for its result
                # code only when one of them fails
                user_data = t.user_data
                if user_data is not None and ("\x00" in user_data or not user_data.isascii()):
                    check_transfer_texts(transfers)  # raises unless it can be stored
                if not (
                    0 <= t.amount <= MAX_AMOUNT
                    and 0 <= t.ledger <= MAX_U32
                    and 0 <= t.code <= MAX_U16
                    and 0 <= t.user_data_128 <= MAX_U128
                    and 0 <= t.user_data_64 <= MAX_U64
                    and 0 <= t.user_data_32 <= MAX_U32
                    and 0 < t.id.int < MAX_U128
                ):
                    pre = _transfer_pre(t, 0, None)
                    if pre is not None:
                        results = [R(pre)]
                        record_ledger_results(results)
                        return results
                now = self._clock.now()
                if self._in_flight >= self._cap:
                    results = await self._queued(
                        _Member(transfers, _ONE_UNCHECKED, now, events, plain=True)
                    )
                    record_ledger_results(results)
                    return results
                self._in_flight += 1
                self._callers_out += 1
                try:
                    single = await self._create_single(t, now, events)
                    if single is not None:
                        results = [single]
                    else:  # a pending transfer is due to expire: the batch function
                        results = await self._send_batch(transfers, _ONE_UNCHECKED, now, events)
                finally:
                    self._release()
                record_ledger_results(results)
                return results
        results = await self._create_transfers(transfers, events, self._clock.now())
        record_ledger_results(results)
        return results

    async def submit_transfer(
        self, transfer: Transfer, *, events: Sequence[EventEnvelope] = ()
    ) -> SubmittedTransfer:
        # the transfer is stored at ``now`` (an imported one at its own timestamp)
        now = self._clock.now()
        stored_at: list[datetime] = []
        [result] = await self._create_transfers([transfer], events, now, stored_at)
        record_ledger_results([result])
        if result is not R.OK:
            return SubmittedTransfer(result=result)
        imported = int(transfer.flags) & _IMPORTED and transfer.timestamp is not None
        if imported:
            return SubmittedTransfer(result=result, timestamp=transfer.timestamp)
        return SubmittedTransfer(result=result, timestamp=stored_at[0] if stored_at else now)

    async def submit_checked(
        self, transfer: Transfer, *, owner_id: str, events: Sequence[EventEnvelope] = ()
    ) -> SubmittedTransfer:
        """:meth:`submit_transfer` of one internal transfer with the account checks of
        ``CheckedTransfers.submit_internal`` in the same call and transaction (0026).

        Only for a transfer that :func:`checkable` accepts (one plain transfer
        that passes the checks made here): it goes alone or in a group of
        plain transfers, as such a transfer does. Raises ``AccountNotFound``
        or ``AccountNotActive`` when the account checks refuse it.
        """
        now = self._clock.now()
        member = _Member((transfer,), _ONE_UNCHECKED, now, events, plain=True, owner=owner_id)
        if self._in_flight >= self._cap:
            results = await self._queued(member)
        else:
            self._in_flight += 1
            self._callers_out += 1
            try:
                results = await self._member_alone(member)
            finally:
                self._release()
        if member.refusal is not None:
            _raise_refusal(member.refusal)
        record_ledger_results(results)
        [result] = results
        if result is not R.OK:
            return SubmittedTransfer(result=result)
        return SubmittedTransfer(result=result, timestamp=member.stored_at)

    async def _create_transfers(
        self,
        transfers: Sequence[Transfer],
        events: Sequence[EventEnvelope],
        now: datetime,
        stored_at: list[datetime] | None = None,
    ) -> list[CreateTransferResult]:
        """``stored_at``, if given, receives the time a grouped call stored them at."""
        check_transfer_texts(transfers)
        batch_checks = _transfer_batch_checks(transfers, now)
        if len(transfers) == 1:
            t = transfers[0]
            pre = _transfer_pre(t, int(t.flags), batch_checks[0])
            if pre is not None:
                return [R(pre)]
        if not self._groupable(transfers):
            # never grouped, so not counted either: a big or slow batch of this kind
            # does not hold the slots that the small calls group behind
            return await self._alone(transfers, batch_checks, now, events)
        if self._in_flight >= self._cap:
            t = transfers[0]
            plain = (
                len(transfers) == 1
                and not t.flags
                and t.pending_id is None
                and not t.timeout_seconds
                and t.timestamp is None
            )
            member = _Member(transfers, batch_checks, now, events, plain=plain)
            results = await self._queued(member)
            if stored_at is not None:
                stored_at.append(member.stored_at)
            return results
        self._in_flight += 1
        self._callers_out += 1
        try:
            return await self._alone(transfers, batch_checks, now, events)
        finally:
            self._release()

    async def _alone(
        self,
        transfers: Sequence[Transfer],
        batch_checks: Sequence[str | None],
        now: datetime,
        events: Sequence[EventEnvelope],
    ) -> list[CreateTransferResult]:
        """One caller's batch as its own call (the fast path for one plain transfer)."""
        if len(transfers) == 1:
            t = transfers[0]
            if (
                not t.flags
                and t.pending_id is None
                and not t.timeout_seconds
                and t.timestamp is None
                and _transfer_pre(t, 0, batch_checks[0]) is None
            ):
                single = await self._create_single(t, now, events)
                if single is not None:
                    return [single]
        return await self._send_batch(transfers, batch_checks, now, events)

    async def _send_batch(
        self,
        transfers: Sequence[Transfer],
        batch_checks: Sequence[str | None],
        now: datetime,
        events: Sequence[EventEnvelope],
    ) -> list[CreateTransferResult]:
        args = _TransferArgs()
        for t, batch in zip(transfers, batch_checks, strict=True):
            args.add(t, now, batch)
        query_args = _batch_arguments(args, now)
        query_args.append(bool(int(transfers[0].flags) & _IMPORTED))
        query = _CREATE_TRANSFERS
        if events:
            query_args.extend(event_columns(events))
            query = _CREATE_TRANSFERS_WITH_EVENTS
        raw: list[str] = await self._fetchval(query, *query_args)
        return [R(r) for r in raw]

    # -- group commit -------------------------------------------------------------

    def _groupable(self, transfers: Sequence[Transfer]) -> bool:
        """Whether a batch may share a call with others' batches.

        Not an imported batch (its rules are batch-wide: one watermark, one
        advisory lock), nor one whose last transfer is linked (a chain open at
        its end would run on into the next caller's transfers); and no bigger
        than a grouped call.
        """
        if len(transfers) > self._group_max_transfers:
            return False
        if int(transfers[-1].flags) & _LINKED:
            return False
        return not any(int(t.flags) & _IMPORTED for t in transfers)

    async def _queued(self, member: _Member) -> list[CreateTransferResult]:
        """Wait for a grouped call to carry ``member`` (cancelled while waiting: dropped)."""
        member.future = asyncio.get_running_loop().create_future()
        if member.events:  # their creation spans under this caller's trace, not the sender's
            member.events = tracing.stamp(member.events)
        self._queue.append(member)
        future = member.future
        try:
            results = await future
        except asyncio.CancelledError:
            if _told_to_go_alone(future):  # woken, then cancelled before it ran: free its slot
                self._release()
            raise
        if results is not _GO_ALONE:
            return results
        # alone in the queue when a slot freed: it goes out itself, in that slot
        try:
            return await self._member_alone(member)
        finally:
            self._release()

    async def _member_alone(self, member: _Member) -> list[CreateTransferResult]:
        """A member's batch as its own call (a checked one: a checked group of one)."""
        if member.owner is None:
            return await self._alone(member.transfers, member.checks, member.now, member.events)
        try:
            raw = await self._send_checked_group([member])
        except Exception as exc:
            mapped = translate_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        return _answer(member, raw)

    def _release(self, callers: int = 1) -> None:
        """A call in flight that carried ``callers`` ended: its slot goes to what waits."""
        # the callers in the ledger now: those waiting, and those of the calls in
        # flight, this one's included (its callers will be back)
        active = len(self._queue) + self._callers_out
        self._in_flight -= 1
        self._callers_out -= callers
        if self._queue:
            self._drain(active)

    def _drain(self, active: int) -> None:
        """Send what waits, one grouped call per free slot (called when a call ends).

        ``active``: the callers in the ledger (waiting or in flight) when the call
        ended. Split (the default), a group of plain members (one plain transfer
        each) takes at most its share of them, one part in ``cap + 1``: with one
        call in flight, half. The rest wait for the next slot, so the database
        works on one part while the callers of the other are answered and come
        back, instead of every caller going out in one group and coming back
        together while the database is idle. A group with another member goes
        through ``ledger_create_transfers``, whose fixed cost a call is higher
        than the overlap gains, so it takes all that waits (docs/postgres.md,
        "Group commit").
        """
        share = sys.maxsize
        if self._split and self._cap < sys.maxsize:
            share = -(-active // (self._cap + 1))
        while self._queue and self._in_flight < self._cap:
            members: list[_Member] = []
            count = 0
            plain = True
            queue = self._queue
            while queue:
                head = queue[0]
                if head.future is None or head.future.done():  # its caller was cancelled
                    queue.popleft()
                    continue
                if members and (
                    count + len(head.transfers) > self._group_max_transfers
                    or (len(members) >= share and plain and head.plain)
                ):
                    break
                queue.popleft()
                members.append(head)
                count += len(head.transfers)
                plain = plain and head.plain
            if not members:
                return
            self._in_flight += 1
            self._callers_out += len(members)
            if len(members) == 1:  # nobody to group with: its caller sends it (no task)
                assert members[0].future is not None
                members[0].future.set_result(_GO_ALONE)
                continue
            # its own empty context: it serves several callers, none of their traces
            task = asyncio.get_running_loop().create_task(
                self._send_group(members), context=contextvars.Context()
            )
            self._group_tasks.add(task)
            task.add_done_callback(self._group_tasks.discard)

    async def _send_group(self, members: list[_Member]) -> None:
        """Run the members' batches as one call and answer each caller with its slice.

        Runs in its own task: a caller cancelled after this started does not
        stop the others. A call that raised after the retries is sent again
        member by member (each caller gets its own outcome), unless the
        outcome is unknown (the connection was lost): then every member gets
        the error, as it would have alone.

        The slot is freed as soon as the group's last call has returned, before
        its callers are answered: the next group's task is then scheduled ahead
        of their wake-ups, so the next call is on the wire while they write
        their responses, instead of after all of them (with 16 HTTP callers, a
        group of 8 left the database idle for about 0.6 ms per group).
        """
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._release(len(members))

        try:
            self.grouped_calls += 1
            self.grouped_members += len(members)
            if any(member.owner is not None for member in members):
                await self._send_checked_members(members, release)
            else:
                await self._run_group(members, self._send_unchecked, release)
        except Exception as exc:  # a bug: every caller still waiting hears of it
            for member in members:
                _settle(member, exception=exc)
        except BaseException:  # cancelled (the loop is closing): so are the waiting callers
            for member in members:
                if member.future is not None and not member.future.done():
                    member.future.cancel()
            raise
        finally:
            release()

    async def _send_checked_members(
        self, members: list[_Member], release: Callable[[], None]
    ) -> None:
        """A group with checked members: the plain ones (every checked one among them) as
        one ``ledger_create_checked_transfer_group`` call, then the others as one
        ``ledger_create_transfers_grouped`` call, each answered before the next is sent
        (a call that raised is sent again member by member, as in :meth:`_send_group`).
        ``release`` frees the slot once the last of the calls has returned."""
        plain = [member for member in members if member.plain]
        others = [member for member in members if not member.plain]
        await self._run_group(plain, self._send_checked_group, None if others else release)
        if others:
            await self._run_group(others, self._send_grouped, release)

    async def _run_group(
        self,
        members: list[_Member],
        send: Callable[[list[_Member]], Awaitable[list[str]]],
        sent: Callable[[], None] | None = None,
    ) -> None:
        """``send`` the members as one call and answer each; :meth:`_send_group`'s rules
        for an error (unknown outcome: everyone the error; else each sent alone).

        ``sent``, if given, is called once the call has returned an answer,
        before any member is answered (it frees the group's slot). After an
        error the members may be sent again one by one, so it is not called
        then: the caller frees the slot when they are done.
        """
        if len(members) == 1:
            await self._answer_alone(members[0], sent)
            return
        try:
            raw = await send(members)
        except Exception as exc:
            if _outcome_unknown(exc):
                for member in members:
                    mapped = translate_error(exc)
                    if mapped is not exc:
                        mapped.__cause__ = exc
                    _settle(member, exception=mapped)
                return
            self.group_fallbacks += 1
            for member in members:
                if member.future is not None and not member.future.done():
                    await self._answer_alone(member)
            return
        if sent is not None:
            sent()
        start = 0
        for member in members:
            end = start + len(member.transfers)
            _settle(member, _answer(member, raw[start:end]))
            start = end

    async def _send_unchecked(self, members: list[_Member]) -> list[str]:
        """Members without account checks as one call: ``ledger_create_transfer_group``
        when each is one plain transfer, else (or when a pending transfer is due to
        expire) ``ledger_create_transfers_grouped``."""
        if all(member.plain for member in members):
            raw = await self._send_plain_group(members)
            if raw is not None:
                self.grouped_plain_calls += 1
                return raw
        return await self._send_grouped(members)

    async def _send_checked_group(self, members: list[_Member]) -> list[str]:
        """One ``ledger_create_checked_transfer_group`` call for plain members (checked or
        not); retried on 40001/40P01, errors raw.

        When a pending transfer is due to expire (the function answers NULL,
        having done nothing), it is expired (``ledger_expire``) as of the
        group's latest time, every member's time becomes that time (as in
        :meth:`_send_grouped`: nothing is stored as made before an expiry it
        came after) and the call is sent again.
        """
        for _ in range(_CHECKED_GROUP_EXPIRY_ROUNDS):
            self.checked_group_calls += 1
            args = _plain_group_arguments(members)
            raw: list[str] | None = await self._fetchval_raw(_CREATE_CHECKED_TRANSFER_GROUP, *args)
            if raw is not None:
                return raw
            latest = max(member.now for member in members)
            for member in members:
                member.now = member.stored_at = latest
            await self._fetchval_raw(_EXPIRE, latest)
        raise RetriesExhausted()

    async def _answer_alone(self, member: _Member, sent: Callable[[], None] | None = None) -> None:
        """``member`` sent alone and answered; ``sent`` (if given) is called once its call
        has ended, before it is answered (as in :meth:`_run_group`)."""
        try:
            results = await self._member_alone(member)
        except Exception as exc:
            if sent is not None:
                sent()
            _settle(member, exception=exc)
        else:
            if sent is not None:
                sent()
            _settle(member, results)

    async def _send_plain_group(self, members: list[_Member]) -> list[str] | None:
        """One ``ledger_create_transfer_group`` call for members of one plain transfer each.

        ``None`` when a pending transfer is due to expire (nothing was done).
        """
        raw: list[str] | None = await self._fetchval_raw(
            _CREATE_TRANSFER_GROUP, *_plain_group_arguments(members, owners=False)
        )
        return raw

    async def _fetchval_raw(self, query: str, *args: Any, failed: Exception | None = None) -> Any:
        """One statement, retried on 40001/40P01, its errors untranslated.

        :meth:`_fetchval` translates them; a grouped call decides what an error means.
        ``failed``: the first attempt was made by the caller and raised this.
        """
        attempt = 1
        while True:
            if failed is None:
                try:
                    return await self._pool.fetchval(query, *args)
                except Exception as exc:
                    failed = exc
            if not is_retryable(failed) or attempt >= self._retry.attempts:
                try:
                    raise failed
                finally:
                    failed = None  # no cycle through this frame's locals
            self._count_retry(failed)
            failed = None
            await asyncio.sleep(self._retry.delay(attempt))
            attempt += 1

    async def _send_grouped(self, members: list[_Member]) -> list[str]:
        """One ``ledger_create_transfers_grouped`` call; retried on 40001/40P01, errors raw."""
        args = _TransferArgs()
        group_end: list[int] = []
        event_group: list[int] = []
        events: list[EventEnvelope] = []
        # One time for the whole call, its latest caller's: pending transfers expire
        # as of it, and every transfer is stored at it. Stamping an earlier caller's
        # transfer with its own (earlier) time would store it as made before an
        # expiry that it came after (a pending transfer due between the two times):
        # a history in which it spent money still reserved.
        now = max(member.now for member in members)
        for group, member in enumerate(members, 1):
            for t, batch in zip(member.transfers, member.checks, strict=True):
                args.add(t, now, batch)
            group_end.append(len(args.id))
            if member.events:
                events.extend(member.events)
                event_group.extend([group] * len(member.events))
        query_args = _batch_arguments(args, now)
        query_args.append(group_end)
        query_args.append(event_group)
        query_args.extend(event_columns(events))
        raw: list[str] = await self._fetchval_raw(_CREATE_TRANSFERS_GROUPED, *query_args)
        for member in members:
            member.stored_at = now
        return raw

    async def _create_single(
        self, t: Transfer, now: datetime, events: Sequence[EventEnvelope]
    ) -> CreateTransferResult | None:
        """One plain transfer through ``ledger_create_transfer`` (one statement, no arrays).

        Only for a transfer without flags, pending id, timeout or timestamp
        that passed the checks before ``exists``. ``None`` when a pending
        transfer is due to expire: the batch function handles that.

        The statement goes straight to the pool; the retries on 40001/40P01 and
        the error translation (:meth:`_fetchval`) start only once it raised.
        """
        query, args = _single_call(t, now, events)
        failed: Exception | None = None
        try:
            raw: str | None = await self._pool.fetchval(query, *args)
        except Exception as exc:
            failed = exc
        if failed is not None:
            raw = await self._fetchval(query, *args, failed=failed)
            failed = None
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

    # -- queries ----------------------------------------------------------------

    async def query_transfers(self, filter: QueryFilter) -> list[TransferRecord]:
        check_filter(filter)
        rows = await self._fetch(
            _QUERY_TRANSFERS,
            self._clock.now(),
            None,
            True,
            True,
            uuid.UUID(int=filter.user_data_128),
            _s64(filter.user_data_64),
            _s32(filter.user_data_32),
            _s32(filter.ledger),
            filter.code,
            filter.timestamp_min,
            filter.timestamp_max,
            filter.limit,
            filter.reversed,
        )
        return [_transfer(row) for row in rows]

    async def get_account_transfers(self, filter: AccountFilter) -> list[TransferRecord]:
        check_filter(filter)
        rows = await self._fetch(
            _QUERY_TRANSFERS,
            self._clock.now(),
            filter.account_id,
            filter.debits,
            filter.credits,
            uuid.UUID(int=filter.user_data_128),
            _s64(filter.user_data_64),
            _s32(filter.user_data_32),
            0,
            filter.code,
            filter.timestamp_min,
            filter.timestamp_max,
            filter.limit,
            filter.reversed,
        )
        return [_transfer(row) for row in rows]

    async def get_account_balances(self, filter: AccountFilter) -> list[AccountBalance]:
        check_filter(filter)
        rows = await self._fetch(
            _ACCOUNT_BALANCES,
            self._clock.now(),
            filter.account_id,
            filter.debits,
            filter.credits,
            uuid.UUID(int=filter.user_data_128),
            _s64(filter.user_data_64),
            _s32(filter.user_data_32),
            filter.code,
            filter.timestamp_min,
            filter.timestamp_max,
            filter.limit,
            filter.reversed,
        )
        return [
            AccountBalance(
                transfer_id=row["transfer_id"],
                timestamp=row["created_at"],
                debits_pending=row["debits_pending"],
                debits_posted=row["debits_posted"],
                credits_pending=row["credits_pending"],
                credits_posted=row["credits_posted"],
            )
            for row in rows
        ]

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
        since, until = check_entry_window(since, until)
        if limit <= 0 or (after_sequence is not None and after_sequence >= MAX_AMOUNT):
            return EntryPage(entries=[], next_after_sequence=None)
        # sequences are positive bigints: keep what is sent inside the column's range
        if after_sequence is not None and after_sequence < 0:
            after_sequence = None
        limit = min(limit, MAX_AMOUNT - 1)
        rows = await self._fetch(_ENTRIES, account_id, after_sequence, since, until, limit + 1)
        entries = [_entry(row) for row in rows[:limit]]
        more = len(rows) > limit
        return EntryPage(
            entries=entries,
            next_after_sequence=entries[-1].sequence if more and entries else None,
        )


def _account(row: asyncpg.Record) -> LedgerAccount:
    flags = row["flags"] | (_ACCOUNT_CLOSED if row["closed"] else 0)
    return LedgerAccount(
        id=row["id"],
        code=row["code"],
        flags=AccountFlags(flags),
        ledger=_u32(row["ledger"]),
        debits_pending=row["debits_pending"],
        debits_posted=row["debits_posted"],
        credits_pending=row["credits_pending"],
        credits_posted=row["credits_posted"],
        timestamp=row["created_at"],
        user_data_128=row["user_data_128"].int,
        user_data_64=_u64(row["user_data_64"]),
        user_data_32=_u32(row["user_data_32"]),
    )


def _transfer(row: asyncpg.Record) -> TransferRecord:
    inherited: int = row["inherited"]
    flags: int = row["flags"]
    code: int = row["code"]
    ledger = _u32(row["ledger"])
    user_data: str | None = row["user_data"]
    ud128: int = row["user_data_128"].int
    ud64 = _u64(row["user_data_64"])
    ud32 = _u32(row["user_data_32"])
    return TransferRecord(
        request=Transfer(
            id=row["id"],
            debit_account_id=row["req_debit_id"],
            credit_account_id=row["req_credit_id"],
            amount=row["req_amount"],
            code=0 if inherited & _INH_CODE else code,
            flags=TransferFlags(flags),
            pending_id=row["pending_id"],
            timeout_seconds=_u32(row["timeout_seconds"]),
            ledger=0 if inherited & _INH_LEDGER else ledger,
            user_data=None if inherited & _INH_USER_DATA else user_data,
            user_data_128=0 if inherited & _INH_128 else ud128,
            user_data_64=0 if inherited & _INH_64 else ud64,
            user_data_32=0 if inherited & _INH_32 else ud32,
            timestamp=row["created_at"] if flags & _IMPORTED else None,
        ),
        debit_account_id=row["debit_account_id"],
        credit_account_id=row["credit_account_id"],
        amount=row["amount"],
        timestamp=row["created_at"],
        status=PendingStatus(row["status"]),
        code=code,
        ledger=ledger,
        flags=TransferFlags(flags),
        user_data=user_data,
        user_data_128=ud128,
        user_data_64=ud64,
        user_data_32=ud32,
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


def checkable(t: Transfer) -> bool:
    """Whether :meth:`PostgresLedger.submit_checked` takes ``t``: one plain transfer (no
    flags, pending id, timeout or timestamp) that passes the checks made before the
    database, so that the account checks are the first thing that can refuse it."""
    return (
        not int(t.flags)
        and t.pending_id is None
        and not t.timeout_seconds
        and t.timestamp is None
        and (t.user_data is None or "\x00" not in t.user_data)
        and _transfer_pre(t, 0, None) is None
    )


class PostgresCheckedTransfers:
    """The ``CheckedTransfers`` port when the ledger and the customer accounts share one
    PostgreSQL database: the account checks run in the ledger's own call and transaction
    (:meth:`PostgresLedger.submit_checked`, migration 0026), one round trip.

    ``ledger`` and ``accounts`` must be on the same database and schema (the
    container wires this only when both backends are ``postgres`` on its one
    pool). A transfer the fused call does not take (:func:`checkable`; no
    internal transfer today) goes through ``ComposedCheckedTransfers``, whose
    answers are the same in every case.
    """

    def __init__(self, ledger: PostgresLedger, accounts: AccountRepository) -> None:
        self._ledger = ledger
        self._composed = ComposedCheckedTransfers(accounts, ledger)

    async def submit_internal(
        self, transfer: Transfer, *, owner_id: str, events: Sequence[EventEnvelope]
    ) -> SubmittedTransfer:
        if checkable(transfer):
            return await self._ledger.submit_checked(transfer, owner_id=owner_id, events=events)
        return await self._composed.submit_internal(transfer, owner_id=owner_id, events=events)
