"""Pending-transfer expiry, whichever call is the first to notice it.

Every ledger call voids the pending transfers that are due at the clock's
"now" before doing its own work. Whichever kind of call notices a timeout
first, the reservation is released exactly once and the transfer becomes
``expired`` exactly once; nothing later releases it again.

(Regression: on PostgreSQL, when ``create_transfers`` was the first call to
notice, the reservation was released but the transfer stayed ``pending``, so
the next call released it a second time: pending balances went below the
live reservations, or below zero and every later call failed with a
CheckViolation.)
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from finbank_core.accounts.ledger import (
    AccountFilter,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    LedgerAccount,
    NewAccount,
    PendingStatus,
    QueryFilter,
    Transfer,
    TransferFlags,
)
from finbank_core.accounts.ports import Ledger
from tests.contract.conftest import LedgerHarness

R = CreateTransferResult
CUSTOMER = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
TIMEOUT = 60


def move(
    debit: uuid.UUID | None,
    credit: uuid.UUID | None,
    amount: int,
    *,
    id: uuid.UUID | None = None,
    flags: TransferFlags = TransferFlags.NONE,
    timeout_seconds: int = 0,
) -> Transfer:
    return Transfer(
        id=id or uuid.uuid4(),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        code=3,
        flags=flags,
        timeout_seconds=timeout_seconds,
    )


async def open_accounts(ledger: Ledger, *flags: AccountFlags) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in flags]
    results = await ledger.create_accounts(
        [NewAccount(id=i, code=1, flags=f) for i, f in zip(ids, flags, strict=True)]
    )
    assert results == [CreateAccountResult.OK] * len(flags)
    return ids


async def balances(ledger: Ledger, account_id: uuid.UUID) -> tuple[int, int, int, int]:
    """(debits_pending, debits_posted, credits_pending, credits_posted)."""
    [acc] = await ledger.lookup_accounts([account_id])
    return _tuple(acc)


def _tuple(acc: LedgerAccount) -> tuple[int, int, int, int]:
    return (acc.debits_pending, acc.debits_posted, acc.credits_pending, acc.credits_posted)


class Others:
    """Two accounts the scenario does not use: the first noticer may touch them.

    ``sink`` is a customer account that only ever receives money.
    """

    def __init__(self, source: uuid.UUID, sink: uuid.UUID) -> None:
        self.source = source
        self.sink = sink


# What each kind of call does when it is the first one to run after the timeout.
FirstCall = Callable[[Ledger, Others], Awaitable[None]]


async def _create_single(ledger: Ledger, others: Others) -> None:
    # one single-phase transfer: PostgreSQL's fast path (ledger_create_transfer)
    assert await ledger.create_transfers([move(others.source, others.sink, 1)]) == [R.OK]


async def _create_single_refused(ledger: Ledger, others: Others) -> None:
    # a refused transfer notices the timeout too
    refused = move(others.sink, others.source, 1_000_000)
    assert await ledger.create_transfers([refused]) == [R.EXCEEDS_CREDITS]


async def _create_batch(ledger: Ledger, others: Others) -> None:
    batch = [move(others.source, others.sink, 1), move(others.source, others.sink, 2)]
    assert await ledger.create_transfers(batch) == [R.OK, R.OK]


async def _create_pending(ledger: Ledger, others: Others) -> None:
    pending = move(others.source, others.sink, 3, flags=TransferFlags.PENDING)
    assert await ledger.create_transfers([pending]) == [R.OK]


async def _lookup_accounts(ledger: Ledger, others: Others) -> None:
    assert len(await ledger.lookup_accounts([others.source])) == 1


async def _lookup_transfers(ledger: Ledger, others: Others) -> None:
    assert await ledger.lookup_transfers([uuid.uuid4()]) == []


async def _get_account_entries(ledger: Ledger, others: Others) -> None:
    page = await ledger.get_account_entries(others.sink)
    assert page.entries == []


async def _expire(ledger: Ledger, others: Others) -> None:
    await ledger.expire_pending_transfers()


async def _query_transfers(ledger: Ledger, others: Others) -> None:
    assert await ledger.query_transfers(QueryFilter(code=999)) == []


async def _get_account_transfers(ledger: Ledger, others: Others) -> None:
    assert len(await ledger.get_account_transfers(AccountFilter(account_id=others.sink))) == 0


async def _get_account_balances(ledger: Ledger, others: Others) -> None:
    assert await ledger.get_account_balances(AccountFilter(account_id=others.sink)) == []


FIRST_CALLS: dict[str, FirstCall] = {
    "create_single": _create_single,
    "create_single_refused": _create_single_refused,
    "create_batch": _create_batch,
    "create_pending": _create_pending,
    "lookup_accounts": _lookup_accounts,
    "lookup_transfers": _lookup_transfers,
    "get_account_entries": _get_account_entries,
    "expire_pending_transfers": _expire,
    "query_transfers": _query_transfers,
    "get_account_transfers": _get_account_transfers,
    "get_account_balances": _get_account_balances,
}


# A statement shows posted entries only: it need not void what is due (and does
# not); the next call that looks at balances or transfers does.
MAY_LEAVE_DUE: set[FirstCall] = {_get_account_entries}


@pytest.fixture(params=list(FIRST_CALLS))
def first_call(request: pytest.FixtureRequest) -> FirstCall:
    return FIRST_CALLS[request.param]


async def test_spending_past_a_reservation_is_refused_after_an_expiry(
    ledger_harness: LedgerHarness, first_call: FirstCall
) -> None:
    """The issue's scenario: 100 credits, P1 = 10 with a timeout, P2 = 50 without."""
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    bank, customer, source, sink = await open_accounts(
        ledger, AccountFlags.NONE, CUSTOMER, AccountFlags.NONE, CUSTOMER
    )
    others = Others(source, sink)
    assert await ledger.create_transfers([move(bank, customer, 100)]) == [R.OK]
    p1 = move(customer, bank, 10, flags=TransferFlags.PENDING, timeout_seconds=TIMEOUT)
    p2 = move(customer, bank, 50, flags=TransferFlags.PENDING)
    assert await ledger.create_transfers([p1, p2]) == [R.OK, R.OK]
    assert await balances(ledger, customer) == (60, 0, 0, 100)

    clock.advance(TIMEOUT)
    await first_call(ledger, others)

    # every later kind of call sees it released once, and releases nothing more
    assert await ledger.expire_pending_transfers() == (1 if first_call in MAY_LEAVE_DUE else 0)
    assert await ledger.expire_pending_transfers() == 0
    [p1_record, p2_record] = await ledger.lookup_transfers([p1.id, p2.id])
    assert (p1_record.status, p2_record.status) == (PendingStatus.EXPIRED, PendingStatus.PENDING)
    assert await balances(ledger, customer) == (50, 0, 0, 100)
    assert await balances(ledger, bank) == (0, 100, 50, 0)
    # 100 - 50 reserved = 50 available: 59 is too much
    assert await ledger.create_transfers([move(customer, bank, 59)]) == [R.EXCEEDS_CREDITS]
    assert await balances(ledger, customer) == (50, 0, 0, 100)
    assert await ledger.create_transfers([Transfer.post(uuid.uuid4(), p2.id)]) == [R.OK]
    assert await ledger.create_transfers([move(customer, bank, 50)]) == [R.OK]
    assert await balances(ledger, customer) == (0, 100, 0, 100)
    assert await balances(ledger, bank) == (0, 100, 0, 100)
    # a void of the expired transfer is refused as expired
    assert await ledger.create_transfers([Transfer.void(uuid.uuid4(), p1.id)]) == [
        R.PENDING_TRANSFER_EXPIRED
    ]


async def test_an_expired_reservation_never_drives_a_balance_below_zero(
    ledger_harness: LedgerHarness, first_call: FirstCall
) -> None:
    """The CheckViolation scenario: a lone reservation released twice went below zero."""
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    bank, customer, source, sink = await open_accounts(
        ledger, AccountFlags.NONE, CUSTOMER, AccountFlags.NONE, CUSTOMER
    )
    others = Others(source, sink)
    assert await ledger.create_transfers([move(bank, customer, 100)]) == [R.OK]
    p1 = move(customer, bank, 10, flags=TransferFlags.PENDING, timeout_seconds=TIMEOUT)
    assert await ledger.create_transfers([p1]) == [R.OK]

    clock.advance(TIMEOUT + 1)
    await first_call(ledger, others)

    # calls of every kind keep working, on these accounts and on unrelated ones
    for _ in range(2):
        assert await ledger.create_transfers([move(source, sink, 1)]) == [R.OK]
        assert await ledger.create_transfers(
            [move(source, sink, 1), move(source, sink, 1, flags=TransferFlags.PENDING)]
        ) == [R.OK, R.OK]
        assert await ledger.expire_pending_transfers() == 0
        assert len(await ledger.lookup_accounts([customer, bank, source, sink])) == 4
        assert len((await ledger.get_account_entries(customer)).entries) == 1
    [record] = await ledger.lookup_transfers([p1.id])
    assert record.status is PendingStatus.EXPIRED
    assert await balances(ledger, customer) == (0, 0, 0, 100)
    assert await balances(ledger, bank) == (0, 100, 0, 0)
    assert await ledger.create_transfers([move(customer, bank, 100)]) == [R.OK]
    assert await balances(ledger, customer) == (0, 100, 0, 100)


async def test_a_batch_resolving_other_transfers_expires_the_due_one_once(
    ledger_harness: LedgerHarness,
) -> None:
    """A batch that posts one pending transfer while another, due, expires."""
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    bank, customer = await open_accounts(ledger, AccountFlags.NONE, CUSTOMER)
    assert await ledger.create_transfers([move(bank, customer, 100)]) == [R.OK]
    due = move(customer, bank, 30, flags=TransferFlags.PENDING, timeout_seconds=TIMEOUT)
    later = move(customer, bank, 20, flags=TransferFlags.PENDING, timeout_seconds=3 * TIMEOUT)
    kept = move(customer, bank, 40, flags=TransferFlags.PENDING)
    assert await ledger.create_transfers([due, later, kept]) == [R.OK] * 3

    clock.advance(TIMEOUT)
    post, void = Transfer.post(uuid.uuid4(), kept.id), Transfer.void(uuid.uuid4(), due.id)
    assert await ledger.create_transfers([post, void]) == [R.OK, R.PENDING_TRANSFER_EXPIRED]
    assert await balances(ledger, customer) == (20, 40, 0, 100)
    clock.advance(TIMEOUT)
    assert await balances(ledger, customer) == (20, 40, 0, 100)
    clock.advance(TIMEOUT)
    assert await ledger.create_transfers([move(customer, bank, 60)]) == [R.OK]
    assert await balances(ledger, customer) == (0, 100, 0, 100)
    records = await ledger.lookup_transfers([due.id, later.id, kept.id])
    assert [r.status for r in records] == [
        PendingStatus.EXPIRED,
        PendingStatus.EXPIRED,
        PendingStatus.POSTED,
    ]
    assert await ledger.expire_pending_transfers() == 0
