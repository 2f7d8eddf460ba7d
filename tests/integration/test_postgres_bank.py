"""The bank test (Jepsen-style) on real PostgreSQL.

64 workers make random transfers through ``PostgresLedger`` (10,000 across
100 accounts, then 10,000 across 8 hot ones) while readers take full
balance snapshots in REPEATABLE READ transactions. Every snapshot must sum
to the money put in and show no customer account below zero; afterwards
every transfer's entries balance, every account's balance equals the sum of
its entries and its last running balance, and no call raised (retried
deadlocks or serialization failures stay inside the adapter). Then: 1,000
transfer ids each sent 10 times at once give exactly 1,000 transfers, and a
connection killed in the middle of a large batch leaves nothing
half-applied, while re-sending the batch applies it exactly once.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

import asyncpg
import msgspec
import pytest

from finbank_adapters.postgres import PostgresLedger
from finbank_adapters.system import SystemClock
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateTransferResult,
    NewAccount,
    Transfer,
    TransferFlags,
)
from finbank_core.shared.errors import ServiceUnavailable
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres

pytestmark = [pytest.mark.slow, pytest.mark.services]

R = CreateTransferResult
WORKERS = 64
POOL_SIZE = 16
ACCOUNTS = 100
HOT_ACCOUNTS = 8
TRANSFERS_PER_PHASE = 10_000
MIN_SNAPSHOTS = 1_000
OPENING_BALANCE = 1_000_00
CUSTOMER_CODE = 1
TRANSFER_CODE = 3


@dataclass
class Bank:
    pool: asyncpg.Pool
    #: for extra connections to the same schema (snapshot readers, the killer)
    dsn: str
    ledger: PostgresLedger
    accounts: list[uuid.UUID]
    total: int
    figures: dict[str, object] = field(default_factory=dict)


@pytest.fixture
async def bank() -> AsyncIterator[Bank]:
    require_postgres()
    async with isolated_schema(min_size=POOL_SIZE, max_size=POOL_SIZE) as (pool, schema):
        ledger = PostgresLedger(pool, SystemClock())
        vault = uuid.uuid4()
        accounts = [uuid.uuid4() for _ in range(ACCOUNTS)]
        await ledger.create_accounts(
            [
                NewAccount(id=vault, code=100),
                *(
                    NewAccount(
                        id=a, code=CUSTOMER_CODE, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
                    )
                    for a in accounts
                ),
            ]
        )
        funding = [
            Transfer(
                id=uuid.uuid4(),
                debit_account_id=vault,
                credit_account_id=a,
                amount=OPENING_BALANCE,
                code=1,
            )
            for a in accounts
        ]
        assert await ledger.create_transfers(funding) == [R.OK] * ACCOUNTS
        dsn = f"{POSTGRES_DSN}?{urlencode({'search_path': schema})}"
        yield Bank(pool, dsn, ledger, accounts, OPENING_BALANCE * ACCOUNTS)


# -- workload -------------------------------------------------------------------------


def random_call(rng: random.Random, accounts: Sequence[uuid.UUID]) -> list[Transfer]:
    """Mostly one transfer; one call in ten is a linked chain of two or three."""
    size = rng.choice((2, 3)) if rng.random() < 0.1 else 1
    call = []
    for n in range(size):
        debit, credit = rng.sample(accounts, 2)
        call.append(
            Transfer(
                id=uuid.uuid4(),
                debit_account_id=debit,
                credit_account_id=credit,
                amount=rng.randint(1, 300_00),  # large enough that some are refused
                code=TRANSFER_CODE,
                flags=TransferFlags.LINKED if n < size - 1 else TransferFlags.NONE,
            )
        )
    return call


@dataclass
class PhaseOutcome:
    results: Counter[CreateTransferResult]
    errors: list[BaseException]
    snapshots: int
    bad_snapshots: list[str]
    seconds: float


async def snapshot(conn: asyncpg.Connection, total: int) -> str | None:
    """One consistent read of every customer balance; a description of what is wrong, if any."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(
            "SELECT credits_posted - debits_posted AS posted,"
            " credits_posted - debits_posted - debits_pending AS available"
            " FROM ledger_accounts WHERE code = $1",
            CUSTOMER_CODE,
        )
    posted = sum(r["posted"] for r in rows)
    if posted != total:
        return f"sum {posted} != {total}"
    negative = [r for r in rows if r["posted"] < 0 or r["available"] < 0]
    if negative:
        return f"{len(negative)} negative accounts"
    return None


async def run_phase(bank: Bank, accounts: Sequence[uuid.UUID], seed: int) -> PhaseOutcome:
    rng = random.Random(seed)
    remaining = TRANSFERS_PER_PHASE
    results: Counter[CreateTransferResult] = Counter()
    errors: list[BaseException] = []
    bad: list[str] = []
    snapshots = 0
    writing = True

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            call = random_call(rng, accounts)[:remaining]
            if call[-1].flags & TransferFlags.LINKED:  # cut short: close the chain
                call[-1] = msgspec.structs.replace(call[-1], flags=TransferFlags.NONE)
            remaining -= len(call)
            try:
                results.update(await bank.ledger.create_transfers(call))
            except Exception as exc:  # every escaping error is a failure of the test
                errors.append(exc)

    async def reader(conn: asyncpg.Connection) -> None:
        nonlocal snapshots
        while writing:
            problem = await snapshot(conn, bank.total)
            snapshots += 1
            if problem:
                bad.append(problem)

    readers = [await asyncpg.connect(bank.dsn) for _ in range(2)]
    started = time.perf_counter()
    try:
        reading = [asyncio.create_task(reader(conn)) for conn in readers]
        await asyncio.gather(*(worker() for _ in range(WORKERS)))
        writing = False
        await asyncio.gather(*reading)
    finally:
        for conn in readers:
            await conn.close()
    return PhaseOutcome(results, errors, snapshots, bad, time.perf_counter() - started)


async def assert_books_balance(bank: Bank) -> None:
    pool = bank.pool
    unbalanced = await pool.fetchval(
        """
        SELECT count(*) FROM (
            SELECT transfer_id FROM ledger_entries GROUP BY transfer_id
            HAVING count(*) <> 2
                OR sum(amount) FILTER (WHERE side = 'debit')
                   IS DISTINCT FROM sum(amount) FILTER (WHERE side = 'credit')
        ) AS t
        """
    )
    assert unbalanced == 0
    drift = await pool.fetchval(
        """
        SELECT count(*) FROM ledger_accounts a
        LEFT JOIN LATERAL (
            SELECT coalesce(sum(CASE WHEN side = 'credit' THEN amount ELSE -amount END), 0) AS net
              FROM ledger_entries e WHERE e.account_id = a.id
        ) s ON true
        LEFT JOIN LATERAL (
            SELECT balance_after FROM ledger_entries e
             WHERE e.account_id = a.id ORDER BY sequence DESC LIMIT 1
        ) last ON true
        WHERE a.credits_posted - a.debits_posted <> s.net
           OR a.credits_posted - a.debits_posted <> coalesce(last.balance_after, 0)
        """
    )
    assert drift == 0
    totals = await pool.fetchrow(
        "SELECT sum(credits_posted - debits_posted) AS net,"
        " min(credits_posted - debits_posted - debits_pending) AS lowest"
        " FROM ledger_accounts WHERE code = $1",
        CUSTOMER_CODE,
    )
    assert totals is not None
    assert totals["net"] == bank.total
    assert totals["lowest"] >= 0
    everything = await pool.fetchval(
        "SELECT sum(credits_posted - debits_posted) FROM ledger_accounts"
    )
    assert everything == 0  # double entry: every centavo is on both sides


def check_phase(bank: Bank, outcome: PhaseOutcome, name: str) -> None:
    assert outcome.errors == []
    assert outcome.bad_snapshots == []
    assert sum(outcome.results.values()) == TRANSFERS_PER_PHASE
    assert outcome.results[R.OK] > 0
    bank.figures[name] = {
        "seconds": round(outcome.seconds, 1),
        "results": {r.value: n for r, n in outcome.results.items()},
        "snapshots": outcome.snapshots,
    }


# -- the tests -----------------------------------------------------------------------


async def test_concurrent_transfers_never_create_or_lose_money(bank: Bank) -> None:
    stored_before = await bank.pool.fetchval("SELECT count(*) FROM ledger_transfers")
    spread = await run_phase(bank, bank.accounts, seed=1)
    check_phase(bank, spread, "100 accounts")
    await assert_books_balance(bank)
    hot = await run_phase(bank, bank.accounts[:HOT_ACCOUNTS], seed=2)
    check_phase(bank, hot, "8 hot accounts")
    await assert_books_balance(bank)

    assert spread.snapshots + hot.snapshots >= MIN_SNAPSHOTS
    applied = spread.results[R.OK] + hot.results[R.OK]
    stored = await bank.pool.fetchval("SELECT count(*) FROM ledger_transfers")
    assert stored - stored_before == applied
    bank.figures["retried_conflicts"] = bank.ledger.retries
    print(f"\nbank test: {bank.figures}")  # the figures go into the report (pytest -s)


async def test_each_transfer_id_sent_ten_times_at_once_is_applied_once(bank: Bank) -> None:
    rng = random.Random(3)
    transfers = [
        Transfer(
            id=uuid.uuid4(),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=rng.randint(1, 10),
            code=TRANSFER_CODE,
        )
        for debit, credit in (rng.sample(bank.accounts, 2) for _ in range(1_000))
    ]
    sends = [t for t in transfers for _ in range(10)]
    rng.shuffle(sends)
    results: Counter[CreateTransferResult] = Counter()
    errors: list[BaseException] = []

    async def worker() -> None:
        while sends:
            transfer = sends.pop()
            try:
                results.update(await bank.ledger.create_transfers([transfer]))
            except Exception as exc:
                errors.append(exc)

    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    assert errors == []
    assert results == Counter({R.OK: 1_000, R.EXISTS: 9_000})
    stored = await bank.pool.fetchval(
        "SELECT count(*) FROM ledger_transfers WHERE id = ANY($1)", [t.id for t in transfers]
    )
    assert stored == 1_000
    await assert_books_balance(bank)


async def test_a_connection_killed_mid_batch_applies_nothing_and_the_retry_applies_once(
    bank: Bank,
) -> None:
    rng = random.Random(4)
    batch = [
        Transfer(
            id=uuid.uuid4(),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=rng.randint(1, 100),
            code=TRANSFER_CODE,
        )
        for debit, credit in (rng.sample(bank.accounts, 2) for _ in range(5_000))
    ]
    ids = [t.id for t in batch]
    victim = await asyncpg.create_pool(bank.dsn, min_size=1, max_size=1)
    killer = await asyncpg.connect(bank.dsn)
    try:
        backend_pid = await victim.fetchval("SELECT pg_backend_pid()")
        in_flight = asyncio.create_task(
            PostgresLedger(victim, SystemClock()).create_transfers(batch)
        )
        # wait (bounded) until the batch is executing on that backend, then kill it
        for _ in range(2_000):
            state = await killer.fetchval(
                "SELECT state FROM pg_stat_activity"
                " WHERE pid = $1 AND query LIKE '%ledger_create_transfers%'",
                backend_pid,
            )
            if state == "active" or in_flight.done():
                break
            await asyncio.sleep(0.001)
        assert not in_flight.done(), "the batch finished before it could be interrupted"
        killed = await killer.fetchval("SELECT pg_terminate_backend($1)", backend_pid)
        assert killed
        with pytest.raises(ServiceUnavailable):
            await in_flight
        stored = await killer.fetchval(
            "SELECT count(*) FROM ledger_transfers WHERE id = ANY($1)", ids
        )
        assert stored == 0  # the whole batch rolled back: nothing half-applied
        await assert_books_balance(bank)

        retried = await bank.ledger.create_transfers(batch)
        assert set(retried) <= {R.OK, R.EXISTS}
        again = await bank.ledger.create_transfers(batch)
        assert set(again) == {R.EXISTS}
        stored = await killer.fetchval(
            "SELECT count(*) FROM ledger_transfers WHERE id = ANY($1)", ids
        )
        assert stored == len(batch)
        assert await killer.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE transfer_id = ANY($1)", ids
        ) == 2 * len(batch)
        await assert_books_balance(bank)
    finally:
        await killer.close()
        await victim.close()
