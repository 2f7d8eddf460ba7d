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
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import msgspec

BRL_LEDGER = 986  # one ledger per currency; ISO 4217 numeric code of BRL


class AccountFlags(enum.IntFlag):
    NONE = 0
    #: a customer account: it may never owe the bank (no overdraft)
    DEBITS_MUST_NOT_EXCEED_CREDITS = 1 << 0
    CREDITS_MUST_NOT_EXCEED_DEBITS = 1 << 1


class TransferFlags(enum.IntFlag):
    NONE = 0
    LINKED = 1 << 0
    PENDING = 1 << 1
    POST_PENDING_TRANSFER = 1 << 2
    VOID_PENDING_TRANSFER = 1 << 3


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
    """An account to create; ``id`` is chosen by the caller (idempotency key)."""

    id: uuid.UUID
    code: int
    flags: AccountFlags = AccountFlags.NONE
    ledger: int = BRL_LEDGER


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
    reference kept with the transfer and on statement entries.
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
    other fields are resolved (accounts and amount of a post/void).
    """

    request: Transfer
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: int
    timestamp: datetime
    status: PendingStatus = PendingStatus.NONE

    @property
    def id(self) -> uuid.UUID:
        return self.request.id


class CreateAccountResult(enum.StrEnum):
    OK = "ok"
    EXISTS = "exists"
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
    LINKED_EVENT_FAILED = "linked_event_failed"
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = "flags_are_mutually_exclusive"


class CreateTransferResult(enum.StrEnum):
    """Per-transfer outcome of :meth:`Ledger.create_transfers`."""

    OK = "ok"
    EXISTS = "exists"
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = "flags_are_mutually_exclusive"
    AMOUNT_MUST_NOT_BE_ZERO = "amount_must_not_be_zero"
    AMOUNT_MUST_NOT_BE_NEGATIVE = "amount_must_not_be_negative"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts_must_be_different"
    DEBIT_ACCOUNT_ID_REQUIRED = "debit_account_id_required"
    CREDIT_ACCOUNT_ID_REQUIRED = "credit_account_id_required"
    DEBIT_ACCOUNT_NOT_FOUND = "debit_account_not_found"
    CREDIT_ACCOUNT_NOT_FOUND = "credit_account_not_found"
    ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER = "accounts_must_have_the_same_ledger"
    TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS = (
        "transfer_must_have_the_same_ledger_as_accounts"
    )
    PENDING_ID_MUST_BE_ZERO = "pending_id_must_be_zero"
    PENDING_ID_REQUIRED = "pending_id_required"
    PENDING_ID_MUST_BE_DIFFERENT = "pending_id_must_be_different"
    TIMEOUT_RESERVED_FOR_PENDING_TRANSFER = "timeout_reserved_for_pending_transfer"
    TIMEOUT_MUST_NOT_BE_NEGATIVE = "timeout_must_not_be_negative"
    PENDING_TRANSFER_NOT_FOUND = "pending_transfer_not_found"
    PENDING_TRANSFER_NOT_PENDING = "pending_transfer_not_pending"
    PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID = (
        "pending_transfer_has_different_debit_account_id"
    )
    PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID = (
        "pending_transfer_has_different_credit_account_id"
    )
    PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT = "pending_transfer_has_different_amount"
    EXCEEDS_PENDING_TRANSFER_AMOUNT = "exceeds_pending_transfer_amount"
    PENDING_TRANSFER_ALREADY_POSTED = "pending_transfer_already_posted"
    PENDING_TRANSFER_ALREADY_VOIDED = "pending_transfer_already_voided"
    PENDING_TRANSFER_EXPIRED = "pending_transfer_expired"
    EXCEEDS_CREDITS = "exceeds_credits"
    EXCEEDS_DEBITS = "exceeds_debits"
    OVERFLOWS = "overflows"


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


MAX_AMOUNT = (1 << 63) - 1  # PostgreSQL bigint; every balance must stay below it


def transfer_request_matches(existing: Transfer, submitted: Transfer) -> bool:
    """True when a replayed transfer carries the same fields as the stored one."""
    return existing == submitted
