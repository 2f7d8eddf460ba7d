"""The ledger model, after TigerBeetle.

Accounts hold four balances (posted/pending x debits/credits) and flags; the
rest of an account is immutable. A :class:`Transfer` moves an integer amount
of centavos from a debit account to a credit account. Its ``id`` is chosen by
the caller before submitting and is the idempotency key: submitting the same
transfer again yields :attr:`CreateTransferResult.EXISTS`, the same id with
another body :attr:`CreateTransferResult.EXISTS_WITH_DIFFERENT_FIELDS`.

Two-phase transfers: a ``PENDING`` transfer reserves the amount (pending
balances); a later ``POST_PENDING_TRANSFER`` moves all or part of it to the
posted balances, a ``VOID_PENDING_TRANSFER`` releases it. A pending transfer
with ``timeout_seconds > 0`` expires at ``timestamp + timeout`` on the
ledger's clock and can then only be voided (by the ledger itself).

``LINKED`` chains transfers in a batch: a transfer with the flag is linked to
the next one; the chain succeeds or fails as a whole and the failing member
keeps its own result while the others get ``LINKED_EVENT_FAILED``.

The executable specification of these rules (what is checked, in which order)
is :mod:`finbank_core.accounts.ledger_rules`; the result enums below list the
codes in TigerBeetle's order of precedence where TigerBeetle has them.
Integer fields have TigerBeetle's widths: ``ledger`` and ``timeout_seconds``
are u32, ``code`` u16, ``user_data_128/64/32`` unsigned of that width, and
``amount`` is capped at :data:`MAX_AMOUNT` (2^63-1, PostgreSQL's bigint). A
value outside its type gets a ``*_out_of_range`` (or ``*_must_not_be_negative``)
result, never an exception. ``uuid.UUID(int=0)`` and ``uuid.UUID(int=2**128-1)``
are TigerBeetle's reserved ids ``0`` and ``2^128-1``.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from datetime import datetime

import msgspec

from finbank_core.shared.clock import utc_bound
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.inputs import unstorable_text

BRL_LEDGER = 986  # one ledger per currency; ISO 4217 numeric code of BRL


class AccountFlags(enum.IntFlag):
    """Account flags. The two limit bits predate the others and keep their values
    (stored data uses them), so the bits differ from TigerBeetle's; any bit not
    named here is reserved (``RESERVED_FLAG``)."""

    NONE = 0
    #: a customer account: it may never owe the bank (no overdraft)
    DEBITS_MUST_NOT_EXCEED_CREDITS = 1 << 0
    CREDITS_MUST_NOT_EXCEED_DEBITS = 1 << 1
    #: chains this account with the next one of the batch (all or nothing)
    LINKED = 1 << 2
    #: keep the account's balances after every transfer (``get_account_balances``)
    HISTORY = 1 << 3
    #: the account carries a caller-supplied ``timestamp`` (migration from another ledger)
    IMPORTED = 1 << 4
    #: no transfer may touch the account any more, except voiding a pending one;
    #: set at creation or by a pending closing transfer (voiding it reopens)
    CLOSED = 1 << 5


class TransferFlags(enum.IntFlag):
    """Transfer flags, with TigerBeetle's bits; any other bit is reserved."""

    NONE = 0
    LINKED = 1 << 0
    PENDING = 1 << 1
    POST_PENDING_TRANSFER = 1 << 2
    VOID_PENDING_TRANSFER = 1 << 3
    #: move at most ``amount``, as much as the debit account's credits allow
    BALANCING_DEBIT = 1 << 4
    #: move at most ``amount``, as much as the credit account's debits allow
    BALANCING_CREDIT = 1 << 5
    #: (pending only) close the debit account; voiding the transfer reopens it
    CLOSING_DEBIT = 1 << 6
    #: (pending only) close the credit account; voiding the transfer reopens it
    CLOSING_CREDIT = 1 << 7
    #: the transfer carries a caller-supplied ``timestamp`` (migration)
    IMPORTED = 1 << 8


ACCOUNT_FLAGS_KNOWN = 0b11_1111  # every AccountFlags bit; the others are reserved
TRANSFER_FLAGS_KNOWN = 0b1_1111_1111  # every TransferFlags bit; the others are reserved

MAX_AMOUNT = (1 << 63) - 1  # PostgreSQL bigint; every balance must stay below it
MAX_U16 = (1 << 16) - 1
MAX_U32 = (1 << 32) - 1
MAX_U64 = (1 << 64) - 1
MAX_U128 = (1 << 128) - 1
ZERO_ID = uuid.UUID(int=0)  # TigerBeetle's reserved id 0
INT_MAX_ID = uuid.UUID(int=MAX_U128)  # TigerBeetle's reserved id 2^128-1
#: most results a query (``query_transfers``, ``get_account_*``) returns at once
MAX_QUERY_LIMIT = 8190


class AccountCode(enum.IntEnum):
    """What a ledger account stands for (TigerBeetle's ``code``)."""

    CUSTOMER = 1
    BANK_CASH = 100
    PIX_SETTLEMENT = 101
    FEES = 102
    SUSPENSE = 103


class TransferCode(enum.IntEnum):
    """Why money moved (TigerBeetle's transfer ``code``)."""

    DEPOSIT = 1
    WITHDRAWAL = 2
    INTERNAL_TRANSFER = 3
    PIX_OUT = 10
    PIX_IN = 11
    PIX_REFUND_OUT = 12
    PIX_REFUND_IN = 13
    FEE = 20


class NewAccount(msgspec.Struct, frozen=True, kw_only=True):
    """An account to create; ``id`` is chosen by the caller (idempotency key).

    ``timestamp`` must be ``None`` unless ``flags`` has ``IMPORTED``: then it
    is the account's creation time in the ledger it is migrated from.
    """

    id: uuid.UUID
    code: int
    flags: AccountFlags = AccountFlags.NONE
    ledger: int = BRL_LEDGER
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    timestamp: datetime | None = None


class LedgerAccount(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of an account and its balances, in centavos."""

    id: uuid.UUID
    code: int
    flags: AccountFlags
    ledger: int
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    timestamp: datetime
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0

    @property
    def balance_posted(self) -> int:
        """Credit balance: what the bank owes the holder (credit-normal accounts)."""
        return self.credits_posted - self.debits_posted

    @property
    def balance_available(self) -> int:
        """Posted credit balance minus funds reserved by pending debits."""
        return self.credits_posted - self.debits_posted - self.debits_pending


class Transfer(msgspec.Struct, frozen=True, kw_only=True):
    """A transfer to submit.

    For ``POST_PENDING_TRANSFER``/``VOID_PENDING_TRANSFER`` the accounts may be
    left ``None`` (they are taken from the pending transfer; if given they must
    match) and ``amount`` 0 means "the full pending amount" (a post may name a
    smaller amount: the rest is released). ``timeout_seconds`` only applies to
    ``PENDING`` transfers; 0 means no timeout. ``user_data`` is a short
    reference kept with the transfer and on statement entries;
    ``user_data_128/64/32`` are TigerBeetle's integer user data (0 = none).
    A post/void with ``code``, ``ledger``, user data 0 (``None``) inherits the
    pending transfer's. ``timestamp`` must be ``None`` unless ``flags`` has
    ``IMPORTED``. With ``BALANCING_DEBIT``/``BALANCING_CREDIT``, ``amount`` is
    the most to move (``MAX_AMOUNT``: as much as possible).
    """

    id: uuid.UUID
    debit_account_id: uuid.UUID | None
    credit_account_id: uuid.UUID | None
    amount: int
    code: int
    flags: TransferFlags = TransferFlags.NONE
    pending_id: uuid.UUID | None = None
    timeout_seconds: int = 0
    ledger: int = BRL_LEDGER
    user_data: str | None = None
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    timestamp: datetime | None = None

    @classmethod
    def post(
        cls, id: uuid.UUID, pending_id: uuid.UUID, *, amount: int = 0, code: int = 0
    ) -> Transfer:
        """Post a pending transfer, all of it (``amount=0``) or part of it."""
        return cls(
            id=id,
            debit_account_id=None,
            credit_account_id=None,
            amount=amount,
            code=code,
            flags=TransferFlags.POST_PENDING_TRANSFER,
            pending_id=pending_id,
        )

    @classmethod
    def void(cls, id: uuid.UUID, pending_id: uuid.UUID, *, code: int = 0) -> Transfer:
        """Void a pending transfer, releasing its reservation."""
        return cls(
            id=id,
            debit_account_id=None,
            credit_account_id=None,
            amount=0,
            code=code,
            flags=TransferFlags.VOID_PENDING_TRANSFER,
            pending_id=pending_id,
        )


class PendingStatus(enum.StrEnum):
    NONE = "none"  # not a pending transfer
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


class TransferRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A transfer as the ledger applied it.

    ``request`` is what was submitted (what replays are compared with); the
    other fields are resolved: the accounts of a post/void, the amount moved
    (of a post/void, or of a balancing transfer), and the ``code``, ``ledger``
    and user data, which a post/void takes from its pending transfer when it
    leaves them 0 (``None``). ``code``/``ledger`` always equal the pending
    transfer's for a post/void. ``status`` is the pending status of a pending
    transfer, ``NONE`` for the others.
    """

    request: Transfer
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: int
    timestamp: datetime
    status: PendingStatus = PendingStatus.NONE
    code: int = 0
    ledger: int = 0
    flags: TransferFlags = TransferFlags.NONE
    user_data: str | None = None
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0

    @property
    def id(self) -> uuid.UUID:
        return self.request.id


class CreateAccountResult(enum.StrEnum):
    """Per-account outcome of :meth:`Ledger.create_accounts`, in order of precedence.

    When several apply, the first one listed wins (see ``ledger_rules``).
    ``OK`` and ``EXISTS`` are successes for an idempotent caller.
    """

    OK = "ok"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
    IMPORTED_EVENT_EXPECTED = "imported_event_expected"
    IMPORTED_EVENT_NOT_EXPECTED = "imported_event_not_expected"
    TIMESTAMP_MUST_BE_ZERO = "timestamp_must_be_zero"
    IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE = "imported_event_timestamp_out_of_range"
    IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE = "imported_event_timestamp_must_not_advance"
    RESERVED_FLAG = "reserved_flag"
    #: ours: a value outside its type (TigerBeetle's wire format cannot carry one)
    LEDGER_OUT_OF_RANGE = "ledger_out_of_range"
    CODE_OUT_OF_RANGE = "code_out_of_range"
    USER_DATA_128_OUT_OF_RANGE = "user_data_128_out_of_range"
    USER_DATA_64_OUT_OF_RANGE = "user_data_64_out_of_range"
    USER_DATA_32_OUT_OF_RANGE = "user_data_32_out_of_range"
    ID_MUST_NOT_BE_ZERO = "id_must_not_be_zero"
    ID_MUST_NOT_BE_INT_MAX = "id_must_not_be_int_max"
    #: ours: one code for TigerBeetle's ``exists_with_different_*`` family
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
    EXISTS = "exists"
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = "flags_are_mutually_exclusive"
    LEDGER_MUST_NOT_BE_ZERO = "ledger_must_not_be_zero"
    CODE_MUST_NOT_BE_ZERO = "code_must_not_be_zero"
    IMPORTED_EVENT_TIMESTAMP_MUST_NOT_REGRESS = "imported_event_timestamp_must_not_regress"


class CreateTransferResult(enum.StrEnum):
    """Per-transfer outcome of :meth:`Ledger.create_transfers`, in order of precedence.

    When several apply, the first one listed wins; post/void transfers and the
    others take different paths through the list (see ``ledger_rules``, which
    is the executable form of this order). ``OK`` and ``EXISTS`` are successes
    for an idempotent caller.
    """

    OK = "ok"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
    IMPORTED_EVENT_EXPECTED = "imported_event_expected"
    IMPORTED_EVENT_NOT_EXPECTED = "imported_event_not_expected"
    TIMESTAMP_MUST_BE_ZERO = "timestamp_must_be_zero"
    IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE = "imported_event_timestamp_out_of_range"
    IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE = "imported_event_timestamp_must_not_advance"
    RESERVED_FLAG = "reserved_flag"
    #: ours: values outside their type (TigerBeetle's wire format cannot carry them)
    AMOUNT_MUST_NOT_BE_NEGATIVE = "amount_must_not_be_negative"
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    LEDGER_OUT_OF_RANGE = "ledger_out_of_range"
    CODE_OUT_OF_RANGE = "code_out_of_range"
    TIMEOUT_MUST_NOT_BE_NEGATIVE = "timeout_must_not_be_negative"
    TIMEOUT_OUT_OF_RANGE = "timeout_out_of_range"
    USER_DATA_128_OUT_OF_RANGE = "user_data_128_out_of_range"
    USER_DATA_64_OUT_OF_RANGE = "user_data_64_out_of_range"
    USER_DATA_32_OUT_OF_RANGE = "user_data_32_out_of_range"
    ID_MUST_NOT_BE_ZERO = "id_must_not_be_zero"
    ID_MUST_NOT_BE_INT_MAX = "id_must_not_be_int_max"
    #: ours: one code for TigerBeetle's ``exists_with_different_*`` family
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
    EXISTS = "exists"
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = "flags_are_mutually_exclusive"
    #: ours: ``None`` account id (TigerBeetle's ``debit_account_id_must_not_be_zero``)
    DEBIT_ACCOUNT_ID_REQUIRED = "debit_account_id_required"
    DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = "debit_account_id_must_not_be_zero"
    DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX = "debit_account_id_must_not_be_int_max"
    CREDIT_ACCOUNT_ID_REQUIRED = "credit_account_id_required"
    CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = "credit_account_id_must_not_be_zero"
    CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX = "credit_account_id_must_not_be_int_max"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts_must_be_different"
    PENDING_ID_MUST_BE_ZERO = "pending_id_must_be_zero"
    #: ours: ``None`` pending id (TigerBeetle's ``pending_id_must_not_be_zero``)
    PENDING_ID_REQUIRED = "pending_id_required"
    PENDING_ID_MUST_NOT_BE_ZERO = "pending_id_must_not_be_zero"
    PENDING_ID_MUST_NOT_BE_INT_MAX = "pending_id_must_not_be_int_max"
    PENDING_ID_MUST_BE_DIFFERENT = "pending_id_must_be_different"
    TIMEOUT_RESERVED_FOR_PENDING_TRANSFER = "timeout_reserved_for_pending_transfer"
    CLOSING_TRANSFER_MUST_BE_PENDING = "closing_transfer_must_be_pending"
    #: ours (TigerBeetle < 0.16): a transfer must move money, except a closing one
    AMOUNT_MUST_NOT_BE_ZERO = "amount_must_not_be_zero"
    LEDGER_MUST_NOT_BE_ZERO = "ledger_must_not_be_zero"
    CODE_MUST_NOT_BE_ZERO = "code_must_not_be_zero"
    DEBIT_ACCOUNT_NOT_FOUND = "debit_account_not_found"
    CREDIT_ACCOUNT_NOT_FOUND = "credit_account_not_found"
    ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER = "accounts_must_have_the_same_ledger"
    TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS = (
        "transfer_must_have_the_same_ledger_as_accounts"
    )
    PENDING_TRANSFER_NOT_FOUND = "pending_transfer_not_found"
    PENDING_TRANSFER_NOT_PENDING = "pending_transfer_not_pending"
    PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID = (
        "pending_transfer_has_different_debit_account_id"
    )
    PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID = (
        "pending_transfer_has_different_credit_account_id"
    )
    PENDING_TRANSFER_HAS_DIFFERENT_LEDGER = "pending_transfer_has_different_ledger"
    PENDING_TRANSFER_HAS_DIFFERENT_CODE = "pending_transfer_has_different_code"
    EXCEEDS_PENDING_TRANSFER_AMOUNT = "exceeds_pending_transfer_amount"
    PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT = "pending_transfer_has_different_amount"
    PENDING_TRANSFER_ALREADY_POSTED = "pending_transfer_already_posted"
    PENDING_TRANSFER_ALREADY_VOIDED = "pending_transfer_already_voided"
    PENDING_TRANSFER_EXPIRED = "pending_transfer_expired"
    IMPORTED_EVENT_TIMESTAMP_MUST_NOT_REGRESS = "imported_event_timestamp_must_not_regress"
    IMPORTED_EVENT_TIMESTAMP_MUST_POSTDATE_DEBIT_ACCOUNT = (
        "imported_event_timestamp_must_postdate_debit_account"
    )
    IMPORTED_EVENT_TIMESTAMP_MUST_POSTDATE_CREDIT_ACCOUNT = (
        "imported_event_timestamp_must_postdate_credit_account"
    )
    IMPORTED_EVENT_TIMEOUT_MUST_BE_ZERO = "imported_event_timeout_must_be_zero"
    DEBIT_ACCOUNT_ALREADY_CLOSED = "debit_account_already_closed"
    CREDIT_ACCOUNT_ALREADY_CLOSED = "credit_account_already_closed"
    #: ours: one code for TigerBeetle's ``overflows_*`` family (balances cap at MAX_AMOUNT)
    OVERFLOWS = "overflows"
    OVERFLOWS_TIMEOUT = "overflows_timeout"
    EXCEEDS_CREDITS = "exceeds_credits"
    EXCEEDS_DEBITS = "exceeds_debits"


class SubmittedTransfer(msgspec.Struct, frozen=True, kw_only=True):
    """What ``Ledger.submit_transfer`` answers for one transfer.

    ``timestamp`` is the transfer's timestamp as the ledger stored it (what a
    look-up would read), given when ``result`` is ``OK``; ``None`` otherwise
    (an ``EXISTS`` is answered from the stored transfer: look it up).
    """

    result: CreateTransferResult
    timestamp: datetime | None = None


class EntrySide(enum.StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One posting on one account, with the account's balance after it.

    ``balance_after`` is the posted credit balance (credits - debits) right
    after this posting; ``sequence`` orders entries across the whole ledger.
    """

    sequence: int
    account_id: uuid.UUID
    transfer_id: uuid.UUID
    side: EntrySide
    amount: int
    balance_after: int
    code: int
    timestamp: datetime
    user_data: str | None = None

    @property
    def signed_amount(self) -> int:
        """Positive for credits (money in for the holder), negative for debits."""
        return self.amount if self.side is EntrySide.CREDIT else -self.amount


class EntryPage(msgspec.Struct, frozen=True, kw_only=True):
    entries: list[Entry]
    #: pass as ``after_sequence`` to get the next page; ``None`` on the last page
    next_after_sequence: int | None


class AccountBalance(msgspec.Struct, frozen=True, kw_only=True):
    """An account's balances right after one transfer (accounts flagged ``HISTORY``).

    Expiry of a pending transfer is not a transfer and leaves no point here.
    """

    transfer_id: uuid.UUID
    timestamp: datetime
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int


class AccountFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which transfers of one account :meth:`Ledger.get_account_transfers` returns.

    Zero fields (``user_data_*``, ``code``) match anything; the time range is
    inclusive at both ends; ``debits``/``credits`` select the transfers where
    the account is the debit/credit side (at least one must be set). Results
    come oldest first (ties in creation order), newest first if ``reversed``,
    at most ``limit`` (1..``MAX_QUERY_LIMIT``) of them.
    """

    account_id: uuid.UUID
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    code: int = 0
    timestamp_min: datetime | None = None
    timestamp_max: datetime | None = None
    limit: int = 100
    debits: bool = True
    credits: bool = True
    reversed: bool = False


class QueryFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which transfers :meth:`Ledger.query_transfers` returns (all fields ANDed).

    Zero fields match anything; otherwise as :class:`AccountFilter`.
    """

    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    ledger: int = 0
    code: int = 0
    timestamp_min: datetime | None = None
    timestamp_max: datetime | None = None
    limit: int = 100
    reversed: bool = False


def transfer_request_matches(existing: Transfer, submitted: Transfer) -> bool:
    """True when a replayed transfer carries the same fields as the stored one."""
    return existing == submitted


class InvalidLedgerFilter(InvalidInput):
    """A query filter with a value outside its type or an empty selection."""

    code = "invalid_ledger_filter"
    title = "Invalid ledger query filter"


def check_transfer_texts(transfers: Sequence[Transfer]) -> None:
    """Raise :class:`InvalidInput` when a transfer's ``user_data`` reference holds a NUL
    or an unpaired surrogate.

    PostgreSQL text cannot store U+0000, nor anything without a UTF-8 form (a
    lone ``"\\ud800"``: the driver refused the whole batch, while memory stored
    it), so both ledgers refuse such a batch whole, before anything is
    applied, with the same core error.
    """
    for transfer in transfers:
        user_data = transfer.user_data
        if user_data is not None and ("\x00" in user_data or not user_data.isascii()):
            wrong = unstorable_text(user_data)
            if wrong is not None:
                raise InvalidInput(f"user_data must not contain {wrong}", field="user_data")


def check_entry_window(
    since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """Raise :class:`InvalidLedgerFilter` when a statement bound has no time zone;
    else the bounds in UTC (:func:`~finbank_core.shared.clock.utc_bound`).

    A naive datetime is ambiguous (local time? UTC?); both ledgers refuse it
    rather than guess. A bound whose UTC instant is outside year 1 to 9999
    (``0001-01-01T00:00+01:00``) is clamped to the first or last instant, which
    selects the same entries: PostgreSQL could not be sent it, memory could.
    """
    for name, when in (("since", since), ("until", until)):
        if when is not None and when.utcoffset() is None:
            raise InvalidLedgerFilter(f"{name} needs a time zone", field=name)
    return (
        None if since is None else utc_bound(since),
        None if until is None else utc_bound(until),
    )


def check_filter(query: AccountFilter | QueryFilter) -> None:
    """Raise :class:`InvalidLedgerFilter` unless every field of ``query`` is in range.

    TigerBeetle answers an invalid filter with an empty result; we say why.
    Both ledgers call this before touching their store.
    """
    ranges = (
        ("user_data_128", query.user_data_128, MAX_U128),
        ("user_data_64", query.user_data_64, MAX_U64),
        ("user_data_32", query.user_data_32, MAX_U32),
        ("code", query.code, MAX_U16),
        ("ledger", query.ledger if isinstance(query, QueryFilter) else 0, MAX_U32),
    )
    for name, value, top in ranges:
        if not 0 <= value <= top:
            raise InvalidLedgerFilter(f"{name} is outside 0..{top}", field=name)
    if not 1 <= query.limit <= MAX_QUERY_LIMIT:
        raise InvalidLedgerFilter(f"limit is outside 1..{MAX_QUERY_LIMIT}", field="limit")
    for name, when in (
        ("timestamp_min", query.timestamp_min),
        ("timestamp_max", query.timestamp_max),
    ):
        if when is not None and when.tzinfo is None:
            raise InvalidLedgerFilter(f"{name} needs a time zone", field=name)
    if (
        query.timestamp_min is not None
        and query.timestamp_max is not None
        and query.timestamp_min > query.timestamp_max
    ):
        raise InvalidLedgerFilter("timestamp_min is after timestamp_max", field="timestamp_min")
    if isinstance(query, AccountFilter) and not (query.debits or query.credits):
        raise InvalidLedgerFilter("select debits, credits or both", field="debits")
