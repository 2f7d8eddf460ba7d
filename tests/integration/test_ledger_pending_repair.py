"""Migration 0009 repairs what the expiry bug left in a database.

Each test migrates a schema of its own only up to 0008, damages it with the
functions of that time exactly as the bug did (a ``create_transfers`` that
is the first to notice a timeout releases the reservation and leaves the
transfer pending), then applies 0009 and the later migrations and checks the
state and that the ledger works again.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres import PostgresLedger
from finbank_adapters.postgres.migrations import load_migrations, quote_ident
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateTransferResult,
    PendingStatus,
    Transfer,
    TransferFlags,
)
from tests.postgres_support import require_postgres

pytestmark = pytest.mark.services

R = CreateTransferResult
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
CUSTOMER = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)


@dataclass
class OldSchema:
    """A schema migrated up to 0008, and the functions of that time to damage it with."""

    conn: asyncpg.Connection
    schema: str
    dsn: str
    notices: list[str]

    async def accounts(self, *flags: int) -> list[uuid.UUID]:
        ids = [uuid.uuid4() for _ in flags]
        results = await self.conn.fetchval(
            "SELECT ledger_create_accounts($1, $2, $3, $4, $5)",
            T0,
            ids,
            [1] * len(ids),
            list(flags),
            [986] * len(ids),
        )
        assert results == ["ok"] * len(ids)
        return ids

    async def transfers(self, now: datetime, batch: list[Transfer]) -> list[str]:
        """The pre-0009 batch function, called as the adapter of that time called it."""
        first: dict[uuid.UUID, int] = {}
        firsts = [first.setdefault(t.id, n) for n, t in enumerate(batch, 1)]
        accounts = sorted(
            {a for t in batch for a in (t.debit_account_id, t.credit_account_id) if a is not None}
        )
        slot: dict[uuid.UUID | None, int] = {a: n for n, a in enumerate(accounts, 1)}
        args: list[Any] = [
            now,
            [t.id for t in batch],
            [t.debit_account_id for t in batch],
            [t.credit_account_id for t in batch],
            [t.amount for t in batch],
            [t.pending_id for t in batch],
            [int(t.flags) for t in batch],
            [t.code for t in batch],
            [t.ledger for t in batch],
            [t.timeout_seconds for t in batch],
            [t.user_data for t in batch],
            firsts,
            [first.get(t.pending_id) if t.pending_id else None for t in batch],
            accounts,
            [slot.get(t.debit_account_id) for t in batch],
            [slot.get(t.credit_account_id) for t in batch],
        ]
        params = ", ".join(f"${n}" for n in range(1, 17))
        results: list[str] = await self.conn.fetchval(
            f"SELECT ledger_create_transfers({params})",
            *args,
        )
        return results

    async def lookup(self, now: datetime) -> None:
        await self.conn.fetch("SELECT * FROM ledger_lookup_accounts($1, $2)", now, [])

    async def balances(self, account: uuid.UUID) -> tuple[int, int, int, int]:
        row = await self.conn.fetchrow(
            "SELECT debits_pending, debits_posted, credits_pending, credits_posted"
            " FROM ledger_accounts WHERE id = $1",
            account,
        )
        assert row is not None
        return (row[0], row[1], row[2], row[3])

    async def status(self, transfer: uuid.UUID) -> str:
        found: str = await self.conn.fetchval(
            "SELECT status FROM ledger_transfers WHERE id = $1", transfer
        )
        return found

    async def migrate_the_rest(self) -> None:
        """0009 and every later migration, as the runner applies them (one transaction each)."""
        for migration in load_migrations():
            if int(migration.version) >= 9:
                async with self.conn.transaction():
                    await self.conn.execute(migration.sql)


@pytest.fixture
async def old_schema() -> AsyncIterator[OldSchema]:
    dsn = require_postgres()
    schema = f"t_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(dsn)
    notices: list[str] = []
    conn.add_log_listener(lambda _conn, message: notices.append(str(message)))
    try:
        await conn.execute(f"CREATE SCHEMA {quote_ident(schema)}")
        await conn.execute(f"SET search_path TO {quote_ident(schema)}")
        for migration in load_migrations():
            if int(migration.version) <= 8:
                async with conn.transaction():
                    await conn.execute(migration.sql)
        yield OldSchema(conn, schema, dsn, notices)
    finally:
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        finally:
            await conn.close()


def pending(debit: uuid.UUID, credit: uuid.UUID, amount: int, timeout: int = 0) -> Transfer:
    return Transfer(
        id=uuid.uuid4(),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        code=3,
        flags=TransferFlags.PENDING,
        timeout_seconds=timeout,
    )


def single(debit: uuid.UUID, credit: uuid.UUID, amount: int) -> Transfer:
    return Transfer(
        id=uuid.uuid4(), debit_account_id=debit, credit_account_id=credit, amount=amount, code=3
    )


async def test_a_schema_stuck_on_a_check_violation_works_again(old_schema: OldSchema) -> None:
    bank, customer, source, sink = await old_schema.accounts(0, CUSTOMER, 0, 0)
    assert await old_schema.transfers(T0, [single(bank, customer, 100)]) == ["ok"]
    p1 = pending(customer, bank, 10, timeout=60)
    assert await old_schema.transfers(T0, [p1]) == ["ok"]
    later = T0 + timedelta(seconds=60)
    # the bug: released, still pending; the next call releases it again, below zero
    assert await old_schema.transfers(later, [single(source, sink, 1)]) == ["ok"]
    assert await old_schema.status(p1.id) == "pending"
    assert await old_schema.balances(customer) == (0, 0, 0, 100)
    with pytest.raises(asyncpg.CheckViolationError):
        await old_schema.transfers(later, [single(source, sink, 1)])
    with pytest.raises(asyncpg.CheckViolationError):
        await old_schema.lookup(later)

    await old_schema.migrate_the_rest()

    # the customer's debits and the bank's credits pending were both below p1
    assert any("of 2 account(s) set back" in n for n in old_schema.notices), old_schema.notices
    pool = await asyncpg.create_pool(
        old_schema.dsn, min_size=1, max_size=2, server_settings={"search_path": old_schema.schema}
    )
    try:
        clock = FakeClock(later)
        ledger = PostgresLedger(pool, clock)
        assert await ledger.create_transfers([single(source, sink, 1)]) == [R.OK]
        [record] = await ledger.lookup_transfers([p1.id])
        assert record.status is PendingStatus.EXPIRED
        [acc, bank_acc] = await ledger.lookup_accounts([customer, bank])
        assert (acc.debits_pending, acc.debits_posted, acc.credits_posted) == (0, 0, 100)
        assert bank_acc.credits_pending == 0
        assert await ledger.expire_pending_transfers() == 0
        assert await ledger.create_transfers([single(customer, bank, 100)]) == [R.OK]
    finally:
        await pool.close()
    repair = await old_schema.conn.fetch("SELECT * FROM ledger_repair_pending_balances()")
    assert repair == []


async def test_an_account_that_spent_a_reservation_is_left_for_a_person(
    old_schema: OldSchema,
) -> None:
    """The issue's scenario, on one account; another drifted account is repaired."""
    bank, spender, saver = await old_schema.accounts(0, CUSTOMER, CUSTOMER)
    funding = [single(bank, spender, 100), single(bank, saver, 100)]
    assert await old_schema.transfers(T0, funding) == ["ok", "ok"]
    p1, p2 = pending(spender, bank, 10, timeout=60), pending(spender, bank, 50)
    q1, q2 = pending(saver, bank, 10, timeout=60), pending(saver, bank, 30)
    assert await old_schema.transfers(T0, [p1, p2, q1, q2]) == ["ok"] * 4
    later = T0 + timedelta(seconds=60)
    assert await old_schema.transfers(later, [single(bank, saver, 1)]) == ["ok"]
    await old_schema.lookup(later)  # expires p1 and q1 a second time
    assert await old_schema.balances(spender) == (40, 0, 0, 100)
    assert await old_schema.balances(saver) == (20, 0, 0, 101)
    # spending past the reservation p2 was accepted
    assert await old_schema.transfers(later, [single(spender, bank, 59)]) == ["ok"]

    await old_schema.migrate_the_rest()

    assert any("1 account(s) spent funds" in n for n in old_schema.notices), old_schema.notices
    assert await old_schema.balances(saver) == (30, 0, 0, 101)
    assert await old_schema.balances(spender) == (40, 59, 0, 100)  # untouched
    repair = await old_schema.conn.fetch("SELECT * FROM ledger_repair_pending_balances()")
    assert [(r["account_id"], r["repaired"]) for r in repair] == [(spender, False)]
    # a person voids the reservation that was spent, and repairs
    await old_schema.conn.execute(
        "UPDATE ledger_transfers SET status = 'voided' WHERE id = $1", p2.id
    )
    repair = await old_schema.conn.fetch("SELECT * FROM ledger_repair_pending_balances()")
    assert {(r["account_id"], r["repaired"]) for r in repair} == {(spender, True), (bank, True)}
    assert await old_schema.balances(spender) == (0, 59, 0, 100)
    bank_row = await old_schema.balances(bank)
    assert bank_row[2] == 30  # the bank's credits pending: q2 only
