"""Group commit frees its slot before it answers its callers: the next group is on the wire
while they resume.

With ``group_max_in_flight`` 1, callers that arrive while a call is in flight
wait and go out together when it ends. The slot used to be freed only after
every member of the group had been answered: the next group's task was then
scheduled behind all of their wake-ups, so the database sat idle while the
callers wrote their responses (about 0.6 ms per group of 8 HTTP transfers).
Now the slot is freed once the group's last call has returned, before any
member is answered.

The pool here records when each statement is sent and returns, and holds the
answer of chosen calls until the test lets it go, so the groups are formed
deterministically; each caller records when it resumes. Then the order is
checked, and what was stored (every caller's transfer once, balances summed).

The ledgers here do not split groups (``group_split=False``): every caller that
waits goes in the next group, so the groups are the ones each test forms. How a
split group is formed is ``test_postgres_ledger_group_split.py``'s subject; the
slot is freed the same way either way.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres import PostgresLedger
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateTransferResult,
    NewAccount,
    Transfer,
    TransferFlags,
)
from tests.postgres_support import GatedPool, isolated_schema, require_postgres, wait_until

pytestmark = pytest.mark.services

R = CreateTransferResult
BANK = uuid.UUID(int=0x0B)
CUSTOMERS = [uuid.UUID(int=0xC00 + n) for n in range(8)]
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with isolated_schema(require_postgres(), max_size=4) as (pool, _):
        yield pool


async def funded(pool: asyncpg.Pool) -> None:
    ledger = PostgresLedger(pool, FakeClock(START))
    limited = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    accounts = [NewAccount(id=BANK, code=1)] + [
        NewAccount(id=c, code=1, flags=limited) for c in CUSTOMERS
    ]
    assert set(await ledger.create_accounts(accounts)) == {"ok"}
    funding = [
        Transfer(id=uuid.uuid4(), debit_account_id=BANK, credit_account_id=c, amount=1_000, code=1)
        for c in CUSTOMERS
    ]
    assert await ledger.create_transfers(funding) == [R.OK] * len(CUSTOMERS)


async def add_customer_rows(pool: asyncpg.Pool, owner: str) -> None:
    await pool.executemany(
        "INSERT INTO customer_accounts (id, owner_id, holder_name, holder_type, branch, number,"
        " kind, status, created_at) VALUES ($1, $2, 'Holder', 'individual', '0001', $3,"
        " 'payment', 'active', $4)",
        [(c, owner, str(100_000 + n), START) for n, c in enumerate(CUSTOMERS)],
    )


def move(n: int, amount: int = 1, **fields: Any) -> Transfer:
    return Transfer(
        id=uuid.UUID(int=0x7000 + n),
        debit_account_id=CUSTOMERS[n % len(CUSTOMERS)],
        credit_account_id=CUSTOMERS[(n + 1) % len(CUSTOMERS)],
        amount=amount,
        code=7,
        **fields,
    )


async def test_next_group_is_sent_before_the_answered_callers_resume(
    pool: asyncpg.Pool,
) -> None:
    await funded(pool)
    log: list[tuple[str, object]] = []
    gated = GatedPool(pool, log)
    ledger = PostgresLedger(
        cast(asyncpg.Pool, gated), FakeClock(START), group_max_in_flight=1, group_split=False
    )

    async def caller(name: str, n: int) -> None:
        [result] = await ledger.create_transfers([move(n)])
        log.append(("resumed", name))
        assert result is R.OK, (name, result)

    # call 1: A alone, held after the database answered
    a_answered, release_a = gated.gate(1)
    # call 2: the group of B0..B2 that queued behind A, held likewise
    g1_answered, release_g1 = gated.gate(2)
    tasks = [asyncio.create_task(caller("A", 0))]
    await a_answered.wait()
    tasks += [asyncio.create_task(caller(f"B{i}", 1 + i)) for i in range(3)]
    await wait_until(lambda: ledger.waiting == 3, "B0..B2 wait")
    release_a.set()
    await g1_answered.wait()
    tasks += [asyncio.create_task(caller(f"C{i}", 4 + i)) for i in range(3)]
    await wait_until(lambda: ledger.waiting == 3, "C0..C2 wait")
    release_g1.set()
    await asyncio.gather(*tasks)

    assert ledger.grouped_calls == 2  # B0..B2 went as one call, C0..C2 as another
    third_sent = log.index(("sent", 3))
    b_resumed = [log.index(("resumed", f"B{i}")) for i in range(3)]
    # the C group went out as soon as the B group's call returned, before any B resumed
    assert log.index(("returned", 2)) < third_sent < min(b_resumed), log
    # A's own call (alone, not a group) frees its slot as before: B's group goes out after
    assert log.index(("returned", 1)) < log.index(("sent", 2)), log
    stored = await pool.fetchval(
        "SELECT count(*) FROM ledger_transfers WHERE id = ANY($1::uuid[])",
        [move(n).id for n in range(7)],
    )
    assert stored == 7
    sums = await pool.fetchrow(
        "SELECT sum(debits_posted) AS debits, sum(credits_posted) AS credits FROM ledger_accounts"
    )
    assert sums is not None
    assert sums["debits"] == sums["credits"] == 1_000 * len(CUSTOMERS) + 7


async def test_a_checked_group_with_other_members_frees_its_slot_after_its_last_call(
    pool: asyncpg.Pool,
) -> None:
    """Checked members and a non-plain one (a pending transfer) make two calls for one
    group: the slot is freed after the second, before its member resumes."""
    await funded(pool)
    owner = "owner-1"
    await add_customer_rows(pool, owner)
    log: list[tuple[str, object]] = []
    gated = GatedPool(pool, log)
    ledger = PostgresLedger(
        cast(asyncpg.Pool, gated), FakeClock(START), group_max_in_flight=1, group_split=False
    )

    async def checked(name: str, n: int) -> None:
        submitted = await ledger.submit_checked(move(n), owner_id=owner)
        log.append(("resumed", name))
        assert submitted.result is R.OK, (name, submitted)

    async def pending(name: str, n: int) -> None:
        [result] = await ledger.create_transfers(
            [move(n, flags=TransferFlags.PENDING, timeout_seconds=3600)]
        )
        log.append(("resumed", name))
        assert result is R.OK, (name, result)

    a_answered, release_a = gated.gate(1)
    tasks = [asyncio.create_task(checked("A", 0))]
    await a_answered.wait()
    # B's group: two checked members and a pending transfer -> calls 2 (checked) and 3
    tasks += [
        asyncio.create_task(checked("B0", 1)),
        asyncio.create_task(pending("B1", 2)),
        asyncio.create_task(checked("B2", 3)),
    ]
    await wait_until(lambda: ledger.waiting == 3, "B0..B2 wait")
    g1_answered, release_g1 = gated.gate(3)
    release_a.set()
    await g1_answered.wait()
    tasks += [asyncio.create_task(checked(f"C{i}", 4 + i)) for i in range(2)]
    await wait_until(lambda: ledger.waiting == 2, "C0, C1 wait")
    release_g1.set()
    await asyncio.gather(*tasks)

    # call 2 answers B0 and B2 (checked) before call 3 (B1's pending transfer) is sent;
    # the C group goes out once call 3 returned, before B1 resumes
    assert log.index(("returned", 2)) < log.index(("sent", 3)), log
    assert log.index(("returned", 3)) < log.index(("sent", 4)) < log.index(("resumed", "B1")), log
    assert ledger.checked_group_calls == 3  # A alone, B's checked part, the C group
    stored = await pool.fetchval(
        "SELECT count(*) FROM ledger_transfers WHERE id = ANY($1::uuid[])",
        [move(n).id for n in range(6)],
    )
    assert stored == 6
