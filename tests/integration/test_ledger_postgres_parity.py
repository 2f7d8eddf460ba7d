"""Seeded random batches on the in-memory and the PostgreSQL ledger side by side.

Aimed at the TigerBeetle features of migration 0010 (the differential machine
in ``test_ledger_differential.py`` drives the older ones step by step): every
kind of transfer (single-phase, pending with timeouts, closing, balancing,
post/void with inherited fields, imported, linked chains), values at and
beyond their type limits, replays and reserved ids, imported accounts, and the
clock moved between batches. After each batch the results, every account and
every transfer must be equal on both ledgers; at the end the query calls
(``query_transfers``, ``get_account_transfers``, ``get_account_balances``) and
the statements too. Each seed is reproducible: a failure names its seed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from finbank_adapters.memory import FakeClock, InMemoryLedger
from finbank_adapters.postgres import PostgresLedger
from finbank_core.accounts.ledger import (
    MAX_AMOUNT,
    MAX_U32,
    MAX_U64,
    MAX_U128,
    AccountFilter,
    AccountFlags,
    NewAccount,
    QueryFilter,
    Transfer,
    TransferFlags,
)
from tests.postgres_support import isolated_schema, require_postgres

F = TransferFlags
SEEDS = range(30)
STEPS = 30
START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SPECIAL_IDS = [uuid.UUID(int=0), uuid.UUID(int=MAX_U128)]


class Pair:
    """The two ledgers and their clocks, moved together."""

    def __init__(self, memory: InMemoryLedger, postgres: PostgresLedger) -> None:
        self.memory = memory
        self.postgres = postgres
        self.clocks: list[FakeClock] = []

    async def accounts(self, seed: int, accounts: Sequence[NewAccount]) -> None:
        mine = await self.memory.create_accounts(accounts)
        theirs = await self.postgres.create_accounts(accounts)
        assert mine == theirs, (seed, "create_accounts", mine, theirs)

    async def transfers(self, seed: int, step: int, transfers: Sequence[Transfer]) -> None:
        mine = await self.memory.create_transfers(transfers)
        theirs = await self.postgres.create_transfers(transfers)
        assert mine == theirs, (seed, step, transfers, mine, theirs)

    def advance(self, seconds: int) -> None:
        for clock in self.clocks:
            clock.advance(seconds=seconds)


def random_transfer(
    rng: random.Random,
    accounts: list[uuid.UUID],
    ids: list[uuid.UUID],
    pendings: list[uuid.UUID],
) -> Transfer:
    kind = rng.randrange(10)
    if ids and rng.random() < 0.15:
        transfer_id = rng.choice(ids)  # a replay, or the same id with another body
    elif rng.random() < 0.03:
        transfer_id = rng.choice(SPECIAL_IDS)
    else:
        transfer_id = uuid.uuid4()
    flags = F.LINKED if rng.random() < 0.1 else F.NONE
    debit: uuid.UUID | None
    credit: uuid.UUID | None
    if rng.random() < 0.9:
        debit, credit = rng.sample(accounts, 2)
    else:
        debit, credit = rng.choice(accounts), rng.choice(accounts)
    if rng.random() < 0.05:
        debit = None
    if rng.random() < 0.85:
        amount = rng.choice([1, 2, 5, 10, 20, 50, 200])
    else:
        amount = rng.choice([0, MAX_AMOUNT, MAX_AMOUNT + 1, -1])
    pending_id: uuid.UUID | None = None
    timeout = 0
    code = rng.choice([1, 1, 1, 2, 2, 0] if rng.random() < 0.1 else [1, 2])
    ledger = 986
    if kind < 3:
        flags |= F.PENDING
        timeout = rng.choice([0, 0, 1, 5, MAX_U32])
        if rng.random() < 0.2:
            flags |= rng.choice([F.CLOSING_DEBIT, F.CLOSING_CREDIT])
    elif kind < 6 and ids:
        flags |= rng.choice([F.POST_PENDING_TRANSFER, F.VOID_PENDING_TRANSFER])
        pending_id = rng.choice(pendings) if pendings and rng.random() < 0.85 else rng.choice(ids)
        amount = rng.choice([0, 0, 1, 5])
        debit = credit = None
        code = rng.choice([0, 0, 1, 2])
        ledger = rng.choice([0, 0, 986, 1])
    elif kind < 8:
        flags |= rng.choice([F.BALANCING_DEBIT, F.BALANCING_CREDIT])
        if rng.random() < 0.3:
            flags |= F.PENDING
    if rng.random() < 0.03:
        flags |= TransferFlags(1 << 12)
    if rng.random() < 0.05:
        timeout = rng.choice([-1, MAX_U32 + 1, 3])
    return Transfer(
        id=transfer_id,
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        code=code,
        flags=flags,
        pending_id=pending_id,
        timeout_seconds=timeout,
        ledger=ledger,
        user_data=rng.choice([None, "ref"]),
        user_data_128=rng.choice([0, 0, 5, MAX_U128]),
        user_data_32=rng.choice([0, 0, 7, MAX_U32]),
    )


def imported_batch(
    rng: random.Random, accounts: list[uuid.UUID], now: datetime
) -> tuple[list[Transfer], list[NewAccount]]:
    transfers = []
    for _ in range(rng.randrange(1, 4)):
        when: datetime | None = now - timedelta(seconds=rng.choice([0, 1, 100, 10**6]))
        if rng.random() < 0.2:
            when = None
        flags = F.IMPORTED | (F.PENDING if rng.random() < 0.2 else F.NONE)
        if rng.random() < 0.1:
            flags = F.NONE
        transfers.append(
            Transfer(
                id=uuid.uuid4(),
                debit_account_id=rng.choice(accounts),
                credit_account_id=rng.choice(accounts),
                amount=rng.choice([1, 5]),
                code=1,
                flags=flags,
                timestamp=when,
                timeout_seconds=rng.choice([0, 0, 5]),
            )
        )
    new_accounts = [
        NewAccount(
            id=uuid.uuid4(),
            code=1,
            flags=AccountFlags.IMPORTED
            | (AccountFlags.LINKED if rng.random() < 0.3 else AccountFlags.NONE),
            timestamp=now - timedelta(seconds=rng.choice([0, 5, 10**7])),
        )
        for _ in range(rng.randrange(1, 3))
    ]
    return transfers, new_accounts


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_batches_answer_alike_on_memory_and_postgres(seed: int) -> None:
    rng = random.Random(seed)
    memory_clock, postgres_clock = FakeClock(START), FakeClock(START)
    async with isolated_schema(require_postgres(), max_size=2) as (pool, _):
        pair = Pair(InMemoryLedger(memory_clock), PostgresLedger(pool, postgres_clock))
        pair.clocks = [memory_clock, postgres_clock]
        accounts = [uuid.uuid4() for _ in range(5)]
        limit_flags = [0, 1, 8, 9]
        odd_flags = [0, 1, 2, 8, 9, 32, 3, 4, 64, 16]
        await pair.accounts(
            seed,
            [
                NewAccount(id=accounts[0], code=100),
                *(
                    NewAccount(id=a, code=1, flags=AccountFlags(rng.choice(limit_flags)))
                    for a in accounts[1:4]
                ),
                NewAccount(
                    id=accounts[4],
                    code=rng.choice([1, 0, 70_000]),
                    flags=AccountFlags(rng.choice(odd_flags)),
                    ledger=rng.choice([986, 986, 1, MAX_U32]),
                    user_data_64=rng.choice([0, MAX_U64]),
                ),
            ],
        )
        for a in accounts[1:]:
            funding = Transfer(
                id=uuid.uuid4(),
                debit_account_id=accounts[0],
                credit_account_id=a,
                amount=rng.randrange(1, 1000),
                code=1,
            )
            await pair.transfers(seed, -1, [funding])
        ids: list[uuid.UUID] = []
        pendings: list[uuid.UUID] = []
        for step in range(STEPS):
            batch = [
                random_transfer(rng, accounts, ids, pendings) for _ in range(rng.randrange(1, 5))
            ]
            ids.extend(t.id for t in batch)
            pendings.extend(t.id for t in batch if t.flags & F.PENDING)
            await pair.transfers(seed, step, batch)
            if rng.random() < 0.15:
                transfers, new_accounts = imported_batch(rng, accounts, memory_clock.now())
                ids.extend(t.id for t in transfers)
                await pair.transfers(seed, step, transfers)
                await pair.accounts(seed, new_accounts)
            if rng.random() < 0.3:
                pair.advance(rng.choice([1, 3, 10]))
            if rng.random() < 0.2:
                expired = await pair.memory.expire_pending_transfers()
                assert expired == await pair.postgres.expire_pending_transfers(), (seed, step)
            assert await pair.memory.lookup_accounts(
                accounts
            ) == await pair.postgres.lookup_accounts(accounts), (seed, step)
            known = list(dict.fromkeys(ids))
            assert await pair.memory.lookup_transfers(
                known
            ) == await pair.postgres.lookup_transfers(known), (seed, step)

        queries = [
            QueryFilter(limit=1000),
            QueryFilter(limit=7, reversed=True),
            QueryFilter(code=2),
            QueryFilter(user_data_32=7),
            QueryFilter(user_data_128=MAX_U128, reversed=True),
            QueryFilter(ledger=986, timestamp_min=START + timedelta(seconds=5)),
        ]
        for query in queries:
            assert await pair.memory.query_transfers(query) == await pair.postgres.query_transfers(
                query
            ), (seed, query)
        for a in accounts:
            for account_query in [
                AccountFilter(account_id=a, limit=1000),
                AccountFilter(account_id=a, debits=False, reversed=True, limit=3),
                AccountFilter(account_id=a, credits=False, code=1),
            ]:
                assert await pair.memory.get_account_transfers(
                    account_query
                ) == await pair.postgres.get_account_transfers(account_query), (seed, a)
                assert await pair.memory.get_account_balances(
                    account_query
                ) == await pair.postgres.get_account_balances(account_query), (seed, a)
            mine = await pair.memory.get_account_entries(a, limit=1000)
            theirs = await pair.postgres.get_account_entries(a, limit=1000)
            assert [
                (e.transfer_id, e.side, e.amount, e.balance_after, e.code, e.user_data)
                for e in mine.entries
            ] == [
                (e.transfer_id, e.side, e.amount, e.balance_after, e.code, e.user_data)
                for e in theirs.entries
            ], (seed, a)
