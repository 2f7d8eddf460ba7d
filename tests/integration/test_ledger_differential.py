"""Differential test: the PostgreSQL ledger against the in-memory one, step by step.

A hypothesis state machine drives :class:`InMemoryLedger` and
:class:`PostgresLedger` side by side with the same calls, each ledger on its
own :class:`FakeClock`; the clocks move together. After every step the two
must agree on everything the port shows: every call's result, every
account's balances, every transfer, statements and the events recorded with
the batches.

The clock only moves at the start of a call (each rule may move it first),
never on its own: so the call of that rule, whatever its kind (create, lookup,
statement, the expiry job), is the first to see the timeouts that just fell
due. The checks after a step run at the same time, so they notice nothing
new. On PostgreSQL the stored rows are also checked directly, without going
through a call that would expire anything: pending balances equal the live
reservations.

Reproducible: derandomized, no example database, bounded examples and steps.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Sequence
from typing import Any, ClassVar, TypeVar

import asyncpg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from finbank_adapters.memory import FakeClock, InMemoryEventPublisher, InMemoryLedger
from finbank_adapters.postgres import PostgresLedger
from finbank_core.accounts.ledger import (
    MAX_AMOUNT,
    AccountFlags,
    Entry,
    NewAccount,
    Transfer,
    TransferFlags,
)
from finbank_core.shared.events import EventEnvelope
from tests.postgres_support import isolated_schema, require_postgres

T = TypeVar("T")

SETTINGS = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

LEDGERS = [986, 1]  # two ledgers: transfers across them are refused
#: amounts at the edges of what the port accepts, and a few ordinary ones
AMOUNTS = st.one_of(
    st.sampled_from([1, 2, 5, 10, 40, 100]),
    st.sampled_from([-1, 0, 250, MAX_AMOUNT - 1, MAX_AMOUNT]),
)
TIMEOUTS = st.one_of(st.sampled_from([1, 2, 3, 5]), st.sampled_from([-1, 0]))
CLOCK_MOVES = st.sampled_from([0, 0, 0, 1, 2, 3, 5])
ACCOUNT_FLAGS = st.sampled_from(
    [
        AccountFlags.NONE,
        AccountFlags.NONE,
        AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS,
        AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS,
        AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS,
        AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS,
    ]
)
KINDS = st.sampled_from(
    ["single", "single", "pending", "post", "void", "replay", "mutated_replay", "bad_phase"]
)
PICK = st.integers(min_value=0, max_value=1 << 16)

#: (kind, debit pick, credit pick, amount, timeout, linked, pick, user data)
TransferSpec = tuple[str, int, int, int, int, bool, int, str | None]
TRANSFER_SPECS = st.tuples(
    KINDS,
    PICK,
    PICK,
    AMOUNTS,
    TIMEOUTS,
    st.sampled_from([False, False, True]),
    PICK,
    st.sampled_from([None, "ref-1", ""]),
)


def _without_sequence(entry: Entry) -> tuple[Any, ...]:
    """An entry as both ledgers must show it (sequences are numbered differently)."""
    return (
        entry.account_id,
        entry.transfer_id,
        entry.side,
        entry.amount,
        entry.balance_after,
        entry.code,
        entry.timestamp,
        entry.user_data,
    )


class LedgerDifferential(RuleBasedStateMachine):
    """Same calls on both ledgers; same answers expected."""

    loop: ClassVar[asyncio.AbstractEventLoop]
    pool: ClassVar[asyncpg.Pool]

    def __init__(self) -> None:
        super().__init__()
        self.run(self._reset_database())
        self.memory_clock = FakeClock()
        self.postgres_clock = FakeClock()
        self.publisher = InMemoryEventPublisher()
        self.memory = InMemoryLedger(self.memory_clock, self.publisher)
        self.postgres = PostgresLedger(self.pool, self.postgres_clock)
        self.accounts: list[uuid.UUID] = []
        self.account_requests: list[NewAccount] = []
        self.transfers: list[Transfer] = []  # every transfer submitted, applied or not
        self.pending_ids: list[uuid.UUID] = []  # pending transfers submitted
        self.events: list[uuid.UUID] = []

    # -- plumbing --------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def _reset_database(self) -> None:
        tables = await self.pool.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename <> 'finbank_schema_migrations'"
        )
        names = ", ".join('"' + row["tablename"] + '"' for row in tables)
        await self.pool.execute(f"TRUNCATE {names} RESTART IDENTITY")

    def advance(self, seconds: int) -> None:
        self.memory_clock.advance(seconds)
        self.postgres_clock.advance(seconds)
        assert self.memory_clock.now() == self.postgres_clock.now()

    def both(self, call: str, *args: Any, **kwargs: Any) -> Any:
        """Make the same call on both ledgers; they must answer the same."""
        expected = self.run(getattr(self.memory, call)(*args, **kwargs))
        actual = self.run(getattr(self.postgres, call)(*args, **kwargs))
        assert actual == expected, (call, args, kwargs)
        return expected

    def pick(self, items: Sequence[T], n: int) -> T:
        return items[n % len(items)]

    def account_id(self, n: int) -> uuid.UUID | None:
        """Mostly a known account; sometimes none, or one that does not exist."""
        if not self.accounts or n % 13 == 0:
            return None if n % 2 else uuid.UUID(int=n + 1)
        return self.pick(self.accounts, n)

    # -- rules -----------------------------------------------------------------------

    @initialize()
    def open_books(self) -> None:
        """Accounts of every kind, with money where limits would refuse everything."""
        books = [
            NewAccount(id=uuid.uuid4(), code=100, flags=flags, ledger=ledger)
            for flags, ledger in [
                (AccountFlags.NONE, 986),
                (AccountFlags.NONE, 986),
                (AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS, 986),
                (AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS, 986),
                (AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS, 986),
                (AccountFlags.NONE, 1),
            ]
        ]
        assert self.both("create_accounts", books) == ["ok"] * len(books)
        self.accounts.extend(a.id for a in books)
        self.account_requests.extend(books)
        bank, other, customer, customer2, limited, _ = self.accounts
        funding = [
            Transfer(id=uuid.uuid4(), debit_account_id=d, credit_account_id=c, amount=a, code=1)
            for d, c, a in [(bank, customer, 300), (bank, customer2, 50), (limited, other, 200)]
        ]
        self.transfers.extend(funding)
        assert self.both("create_transfers", funding) == ["ok"] * len(funding)

    @rule(
        debit=PICK,
        credit=PICK,
        amount=st.sampled_from([1, 7, 30, 120]),
        timeout=st.sampled_from([0, 1, 2, 4]),
        move=CLOCK_MOVES,
    )
    def reserve(self, debit: int, credit: int, amount: int, timeout: int, move: int) -> None:
        """A pending transfer between known accounts (one that usually succeeds)."""
        self.submit([("pending", debit, credit, amount, timeout, False, 1, None)], move)

    @rule(pick=PICK, post=st.booleans(), amount=st.sampled_from([0, 0, 1, 5]), move=CLOCK_MOVES)
    def resolve(self, pick: int, post: bool, amount: int, move: int) -> None:
        """Post or void one of the pending transfers submitted so far."""
        kind = "post" if post else "void"
        self.submit([(kind, 0, 0, amount, 0, False, pick * 3 + 1, None)], move)

    @rule(
        specs=st.lists(
            st.tuples(
                ACCOUNT_FLAGS, st.sampled_from([1, 2]), st.sampled_from([*LEDGERS, 986, 986])
            ),
            min_size=1,
            max_size=3,
        ),
        replay=st.sampled_from([None, "same", "different"]),
        pick=PICK,
    )
    def create_accounts(
        self,
        specs: list[tuple[AccountFlags, int, int]],
        replay: str | None,
        pick: int,
    ) -> None:
        batch = [NewAccount(id=uuid.uuid4(), code=c, flags=f, ledger=lg) for f, c, lg in specs]
        if replay and self.account_requests:
            old = self.pick(self.account_requests, pick)
            batch.append(old if replay == "same" else NewAccount(id=old.id, code=old.code + 7))
        results = self.both("create_accounts", batch)
        for new, result in zip(batch, results, strict=True):
            if result == "ok":
                self.accounts.append(new.id)
                self.account_requests.append(new)

    @rule(specs=st.lists(TRANSFER_SPECS, min_size=1, max_size=4), move=CLOCK_MOVES)
    def create_transfers(self, specs: list[TransferSpec], move: int) -> None:
        self.submit(specs, move)

    def submit(self, specs: list[TransferSpec], move: int) -> None:
        """Build the batch, move the clock, make the call on both ledgers."""
        batch = [self.transfer(spec) for spec in specs]
        event = EventEnvelope(
            event_id=uuid.uuid4(),
            type="ledger.differential",
            version=1,
            occurred_at=self.memory_clock.now(),
            aggregate_id=str(batch[0].id),
        )
        self.advance(move)
        self.transfers.extend(batch)
        self.pending_ids.extend(t.id for t in batch if t.flags & TransferFlags.PENDING)
        results = self.both("create_transfers", batch, events=[event])
        if "ok" in results:
            self.events.append(event.event_id)

    def transfer(self, spec: TransferSpec) -> Transfer:
        kind, debit, credit, amount, timeout, linked, pick, user_data = spec
        flags = TransferFlags.LINKED if linked else TransferFlags.NONE
        if kind in ("replay", "mutated_replay") and self.transfers:
            old = self.pick(self.transfers, pick)
            if kind == "replay":
                return old
            return Transfer(
                id=old.id,
                debit_account_id=old.debit_account_id,
                credit_account_id=old.credit_account_id,
                amount=old.amount + 1,
                code=old.code,
                flags=old.flags,
                pending_id=old.pending_id,
                timeout_seconds=old.timeout_seconds,
                ledger=old.ledger,
                user_data=old.user_data,
            )
        if kind in ("post", "void"):
            pending_id = (
                self.pick(self.pending_ids, pick)
                if self.pending_ids and pick % 11
                else self.pick(self.transfers, pick).id
                if self.transfers and pick % 2
                else uuid.uuid4()
            )
            phase = (
                TransferFlags.POST_PENDING_TRANSFER
                if kind == "post"
                else TransferFlags.VOID_PENDING_TRANSFER
            )
            named = pick % 5 == 0  # sometimes name accounts (right or wrong ones)
            return Transfer(
                id=uuid.uuid4(),
                debit_account_id=self.account_id(debit) if named else None,
                credit_account_id=self.account_id(credit) if named else None,
                amount=amount if pick % 3 == 0 else 0,
                code=3,
                flags=flags | phase,
                pending_id=pending_id,
                timeout_seconds=timeout if pick % 7 == 0 else 0,
                ledger=self.pick(LEDGERS, pick // 17 % 5 // 4),
                user_data=user_data,
            )
        if kind == "pending":
            flags |= TransferFlags.PENDING
        elif kind == "bad_phase":
            flags |= TransferFlags.PENDING | TransferFlags.VOID_PENDING_TRANSFER
        return Transfer(
            id=uuid.uuid4(),
            debit_account_id=self.account_id(debit),
            credit_account_id=self.account_id(credit),
            amount=amount,
            code=1 + pick % 3,
            flags=flags,
            pending_id=uuid.uuid4() if pick % 19 == 0 else None,
            timeout_seconds=timeout if kind == "pending" or pick % 7 == 0 else 0,
            ledger=self.pick(LEDGERS, pick // 17 % 5 // 4),
            user_data=user_data,
        )

    @rule(pick=PICK, unknown=st.booleans(), move=CLOCK_MOVES)
    def lookup_accounts(self, pick: int, unknown: bool, move: int) -> None:
        self.advance(move)
        ids = self.accounts[pick % (len(self.accounts) + 1) :]
        if unknown:
            ids = [uuid.uuid4(), *ids]
        self.both("lookup_accounts", ids)

    @rule(pick=PICK, move=CLOCK_MOVES)
    def lookup_transfers(self, pick: int, move: int) -> None:
        self.advance(move)
        ids = [t.id for t in self.transfers[pick % (len(self.transfers) + 1) :]]
        self.both("lookup_transfers", [*ids, uuid.uuid4()])

    @rule(pick=PICK, limit=st.sampled_from([0, 1, 2, 100]), bounded=st.booleans(), move=CLOCK_MOVES)
    def statement(self, pick: int, limit: int, bounded: bool, move: int) -> None:
        self.advance(move)
        account = self.account_id(pick) or uuid.uuid4()
        since = until = None
        if bounded:
            since = self.memory_clock.now().replace(second=0, microsecond=0)
            until = self.memory_clock.now()
        cursors: list[int | None] = [None, None]
        ledgers: list[InMemoryLedger | PostgresLedger] = [self.memory, self.postgres]
        for _ in range(3):  # up to three pages, each ledger following its own cursor
            pages = [
                self.run(
                    ledger.get_account_entries(
                        account, since=since, until=until, after_sequence=cursor, limit=limit
                    )
                )
                for ledger, cursor in zip(ledgers, cursors, strict=True)
            ]
            memory_page, postgres_page = pages
            assert [_without_sequence(e) for e in postgres_page.entries] == [
                _without_sequence(e) for e in memory_page.entries
            ]
            more = [p.next_after_sequence is not None for p in pages]
            assert more[0] == more[1]
            if not more[0]:
                break
            cursors = [p.next_after_sequence for p in pages]

    @rule(move=CLOCK_MOVES)
    def expire_pending_transfers(self, move: int) -> None:
        self.advance(move)
        self.both("expire_pending_transfers")

    # -- checks after every step -----------------------------------------------------

    @invariant()
    def same_accounts_and_transfers(self) -> None:
        self.both("lookup_accounts", self.accounts)
        self.both("lookup_transfers", [t.id for t in self.transfers])

    @invariant()
    def same_statements(self) -> None:
        for account in self.accounts:
            memory_page, postgres_page = (
                self.run(ledger.get_account_entries(account, limit=1000))
                for ledger in (self.memory, self.postgres)
            )
            assert [_without_sequence(e) for e in postgres_page.entries] == [
                _without_sequence(e) for e in memory_page.entries
            ]

    @invariant()
    def same_events(self) -> None:
        rows = self.run(self.pool.fetch("SELECT event_id FROM outbox ORDER BY id"))
        assert [row["event_id"] for row in rows] == self.events
        assert [e.event_id for e in self.publisher.published] == self.events

    @invariant()
    def stored_pending_balances_are_the_live_reservations(self) -> None:
        """Read straight from the tables: nothing here expires anything."""
        drift = self.run(
            self.pool.fetch(
                """
                SELECT a.id, a.debits_pending, a.credits_pending,
                       coalesce((SELECT sum(t.amount) FROM ledger_transfers t
                                  WHERE t.status = 'pending' AND t.debit_account_id = a.id), 0)
                           AS debits_reserved,
                       coalesce((SELECT sum(t.amount) FROM ledger_transfers t
                                  WHERE t.status = 'pending' AND t.credit_account_id = a.id), 0)
                           AS credits_reserved
                  FROM ledger_accounts a
                """
            )
        )
        for row in drift:
            assert row["debits_pending"] == row["debits_reserved"], dict(row)
            assert row["credits_pending"] == row["credits_reserved"], dict(row)
        totals = self.run(
            self.pool.fetchrow(
                "SELECT sum(debits_posted) - sum(credits_posted) AS posted,"
                " sum(debits_pending) - sum(credits_pending) AS pending FROM ledger_accounts"
            )
        )
        assert totals is not None
        assert (totals["posted"] or 0, totals["pending"] or 0) == (0, 0)


def test_postgres_ledger_agrees_with_the_memory_ledger() -> None:
    dsn = require_postgres()
    loop = asyncio.new_event_loop()
    try:
        schema = isolated_schema(dsn, min_size=1, max_size=2)
        pool, _ = loop.run_until_complete(schema.__aenter__())
        try:
            LedgerDifferential.loop = loop
            LedgerDifferential.pool = pool
            run_state_machine_as_test(LedgerDifferential, settings=SETTINGS)
        finally:
            loop.run_until_complete(schema.__aexit__(None, None, None))
    finally:
        loop.close()


pytestmark = pytest.mark.services
