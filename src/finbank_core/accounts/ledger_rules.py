"""The ledger's rules as an executable specification: pure, no I/O, no clock.

:class:`LedgerState` is a whole ledger held in memory; :func:`create_accounts`,
:func:`apply_batch` and :func:`expire` change it, the query functions read it.
Every function takes the instant it runs at (``now``) instead of asking a
clock. The in-memory ledger is these functions behind the ``Ledger`` port; the
PostgreSQL ledger implements the same rules in plpgsql (for speed) and is held
to them by the contract suite and a differential test.

Order of the checks (TigerBeetle >= 0.16 ``create_transfers``; the first
failing check gives the result). Per batch, before a transfer's own checks:

1. ``linked_event_failed`` (an earlier member of its chain failed),
   ``linked_event_chain_open`` (``LINKED`` on the batch's last transfer);
2. ``imported_event_expected`` / ``imported_event_not_expected`` (the first
   transfer's ``IMPORTED`` flag decides for the batch), ``timestamp_must_be_zero``,
   ``imported_event_timestamp_out_of_range`` (missing or naive),
   ``imported_event_timestamp_must_not_advance`` (after ``now``).

Then each transfer:

3. ``reserved_flag``; values outside their type (ours): ``amount_must_not_be_negative``,
   ``amount_out_of_range``, ``ledger_out_of_range``, ``code_out_of_range``,
   ``timeout_must_not_be_negative``, ``timeout_out_of_range``,
   ``user_data_128/64/32_out_of_range``;
4. ``id_must_not_be_zero``, ``id_must_not_be_int_max``;
5. ``exists`` / ``exists_with_different_fields`` (the id is taken: before any
   check of the flags, so a replay is always recognised);
6. a post/void (``POST_PENDING_TRANSFER`` or ``VOID_PENDING_TRANSFER``):
   ``flags_are_mutually_exclusive`` (with each other, ``PENDING``, balancing,
   closing), ``pending_id_required`` / ``pending_id_must_not_be_zero`` /
   ``pending_id_must_not_be_int_max`` / ``pending_id_must_be_different``,
   ``timeout_reserved_for_pending_transfer``, ``pending_transfer_not_found``,
   ``pending_transfer_not_pending``, ``pending_transfer_has_different_debit_account_id``
   / ``..._credit_account_id`` / ``..._ledger`` / ``..._code`` (0 or ``None``
   inherits), ``exceeds_pending_transfer_amount``, (void)
   ``pending_transfer_has_different_amount``, ``pending_transfer_already_posted``
   / ``..._voided`` / ``pending_transfer_expired``,
   ``imported_event_timestamp_must_not_regress``, (post)
   ``debit_account_already_closed`` / ``credit_account_already_closed``;
7. any other transfer: ``debit_account_id_required`` / ``..._must_not_be_zero`` /
   ``..._must_not_be_int_max``, the same for the credit account,
   ``accounts_must_be_different``, ``pending_id_must_be_zero``, (not pending)
   ``timeout_reserved_for_pending_transfer``, ``closing_transfer_must_be_pending``,
   ``amount_must_not_be_zero`` (ours; closing transfers may move 0),
   ``ledger_must_not_be_zero``, ``code_must_not_be_zero``,
   ``debit_account_not_found``, ``credit_account_not_found``,
   ``accounts_must_have_the_same_ledger``, ``transfer_must_have_the_same_ledger_as_accounts``,
   (imported) ``imported_event_timestamp_must_not_regress``,
   ``..._must_postdate_debit_account``, ``..._must_postdate_credit_account``,
   ``imported_event_timeout_must_be_zero``, ``debit_account_already_closed``,
   ``credit_account_already_closed``, (balancing, nothing to move)
   ``exceeds_credits`` / ``exceeds_debits``, ``overflows``, ``overflows_timeout``,
   ``exceeds_credits``, ``exceeds_debits``.

``create_accounts``: the batch checks above, then ``reserved_flag``, the
out-of-range family, ``id_must_not_be_zero`` / ``id_must_not_be_int_max``,
``exists`` / ``exists_with_different_fields``, ``flags_are_mutually_exclusive``,
``ledger_must_not_be_zero``, ``code_must_not_be_zero``, (imported)
``imported_event_timestamp_must_not_regress``.

Speed: the in-memory ledger runs this module, so its hot path (a plain
transfer) is written for CPython: ids are keyed by ``UUID.int`` (UUID's own
hash is Python code), flags are plain ints (``IntFlag`` operators run Python
code), postings are tuples and records are built when read, and a linked
chain's undo log is kept only when there is a chain.
"""

from __future__ import annotations

import bisect
import heapq
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

from finbank_core.accounts.ledger import (
    ACCOUNT_FLAGS_KNOWN,
    MAX_AMOUNT,
    MAX_U16,
    MAX_U32,
    MAX_U64,
    MAX_U128,
    TRANSFER_FLAGS_KNOWN,
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
    Transfer,
    TransferFlags,
    TransferRecord,
    check_entry_window,
    check_filter,
    check_transfer_texts,
)

R = CreateTransferResult
A = CreateAccountResult

_LINKED = int(TransferFlags.LINKED)
_PENDING = int(TransferFlags.PENDING)
_POST = int(TransferFlags.POST_PENDING_TRANSFER)
_VOID = int(TransferFlags.VOID_PENDING_TRANSFER)
_BALANCING_DEBIT = int(TransferFlags.BALANCING_DEBIT)
_BALANCING_CREDIT = int(TransferFlags.BALANCING_CREDIT)
_CLOSING_DEBIT = int(TransferFlags.CLOSING_DEBIT)
_CLOSING_CREDIT = int(TransferFlags.CLOSING_CREDIT)
_IMPORTED = int(TransferFlags.IMPORTED)
_POST_OR_VOID = _POST | _VOID
_BALANCING = _BALANCING_DEBIT | _BALANCING_CREDIT
_CLOSING = _CLOSING_DEBIT | _CLOSING_CREDIT
_NOT_WITH_POST_OR_VOID = _PENDING | _BALANCING | _CLOSING
_TRANSFER_RESERVED = ~TRANSFER_FLAGS_KNOWN

_DEBITS_LIMITED = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_CREDITS_LIMITED = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
_BOTH_LIMITS = _DEBITS_LIMITED | _CREDITS_LIMITED
_ACCOUNT_LINKED = int(AccountFlags.LINKED)
_HISTORY = int(AccountFlags.HISTORY)
_ACCOUNT_IMPORTED = int(AccountFlags.IMPORTED)
_CLOSED = int(AccountFlags.CLOSED)
_ACCOUNT_RESERVED = ~ACCOUNT_FLAGS_KNOWN

_MAX_ID = MAX_U128

# (sequence, transfer_id, side, amount, balance_after, code, timestamp, user_data)
Posting = tuple[int, uuid.UUID, EntrySide, int, int, int, datetime, str | None]
# (transfer, account is its debit side, debits_pending, debits_posted, credits_pending,
#  credits_posted): an account's balances right after a transfer (HISTORY accounts)
HistoryPoint = tuple["TransferState", bool, int, int, int, int]
Undo = list[Callable[[], None]]


class AccountState:
    """One account: what it was created with, its balances and its postings."""

    __slots__ = (
        "code",
        "created_flags",
        "credits_pending",
        "credits_posted",
        "debits_pending",
        "debits_posted",
        "entries",
        "flags",
        "history",
        "id",
        "ledger",
        "timestamp",
        "user_data_32",
        "user_data_64",
        "user_data_128",
    )

    def __init__(self, new: NewAccount, timestamp: datetime) -> None:
        self.id = new.id
        self.code = new.code
        self.created_flags = int(new.flags)
        #: current flags as a plain int (CLOSED comes and goes with closing transfers)
        self.flags = self.created_flags
        self.ledger = new.ledger
        self.user_data_128 = new.user_data_128
        self.user_data_64 = new.user_data_64
        self.user_data_32 = new.user_data_32
        self.timestamp = timestamp
        self.debits_pending = 0
        self.debits_posted = 0
        self.credits_pending = 0
        self.credits_posted = 0
        self.entries: list[Posting] = []
        self.history: list[HistoryPoint] | None = [] if self.flags & _HISTORY else None

    def snapshot(self) -> LedgerAccount:
        return LedgerAccount(
            id=self.id,
            code=self.code,
            flags=AccountFlags(self.flags),
            ledger=self.ledger,
            debits_pending=self.debits_pending,
            debits_posted=self.debits_posted,
            credits_pending=self.credits_pending,
            credits_posted=self.credits_posted,
            timestamp=self.timestamp,
            user_data_128=self.user_data_128,
            user_data_64=self.user_data_64,
            user_data_32=self.user_data_32,
        )


class TransferState:
    """A stored transfer: the request, what it resolved to, and a pending status.

    ``inherited`` is set for a post/void: (code, ledger, user_data,
    user_data_128, user_data_64, user_data_32) after inheritance from the
    pending transfer; for the others the request's own values are the
    resolved ones (kept out of the hot path: the record is built on read).
    """

    __slots__ = (
        "amount",
        "credit",
        "debit",
        "expires_at",
        "inherited",
        "request",
        "resolved_by",
        "status",
        "timestamp",
    )

    def __init__(
        self,
        request: Transfer,
        debit: AccountState,
        credit: AccountState,
        amount: int,
        timestamp: datetime,
        status: PendingStatus,
    ) -> None:
        self.request = request
        self.debit = debit
        self.credit = credit
        self.amount = amount
        self.timestamp = timestamp
        self.status = status
        self.expires_at: datetime | None = None
        self.resolved_by: uuid.UUID | None = None
        self.inherited: tuple[int, int, str | None, int, int, int] | None = None

    @property
    def code(self) -> int:
        return self.request.code if self.inherited is None else self.inherited[0]

    def user_data_ints(self) -> tuple[int, int, int]:
        if self.inherited is None:
            r = self.request
            return r.user_data_128, r.user_data_64, r.user_data_32
        return self.inherited[3], self.inherited[4], self.inherited[5]

    def record(self) -> TransferRecord:
        request = self.request
        if self.inherited is None:
            code, ledger, user_data = request.code, request.ledger, request.user_data
            ud128, ud64, ud32 = request.user_data_128, request.user_data_64, request.user_data_32
        else:
            code, ledger, user_data, ud128, ud64, ud32 = self.inherited
        return TransferRecord(
            request=request,
            debit_account_id=self.debit.id,
            credit_account_id=self.credit.id,
            amount=self.amount,
            timestamp=self.timestamp,
            status=self.status,
            code=int(code),  # an int as PostgreSQL reads it, not the caller's IntEnum member
            ledger=ledger,
            flags=request.flags,
            user_data=user_data,
            user_data_128=ud128,
            user_data_64=ud64,
            user_data_32=ud32,
        )


class LedgerState:
    """A whole ledger. Mutated in place by the functions of this module."""

    __slots__ = (
        "account_watermark",
        "accounts",
        "expiries",
        "expiry_tiebreak",
        "sequence",
        "transfer_watermark",
        "transfers",
    )

    def __init__(self) -> None:
        # Keyed by the UUIDs' integers: UUID.__hash__ is Python code, int's is not.
        self.accounts: dict[int, AccountState] = {}
        #: in creation order (a rolled-back id that comes back goes to the end)
        self.transfers: dict[int, TransferState] = {}
        self.expiries: list[tuple[datetime, int, int]] = []
        self.expiry_tiebreak = 0
        self.sequence = 0  # of postings, across the ledger
        #: the latest timestamp of any account / transfer (imported ones must come after)
        self.account_watermark: datetime | None = None
        self.transfer_watermark: datetime | None = None


# -- batches: linked chains and imported events ----------------------------------------


def batch_check(
    index: int,
    count: int,
    flags: int,
    linked_bit: int,
    imported_bit: int,
    batch_imported: bool,
    timestamp: datetime | None,
    now: datetime,
) -> str | None:
    """The batch-level checks of one event (its result's value), or None.

    Needs no stored state; the PostgreSQL ledger runs it before calling SQL.
    """
    if flags & linked_bit and index == count - 1:
        return "linked_event_chain_open"
    imported = bool(flags & imported_bit)
    if batch_imported and not imported:
        return "imported_event_expected"
    if imported and not batch_imported:
        return "imported_event_not_expected"
    if not imported:
        return None if timestamp is None else "timestamp_must_be_zero"
    if timestamp is None or timestamp.tzinfo is None:
        return "imported_event_timestamp_out_of_range"
    if timestamp > now:
        return "imported_event_timestamp_must_not_advance"
    return None


# -- accounts ------------------------------------------------------------------------


def create_accounts(
    state: LedgerState, accounts: Sequence[NewAccount], now: datetime
) -> list[CreateAccountResult]:
    """Create accounts, one result each; ``LINKED`` ones form all-or-nothing chains."""
    results: list[CreateAccountResult] = []
    count = len(accounts)
    batch_imported = bool(count and int(accounts[0].flags) & _ACCOUNT_IMPORTED)
    chain_start: int | None = None
    chain_failed = False
    undo: Undo = []
    for index, new in enumerate(accounts):
        flags = int(new.flags)
        linked = bool(flags & _ACCOUNT_LINKED)
        if chain_start is None and linked:
            chain_start, chain_failed, undo = index, False, []
        in_chain = chain_start is not None
        if in_chain and chain_failed:
            result = A.LINKED_EVENT_FAILED
        else:
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
            if batch is not None:
                result = A(batch)
            else:
                result = _create_account(state, new, flags, now, undo if in_chain else None)
        results.append(result)
        if in_chain and result is not A.OK and not chain_failed:
            chain_failed = True
            for step in reversed(undo):
                step()
            undo = []
            for earlier in range(chain_start or 0, index):
                results[earlier] = A.LINKED_EVENT_FAILED
        if in_chain and not linked:
            chain_start = None
    return results


def _create_account(
    state: LedgerState, new: NewAccount, flags: int, now: datetime, undo: Undo | None
) -> CreateAccountResult:
    if flags & _ACCOUNT_RESERVED or flags < 0:
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
    key = new.id.int
    if key == 0:
        return A.ID_MUST_NOT_BE_ZERO
    if key == _MAX_ID:
        return A.ID_MUST_NOT_BE_INT_MAX
    existing = state.accounts.get(key)
    if existing is not None:
        same = (
            existing.created_flags,
            existing.user_data_128,
            existing.user_data_64,
            existing.user_data_32,
            existing.ledger,
            existing.code,
        ) == (flags, new.user_data_128, new.user_data_64, new.user_data_32, new.ledger, new.code)
        return A.EXISTS if same else A.EXISTS_WITH_DIFFERENT_FIELDS
    if flags & _BOTH_LIMITS == _BOTH_LIMITS:
        return A.FLAGS_ARE_MUTUALLY_EXCLUSIVE
    if new.ledger == 0:
        return A.LEDGER_MUST_NOT_BE_ZERO
    if new.code == 0:
        return A.CODE_MUST_NOT_BE_ZERO
    timestamp = now
    if flags & _ACCOUNT_IMPORTED:
        assert new.timestamp is not None  # the batch checks ran
        timestamp = new.timestamp
        if state.account_watermark is not None and timestamp <= state.account_watermark:
            return A.IMPORTED_EVENT_TIMESTAMP_MUST_NOT_REGRESS
    state.accounts[key] = AccountState(new, timestamp)
    watermark = state.account_watermark
    if watermark is None or timestamp > watermark:
        state.account_watermark = timestamp
    if undo is not None:

        def undo_account() -> None:
            del state.accounts[key]
            state.account_watermark = watermark

        undo.append(undo_account)
    return A.OK


# -- transfers -----------------------------------------------------------------------


def apply_batch(
    state: LedgerState, transfers: Sequence[Transfer], now: datetime
) -> list[CreateTransferResult]:
    """Expire what timed out by ``now``, then apply ``transfers``; one result each, in order.

    A linked chain is applied whole or not at all: the failing member keeps its
    result, the others get ``LINKED_EVENT_FAILED``; nothing of a failed
    transfer or chain remains in ``state``. A ``user_data`` reference with a NUL
    raises ``InvalidInput`` before anything is applied (see ``check_transfer_texts``).
    """
    check_transfer_texts(transfers)
    expire(state, now)
    results: list[CreateTransferResult] = []
    count = len(transfers)
    batch_imported = bool(count and int(transfers[0].flags) & _IMPORTED)
    chain_start: int | None = None  # index where the open linked chain began
    chain_failed = False
    undo: Undo = []
    for index, transfer in enumerate(transfers):
        flags = int(transfer.flags)
        linked = bool(flags & _LINKED)
        if chain_start is None and linked:
            chain_start, chain_failed, undo = index, False, []
        in_chain = chain_start is not None
        if in_chain and chain_failed:
            result = R.LINKED_EVENT_FAILED
        elif (linked and index == count - 1) or batch_imported or flags & _IMPORTED:
            batch = batch_check(
                index,
                count,
                flags,
                _LINKED,
                _IMPORTED,
                batch_imported,
                transfer.timestamp,
                now,
            )
            if batch is not None:
                result = R(batch)
            else:
                result = _create_transfer(state, transfer, flags, now, undo if in_chain else None)
        elif transfer.timestamp is not None:
            result = R.TIMESTAMP_MUST_BE_ZERO
        else:
            result = _create_transfer(state, transfer, flags, now, undo if in_chain else None)
        results.append(result)
        if in_chain and result is not R.OK and not chain_failed:
            chain_failed = True
            # Roll back what the chain already applied, newest first.
            for step in reversed(undo):
                step()
            undo = []
            for earlier in range(chain_start or 0, index):
                results[earlier] = R.LINKED_EVENT_FAILED
        if in_chain and not linked:
            chain_start = None  # this transfer closed the chain
    return results


def out_of_range(t: Transfer, flags: int) -> CreateTransferResult | None:
    """Step 3: reserved bits and values outside their type, in that order.

    Needs no stored state; the PostgreSQL ledger runs it before calling SQL.
    """
    if flags & _TRANSFER_RESERVED or flags < 0:
        return R.RESERVED_FLAG
    amount = t.amount
    if amount < 0:
        return R.AMOUNT_MUST_NOT_BE_NEGATIVE
    if amount > MAX_AMOUNT:
        return R.AMOUNT_OUT_OF_RANGE
    if not 0 <= t.ledger <= MAX_U32:
        return R.LEDGER_OUT_OF_RANGE
    if not 0 <= t.code <= MAX_U16:
        return R.CODE_OUT_OF_RANGE
    if t.timeout_seconds < 0:
        return R.TIMEOUT_MUST_NOT_BE_NEGATIVE
    if t.timeout_seconds > MAX_U32:
        return R.TIMEOUT_OUT_OF_RANGE
    if not 0 <= t.user_data_128 <= MAX_U128:
        return R.USER_DATA_128_OUT_OF_RANGE
    if not 0 <= t.user_data_64 <= MAX_U64:
        return R.USER_DATA_64_OUT_OF_RANGE
    if not 0 <= t.user_data_32 <= MAX_U32:
        return R.USER_DATA_32_OUT_OF_RANGE
    return None


def _create_transfer(
    state: LedgerState,
    t: Transfer,
    flags: int,
    now: datetime,
    undo: Undo | None,
) -> CreateTransferResult:
    # Step 3 in one expression for the common case; the detail only on failure.
    amount = t.amount
    if (
        flags & _TRANSFER_RESERVED
        or flags < 0
        or not 0 <= amount <= MAX_AMOUNT
        or not 0 <= t.ledger <= MAX_U32
        or not 0 <= t.code <= MAX_U16
        or not 0 <= t.timeout_seconds <= MAX_U32
        or t.user_data_128
        or t.user_data_64
        or t.user_data_32
    ):
        failed = out_of_range(t, flags)
        if failed is not None:
            return failed
    key = t.id.int
    if key == 0:
        return R.ID_MUST_NOT_BE_ZERO
    if key == _MAX_ID:
        return R.ID_MUST_NOT_BE_INT_MAX
    existing = state.transfers.get(key)
    if existing is not None:
        return R.EXISTS if existing.request == t else R.EXISTS_WITH_DIFFERENT_FIELDS
    if flags & _POST_OR_VOID:
        return _post_or_void(state, t, flags, now, undo)

    # -- step 7: a single-phase or pending transfer
    debit_id, credit_id = t.debit_account_id, t.credit_account_id
    if debit_id is None:
        return R.DEBIT_ACCOUNT_ID_REQUIRED
    debit_key = debit_id.int
    if debit_key == 0:
        return R.DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
    if debit_key == _MAX_ID:
        return R.DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX
    if credit_id is None:
        return R.CREDIT_ACCOUNT_ID_REQUIRED
    credit_key = credit_id.int
    if credit_key == 0:
        return R.CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
    if credit_key == _MAX_ID:
        return R.CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX
    if debit_key == credit_key:
        return R.ACCOUNTS_MUST_BE_DIFFERENT
    if t.pending_id is not None and t.pending_id.int != 0:
        return R.PENDING_ID_MUST_BE_ZERO
    pending = bool(flags & _PENDING)
    if not pending:
        if t.timeout_seconds:
            return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        if flags & _CLOSING:
            return R.CLOSING_TRANSFER_MUST_BE_PENDING
    if amount == 0 and not flags & _CLOSING:
        return R.AMOUNT_MUST_NOT_BE_ZERO
    if t.ledger == 0:
        return R.LEDGER_MUST_NOT_BE_ZERO
    if t.code == 0:
        return R.CODE_MUST_NOT_BE_ZERO
    accounts = state.accounts
    debit = accounts.get(debit_key)
    if debit is None:
        return R.DEBIT_ACCOUNT_NOT_FOUND
    credit = accounts.get(credit_key)
    if credit is None:
        return R.CREDIT_ACCOUNT_NOT_FOUND
    if debit.ledger != credit.ledger:
        return R.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER
    if t.ledger != debit.ledger:
        return R.TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS
    timestamp = now
    if flags & _IMPORTED:
        assert t.timestamp is not None  # the batch checks ran
        timestamp = t.timestamp
        if state.transfer_watermark is not None and timestamp <= state.transfer_watermark:
            return R.IMPORTED_EVENT_TIMESTAMP_MUST_NOT_REGRESS
        if timestamp <= debit.timestamp:
            return R.IMPORTED_EVENT_TIMESTAMP_MUST_POSTDATE_DEBIT_ACCOUNT
        if timestamp <= credit.timestamp:
            return R.IMPORTED_EVENT_TIMESTAMP_MUST_POSTDATE_CREDIT_ACCOUNT
        if t.timeout_seconds:
            return R.IMPORTED_EVENT_TIMEOUT_MUST_BE_ZERO
    if debit.flags & _CLOSED:
        return R.DEBIT_ACCOUNT_ALREADY_CLOSED
    if credit.flags & _CLOSED:
        return R.CREDIT_ACCOUNT_ALREADY_CLOSED
    debit_total = debit.debits_pending + debit.debits_posted
    credit_total = credit.credits_pending + credit.credits_posted
    if flags & _BALANCING:
        if flags & _BALANCING_DEBIT:
            amount = min(amount, max(0, debit.credits_posted - debit_total))
            if amount == 0:
                return R.EXCEEDS_CREDITS
        if flags & _BALANCING_CREDIT:
            amount = min(amount, max(0, credit.debits_posted - credit_total))
            if amount == 0:
                return R.EXCEEDS_DEBITS
    if debit_total + amount > MAX_AMOUNT or credit_total + amount > MAX_AMOUNT:
        return R.OVERFLOWS
    expires_at = None
    if t.timeout_seconds:
        try:
            expires_at = timestamp + timedelta(seconds=t.timeout_seconds)
        except OverflowError:
            return R.OVERFLOWS_TIMEOUT
    if debit.flags & _DEBITS_LIMITED and debit_total + amount > debit.credits_posted:
        return R.EXCEEDS_CREDITS
    if credit.flags & _CREDITS_LIMITED and credit_total + amount > credit.debits_posted:
        return R.EXCEEDS_DEBITS

    # -- apply
    stored = TransferState(
        t,
        debit,
        credit,
        amount,
        timestamp,
        PendingStatus.PENDING if pending else PendingStatus.NONE,
    )
    state.transfers[key] = stored
    watermark = state.transfer_watermark
    if watermark is None or timestamp > watermark:
        state.transfer_watermark = timestamp
    closing = flags & _CLOSING
    if pending:
        debit.debits_pending += amount
        credit.credits_pending += amount
        if expires_at is not None:
            stored.expires_at = expires_at
            state.expiry_tiebreak += 1
            heapq.heappush(state.expiries, (expires_at, state.expiry_tiebreak, key))
        if closing:
            _close(debit, credit, flags, undo)
    else:
        debit.debits_posted += amount
        credit.credits_posted += amount
        _post_entries(state, debit, credit, amount, t.id, t.code, timestamp, t.user_data, undo)
    if debit.history is not None or credit.history is not None:
        _record_history(stored, undo)
    if undo is not None:

        def undo_transfer() -> None:
            if pending:
                debit.debits_pending -= amount
                credit.credits_pending -= amount
            else:
                debit.debits_posted -= amount
                credit.credits_posted -= amount
            del state.transfers[key]
            state.transfer_watermark = watermark
            # A stale expiry heap item is skipped by expire() (transfer gone or other).

        undo.append(undo_transfer)
    return R.OK


def _post_or_void(
    state: LedgerState,
    t: Transfer,
    flags: int,
    now: datetime,
    undo: Undo | None,
) -> CreateTransferResult:
    """Step 6: resolve a pending transfer."""
    posting = bool(flags & _POST)
    if (posting and flags & _VOID) or flags & _NOT_WITH_POST_OR_VOID:
        return R.FLAGS_ARE_MUTUALLY_EXCLUSIVE
    pending_id = t.pending_id
    if pending_id is None:
        return R.PENDING_ID_REQUIRED
    pending_key = pending_id.int
    if pending_key == 0:
        return R.PENDING_ID_MUST_NOT_BE_ZERO
    if pending_key == _MAX_ID:
        return R.PENDING_ID_MUST_NOT_BE_INT_MAX
    if pending_key == t.id.int:
        return R.PENDING_ID_MUST_BE_DIFFERENT
    if t.timeout_seconds:
        return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
    p = state.transfers.get(pending_key)
    if p is None:
        return R.PENDING_TRANSFER_NOT_FOUND
    p_request = p.request
    if not int(p_request.flags) & _PENDING:
        return R.PENDING_TRANSFER_NOT_PENDING
    debit, credit = p.debit, p.credit
    if t.debit_account_id is not None and t.debit_account_id.int not in (0, debit.id.int):
        return R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID
    if t.credit_account_id is not None and t.credit_account_id.int not in (0, credit.id.int):
        return R.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID
    if t.ledger and t.ledger != p_request.ledger:
        return R.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER
    if t.code and t.code != p_request.code:
        return R.PENDING_TRANSFER_HAS_DIFFERENT_CODE
    reserved = p.amount
    amount = t.amount or reserved  # ours: 0 is "the full amount" for a post as for a void
    if amount > reserved:
        return R.EXCEEDS_PENDING_TRANSFER_AMOUNT
    if not posting and amount < reserved:
        return R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT
    status = p.status
    if status is PendingStatus.POSTED:
        return R.PENDING_TRANSFER_ALREADY_POSTED
    if status is PendingStatus.VOIDED:
        return R.PENDING_TRANSFER_ALREADY_VOIDED
    if status is PendingStatus.EXPIRED or (p.expires_at is not None and p.expires_at <= now):
        return R.PENDING_TRANSFER_EXPIRED
    timestamp = now
    if flags & _IMPORTED:
        assert t.timestamp is not None  # the batch checks ran
        timestamp = t.timestamp
        if state.transfer_watermark is not None and timestamp <= state.transfer_watermark:
            return R.IMPORTED_EVENT_TIMESTAMP_MUST_NOT_REGRESS
    if posting:  # the only movement a closed account allows is a void
        if debit.flags & _CLOSED:
            return R.DEBIT_ACCOUNT_ALREADY_CLOSED
        if credit.flags & _CLOSED:
            return R.CREDIT_ACCOUNT_ALREADY_CLOSED

    # -- apply
    inherited = (
        p_request.code,
        p_request.ledger,
        t.user_data if t.user_data is not None else p_request.user_data,
        t.user_data_128 or p_request.user_data_128,
        t.user_data_64 or p_request.user_data_64,
        t.user_data_32 or p_request.user_data_32,
    )
    stored = TransferState(t, debit, credit, amount, timestamp, PendingStatus.NONE)
    stored.inherited = inherited
    key = t.id.int
    state.transfers[key] = stored
    watermark = state.transfer_watermark
    if watermark is None or timestamp > watermark:
        state.transfer_watermark = timestamp
    debit.debits_pending -= reserved
    credit.credits_pending -= reserved
    p.status = PendingStatus.POSTED if posting else PendingStatus.VOIDED
    p.resolved_by = t.id
    p_flags = int(p_request.flags)
    if posting:
        debit.debits_posted += amount
        credit.credits_posted += amount
        _post_entries(
            state, debit, credit, amount, t.id, inherited[0], timestamp, inherited[2], undo
        )
    elif p_flags & _CLOSING:
        _reopen(debit, credit, p_flags, undo)
    if debit.history is not None or credit.history is not None:
        _record_history(stored, undo)
    if undo is not None:

        def undo_resolution() -> None:
            debit.debits_pending += reserved
            credit.credits_pending += reserved
            if posting:
                debit.debits_posted -= amount
                credit.credits_posted -= amount
            p.status = PendingStatus.PENDING
            p.resolved_by = None
            del state.transfers[key]
            state.transfer_watermark = watermark

        undo.append(undo_resolution)
    return R.OK


def _close(debit: AccountState, credit: AccountState, flags: int, undo: Undo | None) -> None:
    before = (debit.flags, credit.flags)
    if flags & _CLOSING_DEBIT:
        debit.flags |= _CLOSED
    if flags & _CLOSING_CREDIT:
        credit.flags |= _CLOSED
    if undo is not None:

        def undo_close() -> None:
            debit.flags, credit.flags = before

        undo.append(undo_close)


def _reopen(debit: AccountState, credit: AccountState, flags: int, undo: Undo | None) -> None:
    before = (debit.flags, credit.flags)
    if flags & _CLOSING_DEBIT:
        debit.flags &= ~_CLOSED
    if flags & _CLOSING_CREDIT:
        credit.flags &= ~_CLOSED
    if undo is not None:

        def undo_reopen() -> None:
            debit.flags, credit.flags = before

        undo.append(undo_reopen)


def _post_entries(
    state: LedgerState,
    debit: AccountState,
    credit: AccountState,
    amount: int,
    transfer_id: uuid.UUID,
    code: int,
    timestamp: datetime,
    user_data: str | None,
    undo: Undo | None,
) -> None:
    """Append the two postings of money just moved (balances already updated)."""
    sequence = state.sequence
    state.sequence = sequence + 2
    debit.entries.append(
        (
            sequence + 1,
            transfer_id,
            EntrySide.DEBIT,
            amount,
            debit.credits_posted - debit.debits_posted,
            code,
            timestamp,
            user_data,
        )
    )
    credit.entries.append(
        (
            sequence + 2,
            transfer_id,
            EntrySide.CREDIT,
            amount,
            credit.credits_posted - credit.debits_posted,
            code,
            timestamp,
            user_data,
        )
    )
    if undo is not None:

        def undo_entries() -> None:
            debit.entries.pop()
            credit.entries.pop()
            state.sequence = sequence

        undo.append(undo_entries)


def _record_history(stored: TransferState, undo: Undo | None) -> None:
    changed = []
    for account, is_debit in ((stored.debit, True), (stored.credit, False)):
        if account.history is not None:
            account.history.append(
                (
                    stored,
                    is_debit,
                    account.debits_pending,
                    account.debits_posted,
                    account.credits_pending,
                    account.credits_posted,
                )
            )
            changed.append(account.history)
    if undo is not None:

        def undo_history() -> None:
            for history in changed:
                history.pop()

        undo.append(undo_history)


# -- pending timeouts ----------------------------------------------------------------


def expire(state: LedgerState, now: datetime) -> int:
    """Void every pending transfer whose timeout has passed by ``now``; how many.

    Each expiry releases its reservation once: the transfer's status becomes
    ``EXPIRED`` in the same step, and a closing transfer reopens its accounts.
    """
    expired = 0
    heap = state.expiries
    transfers = state.transfers
    while heap and heap[0][0] <= now:
        expires_at, _, key = heapq.heappop(heap)
        stored = transfers.get(key)
        if (
            stored is None
            or stored.status is not PendingStatus.PENDING
            or stored.expires_at != expires_at  # a rolled-back id reused later
        ):
            continue
        stored.debit.debits_pending -= stored.amount
        stored.credit.credits_pending -= stored.amount
        stored.status = PendingStatus.EXPIRED
        flags = int(stored.request.flags)
        if flags & _CLOSING:
            _reopen(stored.debit, stored.credit, flags, None)
        expired += 1
    return expired


# -- reads -------------------------------------------------------------------------


def lookup_accounts(state: LedgerState, ids: Sequence[uuid.UUID]) -> list[LedgerAccount]:
    accounts = state.accounts
    return [accounts[i.int].snapshot() for i in ids if i.int in accounts]


def lookup_transfers(state: LedgerState, ids: Sequence[uuid.UUID]) -> list[TransferRecord]:
    transfers = state.transfers
    return [transfers[i.int].record() for i in ids if i.int in transfers]


def _in_range(when: datetime, query: AccountFilter | QueryFilter) -> bool:
    low, high = query.timestamp_min, query.timestamp_max
    return (low is None or when >= low) and (high is None or when <= high)


def _user_data_match(stored: TransferState, query: AccountFilter | QueryFilter) -> bool:
    if not (query.user_data_128 or query.user_data_64 or query.user_data_32 or query.code):
        return True
    ud128, ud64, ud32 = stored.user_data_ints()
    return (
        (not query.user_data_128 or ud128 == query.user_data_128)
        and (not query.user_data_64 or ud64 == query.user_data_64)
        and (not query.user_data_32 or ud32 == query.user_data_32)
        and (not query.code or stored.code == query.code)
    )


def _ordered(
    items: list[tuple[datetime, int, TransferState]], query: AccountFilter | QueryFilter
) -> list[TransferState]:
    # Sort by timestamp, ties in creation order (the second key).
    items.sort(key=lambda item: (item[0], item[1]), reverse=query.reversed)
    return [item[2] for item in items[: query.limit]]


def query_transfers(state: LedgerState, query: QueryFilter) -> list[TransferRecord]:
    """Transfers matching every non-zero field of ``query``; raises ``InvalidLedgerFilter``."""
    check_filter(query)
    matched = [
        (stored.timestamp, n, stored)
        for n, stored in enumerate(state.transfers.values())
        if _in_range(stored.timestamp, query)
        and (not query.ledger or _ledger_of(stored) == query.ledger)
        and _user_data_match(stored, query)
    ]
    return [stored.record() for stored in _ordered(matched, query)]


def _ledger_of(stored: TransferState) -> int:
    return stored.request.ledger if stored.inherited is None else stored.inherited[1]


def _account_matches(
    state: LedgerState, query: AccountFilter
) -> Iterator[tuple[int, TransferState]]:
    key = query.account_id.int
    for n, stored in enumerate(state.transfers.values()):
        if (
            (
                (query.debits and stored.debit.id.int == key)
                or (query.credits and stored.credit.id.int == key)
            )
            and _in_range(stored.timestamp, query)
            and _user_data_match(stored, query)
        ):
            yield n, stored


def account_transfers(state: LedgerState, query: AccountFilter) -> list[TransferRecord]:
    """The account's transfers matching ``query``; raises ``InvalidLedgerFilter``."""
    check_filter(query)
    if query.account_id.int not in state.accounts:
        return []
    matched = [(s.timestamp, n, s) for n, s in _account_matches(state, query)]
    return [stored.record() for stored in _ordered(matched, query)]


def account_balances(state: LedgerState, query: AccountFilter) -> list[AccountBalance]:
    """Balances of a ``HISTORY`` account after each transfer matching ``query``."""
    check_filter(query)
    account = state.accounts.get(query.account_id.int)
    if account is None or account.history is None:
        return []
    points = [
        (point[0].timestamp, n, point)
        for n, point in enumerate(account.history)
        if (query.debits if point[1] else query.credits)
        and _in_range(point[0].timestamp, query)
        and _user_data_match(point[0], query)
    ]
    points.sort(key=lambda item: (item[0], item[1]), reverse=query.reversed)
    return [
        AccountBalance(
            transfer_id=point[0].request.id,
            timestamp=point[0].timestamp,
            debits_pending=point[2],
            debits_posted=point[3],
            credits_pending=point[4],
            credits_posted=point[5],
        )
        for _, _, point in points[: query.limit]
    ]


def account_entries(
    state: LedgerState,
    account_id: uuid.UUID,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    after_sequence: int | None = None,
    limit: int = 100,
) -> EntryPage:
    """Posted entries of an account, oldest first, ``since <= timestamp < until``.

    Naive ``since``/``until`` raise ``InvalidLedgerFilter`` (``check_entry_window``).
    """
    since, until = check_entry_window(since, until)
    account = state.accounts.get(account_id.int)
    if account is None or limit <= 0:
        return EntryPage(entries=[], next_after_sequence=None)
    postings = account.entries
    start = 0
    if after_sequence is not None:
        start = bisect.bisect_right(postings, after_sequence, key=lambda p: p[0])
    if since is not None:
        start = max(start, bisect.bisect_left(postings, since, key=lambda p: p[6]))
    end = len(postings)
    if until is not None:
        end = bisect.bisect_left(postings, until, key=lambda p: p[6])
    page = [
        Entry(
            sequence=seq,
            account_id=account.id,
            transfer_id=transfer_id,
            side=side,
            amount=amount,
            balance_after=balance,
            code=int(code),  # an int as PostgreSQL reads it, not the caller's IntEnum member
            timestamp=at,
            user_data=user_data,
        )
        for seq, transfer_id, side, amount, balance, code, at, user_data in postings[
            start : min(end, start + limit)
        ]
    ]
    more = start + limit < end
    return EntryPage(
        entries=page,
        next_after_sequence=page[-1].sequence if more and page else None,
    )
