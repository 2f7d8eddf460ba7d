"""``finbank worker pix-automatic``: two scheduler instances at once on one PostgreSQL database.

Each instance has its own pool (as two processes would), store, ledger and
use cases; both run their loop until every due charge is final. Every charge
must be debited exactly once, the money conserved, and each conclusion
announced under one event id.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres import PostgresAccountRepository, PostgresLedger
from finbank_adapters.postgres.pix_automatic import PostgresRecurrenceStore
from finbank_adapters.workers.pix_automatic import PixAutomaticWorker
from finbank_core.pix.automatic import (
    ChargeStatus,
    ExecuteDueDebit,
    RunDueDebits,
    RunDueDebitsCommand,
    RunDueDebitsResult,
)
from finbank_core.pix.automatic import events as automatic_events
from finbank_core.pix.ledger_steps import PixEvents, PixLedgerSteps
from tests.contract.test_pix_automatic_contract import ISPB, TODAY, World, brasilia
from tests.postgres_support import isolated_schema, require_postgres

PAYERS = 12


@pytest.fixture
async def database() -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    dsn = require_postgres()
    async with isolated_schema(dsn, min_size=2, max_size=6) as (pool, schema):
        other = await asyncpg.create_pool(
            dsn, min_size=2, max_size=6, server_settings={"search_path": schema}
        )
        try:
            yield pool, other
        finally:
            await other.close()


def _instance(
    pool: asyncpg.Pool, clock: FakeClock, world: World, holder: str
) -> PixAutomaticWorker:
    store = PostgresRecurrenceStore(pool)
    execute = ExecuteDueDebit(
        store=store,
        steps=PixLedgerSteps(PostgresLedger(pool, clock)),
        events=PixEvents(world.publisher, clock, world.ids),
        clock=clock,
        ispb=ISPB,
    )
    run_due = RunDueDebits(store=store, execute=execute, clock=clock)
    return PixAutomaticWorker(
        run_due=run_due, holder=holder, limit=2, lease_seconds=60, interval_seconds=0.01
    )


async def test_two_instances_at_once_run_every_due_debit_exactly_once(
    database: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    first_pool, second_pool = database
    clock = FakeClock()
    world = World(
        PostgresRecurrenceStore(first_pool),
        PostgresLedger(first_pool, clock),
        PostgresAccountRepository(first_pool),
        clock,
    )
    receiver = await world.customer("gym")
    payers = [await world.customer(f"payer{n}", 80_00) for n in range(PAYERS)]
    charges = []
    for payer in payers:
        recurrence = await world.approved(receiver, payer)
        charges.append(await world.charge(recurrence, due=TODAY + timedelta(days=3)))
    clock.set(brasilia(TODAY + timedelta(days=3), 0, 10))

    instances = [
        _instance(first_pool, clock, world, "instance-1"),
        _instance(second_pool, clock, world, "instance-2"),
    ]
    stop = asyncio.Event()

    async def until_all_final() -> None:
        while True:
            finals = [await world.store.get_charge(c.txid) for c in charges]
            if all(f is not None and f.is_final for f in finals):
                stop.set()
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(
        asyncio.gather(*(i.run(stop) for i in instances), until_all_final()), timeout=120
    )

    for charge in charges:
        final = await world.store.get_charge(charge.txid)
        assert final is not None
        assert final.status is ChargeStatus.CONCLUIDA
        assert len(final.attempts) == 1
    assert await world.available(receiver.id) == PAYERS * 50_00
    for payer in payers:
        assert await world.available(payer.id) == 30_00
    await world.assert_conserved(receiver.id, *(p.id for p in payers))
    concluded = {
        e.event_id for e in world.publisher.published if e.type == automatic_events.CHARGE_CONCLUDED
    }
    assert len(concluded) == PAYERS
    # nothing left: another round by either instance leases nothing
    assert (await instances[0].run_once()).charges == []
    assert (await instances[1].run_once()).charges == []


async def test_the_loop_runs_rounds_under_its_holder_until_stopped() -> None:
    rounds: list[RunDueDebitsCommand] = []
    stop = asyncio.Event()

    async def run_due(command: RunDueDebitsCommand) -> RunDueDebitsResult:
        rounds.append(command)
        if len(rounds) == 3:
            stop.set()
        return RunDueDebitsResult(charges=[])

    worker = PixAutomaticWorker(run_due=run_due, holder="h", limit=5, interval_seconds=0)
    await worker.run(stop)
    assert [r.holder for r in rounds] == ["h", "h", "h"]
    assert {(r.limit, r.lease_seconds) for r in rounds} == {(5, 60)}
