"""Differential test: the PostgreSQL ledger against the in-memory one, step by step.

A hypothesis state machine drives :class:`InMemoryLedger` and
:class:`PostgresLedger` side by side with the same calls, each ledger on its
own :class:`FakeClock`; the clocks move together. After every step the two
must agree on everything the port shows: every call's result, every
account's balances, every transfer, statements and the events recorded with
the batches.

Each step makes one call, drawn by weight: batches of transfers (single,
pending with timeouts, post, void, linked chains, replays, values at and past
their type's limits, reserved ids and flags), well-formed uses of
TigerBeetle's features (balancing, closing, imported events), accounts, the
lookups, statements, ``query_transfers``, ``get_account_transfers`` and
``get_account_balances`` (valid and invalid filters: a core error must be
raised by both), and the expiry job.

The clock only moves at the start of a call (each call may move it first),
never on its own: so that call, whatever its kind, is the first to see the
timeouts that just fell due. The checks after a step run at the same time,
so they notice nothing new. On PostgreSQL the stored rows are also checked
directly, without going through a call that would expire anything: pending
balances equal the live reservations, debits equal credits.

Reproducible: derandomized, no example database, bounded examples and steps.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

import asyncpg
import msgspec
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
    INT_MAX_ID,
    MAX_AMOUNT,
    MAX_U16,
    MAX_U32,
    MAX_U64,
    MAX_U128,
    ZERO_ID,
    AccountFilter,
    AccountFlags,
    Entry,
    NewAccount,
    QueryFilter,
    Transfer,
    TransferFlags,
)
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.events import EventEnvelope
from tests.postgres_support import isolated_schema, require_postgres

T = TypeVar("T")

SETTINGS = settings(
    max_examples=30,
    stateful_step_count=40,
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

#: One field of a transfer set to something out of the ordinary (TigerBeetle's
#: features, values at their type's limits, reserved ids and flags).
TRANSFER_VARIANTS: dict[str, dict[str, Any]] = {
    "user_data": {"user_data_128": 7, "user_data_64": 8, "user_data_32": 9},
    "user_data_max": {"user_data_128": MAX_U128, "user_data_64": MAX_U64, "user_data_32": MAX_U32},
    "user_data_128_over": {"user_data_128": MAX_U128 + 1},
    "user_data_64_over": {"user_data_64": MAX_U64 + 1},
    "user_data_32_negative": {"user_data_32": -1},
    "code_zero": {"code": 0},
    "code_max": {"code": MAX_U16},
    "code_over": {"code": MAX_U16 + 1},
    "ledger_zero": {"ledger": 0},
    "ledger_max": {"ledger": MAX_U32},
    "ledger_over": {"ledger": MAX_U32 + 1},
    "timeout_max": {"timeout_seconds": MAX_U32},
    "timeout_over": {"timeout_seconds": MAX_U32 + 1},
    "amount_over": {"amount": MAX_AMOUNT + 1},
    "id_zero": {"id": ZERO_ID},
    "id_int_max": {"id": INT_MAX_ID},
    "pending_id_zero": {"pending_id": ZERO_ID},
    "pending_id_int_max": {"pending_id": INT_MAX_ID},
    "debit_zero": {"debit_account_id": ZERO_ID},
    "credit_int_max": {"credit_account_id": INT_MAX_ID},
    "reserved_flag": {"flags": 1 << 9},
    "balancing_debit": {"flags": TransferFlags.BALANCING_DEBIT},
    "balancing_credit": {"flags": TransferFlags.BALANCING_CREDIT},
    "balancing_both": {"flags": TransferFlags.BALANCING_DEBIT | TransferFlags.BALANCING_CREDIT},
    "closing_debit": {"flags": TransferFlags.CLOSING_DEBIT},
    "closing_credit": {"flags": TransferFlags.CLOSING_CREDIT},
    "imported": {"flags": TransferFlags.IMPORTED},
    "timestamp_without_imported": {"timestamp": -1},
}
ACCOUNT_VARIANTS: dict[str, dict[str, Any]] = {
    "history": {"flags": AccountFlags.HISTORY},
    "closed": {"flags": AccountFlags.CLOSED},
    "linked": {"flags": AccountFlags.LINKED},
    "imported": {"flags": AccountFlags.IMPORTED},
    "reserved_flag": {"flags": 1 << 6},
    "user_data": {"user_data_128": 1, "user_data_64": 2, "user_data_32": 3},
    "user_data_over": {"user_data_32": MAX_U32 + 1},
    "code_zero": {"code": 0},
    "code_over": {"code": MAX_U16 + 1},
    "ledger_zero": {"ledger": 0},
    "ledger_over": {"ledger": MAX_U32 + 1},
    "id_zero": {"id": ZERO_ID},
    "id_int_max": {"id": INT_MAX_ID},
}
ACCOUNT_VARIANT = st.one_of(st.just(""), st.sampled_from(sorted(ACCOUNT_VARIANTS)))
VARIANT = st.one_of(st.just(""), st.sampled_from(sorted(TRANSFER_VARIANTS)))

#: (kind, debit pick, credit pick, amount, timeout, linked, pick, user data, variant)
TransferSpec = tuple[str, int, int, int, int, bool, int, str | None, str]
TRANSFER_SPECS = st.tuples(
    KINDS,
    PICK,
    PICK,
    AMOUNTS,
    TIMEOUTS,
    st.sampled_from([False, False, True]),
    PICK,
    st.sampled_from([None, "ref-1", ""]),
    VARIANT,
)


#: The calls a step may make: name -> (weight, strategies of its arguments).
OPS: dict[str, tuple[int, dict[str, st.SearchStrategy[Any]]]] = {}
F = TypeVar("F", bound=Callable[..., None])


def op(weight: int, **arguments: st.SearchStrategy[Any]) -> Callable[[F], F]:
    r"""Register a method as a call the machine makes, ``weight`` times as often as 1.

    One ``step`` rule draws the call by weight, then its arguments: plain
    ``@rule``\ s would be switched off per example by hypothesis's swarm
    testing, which left whole examples without a single post or void.
    """

    def register(method: F) -> F:
        OPS[method.__name__] = (weight, arguments)
        return method

    return register


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
        self.pending_ids: list[uuid.UUID] = []  # pending transfers applied
        self.events: list[uuid.UUID] = []
        self.checked = 0

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
        """Make the same call on both ledgers; they must answer (or refuse) the same."""
        outcomes = []
        for ledger in (self.memory, self.postgres):
            try:
                outcomes.append(("returned", self.run(getattr(ledger, call)(*args, **kwargs))))
            except InvalidInput as exc:  # a core error: both must raise it, same code
                outcomes.append(("raised", (type(exc), exc.code)))
        expected, actual = outcomes
        assert actual == expected, (call, args, kwargs)
        return expected[1] if expected[0] == "returned" else None

    def pick(self, items: Sequence[T], n: int) -> T:
        return items[n % len(items)]

    def account_id(self, n: int) -> uuid.UUID | None:
        """Mostly a known account; sometimes none, or one that does not exist."""
        if not self.accounts or n % 13 == 0:
            return None if n % 2 else uuid.UUID(int=n + 1)
        return self.pick(self.accounts, n)

    # -- rules -----------------------------------------------------------------------

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One call of the port, drawn by weight, with the clock moved first."""
        name = data.draw(st.sampled_from(OP_CHOICES), label="call")
        _, arguments = OPS[name]
        getattr(self, name)(**{k: data.draw(v, label=k) for k, v in arguments.items()})

    @initialize()
    def open_books(self) -> None:
        """Accounts of every kind, with money where limits would refuse everything."""
        books = [
            NewAccount(id=uuid.uuid4(), code=100, flags=flags, ledger=ledger)
            for flags, ledger in [
                (AccountFlags.NONE, 986),
                (AccountFlags.HISTORY, 986),
                (AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags.HISTORY, 986),
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

    @op(
        4,
        debit=PICK,
        credit=PICK,
        amount=st.sampled_from([1, 7, 30, 120]),
        timeout=st.sampled_from([0, 0, 1, 3, 10]),
        move=CLOCK_MOVES,
    )
    def reserve(self, debit: int, credit: int, amount: int, timeout: int, move: int) -> None:
        """A pending transfer between known accounts (one that usually succeeds)."""
        self.submit([("pending", debit, credit, amount, timeout, False, 1, None, "")], move)

    @op(
        4,
        pick=PICK,
        post=st.booleans(),
        amount=st.sampled_from([0, 0, 1, 5]),
        user_data=st.sampled_from([0, 0, 4]),
        move=CLOCK_MOVES,
    )
    def resolve(self, pick: int, post: bool, amount: int, user_data: int, move: int) -> None:
        """Post or void one of the pending transfers applied so far (as a caller would)."""
        if not self.pending_ids:
            return
        phase = TransferFlags.POST_PENDING_TRANSFER if post else TransferFlags.VOID_PENDING_TRANSFER
        resolution = Transfer(
            id=uuid.uuid4(),
            debit_account_id=None,
            credit_account_id=None,
            amount=amount if post else 0,
            code=0,
            flags=phase,
            pending_id=self.pick(self.pending_ids, pick),
            ledger=0,
            user_data_64=user_data,
        )
        self.submit([resolution], move)

    @op(
        1,
        specs=st.lists(
            st.tuples(
                ACCOUNT_FLAGS,
                st.sampled_from([1, 2]),
                st.sampled_from([*LEDGERS, 986, 986]),
                ACCOUNT_VARIANT,
            ),
            min_size=1,
            max_size=3,
        ),
        replay=st.sampled_from([None, "same", "different"]),
        pick=PICK,
    )
    def create_accounts(
        self,
        specs: list[tuple[AccountFlags, int, int, str]],
        replay: str | None,
        pick: int,
    ) -> None:
        batch = [self.account(*spec) for spec in specs]
        if replay and self.account_requests:
            old = self.pick(self.account_requests, pick)
            batch.append(
                old if replay == "same" else msgspec.structs.replace(old, code=old.code + 7)
            )
        results = self.both("create_accounts", batch)
        for new, result in zip(batch, results, strict=True):
            if result == "ok":
                self.accounts.append(new.id)
                self.account_requests.append(new)

    def account(self, flags: AccountFlags, code: int, ledger: int, variant: str) -> NewAccount:
        new = NewAccount(id=uuid.uuid4(), code=code, flags=flags, ledger=ledger)
        changes: dict[str, Any] = dict(ACCOUNT_VARIANTS.get(variant, {}))
        if "flags" in changes:
            changes["flags"] = AccountFlags(int(flags) | int(changes["flags"]))
            if changes["flags"] & AccountFlags.IMPORTED:
                changes["timestamp"] = self.memory_clock.now() - timedelta(seconds=code)
        return msgspec.structs.replace(new, **changes)

    @op(
        3,
        feature=st.sampled_from(
            [
                "balancing_debit",
                "balancing_credit",
                "balancing_both",
                "closing_debit",
                "closing_credit",
                "imported",
                "imported_pair",
                "imported_account",
            ]
        ),
        debit=PICK,
        credit=PICK,
        amount=st.sampled_from([1, 30, 500, MAX_AMOUNT]),
        timeout=st.sampled_from([0, 0, 2]),
        move=st.sampled_from([1, 2, 3]),
    )
    def feature(
        self, feature: str, debit: int, credit: int, amount: int, timeout: int, move: int
    ) -> None:
        """A well-formed use of one of TigerBeetle's features (balancing, closing, imports)."""
        flags = {
            "balancing_debit": TransferFlags.BALANCING_DEBIT,
            "balancing_credit": TransferFlags.BALANCING_CREDIT,
            "balancing_both": TransferFlags.BALANCING_DEBIT | TransferFlags.BALANCING_CREDIT,
            "closing_debit": TransferFlags.PENDING | TransferFlags.CLOSING_DEBIT,
            "closing_credit": TransferFlags.PENDING | TransferFlags.CLOSING_CREDIT,
        }.get(feature, TransferFlags.IMPORTED)
        if feature == "imported_account":
            self.advance(move)  # imported events are dated between the latest one and now
            new = NewAccount(
                id=uuid.uuid4(),
                code=1,
                flags=AccountFlags.IMPORTED | AccountFlags.HISTORY,
                timestamp=self.memory_clock.now() - timedelta(microseconds=amount % 7 + 1),
            )
            if self.both("create_accounts", [new]) == ["ok"]:
                self.accounts.append(new.id)
                self.account_requests.append(new)
            return
        transfers = [
            Transfer(
                id=uuid.uuid4(),
                debit_account_id=self.account_id(debit),
                credit_account_id=self.account_id(credit),
                amount=amount,
                code=2,
                flags=flags,
                timeout_seconds=timeout if flags & TransferFlags.PENDING else 0,
            )
        ]
        if flags & TransferFlags.IMPORTED:
            # dated just before now: after every event so far, once the clock has moved
            at = self.postgres_clock.now() + timedelta(seconds=move)
            transfers = [
                msgspec.structs.replace(t, timestamp=at - timedelta(microseconds=2))
                for t in transfers
            ]
            if feature == "imported_pair":
                second = msgspec.structs.replace(
                    transfers[0], id=uuid.uuid4(), timestamp=at - timedelta(microseconds=1)
                )
                transfers = [
                    msgspec.structs.replace(transfers[0], flags=flags | TransferFlags.LINKED),
                    second,
                ]
        self.submit(transfers, move)

    @op(6, specs=st.lists(TRANSFER_SPECS, min_size=1, max_size=4), move=CLOCK_MOVES)
    def create_transfers(self, specs: list[TransferSpec], move: int) -> None:
        self.submit(specs, move)

    def submit(self, specs: Sequence[TransferSpec | Transfer], move: int) -> None:
        """Build the batch, move the clock, make the call on both ledgers."""
        batch = [spec if isinstance(spec, Transfer) else self.transfer(spec) for spec in specs]
        event = EventEnvelope(
            event_id=uuid.uuid4(),
            type="ledger.differential",
            version=1,
            occurred_at=self.memory_clock.now(),
            aggregate_id=str(batch[0].id),
        )
        self.advance(move)
        self.transfers.extend(batch)
        results = self.both("create_transfers", batch, events=[event])
        self.pending_ids.extend(
            t.id
            for t, result in zip(batch, results, strict=True)
            if t.flags & TransferFlags.PENDING and result == "ok"
        )
        if "ok" in results:
            self.events.append(event.event_id)

    def transfer(self, spec: TransferSpec) -> Transfer:
        built = self._transfer(spec)
        variant = spec[-1]
        if not variant:
            return built
        changes = dict(TRANSFER_VARIANTS[variant])
        if "flags" in changes:
            changes["flags"] = TransferFlags(int(built.flags) | int(changes["flags"]))
            if changes["flags"] & TransferFlags.IMPORTED:
                changes["timestamp"] = self.memory_clock.now() - timedelta(seconds=spec[6] % 4)
        if changes.get("timestamp") == -1:
            changes["timestamp"] = self.memory_clock.now() - timedelta(seconds=1)
        return msgspec.structs.replace(built, **changes)

    def _transfer(self, spec: TransferSpec) -> Transfer:
        kind, debit, credit, amount, timeout, linked, pick, user_data, _ = spec
        flags = TransferFlags.LINKED if linked else TransferFlags.NONE
        if kind in ("replay", "mutated_replay") and self.transfers:
            old = self.pick(self.transfers, pick)
            if kind == "replay":
                return old
            field = ("amount", "user_data_64", "code", "timeout_seconds")[pick % 4]
            return msgspec.structs.replace(old, **{field: getattr(old, field) + 1})
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
                code=(0, 0, 0, 1, 3)[pick % 5],  # mostly 0: inherit the pending transfer's
                flags=flags | phase,
                pending_id=pending_id,
                timeout_seconds=timeout if pick % 7 == 0 else 0,
                ledger=(0, 0, 986, 1)[pick // 5 % 4],
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

    @op(1, pick=PICK, unknown=st.booleans(), move=CLOCK_MOVES)
    def lookup_accounts(self, pick: int, unknown: bool, move: int) -> None:
        self.advance(move)
        ids = self.accounts[pick % (len(self.accounts) + 1) :]
        if unknown:
            ids = [uuid.uuid4(), *ids]
        self.both("lookup_accounts", ids)

    @op(1, pick=PICK, move=CLOCK_MOVES)
    def lookup_transfers(self, pick: int, move: int) -> None:
        self.advance(move)
        ids = [t.id for t in self.transfers[pick % (len(self.transfers) + 1) :]]
        self.both("lookup_transfers", [*ids, uuid.uuid4()])

    @op(
        1, pick=PICK, limit=st.sampled_from([0, 1, 2, 100]), bounded=st.booleans(), move=CLOCK_MOVES
    )
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

    @op(2, move=CLOCK_MOVES)
    def expire_pending_transfers(self, move: int) -> None:
        self.advance(move)
        self.both("expire_pending_transfers")

    @op(
        1,
        pick=PICK,
        code=st.sampled_from([0, 0, 1, 3, MAX_U16 + 1]),
        ledger=st.sampled_from([0, 0, 986, 1, -1]),
        user_data=st.sampled_from([0, 0, 7, 8, 9, MAX_U64 + 1]),
        since=st.sampled_from([None, 0, 3, 10]),
        until=st.sampled_from([None, 0, 2, -1]),
        limit=st.sampled_from([1, 2, 3, 100, 0, 8191]),
        reversed_=st.booleans(),
        move=CLOCK_MOVES,
    )
    def query_transfers(
        self,
        pick: int,
        code: int,
        ledger: int,
        user_data: int,
        since: int | None,
        until: int | None,
        limit: int,
        reversed_: bool,
        move: int,
    ) -> None:
        self.advance(move)
        now = self.memory_clock.now()
        field = ("user_data_128", "user_data_64", "user_data_32")[pick % 3]
        query = msgspec.structs.replace(
            QueryFilter(
                ledger=ledger,
                code=code,
                timestamp_min=None if since is None else now - timedelta(seconds=since),
                timestamp_max=None if until is None else now - timedelta(seconds=until),
                limit=limit,
                reversed=reversed_,
            ),
            **{field: user_data},
        )
        self.both("query_transfers", query)

    @op(
        1,
        pick=PICK,
        code=st.sampled_from([0, 0, 1, 3, -1]),
        user_data=st.sampled_from([0, 0, 0, 7, 9, MAX_U128 + 1]),
        since=st.sampled_from([None, 0, 3, 10]),
        until=st.sampled_from([None, 0, 2]),
        limit=st.sampled_from([1, 2, 3, 100, 0]),
        sides=st.sampled_from([(True, True), (True, False), (False, True), (False, False)]),
        reversed_=st.booleans(),
        balances=st.booleans(),
        move=CLOCK_MOVES,
    )
    def account_history(
        self,
        pick: int,
        code: int,
        user_data: int,
        since: int | None,
        until: int | None,
        limit: int,
        sides: tuple[bool, bool],
        reversed_: bool,
        balances: bool,
        move: int,
    ) -> None:
        """``get_account_transfers`` or ``get_account_balances``."""
        self.advance(move)
        now = self.memory_clock.now()
        query = AccountFilter(
            account_id=self.account_id(pick) or uuid.uuid4(),
            code=code,
            user_data_128=user_data,
            timestamp_min=None if since is None else now - timedelta(seconds=since),
            timestamp_max=None if until is None else now - timedelta(seconds=until),
            limit=limit,
            debits=sides[0],
            credits=sides[1],
            reversed=reversed_,
        )
        self.both("get_account_balances" if balances else "get_account_transfers", query)

    # -- checks after every step -----------------------------------------------------

    @invariant()
    def same_accounts_and_transfers(self) -> None:
        self.both("lookup_accounts", self.accounts)
        self.both("lookup_transfers", [t.id for t in self.transfers])

    @invariant()
    def same_history_and_statement_of_one_account(self) -> None:
        """One account per step, in turn (all of them: see ``teardown``)."""
        self.checked += 1
        if self.accounts:
            self.same_history_and_statements(self.accounts[self.checked % len(self.accounts)])

    def teardown(self) -> None:
        for account in self.accounts:
            self.same_history_and_statements(account)

    def same_history_and_statements(self, account: uuid.UUID) -> None:
        query = AccountFilter(account_id=account, limit=8190)
        self.both("get_account_transfers", query)
        self.both("get_account_balances", query)
        self.both("query_transfers", QueryFilter(limit=8190))
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


OP_CHOICES = [name for name, (weight, _) in OPS.items() for _ in range(weight)]


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
