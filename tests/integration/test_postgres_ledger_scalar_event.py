"""One plain transfer with exactly one event: ``ledger_create_transfer_event`` (migration 0025)
takes the event as six scalars instead of six one-element arrays. What it stores must be what
the array form (``ledger_create_transfer`` with its event arrays) stores, column for column,
and it appends nothing unless the transfer is ``ok``. Also the fast path's first attempt made
outside the retry loop: 40001 is still retried, other errors still translated."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import asyncpg.exceptions as pg
import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres import PostgresLedger
from finbank_adapters.postgres import ledger as ledger_module
from finbank_adapters.postgres.errors import RetryPolicy
from finbank_adapters.postgres.pool import create_pool
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateTransferResult,
    NewAccount,
    Transfer,
    TransferFlags,
)
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.events import EventEnvelope, encode_event
from tests.postgres_support import isolated_schema, ledger_rows, require_postgres

pytestmark = pytest.mark.services

R = CreateTransferResult
BANK = uuid.UUID(int=0x0B)
ALICE = uuid.UUID(int=0xA1)
BOB = uuid.UUID(int=0xB0)
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class SpyPool:
    """The pool, recording each statement sent through ``fetchval``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.queries: list[str] = []

    async def fetchval(self, query: str, *args: Any) -> Any:
        self.queries.append(query)
        return await self.pool.fetchval(query, *args)

    async def fetch(self, query: str, *args: Any) -> Any:
        return await self.pool.fetch(query, *args)


def make_event(n: int, *, headers: dict[str, str] | None = None) -> EventEnvelope:
    event = EventEnvelope(
        event_id=uuid.UUID(int=0xE000 + n),
        type="ledger.transfer_completed",
        version=1,
        occurred_at=datetime(2026, 3, 1, 12, 0, n, 123456, tzinfo=UTC),
        aggregate_id=str(ALICE),
        correlation_id=f"corr-{n}",
        payload={"amount": 100 + n, "note": "ação"},
    )
    return event.with_headers(headers) if headers else event


def plain(n: int, amount: int = 1_00, *, debit: uuid.UUID = ALICE) -> Transfer:
    return Transfer(
        id=uuid.UUID(int=0x7000 + n),
        debit_account_id=debit,
        credit_account_id=BOB,
        amount=amount,
        code=7,
        user_data=f"ref-{n}",
        user_data_128=12345,
        user_data_64=(1 << 64) - 1,  # stored with its bit pattern
        user_data_32=(1 << 31) + 5,
    )


async def fund(ledger: PostgresLedger) -> None:
    limited = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    results = await ledger.create_accounts(
        [
            NewAccount(id=BANK, code=1),
            NewAccount(id=ALICE, code=1, flags=limited | AccountFlags.HISTORY),
            NewAccount(id=BOB, code=1, flags=limited),
        ]
    )
    assert set(results) == {"ok"}
    funding = Transfer(
        id=uuid.UUID(int=0xF0), debit_account_id=BANK, credit_account_id=ALICE, amount=10_00, code=1
    )
    assert await ledger.create_transfers([funding]) == [R.OK]


@pytest.fixture
async def schema_pool() -> AsyncIterator[asyncpg.Pool]:
    async with isolated_schema(require_postgres()) as (pool, _):
        yield pool


async def test_one_event_goes_as_scalars_and_stores_what_the_array_form_stores() -> None:
    dsn = require_postgres()
    event = make_event(1, headers={"traceparent": "00-abc-def-01"})
    transfer = plain(1)
    async with isolated_schema(dsn) as (scalar_pool, _), isolated_schema(dsn) as (array_pool, _):
        spy = SpyPool(scalar_pool)
        scalar = PostgresLedger(spy, FakeClock(START))  # type: ignore[arg-type]
        arrays = PostgresLedger(array_pool, FakeClock(START))
        await fund(scalar)
        await fund(arrays)

        spy.queries.clear()
        assert await scalar.create_transfers([transfer], events=[event]) == [R.OK]
        assert spy.queries == [ledger_module._CREATE_TRANSFER_WITH_EVENT]
        assert "ledger_create_transfer_event(" in spy.queries[0]

        # the array form, as the adapter sent it before 0025: the transfer's twelve
        # arguments and the event as six one-element arrays
        _, args = ledger_module._single_call(transfer, START, ())
        raw = await array_pool.fetchval(
            ledger_module._CREATE_TRANSFER_WITH_EVENTS,
            *args,
            *ledger_module.event_columns([event]),
        )
        assert raw == "ok"

        on_scalars, on_arrays = await ledger_rows(scalar_pool), await ledger_rows(array_pool)
        assert len(on_scalars["outbox"]) == 1
        row = on_scalars["outbox"][0]
        assert row["event_id"] == event.event_id
        assert bytes(row["envelope"]) == encode_event(event)
        assert on_scalars == on_arrays  # every column of every row, the outbox's included


async def test_a_replay_a_refusal_and_a_missing_account_append_no_event(
    schema_pool: asyncpg.Pool,
) -> None:
    spy = SpyPool(schema_pool)
    ledger = PostgresLedger(spy, FakeClock(START))  # type: ignore[arg-type]
    await fund(ledger)
    first = plain(1)
    assert await ledger.create_transfers([first], events=[make_event(1)]) == [R.OK]
    # the same transfer again (exists), a different one under its id, an overdraft,
    # an unknown account: each with an event of its own, none of which is stored
    refused = [
        ([first], R.EXISTS),
        ([plain(1, amount=2_00)], R.EXISTS_WITH_DIFFERENT_FIELDS),
        ([plain(2, amount=1_000_00)], R.EXCEEDS_CREDITS),
        ([plain(3, debit=uuid.UUID(int=0xDEAD))], R.DEBIT_ACCOUNT_NOT_FOUND),
    ]
    for n, (batch, expected) in enumerate(refused, 2):
        spy.queries.clear()
        assert await ledger.create_transfers(batch, events=[make_event(n)]) == [expected]
        assert spy.queries == [ledger_module._CREATE_TRANSFER_WITH_EVENT]
    rows = await schema_pool.fetch("SELECT event_id FROM outbox ORDER BY id")
    assert [row["event_id"] for row in rows] == [make_event(1).event_id]


async def test_an_answer_other_than_ok_from_the_function_appends_nothing(
    schema_pool: asyncpg.Pool,
) -> None:
    """Straight at the SQL: NULL (a pending transfer due to expire) and refusals append nothing."""
    ledger = PostgresLedger(schema_pool, FakeClock(START))
    await fund(ledger)
    pending = Transfer(
        id=uuid.UUID(int=0x9000),
        debit_account_id=ALICE,
        credit_account_id=BOB,
        amount=1_00,
        code=1,
        flags=TransferFlags.PENDING,
        timeout_seconds=1,
    )
    assert await ledger.create_transfers([pending]) == [R.OK]
    later = START.replace(second=5)
    _, args = ledger_module._single_call(plain(1), later, ())
    event = ledger_module._event_scalars(make_event(1))
    due = await schema_pool.fetchval(ledger_module._CREATE_TRANSFER_WITH_EVENT, *args, *event)
    assert due is None  # the adapter then sends the batch function, which expires it first
    assert await schema_pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert await schema_pool.fetchval("SELECT count(*) FROM ledger_transfers") == 2

    # through the adapter: the batch function expires the pending transfer and stores
    # the transfer with its event, once
    clock = FakeClock(later)
    ledger = PostgresLedger(schema_pool, clock)
    assert await ledger.create_transfers([plain(1)], events=[make_event(1)]) == [R.OK]
    rows = await schema_pool.fetch("SELECT event_id FROM outbox")
    assert [row["event_id"] for row in rows] == [make_event(1).event_id]
    status = await schema_pool.fetchval(
        "SELECT status FROM ledger_transfers WHERE id = $1", pending.id
    )
    assert status == "expired"


async def test_several_events_still_go_as_arrays_and_none_as_the_plain_call(
    schema_pool: asyncpg.Pool,
) -> None:
    spy = SpyPool(schema_pool)
    ledger = PostgresLedger(spy, FakeClock(START))  # type: ignore[arg-type]
    await fund(ledger)
    spy.queries.clear()
    events = [make_event(1), make_event(2)]
    assert await ledger.create_transfers([plain(1)], events=events) == [R.OK]
    assert await ledger.create_transfers([plain(2)]) == [R.OK]
    assert spy.queries == [
        ledger_module._CREATE_TRANSFER_WITH_EVENTS,
        ledger_module._CREATE_TRANSFER,
    ]
    rows = await schema_pool.fetch("SELECT event_id FROM outbox ORDER BY id")
    assert [row["event_id"] for row in rows] == [e.event_id for e in events]


async def test_concurrent_single_transfers_with_one_event_each_store_each_event_once() -> None:
    """Many callers on our pool at once, each its transfer and event: every ok has its event."""
    async with isolated_schema(require_postgres()) as (_, schema):
        pool = await create_pool(
            require_postgres(), min_size=4, max_size=4, server_settings={"search_path": schema}
        )
        try:
            ledger = PostgresLedger(pool, FakeClock(START))
            await fund(ledger)  # Alice holds 10_00: 40 transfers of 50 cents, 20 fit
            batches = [([plain(n, amount=50)], make_event(n)) for n in range(1, 41)]
            answers = await asyncio.gather(
                *(ledger.create_transfers(b, events=[e]) for b, e in batches)
            )
            ok = {b[0].id for (b, _), [r] in zip(batches, answers, strict=True) if r is R.OK}
            assert len(ok) == 20
            assert {r for [r] in answers} == {R.OK, R.EXCEEDS_CREDITS}
            rows = await pool.fetch("SELECT event_id FROM outbox")
            expected = {e.event_id for (b, e) in batches if b[0].id in ok}
            assert sorted(row["event_id"] for row in rows) == sorted(expected)
        finally:
            await pool.close()


# -- the fast path's first attempt, made outside the retry loop -------------------------


class FailingPool:
    """Raises the given errors on the first fetchvals, then passes through."""

    def __init__(self, pool: asyncpg.Pool, errors: list[BaseException]) -> None:
        self.pool = pool
        self.errors = errors
        self.calls = 0

    async def fetchval(self, query: str, *args: Any) -> Any:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return await self.pool.fetchval(query, *args)

    async def fetch(self, query: str, *args: Any) -> Any:
        return await self.pool.fetch(query, *args)


async def test_a_serialization_failure_on_the_first_attempt_is_retried(
    schema_pool: asyncpg.Pool,
) -> None:
    await fund(PostgresLedger(schema_pool, FakeClock(START)))
    failing = FailingPool(
        schema_pool, [pg.SerializationError("could not serialize"), pg.DeadlockDetectedError("dl")]
    )
    ledger = PostgresLedger(failing, FakeClock(START), retry=RetryPolicy(base_delay_seconds=0))  # type: ignore[arg-type]
    assert await ledger.create_transfers([plain(1)], events=[make_event(1)]) == [R.OK]
    assert (failing.calls, ledger.retries) == (3, 2)
    assert await schema_pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_retries_run_out_as_before_and_other_errors_are_translated(
    schema_pool: asyncpg.Pool,
) -> None:
    await fund(PostgresLedger(schema_pool, FakeClock(START)))
    policy = RetryPolicy(attempts=3, base_delay_seconds=0)
    errors: list[BaseException] = [pg.SerializationError("again") for _ in range(3)]
    failing = FailingPool(schema_pool, errors)
    ledger = PostgresLedger(failing, FakeClock(START), retry=policy)  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailable) as raised:
        await ledger.create_transfers([plain(1)])
    assert raised.value.code == "retries_exhausted"
    assert isinstance(raised.value.__cause__, pg.SerializationError)
    assert (failing.calls, ledger.retries) == (3, 2)

    lost = ConnectionResetError("reset by peer")
    failing = FailingPool(schema_pool, [lost])
    ledger = PostgresLedger(failing, FakeClock(START), retry=policy)  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailable) as raised:
        await ledger.create_transfers([plain(1)], events=[make_event(1)])
    assert raised.value.__cause__ is lost
    assert (failing.calls, ledger.retries) == (1, 0)

    bug = RuntimeError("not a driver error")
    failing = FailingPool(schema_pool, [bug])
    ledger = PostgresLedger(failing, FakeClock(START), retry=policy)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError) as caught:
        await ledger.create_transfers([plain(1)])
    assert caught.value is bug
    assert await schema_pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert await schema_pool.fetchval("SELECT count(*) FROM ledger_transfers") == 1  # funding


# -- metrics: every answer counted once, whichever path gave it ---------------------------


async def test_every_path_counts_its_results_once(schema_pool: asyncpg.Pool) -> None:
    from finbank_adapters import metrics

    recorder = metrics.recorder()

    def counts() -> dict[str, float]:
        codes = ("ok", "exists", "exceeds_credits", "id_must_not_be_zero", "linked_event_failed")
        found = {c: recorder.value(metrics.LEDGER_RESULTS, Result=c) for c in codes}
        found["unexpected"] = recorder.value(metrics.LEDGER_UNEXPECTED_RESULTS)
        return found

    ledger = PostgresLedger(schema_pool, FakeClock(START), group_max_in_flight=1)
    await fund(ledger)
    before = counts()
    assert await ledger.create_transfers([plain(1)], events=[make_event(1)]) == [R.OK]  # fast
    assert await ledger.create_transfers([plain(1)]) == [R.EXISTS]  # fast, a replay
    zero = msgspec_replace(plain(2), id=uuid.UUID(int=0))
    assert await ledger.create_transfers([zero]) == [R.ID_MUST_NOT_BE_ZERO]  # refused here
    # two callers at once with one call in flight: the second waits and goes as a group
    both = await asyncio.gather(
        ledger.create_transfers([plain(3)]), ledger.create_transfers([plain(4)])
    )
    assert list(both) == [[R.OK], [R.OK]]
    assert await ledger.create_transfers([plain(5), plain(6, amount=1_000_00)]) == [
        R.OK,
        R.EXCEEDS_CREDITS,
    ]  # a batch
    assert await ledger.create_transfers([]) == []
    after = counts()
    delta = {k: after[k] - before[k] for k in after}
    assert delta == {
        "ok": 4,
        "exists": 1,
        "exceeds_credits": 1,
        "id_must_not_be_zero": 1,
        "linked_event_failed": 0,
        "unexpected": 1,  # id_must_not_be_zero
    }
    failing = FailingPool(schema_pool, [RuntimeError("boom")])
    raising = PostgresLedger(failing, FakeClock(START))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        await raising.create_transfers([plain(7)])
    assert counts() == after  # a call that raised counts nothing


def msgspec_replace(transfer: Transfer, **changes: Any) -> Transfer:
    import msgspec

    return msgspec.structs.replace(transfer, **changes)
