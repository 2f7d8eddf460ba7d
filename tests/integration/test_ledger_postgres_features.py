"""The PostgreSQL ledger's side of the TigerBeetle features (migration 0010).

What the shared contract suites do not reach:

* values at the top of their unsigned type (u32 ledger/timeout/user_data_32,
  u64 user_data_64, u128 user_data_128) are stored with their bit pattern in
  signed columns and must come back, and be found by the query filters, as
  the same numbers; values beyond their type, mixed into a batch with valid
  transfers, must get their result code without a driver exception and
  without writing anything of theirs;
* the single-transfer fast path must apply the new rules (closed accounts,
  balance history, user data) like the batch function;
* transfers stored before migration 0010 (a post that left code and
  user_data empty) must read back with what they inherited, and still be
  recognised as replays;
* the new features under many concurrent callers on the same accounts:
  balancing transfers draining one account, closing transfers racing each
  other, history points of a hot account. These run on memory and
  PostgreSQL alike and check the final state as a whole.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest

from finbank_adapters.memory import FakeClock, InMemoryLedger
from finbank_adapters.postgres import PostgresLedger
from finbank_adapters.postgres.holds import PostgresPendingHolds
from finbank_adapters.postgres.migrations import load_migrations, quote_ident
from finbank_core.accounts.ledger import (
    MAX_AMOUNT,
    MAX_U16,
    MAX_U32,
    MAX_U64,
    MAX_U128,
    AccountFilter,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    NewAccount,
    QueryFilter,
    Transfer,
    TransferFlags,
)
from finbank_core.accounts.ports import Ledger
from finbank_core.shared.events import EventEnvelope
from tests.postgres_support import isolated_schema, require_postgres

R = CreateTransferResult
F = TransferFlags
CUSTOMER = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
CALLERS = 32
POOL_SIZE = 10


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))


@pytest.fixture
async def pg_ledger(clock: FakeClock) -> AsyncIterator[PostgresLedger]:
    async with isolated_schema(require_postgres(), min_size=2, max_size=POOL_SIZE) as (pool, _):
        yield PostgresLedger(pool, clock)


@pytest.fixture(params=["memory", "postgres"])
async def ledger(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Ledger]:
    if request.param == "memory":
        yield InMemoryLedger(clock)
        return
    async with isolated_schema(require_postgres(), min_size=POOL_SIZE, max_size=POOL_SIZE) as (
        pool,
        _,
    ):
        yield PostgresLedger(pool, clock)


async def open_accounts(ledger: Ledger, *accounts: NewAccount) -> None:
    assert await ledger.create_accounts(list(accounts)) == [CreateAccountResult.OK] * len(accounts)


def plain(
    debit: uuid.UUID,
    credit: uuid.UUID,
    amount: int,
    *,
    flags: TransferFlags = F.NONE,
    code: int = 1,
    **kw: int,
) -> Transfer:
    return Transfer(
        id=uuid.uuid4(),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        code=code,
        flags=flags,
        **kw,  # type: ignore[arg-type]
    )


# -- type limits ----------------------------------------------------------------------


async def test_unsigned_values_at_their_top_round_trip_and_are_found(
    pg_ledger: PostgresLedger,
) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await open_accounts(
        pg_ledger,
        *(
            NewAccount(
                id=i,
                code=MAX_U16,
                ledger=MAX_U32,
                user_data_128=MAX_U128,
                user_data_64=MAX_U64,
                user_data_32=MAX_U32,
            )
            for i in (a, b)
        ),
    )
    hold = Transfer(
        id=uuid.uuid4(),
        debit_account_id=a,
        credit_account_id=b,
        amount=MAX_AMOUNT,
        code=MAX_U16,
        ledger=MAX_U32,
        flags=F.PENDING,
        timeout_seconds=MAX_U32,
        user_data_128=MAX_U128,
        user_data_64=MAX_U64,
        user_data_32=MAX_U32,
    )
    assert await pg_ledger.create_transfers([hold]) == [R.OK]

    [account] = await pg_ledger.lookup_accounts([a])
    assert (account.ledger, account.code) == (MAX_U32, MAX_U16)
    assert (account.user_data_128, account.user_data_64, account.user_data_32) == (
        MAX_U128,
        MAX_U64,
        MAX_U32,
    )
    assert account.debits_pending == MAX_AMOUNT
    [record] = await pg_ledger.lookup_transfers([hold.id])
    assert record.request == hold
    assert (record.ledger, record.code, record.amount) == (MAX_U32, MAX_U16, MAX_AMOUNT)
    assert (record.user_data_128, record.user_data_64, record.user_data_32) == (
        MAX_U128,
        MAX_U64,
        MAX_U32,
    )
    # a replay with every value at its top is recognised
    assert await pg_ledger.create_transfers([hold]) == [R.EXISTS]

    found = await pg_ledger.query_transfers(
        QueryFilter(
            ledger=MAX_U32,
            code=MAX_U16,
            user_data_128=MAX_U128,
            user_data_64=MAX_U64,
            user_data_32=MAX_U32,
        )
    )
    assert [r.id for r in found] == [hold.id]
    assert await pg_ledger.query_transfers(QueryFilter(user_data_64=MAX_U64 - 1)) == []
    on_b = await pg_ledger.get_account_transfers(
        AccountFilter(account_id=b, user_data_32=MAX_U32, debits=False)
    )
    assert [r.id for r in on_b] == [hold.id]


async def test_values_beyond_their_type_in_a_batch_write_nothing_of_theirs(
    pg_ledger: PostgresLedger,
) -> None:
    bank, alice = uuid.uuid4(), uuid.uuid4()
    await open_accounts(pg_ledger, NewAccount(id=bank, code=100), NewAccount(id=alice, code=1))
    good = plain(bank, alice, 5_00)
    chained_good = plain(bank, alice, 7_00, flags=F.LINKED)
    chained_bad = plain(bank, alice, 1_00, user_data_64=MAX_U64 + 1)
    batch = [
        good,
        plain(bank, alice, MAX_AMOUNT + 1),
        plain(bank, alice, 2**64),
        plain(bank, alice, 1_00, ledger=MAX_U32 + 1),
        plain(bank, alice, 1_00, code=MAX_U16 + 1),
        plain(bank, alice, 1_00, code=-1),
        plain(bank, alice, 1_00, user_data_128=MAX_U128 + 1),
        plain(bank, alice, 1_00, user_data_32=-1),
        plain(bank, alice, 1_00, flags=F.PENDING, timeout_seconds=MAX_U32 + 1),
        plain(bank, alice, 1_00, flags=TransferFlags(1 << 40)),
        chained_good,
        chained_bad,
    ]
    assert await pg_ledger.create_transfers(batch) == [
        R.OK,
        R.AMOUNT_OUT_OF_RANGE,
        R.AMOUNT_OUT_OF_RANGE,
        R.LEDGER_OUT_OF_RANGE,
        R.CODE_OUT_OF_RANGE,
        R.CODE_OUT_OF_RANGE,
        R.USER_DATA_128_OUT_OF_RANGE,
        R.USER_DATA_32_OUT_OF_RANGE,
        R.TIMEOUT_OUT_OF_RANGE,
        R.RESERVED_FLAG,
        R.LINKED_EVENT_FAILED,
        R.USER_DATA_64_OUT_OF_RANGE,
    ]
    # the single-transfer path answers the same, without a round trip
    assert await pg_ledger.create_transfers([plain(bank, alice, 2**63)]) == [R.AMOUNT_OUT_OF_RANGE]
    stored = await pg_ledger.lookup_transfers([t.id for t in batch])
    assert [r.id for r in stored] == [good.id]
    [account] = await pg_ledger.lookup_accounts([alice])
    assert account.credits_posted == 5_00


async def test_accounts_beyond_their_type_get_result_codes(pg_ledger: PostgresLedger) -> None:
    ok = NewAccount(id=uuid.uuid4(), code=1, flags=AccountFlags.LINKED)
    batch = [
        ok,
        NewAccount(id=uuid.uuid4(), code=1, ledger=MAX_U32 + 1),
        NewAccount(id=uuid.uuid4(), code=MAX_U16 + 1),
        NewAccount(id=uuid.uuid4(), code=1, user_data_64=-1),
        NewAccount(id=uuid.uuid4(), code=1, flags=AccountFlags(1 << 33)),
    ]
    A = CreateAccountResult
    assert await pg_ledger.create_accounts(batch) == [
        A.LINKED_EVENT_FAILED,
        A.LEDGER_OUT_OF_RANGE,
        A.CODE_OUT_OF_RANGE,
        A.USER_DATA_64_OUT_OF_RANGE,
        A.RESERVED_FLAG,
    ]
    assert await pg_ledger.lookup_accounts([a.id for a in batch]) == []


async def test_pending_holds_read_a_u32_timeout_back_unsigned(pg_ledger: PostgresLedger) -> None:
    bank, settlement = uuid.uuid4(), uuid.uuid4()
    await open_accounts(
        pg_ledger, NewAccount(id=bank, code=100), NewAccount(id=settlement, code=101)
    )
    hold = plain(bank, settlement, 9_99, flags=F.PENDING, timeout_seconds=MAX_U32)
    assert await pg_ledger.create_transfers([hold]) == [R.OK]
    holds = PostgresPendingHolds(pg_ledger._pool)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    found = [h async for h in holds.pending_holds(settlement, start, start.replace(year=2027))]
    assert [(h.transfer_id, h.timeout_seconds, h.amount_cents) for h in found] == [
        (hold.id, MAX_U32, 9_99)
    ]


# -- the single-transfer fast path ------------------------------------------------------


async def test_the_fast_path_keeps_history_user_data_and_refuses_closed_accounts(
    pg_ledger: PostgresLedger,
) -> None:
    bank, alice, carol = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await open_accounts(
        pg_ledger,
        NewAccount(id=bank, code=100),
        NewAccount(id=alice, code=1, flags=CUSTOMER | AccountFlags.HISTORY),
        NewAccount(id=carol, code=1, flags=AccountFlags.CLOSED),
    )
    deposit = plain(bank, alice, 10_00, user_data_128=7, user_data_64=8, user_data_32=9)
    assert await pg_ledger.create_transfers([deposit]) == [R.OK]  # the fast path
    spend = plain(alice, bank, 3_00)
    assert await pg_ledger.create_transfers([spend]) == [R.OK]
    assert await pg_ledger.create_transfers([plain(bank, carol, 1_00)]) == [
        R.CREDIT_ACCOUNT_ALREADY_CLOSED
    ]
    assert await pg_ledger.create_transfers([plain(carol, bank, 1_00)]) == [
        R.DEBIT_ACCOUNT_ALREADY_CLOSED
    ]
    points = await pg_ledger.get_account_balances(AccountFilter(account_id=alice))
    assert [(p.transfer_id, p.credits_posted, p.debits_posted) for p in points] == [
        (deposit.id, 10_00, 0),
        (spend.id, 10_00, 3_00),
    ]
    only_deposit = await pg_ledger.get_account_balances(
        AccountFilter(account_id=alice, user_data_128=7)
    )
    assert [p.transfer_id for p in only_deposit] == [deposit.id]
    [record] = await pg_ledger.lookup_transfers([deposit.id])
    assert (record.user_data_128, record.user_data_64, record.user_data_32) == (7, 8, 9)
    assert await pg_ledger.create_transfers([deposit]) == [R.EXISTS]
    changed = msgspec.structs.replace(deposit, user_data_32=10)
    assert await pg_ledger.create_transfers([changed]) == [R.EXISTS_WITH_DIFFERENT_FIELDS]


# -- transfers stored before migration 0010 ------------------------------------------


async def test_posts_stored_before_0010_read_back_with_what_they_inherit() -> None:
    dsn = require_postgres()
    schema = f"t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(dsn)
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    try:
        await admin.execute(f"CREATE SCHEMA {quote_ident(schema)}")
        await admin.execute(f"SET search_path = {quote_ident(schema)}")
        migrations = load_migrations()
        for migration in migrations:
            if int(migration.version) < 10:
                await admin.execute(migration.sql)
        bank, alice = sorted([uuid.uuid4(), uuid.uuid4()])
        pending_id, post_id = uuid.uuid4(), uuid.uuid4()
        await admin.fetchval(
            "SELECT ledger_create_accounts($1, $2, $3, $4, $5)",
            now,
            [bank, alice],
            [100, 1],
            [0, 0],
            [986, 986],
        )
        old_batch = "SELECT ledger_create_transfers({})".format(
            ", ".join(f"${n}" for n in range(1, 17))
        )
        # the old signature: now, ids, debits, credits, amounts, pending ids, flags,
        # codes, ledgers, timeouts, user data, firsts, pending firsts, accounts, slots
        assert await admin.fetchval(
            old_batch,
            now,
            [pending_id, post_id],
            [bank, None],
            [alice, None],
            [5_00, 0],
            [None, pending_id],
            [2, 4],
            [7, 0],
            [986, 986],
            [0, 0],
            ["ref-1", None],
            [1, 2],
            [None, 1],
            [bank, alice],
            [1, None],
            [2, None],
        ) == ["ok", "ok"]
        [upgrade] = [m for m in migrations if m.version == "0010"]
        await admin.execute(upgrade.sql)
    except BaseException:
        await admin.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        await admin.close()
        raise
    try:
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=2, server_settings={"search_path": schema}
        )
        try:
            ledger = PostgresLedger(pool, FakeClock(now))
            [post] = await ledger.lookup_transfers([post_id])
            assert (post.code, post.user_data, post.ledger) == (7, "ref-1", 986)
            assert (post.request.code, post.request.user_data) == (0, None)
            assert await ledger.create_transfers([post.request]) == [R.EXISTS]
            page = await ledger.get_account_entries(alice)
            assert [(e.transfer_id, e.code, e.user_data) for e in page.entries] == [
                (post_id, 7, "ref-1")
            ]
            by_code = await ledger.query_transfers(QueryFilter(code=7))
            assert {r.id for r in by_code} == {pending_id, post_id}
        finally:
            await pool.close()
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        await admin.close()


# -- the new features under concurrency (memory and PostgreSQL) --------------------------


async def test_concurrent_balancing_debits_move_the_balance_exactly_once(ledger: Ledger) -> None:
    bank, alice = uuid.uuid4(), uuid.uuid4()
    await open_accounts(
        ledger, NewAccount(id=bank, code=100), NewAccount(id=alice, code=1, flags=CUSTOMER)
    )
    assert await ledger.create_transfers([plain(bank, alice, 1_000_00)]) == [R.OK]
    drains = [
        plain(alice, bank, MAX_AMOUNT if n % 2 else 123_45, flags=F.BALANCING_DEBIT)
        for n in range(CALLERS)
    ]
    results = await asyncio.gather(*(ledger.create_transfers([t]) for t in drains))
    assert {r for [r] in results} <= {R.OK, R.EXCEEDS_CREDITS}
    applied = [t.id for t, [r] in zip(drains, results, strict=True) if r is R.OK]
    records = await ledger.lookup_transfers(applied)
    assert sum(r.amount for r in records) == 1_000_00  # moved exactly what there was
    assert all(0 < r.amount <= 123_45 or r.request.amount == MAX_AMOUNT for r in records)
    [a, b] = await ledger.lookup_accounts([alice, bank])
    assert (a.credits_posted, a.debits_posted, a.debits_pending) == (1_000_00, 1_000_00, 0)
    assert a.debits_posted + a.debits_pending <= a.credits_posted
    assert b.debits_posted - b.credits_posted == 0  # money conserved between the two
    # every replay answers as the first: exists for the applied ones
    replays = await asyncio.gather(*(ledger.create_transfers([t]) for t in drains))
    for t, [first], [again] in zip(drains, results, replays, strict=True):
        assert again is (R.EXISTS if first is R.OK else R.EXCEEDS_CREDITS), t.id


async def test_concurrent_closing_transfers_close_once_and_one_void_reopens(
    ledger: Ledger,
) -> None:
    bank, alice = uuid.uuid4(), uuid.uuid4()
    await open_accounts(ledger, NewAccount(id=bank, code=100), NewAccount(id=alice, code=1))
    closings = [plain(alice, bank, 0, flags=F.PENDING | F.CLOSING_DEBIT) for _ in range(CALLERS)]
    results = await asyncio.gather(*(ledger.create_transfers([t]) for t in closings))
    assert sorted(r for [r] in results) == sorted(
        [R.OK] + [R.DEBIT_ACCOUNT_ALREADY_CLOSED] * (CALLERS - 1)
    )
    [winner] = [t for t, [r] in zip(closings, results, strict=True) if r is R.OK]
    [account] = await ledger.lookup_accounts([alice])
    assert account.flags & AccountFlags.CLOSED
    voids = [Transfer.void(uuid.uuid4(), winner.id) for _ in range(CALLERS)]
    outcomes = await asyncio.gather(*(ledger.create_transfers([v]) for v in voids))
    assert sorted(r for [r] in outcomes) == sorted(
        [R.OK] + [R.PENDING_TRANSFER_ALREADY_VOIDED] * (CALLERS - 1)
    )
    [account] = await ledger.lookup_accounts([alice])
    assert not account.flags & AccountFlags.CLOSED
    assert (account.debits_pending, account.credits_pending) == (0, 0)
    assert await ledger.create_transfers([plain(bank, alice, 1_00)]) == [R.OK]


async def test_concurrent_history_points_follow_the_balance(ledger: Ledger) -> None:
    bank, hot = uuid.uuid4(), uuid.uuid4()
    await open_accounts(
        ledger,
        NewAccount(id=bank, code=100),
        NewAccount(id=hot, code=1, flags=AccountFlags.HISTORY),
    )
    # singles take the fast path, pairs the batch function
    batches = [
        [plain(bank, hot, n + 1)] if n % 2 else [plain(bank, hot, n + 1), plain(hot, bank, 1)]
        for n in range(CALLERS)
    ]
    results = await asyncio.gather(*(ledger.create_transfers(b) for b in batches))
    assert all(r is R.OK for batch in results for r in batch)
    points = await ledger.get_account_balances(AccountFilter(account_id=hot, limit=1000))
    transfers = [t for b in batches for t in b]
    assert len(points) == len(transfers)
    assert {p.transfer_id for p in points} == {t.id for t in transfers}
    # in (timestamp, creation) order every point adds its own transfer to the one before
    amounts = {t.id: (t.amount if t.credit_account_id == hot else -t.amount) for t in transfers}
    balance = 0
    for point in points:
        balance += amounts[point.transfer_id]
        assert point.credits_posted - point.debits_posted == balance
    [account] = await ledger.lookup_accounts([hot])
    assert account.credits_posted - account.debits_posted == balance
    newest_first = await ledger.get_account_balances(
        AccountFilter(account_id=hot, limit=1000, reversed=True)
    )
    assert newest_first == points[::-1]


async def test_concurrent_imported_batches_never_regress(pg_ledger: PostgresLedger) -> None:
    """Imported transfers on disjoint accounts, submitted at once in shuffled time order:
    whatever is accepted was stored in timestamp order (the watermark held)."""
    past = datetime(2025, 1, 1, tzinfo=UTC)
    pairs = [(uuid.uuid4(), uuid.uuid4()) for _ in range(CALLERS)]
    accounts = [
        NewAccount(
            id=i, code=1, flags=AccountFlags.IMPORTED, timestamp=past.replace(microsecond=n + 1)
        )
        for n, i in enumerate(i for pair in pairs for i in pair)
    ]
    await open_accounts(pg_ledger, *accounts)
    accepted = 0
    for round_ in range(4):  # a few rounds: each is one chance for the race
        order = list(range(CALLERS))
        random.Random(round_).shuffle(order)
        transfers = [
            Transfer(
                id=uuid.uuid4(),
                debit_account_id=pairs[n][0],
                credit_account_id=pairs[n][1],
                amount=1,
                code=1,
                flags=F.IMPORTED,
                timestamp=past.replace(month=round_ + 2, second=n),
            )
            for n in order
        ]
        results = await asyncio.gather(*(pg_ledger.create_transfers([t]) for t in transfers))
        assert {r for [r] in results} <= {R.OK, R.IMPORTED_EVENT_TIMESTAMP_MUST_NOT_REGRESS}
        assert [R.OK] in results
        accepted += sum(r == [R.OK] for r in results)
    stored = [
        row["created_at"]
        for row in await pg_ledger._pool.fetch(
            "SELECT created_at FROM ledger_transfers ORDER BY seq"
        )
    ]
    assert stored == sorted(stored)
    assert len(set(stored)) == len(stored)
    assert len(stored) == accepted


async def test_concurrent_creations_of_one_linked_chain_apply_it_once(ledger: Ledger) -> None:
    A = CreateAccountResult
    first, second = uuid.uuid4(), uuid.uuid4()
    chain = [
        NewAccount(id=first, code=1, flags=AccountFlags.LINKED | AccountFlags.HISTORY),
        NewAccount(id=second, code=1, user_data_64=MAX_U64),
    ]
    other = [NewAccount(id=first, code=2), NewAccount(id=uuid.uuid4(), code=1)]
    calls = [other if n % 4 == 1 else chain for n in range(CALLERS)]
    results = await asyncio.gather(*(ledger.create_accounts(c) for c in calls))
    winners = [c for c, r in zip(calls, results, strict=True) if r == [A.OK, A.OK]]
    assert len(winners) == 1
    [winner] = winners
    for c, r in zip(calls, results, strict=True):
        if r == [A.OK, A.OK]:
            continue
        if c is winner:  # a replay: exists (which fails a linked chain, as in TigerBeetle)
            assert r == ([A.EXISTS, A.LINKED_EVENT_FAILED] if c is chain else [A.EXISTS, A.EXISTS])
        elif c is chain:  # its first account clashes: the chain fails whole
            assert r == [A.EXISTS_WITH_DIFFERENT_FIELDS, A.LINKED_EVENT_FAILED]
        else:  # not linked: its second account is created once
            assert r in (
                [A.EXISTS_WITH_DIFFERENT_FIELDS, A.OK],
                [A.EXISTS_WITH_DIFFERENT_FIELDS, A.EXISTS],
            )
    if winner is chain:
        assert sum(r == [A.EXISTS_WITH_DIFFERENT_FIELDS, A.OK] for r in results) == 1
    stored = await ledger.lookup_accounts([first, second])
    if winner is chain:
        assert [(a.id, a.code, a.user_data_64) for a in stored] == [
            (first, 1, 0),
            (second, 1, MAX_U64),
        ]
    else:
        assert [(a.id, a.code) for a in stored] == [(first, 2)]


async def test_statements_take_any_int_for_limit_and_after_sequence(ledger: Ledger) -> None:
    bank, alice = uuid.uuid4(), uuid.uuid4()
    await open_accounts(ledger, NewAccount(id=bank, code=100), NewAccount(id=alice, code=1))
    deposit = plain(bank, alice, 1_00)
    assert await ledger.create_transfers([deposit]) == [R.OK]
    page = await ledger.get_account_entries(alice, limit=2**70)
    assert [e.transfer_id for e in page.entries] == [deposit.id]
    assert page.next_after_sequence is None
    page = await ledger.get_account_entries(alice, after_sequence=-(2**70))
    assert [e.transfer_id for e in page.entries] == [deposit.id]
    page = await ledger.get_account_entries(alice, after_sequence=2**70)
    assert page.entries == []


async def test_plain_single_transfers_take_the_fast_path(
    pg_ledger: PostgresLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[uuid.UUID] = []
    fast_path = PostgresLedger._create_single

    async def spy(
        self: PostgresLedger, t: Transfer, now: datetime, events: Sequence[EventEnvelope]
    ) -> CreateTransferResult | None:
        taken.append(t.id)
        return await fast_path(self, t, now, events)

    monkeypatch.setattr(PostgresLedger, "_create_single", spy)
    bank, alice = uuid.uuid4(), uuid.uuid4()
    await open_accounts(pg_ledger, NewAccount(id=bank, code=100), NewAccount(id=alice, code=1))
    with_user_data = plain(bank, alice, 1_00, user_data_64=5)
    hold = plain(bank, alice, 1_00, flags=F.PENDING)
    assert await pg_ledger.create_transfers([with_user_data]) == [R.OK]
    assert await pg_ledger.create_transfers([hold]) == [R.OK]
    assert await pg_ledger.create_transfers([plain(bank, alice, 1_00), hold]) == [R.OK, R.EXISTS]
    assert taken == [with_user_data.id]
