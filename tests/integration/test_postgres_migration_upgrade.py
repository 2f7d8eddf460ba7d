"""A database that holds a ledger written before the latest migrations, upgraded in place,
behaves as one migrated from scratch with the same history.

The runner is forward-only: a release's migrations run on a database that already
holds accounts, transfers (some still pending, one due to expire), balances history
and outbox events written by the functions they replace (``0026`` adds the checked
transfer group, ``0027`` rewrites ``ledger_create_transfer``). For each cut, one
schema is migrated up to the cut, written to, migrated to the end and written to
again; another is migrated to the end first and given the same calls at the same
times. Every answer and every stored row must be the same in both: what the old
functions stored reads back the same through the new ones, replays of transfers
stored before the upgrade answer as they did, and a pending transfer made before it
is posted, voided or expired by the new code.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres import PostgresLedger
from finbank_adapters.postgres import migrations as migrations_module
from finbank_adapters.postgres.migrations import load_migrations, migrate, quote_ident
from finbank_adapters.postgres.pool import create_pool
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateTransferResult,
    LedgerAccount,
    NewAccount,
    Transfer,
    TransferFlags,
    TransferRecord,
)
from finbank_core.shared.events import EventEnvelope
from tests.postgres_support import ledger_rows, require_postgres

pytestmark = pytest.mark.services

R = CreateTransferResult
BANK = uuid.UUID(int=0x0B)
ALICE = uuid.UUID(int=0xA1)
BOB = uuid.UUID(int=0xB0)
CAROL = uuid.UUID(int=0xC0)
START = datetime(2026, 3, 1, 12, 0, 0, 123457, tzinfo=UTC)
LIMITED = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS


def tid(n: int) -> uuid.UUID:
    return uuid.UUID(int=0x7000 + n)


def move(
    n: int, debit: uuid.UUID = ALICE, credit: uuid.UUID = BOB, amount: int = 1_00, **more: Any
) -> Transfer:
    return Transfer(
        id=tid(n),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        code=7,
        user_data=f"ref-{n}",
        **more,
    )


def settle(n: int, pending: uuid.UUID, flag: TransferFlags) -> Transfer:
    """Post or void ``pending`` in full, with what it holds (accounts, code, ledger)."""
    return Transfer(
        id=tid(n),
        debit_account_id=None,
        credit_account_id=None,
        amount=0,
        code=0,
        flags=flag,
        pending_id=pending,
    )


def event(n: int) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.UUID(int=0xE000 + n),
        type="ledger.transfer_completed",
        version=1,
        occurred_at=START + timedelta(seconds=n, microseconds=n),
        aggregate_id=str(ALICE),
        payload={"n": n},
    )


#: one call: what it is named in a failure, and what it does with the ledger
Step = tuple[str, Callable[[PostgresLedger], Awaitable[object]]]


def transfers(name: str, batch: list[Transfer], events: list[EventEnvelope] | None = None) -> Step:
    async def call(ledger: PostgresLedger) -> object:
        return await ledger.create_transfers(batch, events=events or ())

    return name, call


async def expire(ledger: PostgresLedger) -> object:
    return await ledger.expire_pending_transfers()


async def look(ledger: PostgresLedger) -> object:
    """What the adapter reads back: accounts (balances included) and transfers."""
    accounts = await ledger.lookup_accounts([BANK, ALICE, BOB, CAROL])
    stored = await ledger.lookup_transfers([tid(n) for n in range(40)])
    return accounts, stored


async def open_accounts(ledger: PostgresLedger) -> object:
    return await ledger.create_accounts(
        [
            NewAccount(id=BANK, code=1),
            NewAccount(id=ALICE, code=1, flags=LIMITED | AccountFlags.HISTORY),
            NewAccount(id=BOB, code=1, flags=LIMITED),
            NewAccount(id=CAROL, code=1, flags=AccountFlags.HISTORY),
        ]
    )


#: written before the upgrade, with what the functions of the cut offer
BEFORE: list[Step] = [
    ("accounts", open_accounts),
    transfers("funding", [move(0, BANK, ALICE, 100_00), move(1, BANK, BOB, 50_00)]),
    transfers("plain", [move(2)]),
    transfers("one event", [move(3)], [event(3)]),
    transfers("two events", [move(4, BOB, CAROL)], [event(4), event(5)]),
    transfers("refused", [move(5, amount=1_000_00)], [event(6)]),
    transfers("not found", [move(6, debit=uuid.UUID(int=0xDEAD))]),
    transfers(
        "pending, to post after",
        [move(7, amount=5_00, flags=TransferFlags.PENDING)],
    ),
    transfers(
        "pending, to void after",
        [move(8, ALICE, CAROL, 3_00, flags=TransferFlags.PENDING)],
    ),
    transfers(
        "pending that expires after",
        [move(9, BOB, ALICE, 2_00, flags=TransferFlags.PENDING, timeout_seconds=60)],
    ),
    transfers(
        "linked batch",
        [move(10, flags=TransferFlags.LINKED), move(11, BOB, CAROL, 50)],
    ),
    ("read back", look),
]

#: written after the upgrade, by the new functions, over what the old ones stored
AFTER: list[Step] = [
    ("read back after the upgrade", look),
    transfers("replay of a plain transfer", [move(2)]),
    transfers("replay of one with its event", [move(3)], [event(3)]),
    transfers("replay with other fields", [move(2, amount=2_00)]),
    transfers("the id of a refusal, again", [move(5, amount=1_000_00)]),
    transfers("post the old pending", [settle(20, tid(7), TransferFlags.POST_PENDING_TRANSFER)]),
    transfers("void the old pending", [settle(21, tid(8), TransferFlags.VOID_PENDING_TRANSFER)]),
    ("90 seconds later", lambda ledger: _advance(ledger, seconds=90)),
    # the first call to notice the expiry of a pending transfer stored before the upgrade
    transfers("plain, after the old pending's timeout", [move(22, BOB, ALICE, 1_00)]),
    ("expire", expire),
    transfers("plain, one event", [move(23)], [event(23)]),
    transfers("plain, two events", [move(24, CAROL, BOB)], [event(24), event(25)]),
    transfers("exceeds", [move(25, amount=1_000_00)]),
    ("read back at the end", look),
]


async def _advance(ledger: PostgresLedger, *, seconds: int) -> object:
    clock = ledger._clock
    assert isinstance(clock, FakeClock)
    clock.advance(seconds=seconds)
    return seconds


async def run_steps(ledger: PostgresLedger, steps: list[Step]) -> list[tuple[str, object]]:
    clock = ledger._clock
    assert isinstance(clock, FakeClock)
    answers = []
    for name, call in steps:
        clock.advance(microseconds=250_001)
        answers.append((name, await call(ledger)))
    return answers


async def history(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch("SELECT version FROM finbank_schema_migrations ORDER BY version")
    return [row["version"] for row in rows]


@pytest.mark.parametrize("cut", ["0025", "0026"])
async def test_an_upgraded_ledger_answers_and_stores_as_a_fresh_one(
    cut: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = require_postgres()
    every = load_migrations()
    versions = [m.version for m in every]
    assert cut in versions
    later = versions[versions.index(cut) + 1 :]
    assert later, "the cut leaves migrations to apply"
    upgraded, fresh = f"t_{uuid.uuid4().hex[:12]}", f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(dsn)
    pools: list[asyncpg.Pool] = []
    try:
        with monkeypatch.context() as patched:
            patched.setattr(
                migrations_module,
                "load_migrations",
                lambda: [m for m in every if int(m.version) <= int(cut)],
            )
            assert (await migrate(admin, upgraded))[-1] == cut
        assert await migrate(admin, fresh) == versions
        for schema in (upgraded, fresh):
            pools.append(
                await create_pool(
                    dsn, min_size=1, max_size=2, server_settings={"search_path": schema}
                )
            )
        old_pool, new_pool = pools
        old = PostgresLedger(old_pool, FakeClock(START))
        new = PostgresLedger(new_pool, FakeClock(START))

        assert await run_steps(old, BEFORE) == await run_steps(new, BEFORE)
        assert await migrate(admin, upgraded) == later  # in place, over what is stored
        assert await history(old_pool) == await history(new_pool) == versions
        after_old, after_new = await run_steps(old, AFTER), await run_steps(new, AFTER)
        for (name, on_old), (_, on_new) in zip(after_old, after_new, strict=True):
            assert on_old == on_new, name
        assert await ledger_rows(old_pool) == await ledger_rows(new_pool)

        # the steps did what they are named for, so the comparison above covers them
        answers = dict(after_new)
        assert answers["replay of a plain transfer"] == [R.EXISTS]
        assert answers["replay of one with its event"] == [R.EXISTS]
        assert answers["replay with other fields"] == [R.EXISTS_WITH_DIFFERENT_FIELDS]
        assert answers["post the old pending"] == [R.OK]
        assert answers["void the old pending"] == [R.OK]
        assert answers["the id of a refusal, again"] == [R.EXCEEDS_CREDITS]  # nothing kept
        assert answers["plain, after the old pending's timeout"] == [R.OK]
        assert answers["plain, one event"] == [R.OK]
        accounts, stored = cast(
            tuple[list[LedgerAccount], list[TransferRecord]], answers["read back at the end"]
        )
        by_id = {a.id: a for a in accounts}
        assert by_id[BOB].debits_pending == 0  # the old pending expired (its 2_00 released)
        assert {t.id for t in stored} >= {tid(7), tid(9), tid(20), tid(21), tid(22)}
        totals = [(a.debits_posted, a.credits_posted) for a in accounts]
        assert sum(d for d, _ in totals) == sum(c for _, c in totals)  # money conserved
        events = await new_pool.fetchval("SELECT count(*) FROM outbox")
        assert events == await old_pool.fetchval("SELECT count(*) FROM outbox") > 0
    finally:
        for pool in pools:
            await pool.close()
        for schema in (upgraded, fresh):
            await admin.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        await admin.close()
