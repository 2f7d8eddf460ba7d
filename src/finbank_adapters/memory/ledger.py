"""An in-memory ledger with the semantics of ``finbank_core.accounts.ledger``.

Every public method runs without awaiting in between, so on one event loop a
batch is applied atomically. Linked chains are rolled back from an undo log.
Expired pending transfers are voided at the start of every call (a heap keyed
by expiry makes that cheap), so every read sees the clock's "now".
"""

from __future__ import annotations

import bisect
import heapq
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta

from finbank_core.accounts.ledger import (
    MAX_AMOUNT,
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
from finbank_core.reconciliation.model import Direction, PendingHold
from finbank_core.shared.clock import Clock
from finbank_core.shared.events import EventEnvelope, EventPublisher

R = CreateTransferResult
# Plain ints: IntFlag arithmetic goes through Python-level enum code on every
# operation, which costs more than the rest of a transfer.
_LINKED = int(TransferFlags.LINKED)
_PENDING = int(TransferFlags.PENDING)
_POST = int(TransferFlags.POST_PENDING_TRANSFER)
_VOID = int(TransferFlags.VOID_PENDING_TRANSFER)
_PHASE_FLAGS = _PENDING | _POST | _VOID
_DEBITS_LIMITED = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_CREDITS_LIMITED = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
_EXCLUSIVE_ACCOUNT_FLAGS = (
    AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
)


class _Account:
    __slots__ = (
        "code",
        "credits_pending",
        "credits_posted",
        "debits_pending",
        "debits_posted",
        "entries",
        "flags",
        "id",
        "ledger",
        "limits",
        "timestamp",
    )

    def __init__(self, new: NewAccount, timestamp: datetime) -> None:
        self.id = new.id
        self.code = new.code
        self.flags = new.flags
        self.limits = int(new.flags)
        self.ledger = new.ledger
        self.timestamp = timestamp
        self.debits_pending = 0
        self.debits_posted = 0
        self.credits_pending = 0
        self.credits_posted = 0
        # Postings as plain tuples (see _Posting); Entry structs are built on read,
        # which keeps the write path free of two struct constructions per transfer.
        self.entries: list[_Posting] = []

    def snapshot(self) -> LedgerAccount:
        return LedgerAccount(
            id=self.id,
            code=self.code,
            flags=self.flags,
            ledger=self.ledger,
            debits_pending=self.debits_pending,
            debits_posted=self.debits_posted,
            credits_pending=self.credits_pending,
            credits_posted=self.credits_posted,
            timestamp=self.timestamp,
        )


# (sequence, transfer_id, side, amount, balance_after, code, timestamp, user_data)
_Posting = tuple[int, uuid.UUID, EntrySide, int, int, int, datetime, str | None]


class _Stored:
    """A stored transfer: its record plus, for pending ones, a mutable status."""

    __slots__ = ("expires_at", "record", "resolved_by", "status")

    def __init__(self, record: TransferRecord, status: PendingStatus, expires_at: datetime | None):
        self.record = record
        self.status = status
        self.expires_at = expires_at
        self.resolved_by: uuid.UUID | None = None


class InMemoryLedger:
    """The reference ledger: simple, fast, and held to the same contract as PostgreSQL."""

    def __init__(self, clock: Clock, publisher: EventPublisher | None = None) -> None:
        self._clock = clock
        self._publisher = publisher
        # Keyed by the UUIDs' integers: UUID.__hash__ is Python code, int's is not.
        self._accounts: dict[int, _Account] = {}
        self._transfers: dict[int, _Stored] = {}
        self._expiries: list[tuple[datetime, int, uuid.UUID]] = []
        self._expiry_tiebreak = 0
        self._sequence = 0

    # -- accounts ---------------------------------------------------------------

    async def create_accounts(self, accounts: Sequence[NewAccount]) -> list[CreateAccountResult]:
        now = self._clock.now()
        results: list[CreateAccountResult] = []
        for new in accounts:
            existing = self._accounts.get(new.id.int)
            if existing is not None:
                same = (existing.code, existing.flags, existing.ledger) == (
                    new.code,
                    new.flags,
                    new.ledger,
                )
                results.append(
                    CreateAccountResult.EXISTS
                    if same
                    else CreateAccountResult.EXISTS_WITH_DIFFERENT_FIELDS
                )
            elif new.flags & _EXCLUSIVE_ACCOUNT_FLAGS == _EXCLUSIVE_ACCOUNT_FLAGS:
                results.append(CreateAccountResult.FLAGS_ARE_MUTUALLY_EXCLUSIVE)
            else:
                self._accounts[new.id.int] = _Account(new, now)
                results.append(CreateAccountResult.OK)
        return results

    async def lookup_accounts(self, ids: Sequence[uuid.UUID]) -> list[LedgerAccount]:
        self._expire(self._clock.now())
        accounts = self._accounts
        return [accounts[i.int].snapshot() for i in ids if i.int in accounts]

    # -- transfers --------------------------------------------------------------

    async def lookup_transfers(self, ids: Sequence[uuid.UUID]) -> list[TransferRecord]:
        self._expire(self._clock.now())
        found: list[TransferRecord] = []
        for transfer_id in ids:
            stored = self._transfers.get(transfer_id.int)
            if stored is None:
                continue
            record = stored.record
            if record.status is not stored.status:
                record = TransferRecord(
                    request=record.request,
                    debit_account_id=record.debit_account_id,
                    credit_account_id=record.credit_account_id,
                    amount=record.amount,
                    timestamp=record.timestamp,
                    status=stored.status,
                )
            found.append(record)
        return found

    async def create_transfers(
        self,
        transfers: Sequence[Transfer],
        *,
        events: Sequence[EventEnvelope] = (),
    ) -> list[CreateTransferResult]:
        now = self._clock.now()
        self._expire(now)
        results: list[CreateTransferResult] = []
        chain_start: int | None = None  # index where the open linked chain began
        chain_failed = False
        undo: list[Callable[[], None]] = []
        count = len(transfers)
        for index, transfer in enumerate(transfers):
            linked = bool(int(transfer.flags) & _LINKED)
            if chain_start is None and linked:
                chain_start = index
                chain_failed = False
                undo = []
            in_chain = chain_start is not None
            if in_chain and chain_failed:
                result = R.LINKED_EVENT_FAILED
            elif linked and index == count - 1:
                result = R.LINKED_EVENT_CHAIN_OPEN
            else:
                result = self._apply(transfer, now, undo if in_chain else None)
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
        if events and self._publisher is not None and R.OK in results:
            await self._publisher.publish(events)
        return results

    def _apply(
        self,
        transfer: Transfer,
        now: datetime,
        undo: list[Callable[[], None]] | None,
    ) -> CreateTransferResult:
        phase = int(transfer.flags) & _PHASE_FLAGS
        if phase and phase & (phase - 1):
            return R.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        existing = self._transfers.get(transfer.id.int)
        if existing is not None:
            return (
                R.EXISTS if existing.record.request == transfer else R.EXISTS_WITH_DIFFERENT_FIELDS
            )
        if transfer.amount < 0:
            return R.AMOUNT_MUST_NOT_BE_NEGATIVE
        if transfer.timeout_seconds < 0:
            return R.TIMEOUT_MUST_NOT_BE_NEGATIVE
        if phase & (_POST | _VOID):
            return self._resolve_pending(transfer, now, undo, bool(phase & _POST))
        return self._apply_single_phase(transfer, now, undo, bool(phase & _PENDING))

    def _apply_single_phase(
        self,
        transfer: Transfer,
        now: datetime,
        undo: list[Callable[[], None]] | None,
        pending: bool,
    ) -> CreateTransferResult:
        if transfer.pending_id is not None:
            return R.PENDING_ID_MUST_BE_ZERO
        if transfer.timeout_seconds and not pending:
            return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        debit_id, credit_id, amount = (
            transfer.debit_account_id,
            transfer.credit_account_id,
            transfer.amount,
        )
        if debit_id is None:
            return R.DEBIT_ACCOUNT_ID_REQUIRED
        if credit_id is None:
            return R.CREDIT_ACCOUNT_ID_REQUIRED
        if debit_id.int == credit_id.int:
            return R.ACCOUNTS_MUST_BE_DIFFERENT
        if amount == 0:
            return R.AMOUNT_MUST_NOT_BE_ZERO
        debit = self._accounts.get(debit_id.int)
        if debit is None:
            return R.DEBIT_ACCOUNT_NOT_FOUND
        credit = self._accounts.get(credit_id.int)
        if credit is None:
            return R.CREDIT_ACCOUNT_NOT_FOUND
        if debit.ledger != credit.ledger:
            return R.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER
        if transfer.ledger != debit.ledger:
            return R.TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS
        if (
            debit.debits_pending + debit.debits_posted + amount > MAX_AMOUNT
            or credit.credits_pending + credit.credits_posted + amount > MAX_AMOUNT
        ):
            return R.OVERFLOWS
        if (
            debit.limits & _DEBITS_LIMITED
            and debit.debits_pending + debit.debits_posted + amount > debit.credits_posted
        ):
            return R.EXCEEDS_CREDITS
        if (
            credit.limits & _CREDITS_LIMITED
            and credit.credits_pending + credit.credits_posted + amount > credit.debits_posted
        ):
            return R.EXCEEDS_DEBITS

        record = TransferRecord(
            request=transfer,
            debit_account_id=debit_id,
            credit_account_id=credit_id,
            amount=amount,
            timestamp=now,
            status=PendingStatus.PENDING if pending else PendingStatus.NONE,
        )
        if pending:
            debit.debits_pending += amount
            credit.credits_pending += amount
            expires_at = None
            if transfer.timeout_seconds:
                expires_at = now + timedelta(seconds=transfer.timeout_seconds)
                self._expiry_tiebreak += 1
                heapq.heappush(self._expiries, (expires_at, self._expiry_tiebreak, transfer.id))
            self._transfers[transfer.id.int] = _Stored(record, PendingStatus.PENDING, expires_at)
            if undo is not None:

                def undo_pending() -> None:
                    debit.debits_pending -= amount
                    credit.credits_pending -= amount
                    del self._transfers[transfer.id.int]
                    # A stale heap item is skipped by _expire (transfer gone).

                undo.append(undo_pending)
        else:
            self._transfers[transfer.id.int] = _Stored(record, PendingStatus.NONE, None)
            self._post(debit, credit, amount, transfer, now, undo)
            if undo is not None:

                def undo_record() -> None:
                    del self._transfers[transfer.id.int]

                undo.append(undo_record)
        return R.OK

    def _resolve_pending(
        self,
        transfer: Transfer,
        now: datetime,
        undo: list[Callable[[], None]] | None,
        posting: bool,
    ) -> CreateTransferResult:
        if transfer.timeout_seconds:
            return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        pending_id = transfer.pending_id
        if pending_id is None:
            return R.PENDING_ID_REQUIRED
        if pending_id == transfer.id:
            return R.PENDING_ID_MUST_BE_DIFFERENT
        stored = self._transfers.get(pending_id.int)
        if stored is None:
            return R.PENDING_TRANSFER_NOT_FOUND
        pending = stored.record
        if not int(pending.request.flags) & _PENDING:
            return R.PENDING_TRANSFER_NOT_PENDING
        if (
            transfer.debit_account_id is not None
            and transfer.debit_account_id != pending.debit_account_id
        ):
            return R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID
        if (
            transfer.credit_account_id is not None
            and transfer.credit_account_id != pending.credit_account_id
        ):
            return R.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID
        if transfer.ledger != pending.request.ledger:
            return R.TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS
        if stored.status is PendingStatus.POSTED:
            return R.PENDING_TRANSFER_ALREADY_POSTED
        if stored.status is PendingStatus.VOIDED:
            return R.PENDING_TRANSFER_ALREADY_VOIDED
        if stored.status is PendingStatus.EXPIRED:
            return R.PENDING_TRANSFER_EXPIRED
        if posting:
            amount = transfer.amount or pending.amount
            if amount > pending.amount:
                return R.EXCEEDS_PENDING_TRANSFER_AMOUNT
        else:
            if transfer.amount not in (0, pending.amount):
                return R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT
            amount = pending.amount

        debit = self._accounts[pending.debit_account_id.int]
        credit = self._accounts[pending.credit_account_id.int]
        debit.debits_pending -= pending.amount
        credit.credits_pending -= pending.amount
        stored.status = PendingStatus.POSTED if posting else PendingStatus.VOIDED
        stored.resolved_by = transfer.id
        self._transfers[transfer.id.int] = _Stored(
            TransferRecord(
                request=transfer,
                debit_account_id=pending.debit_account_id,
                credit_account_id=pending.credit_account_id,
                amount=amount,
                timestamp=now,
            ),
            PendingStatus.NONE,
            None,
        )
        if posting:
            self._post(debit, credit, amount, transfer, now, undo)
        if undo is not None:
            reserved = pending.amount

            def undo_resolution() -> None:
                debit.debits_pending += reserved
                credit.credits_pending += reserved
                stored.status = PendingStatus.PENDING
                stored.resolved_by = None
                del self._transfers[transfer.id.int]

            undo.append(undo_resolution)
        return R.OK

    def _post(
        self,
        debit: _Account,
        credit: _Account,
        amount: int,
        transfer: Transfer,
        now: datetime,
        undo: list[Callable[[], None]] | None,
    ) -> None:
        debit.debits_posted += amount
        credit.credits_posted += amount
        sequence = self._sequence
        self._sequence = sequence + 2
        transfer_id, code, user_data = transfer.id, transfer.code, transfer.user_data
        debit.entries.append(
            (
                sequence + 1,
                transfer_id,
                EntrySide.DEBIT,
                amount,
                debit.credits_posted - debit.debits_posted,
                code,
                now,
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
                now,
                user_data,
            )
        )
        if undo is not None:

            def undo_post() -> None:
                debit.debits_posted -= amount
                credit.credits_posted -= amount
                debit.entries.pop()
                credit.entries.pop()

            undo.append(undo_post)

    # -- pending timeouts ---------------------------------------------------------

    def _expire(self, now: datetime) -> int:
        expired = 0
        heap = self._expiries
        while heap and heap[0][0] <= now:
            expires_at, _, transfer_id = heapq.heappop(heap)
            stored = self._transfers.get(transfer_id.int)
            if (
                stored is None
                or stored.status is not PendingStatus.PENDING
                or stored.expires_at != expires_at  # a rolled-back id reused later
            ):
                continue
            record = stored.record
            self._accounts[record.debit_account_id.int].debits_pending -= record.amount
            self._accounts[record.credit_account_id.int].credits_pending -= record.amount
            stored.status = PendingStatus.EXPIRED
            expired += 1
        return expired

    async def expire_pending_transfers(self) -> int:
        return self._expire(self._clock.now())

    # -- reconciliation -------------------------------------------------------------

    async def pending_holds(
        self, account_id: uuid.UUID, start: datetime, end: datetime
    ) -> AsyncIterator[PendingHold]:
        """Two-phase transfers on ``account_id`` created in ``[start, end)`` (any status).

        Implements the reconciliation ``PendingHoldsSource`` port. From the
        account's side, a pending credit is money on its way out of the bank.
        """
        self._expire(self._clock.now())
        key = account_id.int
        for stored in list(self._transfers.values()):
            record = stored.record
            if stored.status is PendingStatus.NONE or not start <= record.timestamp < end:
                continue
            if record.credit_account_id.int == key:
                direction = Direction.OUT
            elif record.debit_account_id.int == key:
                direction = Direction.IN
            else:
                continue
            yield PendingHold(
                transfer_id=record.id,
                amount_cents=record.amount,
                direction=direction,
                created_at=record.timestamp,
                timeout_seconds=record.request.timeout_seconds,
                status=stored.status.value,
                resolved_by=stored.resolved_by,
            )

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
        account = self._accounts.get(account_id.int)
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
                code=code,
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
