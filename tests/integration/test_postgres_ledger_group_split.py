"""Group commit splits what waits: a group takes at most its share of the callers.

When a call in flight ends, the callers in the ledger are those waiting and those
of the calls in flight, the ended one's included (they will be back). A group
takes at most one part in ``group_max_in_flight + 1`` of them, in arrival order;
the others wait for the next free slot. At one call in flight that is half:
the database works on one half while the other half's callers are answered and
come back, instead of every caller going out in one group and all of them
coming back together while the database has nothing to do
(``docs/postgres.md``, "Group commit").

Only groups of plain members (one plain transfer each) are split. Any other
member sends the group through ``ledger_create_transfers``, whose fixed cost a
call is higher: halving such groups cost PIX payments more than it gained.

The pool here holds chosen calls after the server answered them, so the queue
is formed deterministically, and records how many callers each call carried
(the length of its answer). Then every caller's result, what was stored and the
money are checked.
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
    CreateTransferResult,
    NewAccount,
    Transfer,
    TransferFlags,
)
from tests.postgres_support import GatedPool, isolated_schema, require_postgres, wait_until

pytestmark = pytest.mark.services

R = CreateTransferResult
BANK = uuid.UUID(int=0x0B)
CUSTOMERS = [uuid.UUID(int=0xC00 + n) for n in range(12)]
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class SizedPool(GatedPool):
    """:class:`GatedPool`, also recording how many callers each transfer call carried."""

    def __init__(self, pool: asyncpg.Pool, log: list[tuple[str, object]]) -> None:
        super().__init__(pool, log)
        self.sizes: list[int] = []

    async def fetchval(self, query: str, *args: Any) -> Any:
        value = await super().fetchval(query, *args)
        # a grouped call answers one result a member, a call alone one result
        self.sizes.append(len(value) if isinstance(value, list) else 1)
        return value


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with isolated_schema(require_postgres(), max_size=4) as (pool, _):
        ledger = PostgresLedger(pool, FakeClock(START))
        accounts = [NewAccount(id=BANK, code=1)] + [NewAccount(id=c, code=1) for c in CUSTOMERS]
        assert set(await ledger.create_accounts(accounts)) == {"ok"}
        yield pool


def credit(n: int, pending: bool = False) -> Transfer:
    """The bank credits customer ``n`` (each caller its own account: no two interact),
    or reserves the credit (``pending``)."""
    return Transfer(
        id=uuid.UUID(int=0x7000 + n),
        debit_account_id=BANK,
        credit_account_id=CUSTOMERS[n],
        amount=n + 1,
        code=7,
        flags=TransferFlags.PENDING if pending else TransferFlags.NONE,
        timeout_seconds=3600 if pending else 0,
    )


async def run(
    pool: asyncpg.Pool,
    *,
    cap: int,
    split: bool,
    first: int,
    waiting: int,
    pending: bool = False,
) -> list[int]:
    """``first`` callers go out alone (each call held once answered), ``waiting`` more
    queue behind them; then the held calls are let go, one at a time, each once the
    calls sent after the previous one are themselves answered and held. Returns how
    many callers each call carried, in the order the calls returned."""
    sized = SizedPool(pool, [])
    ledger = PostgresLedger(
        cast(asyncpg.Pool, sized), FakeClock(START), group_max_in_flight=cap, group_split=split
    )
    gates = [sized.gate(number) for number in range(1, 2 * (first + waiting) + 1)]

    async def caller(n: int) -> None:
        assert await ledger.create_transfers([credit(n, pending)]) == [R.OK], n

    tasks = [asyncio.create_task(caller(n)) for n in range(first)]
    for answered, _ in gates[:first]:
        await answered.wait()
    tasks += [asyncio.create_task(caller(first + n)) for n in range(waiting)]
    await wait_until(lambda: ledger.waiting == waiting, f"{waiting} callers wait")
    # let every call go in the order it was sent; a call sent on the way is held too
    # until its turn, so each group is formed from what waited when a slot freed
    let_go = 0
    while let_go < sized.calls or ledger.waiting:
        answered, release = gates[let_go]
        await answered.wait()
        release.set()
        let_go += 1
        await wait_until(
            lambda freed=let_go: sized.calls == freed + ledger.in_flight or not ledger.waiting,
            "the freed slots are taken",
        )
    for _, release in gates:
        release.set()
    await asyncio.gather(*tasks)
    assert ledger.in_flight == ledger.waiting == 0
    stored = await pool.fetchval(
        "SELECT count(*) FROM ledger_transfers WHERE id = ANY($1::uuid[])",
        [credit(n).id for n in range(first + waiting)],
    )
    assert stored == first + waiting
    rows = await pool.fetch(
        "SELECT id, credits_pending, credits_posted FROM ledger_accounts"
        " WHERE id = ANY($1::uuid[])",
        CUSTOMERS[: first + waiting],
    )
    moved = "credits_pending" if pending else "credits_posted"
    assert {row["id"]: row[moved] for row in rows} == {
        CUSTOMERS[n]: n + 1 for n in range(first + waiting)
    }
    return sized.sizes


async def test_one_in_flight_sends_half_of_the_callers_in_the_ledger(pool: asyncpg.Pool) -> None:
    # one alone, nine waiting: ten in the ledger when it returns, so five go; when they
    # return, nine are in the ledger (four waiting, five out) and the four go
    assert await run(pool, cap=1, split=True, first=1, waiting=9) == [1, 5, 4]


async def test_without_the_split_every_waiting_caller_goes_in_one_group(
    pool: asyncpg.Pool,
) -> None:
    assert await run(pool, cap=1, split=False, first=1, waiting=9) == [1, 9]


async def test_two_in_flight_send_a_third_of_the_callers_in_the_ledger(
    pool: asyncpg.Pool,
) -> None:
    # two alone, nine waiting: eleven in the ledger when the first returns, so four go
    # (a third, rounded up); when the second returns, ten (five waiting, four out and
    # its own): four more; the last one then goes alone in the next free slot
    assert await run(pool, cap=2, split=True, first=2, waiting=9) == [1, 1, 4, 4, 1]


async def test_a_group_of_other_members_is_not_split(pool: asyncpg.Pool) -> None:
    # pending transfers (a PIX payment's reservation) go through ledger_create_transfers
    assert await run(pool, cap=1, split=True, first=1, waiting=9, pending=True) == [1, 9]
