"""The TigerBeetle features under concurrency, on every adapter of the ``Ledger`` port.

Many callers at once (``asyncio.gather``; on PostgreSQL each holds its own
pooled connection) sweep one account with balancing transfers, race a
closing transfer, replay one imported batch, and feed one history account.
The final state is checked as a whole: money conserved, no limited account
beyond its limit, each effect exactly once, every replay answered as the
first call was.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from finbank_adapters.memory import FakeClock, InMemoryEventPublisher, InMemoryLedger
from finbank_core.accounts.ledger import (
    MAX_AMOUNT,
    AccountFilter,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    NewAccount,
    Transfer,
    TransferFlags,
)
from finbank_core.accounts.ports import Ledger
from finbank_core.shared.events import EventEnvelope
from tests.contract.conftest import (
    LEDGER_BACKENDS,
    POSTGRES_LEDGERS,
    LedgerHarness,
    postgres_ledger,
)
from tests.postgres_support import isolated_schema

R = CreateTransferResult
F = TransferFlags
CUSTOMER = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
CALLERS = 32
POOL_SIZE = 10


@pytest.fixture(params=LEDGER_BACKENDS)
async def harness(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[LedgerHarness]:
    """Like ``ledger_harness``, with a pool big enough for the callers to interleave."""
    if request.param == "memory":
        publisher = InMemoryEventPublisher()

        async def recorded() -> list[EventEnvelope]:
            return list(publisher.published)

        yield LedgerHarness(InMemoryLedger(clock, publisher), clock, recorded)
    elif request.param in POSTGRES_LEDGERS:
        dsn = request.getfixturevalue("postgres_dsn")
        async with isolated_schema(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE) as (pool, _):

            async def none() -> list[EventEnvelope]:
                return []

            yield LedgerHarness(postgres_ledger(request.param, pool, clock), clock, none)
    else:  # pragma: no cover
        raise AssertionError(request.param)


async def open_accounts(ledger: Ledger, *flags: AccountFlags) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in flags]
    results = await ledger.create_accounts(
        [NewAccount(id=i, code=1, flags=f) for i, f in zip(ids, flags, strict=True)]
    )
    assert results == [CreateAccountResult.OK] * len(flags)
    return ids


def move(
    debit: uuid.UUID, credit: uuid.UUID, amount: int, flags: TransferFlags = F.NONE
) -> Transfer:
    return Transfer(
        id=uuid.uuid4(),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        code=3,
        flags=flags,
    )


async def conserved(ledger: Ledger, ids: list[uuid.UUID]) -> None:
    accounts = await ledger.lookup_accounts(ids)
    assert sum(a.debits_posted for a in accounts) == sum(a.credits_posted for a in accounts)
    assert sum(a.debits_pending for a in accounts) == sum(a.credits_pending for a in accounts)
    for a in accounts:
        if AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS in a.flags:
            assert a.debits_pending + a.debits_posted <= a.credits_posted


async def test_concurrent_balancing_sweeps_move_the_balance_once(harness: LedgerHarness) -> None:
    ledger = harness.ledger
    bank, customer, *targets = await open_accounts(
        ledger, AccountFlags.NONE, CUSTOMER, *[AccountFlags.NONE] * CALLERS
    )
    assert await ledger.create_transfers([move(bank, customer, 100_00)]) == [R.OK]
    sweeps = [move(customer, t, MAX_AMOUNT, F.BALANCING_DEBIT) for t in targets]
    results = await asyncio.gather(*(ledger.create_transfers([s]) for s in sweeps))
    applied = [s for s, [r] in zip(sweeps, results, strict=True) if r is R.OK]
    assert {r for [r] in results} <= {R.OK, R.EXCEEDS_CREDITS}
    records = await ledger.lookup_transfers([s.id for s in applied])
    assert sum(r.amount for r in records) == 100_00
    assert all(r.amount > 0 for r in records)
    [after] = await ledger.lookup_accounts([customer])
    assert (after.debits_posted, after.credits_posted, after.debits_pending) == (100_00, 100_00, 0)
    await conserved(ledger, [bank, customer, *targets])
    # every replay answers as the first call did, and moves nothing
    replays = await asyncio.gather(*(ledger.create_transfers([s]) for s in applied))
    assert replays == [[R.EXISTS]] * len(applied)
    refused = [s for s, [r] in zip(sweeps, results, strict=True) if r is not R.OK]
    assert await asyncio.gather(*(ledger.create_transfers([s]) for s in refused)) == [
        [R.EXCEEDS_CREDITS]
    ] * len(refused)
    await conserved(ledger, [bank, customer, *targets])


async def test_a_closing_transfer_racing_spenders(harness: LedgerHarness) -> None:
    ledger = harness.ledger
    bank, customer, shop = await open_accounts(
        ledger, AccountFlags.NONE, CUSTOMER, AccountFlags.NONE
    )
    assert await ledger.create_transfers([move(bank, customer, 1_000)]) == [R.OK]
    close = move(customer, bank, 0, F.PENDING | F.CLOSING_DEBIT)
    spends = [move(customer, shop, 10) for _ in range(CALLERS - 1)]
    calls = [ledger.create_transfers([close])] + [ledger.create_transfers([s]) for s in spends]
    [[closed], *spent] = await asyncio.gather(*calls)
    assert closed is R.OK
    assert {r for [r] in spent} <= {R.OK, R.DEBIT_ACCOUNT_ALREADY_CLOSED}
    applied = [s for s, [r] in zip(spends, spent, strict=True) if r is R.OK]
    [account] = await ledger.lookup_accounts([customer])
    assert AccountFlags.CLOSED in account.flags
    assert account.debits_posted == 10 * len(applied)
    assert len(await ledger.lookup_transfers([s.id for s in spends])) == len(applied)
    # voiding the closing transfer, many times at once, reopens the account once
    voids = [
        Transfer(
            id=uuid.uuid4(),
            debit_account_id=None,
            credit_account_id=None,
            amount=0,
            code=0,
            flags=F.VOID_PENDING_TRANSFER,
            pending_id=close.id,
        )
        for _ in range(CALLERS)
    ]
    results = await asyncio.gather(*(ledger.create_transfers([v]) for v in voids))
    assert sorted(r.value for [r] in results) == sorted(
        ["ok"] + ["pending_transfer_already_voided"] * (CALLERS - 1)
    )
    [account] = await ledger.lookup_accounts([customer])
    assert AccountFlags.CLOSED not in account.flags
    assert await ledger.create_transfers([move(customer, shop, 10)]) == [R.OK]
    await conserved(ledger, [bank, customer, shop])


async def test_one_imported_batch_replayed_at_once_is_applied_once(
    harness: LedgerHarness,
) -> None:
    ledger, clock = harness.ledger, harness.clock
    t0 = clock.now() - timedelta(days=5)
    bank, customer = uuid.uuid4(), uuid.uuid4()
    assert (
        await ledger.create_accounts(
            [
                NewAccount(id=bank, code=100, flags=AccountFlags.IMPORTED, timestamp=t0),
                NewAccount(
                    id=customer,
                    code=1,
                    flags=CUSTOMER | AccountFlags.IMPORTED,
                    timestamp=t0 + timedelta(seconds=1),
                ),
            ]
        )
        == [CreateAccountResult.OK] * 2
    )
    batch = [
        Transfer(
            id=uuid.uuid4(),
            debit_account_id=bank,
            credit_account_id=customer,
            amount=n,
            code=1,
            flags=F.IMPORTED,
            timestamp=t0 + timedelta(hours=n),
        )
        for n in range(1, 9)
    ]
    results = await asyncio.gather(*(ledger.create_transfers(batch) for _ in range(CALLERS)))
    for i in range(len(batch)):
        column = [result[i] for result in results]
        assert column.count(R.OK) == 1, column
        assert set(column) == {R.OK, R.EXISTS}, column
    [account] = await ledger.lookup_accounts([customer])
    assert account.credits_posted == sum(range(1, 9))
    records = await ledger.lookup_transfers([t.id for t in batch])
    assert [r.timestamp for r in records] == [t.timestamp for t in batch]
    assert await ledger.create_transfers(batch) == [R.EXISTS] * len(batch)


async def test_concurrent_transfers_into_a_history_account_leave_one_point_each(
    harness: LedgerHarness,
) -> None:
    ledger = harness.ledger
    bank, saver = await open_accounts(ledger, AccountFlags.NONE, CUSTOMER | AccountFlags.HISTORY)
    deposits = [move(bank, saver, 5) for _ in range(CALLERS)]
    results = await asyncio.gather(*(ledger.create_transfers([d]) for d in deposits))
    assert results == [[R.OK]] * CALLERS
    points = await ledger.get_account_balances(AccountFilter(account_id=saver, limit=CALLERS + 1))
    assert sorted(p.transfer_id for p in points) == sorted(d.id for d in deposits)
    # in the order the ledger applied them, each point is 5 more than the one before
    assert [p.credits_posted for p in points] == [5 * n for n in range(1, CALLERS + 1)]
    transfers = await ledger.get_account_transfers(
        AccountFilter(account_id=saver, limit=CALLERS + 1)
    )
    assert [t.id for t in transfers] == [p.transfer_id for p in points]
