"""An in-memory ledger: the core's executable specification behind the ``Ledger`` port.

All rules live in :mod:`finbank_core.accounts.ledger_rules`; this adapter
holds a :class:`~finbank_core.accounts.ledger_rules.LedgerState`, reads the
clock once per call and publishes events. No method awaits before its state
change is complete, so a batch is applied atomically on one event loop; due
pending transfers are voided at the start of each call. See
``docs/architecture.md``, "The in-memory ledger".
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from finbank_adapters.metrics import counts_ledger_results, record_ledger_results
from finbank_core.accounts import ledger_rules as rules
from finbank_core.accounts.ledger import (
    AccountBalance,
    AccountFilter,
    CreateAccountResult,
    CreateTransferResult,
    EntryPage,
    LedgerAccount,
    NewAccount,
    PendingStatus,
    QueryFilter,
    SubmittedTransfer,
    Transfer,
    TransferRecord,
)
from finbank_core.reconciliation.model import Direction, PendingHold
from finbank_core.shared.clock import Clock
from finbank_core.shared.events import EventEnvelope, EventPublisher

_OK = CreateTransferResult.OK


class InMemoryLedger:
    """The reference ledger: simple, fast, and held to the same contract as PostgreSQL."""

    def __init__(self, clock: Clock, publisher: EventPublisher | None = None) -> None:
        self._clock = clock
        self._publisher = publisher
        self._state = rules.LedgerState()

    def _now(self) -> datetime:
        now = self._clock.now()
        rules.expire(self._state, now)
        return now

    # -- accounts ---------------------------------------------------------------

    async def create_accounts(self, accounts: Sequence[NewAccount]) -> list[CreateAccountResult]:
        return rules.create_accounts(self._state, accounts, self._now())

    async def lookup_accounts(self, ids: Sequence[uuid.UUID]) -> list[LedgerAccount]:
        self._now()
        return rules.lookup_accounts(self._state, ids)

    # -- transfers --------------------------------------------------------------

    async def lookup_transfers(self, ids: Sequence[uuid.UUID]) -> list[TransferRecord]:
        self._now()
        return rules.lookup_transfers(self._state, ids)

    @counts_ledger_results
    async def create_transfers(
        self,
        transfers: Sequence[Transfer],
        *,
        events: Sequence[EventEnvelope] = (),
    ) -> list[CreateTransferResult]:
        results = rules.apply_batch(self._state, transfers, self._clock.now())
        if events and self._publisher is not None and _OK in results:
            await self._publisher.publish(events)
        return results

    async def submit_transfer(
        self, transfer: Transfer, *, events: Sequence[EventEnvelope] = ()
    ) -> SubmittedTransfer:
        # create_transfers' steps inline (counted as it counts; no wrapper coroutine)
        results = rules.apply_batch(self._state, [transfer], self._clock.now())
        if events and self._publisher is not None and _OK in results:
            await self._publisher.publish(events)
        record_ledger_results(results)
        [result] = results
        if result is not _OK:
            return SubmittedTransfer(result=result)
        [record] = rules.lookup_transfers(self._state, [transfer.id])  # no await: as applied
        return SubmittedTransfer(result=result, timestamp=record.timestamp)

    async def query_transfers(self, filter: QueryFilter) -> list[TransferRecord]:
        self._now()
        return rules.query_transfers(self._state, filter)

    async def get_account_transfers(self, filter: AccountFilter) -> list[TransferRecord]:
        self._now()
        return rules.account_transfers(self._state, filter)

    async def get_account_balances(self, filter: AccountFilter) -> list[AccountBalance]:
        self._now()
        return rules.account_balances(self._state, filter)

    # -- pending timeouts ---------------------------------------------------------

    async def expire_pending_transfers(self) -> int:
        return rules.expire(self._state, self._clock.now())

    # -- reconciliation -------------------------------------------------------------

    async def pending_holds(
        self, account_id: uuid.UUID, start: datetime, end: datetime
    ) -> AsyncIterator[PendingHold]:
        """Two-phase transfers on ``account_id`` created in ``[start, end)`` (any status).

        Implements the reconciliation ``PendingHoldsSource`` port. From the
        account's side, a pending credit is money on its way out of the bank.
        """
        self._now()
        key = account_id.int
        for stored in list(self._state.transfers.values()):
            if stored.status is PendingStatus.NONE or not start <= stored.timestamp < end:
                continue
            if stored.credit.id.int == key:
                direction = Direction.OUT
            elif stored.debit.id.int == key:
                direction = Direction.IN
            else:
                continue
            yield PendingHold(
                transfer_id=stored.request.id,
                amount_cents=stored.amount,
                direction=direction,
                created_at=stored.timestamp,
                timeout_seconds=stored.request.timeout_seconds,
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
        # Posted entries do not change when a reservation expires: no expiry here
        # (as on PostgreSQL); the next call that reads balances or transfers does it.
        return rules.account_entries(
            self._state,
            account_id,
            since=since,
            until=until,
            after_sequence=after_sequence,
            limit=limit,
        )
