"""One plain transfer's statement takes the clock's time (and its one event's, if any) as
the interval since the Unix epoch, made the timestamptz by the server
(``ledger._AT_INTERVAL``), instead of asyncpg encoding a datetime. The instant must be
the one asyncpg would have sent, to the microsecond, for every datetime and session time
zone; the rows stored must be the batch function's (which still takes timestamptz),
replays, refusals and events included; and the two instants asyncpg sends as infinities
keep their form."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import msgspec
import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres import PostgresLedger
from finbank_adapters.postgres import ledger as ledger_module
from finbank_adapters.postgres.pool import create_pool
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateTransferResult,
    NewAccount,
    Transfer,
)
from finbank_core.shared.events import EventEnvelope
from tests.postgres_support import isolated_schema, ledger_rows, require_postgres

pytestmark = pytest.mark.services

R = CreateTransferResult
BANK = uuid.UUID(int=0x0B)
ALICE = uuid.UUID(int=0xA1)
BOB = uuid.UUID(int=0xB0)
#: a time with microseconds, as a real clock gives
START = datetime(2026, 3, 1, 12, 0, 0, 123457, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SAO_PAULO = timezone(timedelta(hours=-3))


def instants() -> list[datetime]:
    """Edges (the epochs, a microsecond either side, offsets) and random times of every year."""
    edges = [
        UNIX_EPOCH,
        UNIX_EPOCH - ONE_MICROSECOND,
        UNIX_EPOCH + ONE_MICROSECOND,
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(2000, 1, 1, tzinfo=UTC) - ONE_MICROSECOND,
        datetime(1, 1, 1, tzinfo=UTC) + ONE_MICROSECOND,
        datetime(9999, 12, 31, 23, 59, 59, 999998, tzinfo=UTC),
        START,
        START.astimezone(SAO_PAULO),
        datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=SAO_PAULO),
        datetime(1900, 6, 30, 23, 59, 59, 500000, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ]
    rng = random.Random(16)
    low = datetime(1, 1, 2, tzinfo=UTC)
    span = (datetime(9999, 12, 30, tzinfo=UTC) - low) // ONE_MICROSECOND
    return edges + [low + rng.randrange(span) * ONE_MICROSECOND for _ in range(2_000)]


def test_the_interval_is_the_instant_since_the_unix_epoch() -> None:
    for when in instants():
        assert ledger_module._since_epoch(when) == when - UNIX_EPOCH


def test_a_naive_time_is_read_as_local_time_as_asyncpg_reads_it() -> None:
    naive = datetime(2026, 3, 1, 12, 0, 0, 5)  # noqa: DTZ001 - naive on purpose
    assert ledger_module._since_epoch(naive) == naive.astimezone(UTC) - UNIX_EPOCH


@pytest.fixture
async def our_pool() -> AsyncIterator[asyncpg.Pool]:
    dsn = require_postgres()
    async with isolated_schema(dsn) as (_, schema):
        pool = await create_pool(
            dsn, min_size=4, max_size=4, server_settings={"search_path": schema}
        )
        try:
            yield pool
        finally:
            await pool.close()


@pytest.mark.parametrize("time_zone", ["UTC", "America/Sao_Paulo", "Asia/Kolkata"])
async def test_the_server_makes_the_same_timestamptz_to_the_microsecond(time_zone: str) -> None:
    conn = await asyncpg.connect(require_postgres(), server_settings={"TimeZone": time_zone})
    try:
        statement = await conn.prepare(
            f"SELECT {ledger_module._AT_INTERVAL}, ({ledger_module._AT_INTERVAL}) = $2::timestamptz"
        )
        for when in instants():
            row = await statement.fetchrow(ledger_module._since_epoch(when), when)
            assert row is not None
            made, same = row
            assert made == when, when
            assert same, when
    finally:
        await conn.close()


def plain(n: int, **changes: Any) -> Transfer:
    transfer = Transfer(
        id=uuid.UUID(int=0x7000 + n),
        debit_account_id=ALICE,
        credit_account_id=BOB,
        amount=1_00,
        code=7,
        user_data=f"ref-{n}",
    )
    return msgspec.structs.replace(transfer, **changes)


def event(n: int, occurred_at: datetime | None = None) -> EventEnvelope:
    """Event ``n``, by default at a time of its own with microseconds (every even one in
    São Paulo's offset)."""
    if occurred_at is None:
        occurred_at = START - n * timedelta(seconds=1, microseconds=7)
        if n % 2 == 0:
            occurred_at = occurred_at.astimezone(SAO_PAULO)
    return EventEnvelope(
        event_id=uuid.UUID(int=0xE000 + n),
        type="ledger.transfer_completed",
        version=1,
        occurred_at=occurred_at,
        aggregate_id=str(ALICE),
        payload={"n": n},
    )


async def fund(ledger: PostgresLedger) -> None:
    limited = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    accounts = [
        NewAccount(id=BANK, code=1),
        NewAccount(id=ALICE, code=1, flags=limited | AccountFlags.HISTORY),
        NewAccount(id=BOB, code=1, flags=limited),
    ]
    assert set(await ledger.create_accounts(accounts)) == {"ok"}
    funding = Transfer(
        id=uuid.UUID(int=0xF0), debit_account_id=BANK, credit_account_id=ALICE, amount=10_00, code=1
    )
    assert await ledger.create_transfers([funding]) == [R.OK]


#: (transfer, its events, the answer): applied, replayed, refused, not found; with no
#: event, one (ledger_create_transfer_event) and two (the arrays)
STEPS: list[tuple[Transfer, list[EventEnvelope], CreateTransferResult]] = [
    (plain(1), [], R.OK),
    (plain(2), [event(2)], R.OK),
    (plain(3), [event(3), event(4)], R.OK),
    (plain(1), [event(5)], R.EXISTS),
    (plain(1, amount=2_00), [], R.EXISTS_WITH_DIFFERENT_FIELDS),
    (plain(6, amount=1_000_00), [event(6)], R.EXCEEDS_CREDITS),
    (
        plain(7, debit_account_id=uuid.UUID(int=0xDEAD)),
        [event(7), event(8)],
        R.DEBIT_ACCOUNT_NOT_FOUND,
    ),
    (plain(9, user_data_128=7, user_data_64=(1 << 64) - 1, user_data_32=(1 << 31)), [], R.OK),
]


async def test_the_rows_stored_are_the_batch_function_s() -> None:
    dsn = require_postgres()
    async with isolated_schema(dsn) as (_, fast_schema), isolated_schema(dsn) as (batch_pool, _):
        fast_pool = await create_pool(dsn, server_settings={"search_path": fast_schema})
        try:
            fast_clock, batch_clock = FakeClock(START), FakeClock(START)
            fast = PostgresLedger(fast_pool, fast_clock)
            batch = PostgresLedger(batch_pool, batch_clock)
            await fund(fast)
            await fund(batch)
            for transfer, events, answer in STEPS:
                fast_clock.advance(microseconds=333_337)
                batch_clock.advance(microseconds=333_337)
                assert await fast.create_transfers([transfer], events=events) == [answer]
                # the batch function, which takes the time as a timestamptz
                now = batch_clock.now()
                assert await batch._send_batch([transfer], [None], now, events) == [answer]
            on_fast, on_batch = await ledger_rows(fast_pool), await ledger_rows(batch_pool)
            assert on_fast == on_batch
            created = [row["created_at"] for row in on_fast["ledger_transfers"]]
            assert created[-1] == START + 8 * timedelta(microseconds=333_337)
        finally:
            await fast_pool.close()


async def test_the_times_asyncpg_sends_as_infinities_keep_the_timestamptz_form(
    our_pool: asyncpg.Pool,
) -> None:
    extremes = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
    with_timestamptz = ledger_module._WITH_TIMESTAMPTZ
    for when in extremes:
        for events in ([], [event(1)], [event(1), event(2)]):
            query, args = ledger_module._single_call(plain(1), when, events)
            assert query == with_timestamptz[ledger_module._single_call(plain(1), START, events)[0]]
            assert args[0] is when
            if len(events) == 1:
                assert args[16] is events[0].occurred_at
        # the event's time at an extreme: both times go as timestamptz
        at_extreme = event(1, occurred_at=when)
        query, args = ledger_module._single_call(plain(1), START, [at_extreme])
        assert query == with_timestamptz[ledger_module._CREATE_TRANSFER_WITH_EVENT]
        assert (args[0], args[16]) == (START, when)
    # what the server then stores: the infinity asyncpg sends, as before
    ledger = PostgresLedger(our_pool, FakeClock(START))
    await fund(ledger)
    query, args = ledger_module._single_call(plain(1), datetime.max.replace(tzinfo=UTC), ())
    assert await our_pool.fetchval(query, *args) == "ok"
    infinite = await our_pool.fetchval(
        "SELECT created_at = 'infinity' FROM ledger_transfers WHERE id = $1", plain(1).id
    )
    assert infinite is True
    at_extreme = event(2, occurred_at=datetime.min.replace(tzinfo=UTC))
    query, args = ledger_module._single_call(plain(2), START, [at_extreme])
    assert await our_pool.fetchval(query, *args) == "ok"
    minus_infinite = await our_pool.fetchval(
        "SELECT occurred_at = '-infinity' FROM outbox WHERE event_id = $1", at_extreme.event_id
    )
    assert minus_infinite is True


async def test_many_callers_at_once_store_the_clock_s_time(our_pool: asyncpg.Pool) -> None:
    clock = FakeClock(START)
    ledger = PostgresLedger(our_pool, clock)
    await fund(ledger)  # Alice holds 10_00: 20 transfers of 50 fit
    transfers = [plain(n, amount=50) for n in range(1, 31)]
    answers = await asyncio.gather(
        *(ledger.create_transfers([t], events=[event(n)]) for n, t in enumerate(transfers)),
        *(ledger.create_transfers([t]) for t in transfers),
    )
    firsts, replays = answers[:30], answers[30:]
    applied = {
        t.id
        for t, first, replay in zip(transfers, firsts, replays, strict=True)
        if R.OK in (first[0], replay[0])
    }
    assert len(applied) == 20
    for t, [first], [replay] in zip(transfers, firsts, replays, strict=True):
        if t.id in applied:
            assert sorted([first, replay]) == sorted([R.OK, R.EXISTS])
        else:
            assert (first, replay) == (R.EXCEEDS_CREDITS, R.EXCEEDS_CREDITS)
    rows = await our_pool.fetch("SELECT id, created_at FROM ledger_transfers WHERE code = 7")
    assert {row["id"] for row in rows} == applied
    assert {row["created_at"] for row in rows} == {START}
    alice = (await ledger.lookup_accounts([ALICE]))[0]
    assert alice.debits_posted == 20 * 50
