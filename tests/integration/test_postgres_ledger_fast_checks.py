"""The one-plain-transfer fast path of ``PostgresLedger.create_transfers`` checks the
transfer in one expression (``check_transfer_texts`` and ``_transfer_pre``'s checks) and
``_single_call`` works out ``_transfer_mid`` only when one of its checks could fail, and
builds its arguments inline (``user_data_128`` as asyncpg's own UUID). Every transfer,
valid or refused at any step, answers as the in-memory ledger answers it and stores
what the batch function stores; many callers on the same ids and accounts at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.ledger import InMemoryLedger
from finbank_adapters.postgres import PostgresLedger
from finbank_adapters.postgres import ledger as ledger_module
from finbank_adapters.postgres.pool import create_pool
from finbank_core.accounts.ledger import (
    MAX_AMOUNT,
    MAX_U16,
    MAX_U32,
    MAX_U64,
    MAX_U128,
    AccountFlags,
    CreateTransferResult,
    NewAccount,
    Transfer,
)
from finbank_core.shared.errors import InvalidInput
from tests.postgres_support import isolated_schema, ledger_rows, require_postgres

pytestmark = pytest.mark.services

R = CreateTransferResult
BANK = uuid.UUID(int=0x0B)
ALICE = uuid.UUID(int=0xA1)
BOB = uuid.UUID(int=0xB0)
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def plain(n: int, **changes: Any) -> Transfer:
    transfer = Transfer(
        id=uuid.UUID(int=0x7000 + n),
        debit_account_id=ALICE,
        credit_account_id=BOB,
        amount=1_00,
        code=7,
    )
    return msgspec.structs.replace(transfer, **changes)


#: one plain transfer per case: valid ones with every field at its edges, and one
#: refused by each stateless check the fast path folds together, in its order
CASES: list[Transfer] = [
    plain(1),
    plain(2, user_data="ref-2", user_data_128=12345, user_data_64=5, user_data_32=6),
    plain(3, ledger=MAX_U32, code=MAX_U16, user_data_128=MAX_U128),
    plain(4, user_data_64=MAX_U64, user_data_32=MAX_U32, ledger=(1 << 31), amount=1),
    plain(5, user_data_64=(1 << 63), user_data_32=(1 << 31) - 1, ledger=(1 << 31) - 1),
    plain(6, amount=-1),
    plain(7, amount=MAX_AMOUNT + 1),
    plain(8, ledger=-1),
    plain(9, ledger=MAX_U32 + 1),
    plain(10, code=-1),
    plain(11, code=MAX_U16 + 1),
    plain(12, user_data_128=-1),
    plain(13, user_data_128=MAX_U128 + 1),
    plain(14, user_data_64=-1),
    plain(15, user_data_64=MAX_U64 + 1),
    plain(16, user_data_32=-1),
    plain(17, user_data_32=MAX_U32 + 1),
    plain(0, id=uuid.UUID(int=0)),
    plain(0, id=uuid.UUID(int=MAX_U128)),
    plain(18, debit_account_id=None),
    plain(19, debit_account_id=uuid.UUID(int=0)),
    plain(20, debit_account_id=uuid.UUID(int=MAX_U128)),
    plain(21, credit_account_id=None),
    plain(22, credit_account_id=uuid.UUID(int=0)),
    plain(23, credit_account_id=uuid.UUID(int=MAX_U128)),
    plain(24, credit_account_id=ALICE),
    plain(25, amount=0),
    plain(26, ledger=0),
    plain(27, code=0),
    plain(28, amount=0, ledger=0, code=0, credit_account_id=ALICE),  # the first one wins
    plain(29, amount=-5, code=0),
    plain(30, debit_account_id=uuid.UUID(int=0xDEAD)),  # stateful: no such account
    plain(31, amount=10**12),  # stateful: exceeds credits
    plain(1),  # a replay
    plain(1, amount=2_00),  # its id with other fields
]


def reference_arguments(t: Transfer, now: datetime) -> tuple[Any, ...]:
    """``_single_call``'s arguments as they were written before it was inlined (the time
    as the interval since the Unix epoch: test_postgres_ledger_time_as_interval)."""
    ud128 = t.user_data_128
    return (
        now - datetime(1970, 1, 1, tzinfo=UTC),
        t.id,
        t.debit_account_id,
        t.credit_account_id,
        t.amount,
        t.code,
        ledger_module._s32(t.ledger),
        t.user_data,
        uuid.UUID(int=ud128) if ud128 else uuid.UUID(int=0),
        ledger_module._s64(t.user_data_64),
        ledger_module._s32(t.user_data_32),
        ledger_module._transfer_mid(t, 0),
    )


def test_single_call_arguments_are_the_reference_ones() -> None:
    for t in CASES:
        if ledger_module._transfer_pre(t, 0, None) is not None:
            continue  # _single_call is only for transfers past these checks
        query, args = ledger_module._single_call(t, START, ())
        assert query == ledger_module._CREATE_TRANSFER
        expected = reference_arguments(t, START)
        assert args == expected, t
        assert [type(a) for a in args[:8]] == [type(a) for a in expected[:8]]
        assert isinstance(args[8], uuid.UUID)
        assert args[8].bytes == expected[8].bytes


def test_a_nul_in_user_data_is_refused_whole_as_before() -> None:
    ledger = PostgresLedger(None, FakeClock(START))  # type: ignore[arg-type]  # never reached
    with pytest.raises(InvalidInput) as raised:
        asyncio.run(ledger.create_transfers([plain(1, user_data="a\x00b")]))
    assert raised.value.details == {"field": "user_data"}


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


async def fund(ledger: Any) -> None:
    limited = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    assert set(
        await ledger.create_accounts(
            [
                NewAccount(id=BANK, code=1),
                NewAccount(id=ALICE, code=1, flags=limited | AccountFlags.HISTORY),
                NewAccount(id=BOB, code=1, flags=limited),
            ]
        )
    ) == {"ok"}
    funding = Transfer(
        id=uuid.UUID(int=0xF0),
        debit_account_id=BANK,
        credit_account_id=ALICE,
        amount=10_000,
        code=1,
    )
    assert await ledger.create_transfers([funding]) == [R.OK]


async def test_every_case_answers_as_the_in_memory_ledger(our_pool: asyncpg.Pool) -> None:
    clock = FakeClock(START)
    on_postgres = PostgresLedger(our_pool, clock)
    reference = InMemoryLedger(clock)
    await fund(on_postgres)
    await fund(reference)
    for t in CASES:
        expected = await reference.create_transfers([t])
        assert await on_postgres.create_transfers([t]) == expected, t
        clock.advance(1)
    assert await on_postgres.lookup_accounts([BANK, ALICE, BOB]) == (
        await reference.lookup_accounts([BANK, ALICE, BOB])
    )
    ok_ids = [t.id for t in CASES if t.id.int not in (0, MAX_U128)]
    assert await on_postgres.lookup_transfers(ok_ids) == await reference.lookup_transfers(ok_ids)


async def test_the_fast_path_stores_what_the_batch_function_stores() -> None:
    dsn = require_postgres()
    async with isolated_schema(dsn) as (_, fast_schema), isolated_schema(dsn) as (batch_pool, _):
        fast_pool = await create_pool(dsn, server_settings={"search_path": fast_schema})
        try:
            fast = PostgresLedger(fast_pool, FakeClock(START))
            batch = PostgresLedger(batch_pool, FakeClock(START))
            await fund(fast)
            await fund(batch)
            for t in CASES:
                answer = await fast.create_transfers([t])
                # the batch function, as a batch of one goes when it is not plain
                through_batch = await batch._send_batch([t], [None], START, ())
                assert answer == through_batch, t
            assert await ledger_rows(fast_pool) == await ledger_rows(batch_pool)
        finally:
            await fast_pool.close()


async def test_many_callers_on_the_same_ids_and_accounts(our_pool: asyncpg.Pool) -> None:
    ledger = PostgresLedger(our_pool, FakeClock(START))
    await fund(ledger)  # Alice holds 10_000
    # 30 distinct transfers of 500 (20 fit), each sent by 4 callers at once, with
    # user data at its edges so the inline arguments are exercised
    transfers = [
        plain(n, amount=500, user_data_128=n * MAX_U64, user_data_64=MAX_U64, user_data_32=n)
        for n in range(1, 31)
    ]
    answers = await asyncio.gather(
        *(ledger.create_transfers([t]) for t in transfers for _ in range(4))
    )
    by_id: dict[uuid.UUID, list[CreateTransferResult]] = {}
    for t, [answer] in zip([t for t in transfers for _ in range(4)], answers, strict=True):
        by_id.setdefault(t.id, []).append(answer)
    applied = {i for i, got in by_id.items() if R.OK in got}
    assert len(applied) == 20
    for i, got in by_id.items():
        if i in applied:  # applied once, its replays answer exists
            assert sorted(got) == sorted([R.OK, R.EXISTS, R.EXISTS, R.EXISTS])
        else:  # refused each time (a refusal is not stored, so never exists)
            assert got == [R.EXCEEDS_CREDITS] * 4
    alice, bob = await ledger.lookup_accounts([ALICE, BOB])
    assert alice.debits_posted == 20 * 500
    assert bob.credits_posted == 20 * 500
    rows = await our_pool.fetch("SELECT id, user_data_128 FROM ledger_transfers WHERE code = 7")
    assert {row["id"] for row in rows} == applied
    records = await ledger.lookup_transfers(sorted(applied))
    for record in records:
        n = record.id.int - 0x7000
        assert (record.user_data_128, record.user_data_64, record.user_data_32) == (
            n * MAX_U64,
            MAX_U64,
            n,
        )
