"""Groups of transfers that share no account run set-wise (migration 0028): the same
answers, rows, events and locks as member by member.

Migration 0028 answers and applies such a group in a few statements for the whole
group; any other group still runs member by member (0026). The differential test
sends the same random groups to two schemas, one with 0028's function and one with
0026's, from the same state, and compares every answer and, at the end, every row
of the ledger and the outbox. The groups reach every answer the functions give:
replays with the same and with other fields, results decided by the caller
(``p_mid``), missing, closed and foreign accounts, inactive customer accounts,
ledgers that differ, overflows near the largest amount, limits of accounts flagged
1 and 2, history rows (flag 8) and events. The concurrency test sends overlapping
groups (and the same group twice) from several connections at once, and checks
that money is conserved, that no account goes below what its flags allow, that
each transfer was applied once, and that every entry's balance is the running
balance of its account.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from finbank_adapters.postgres.migrations import load_migrations
from tests.postgres_support import isolated_schema, ledger_rows, require_postgres

pytestmark = pytest.mark.asyncio

C_MAX = 2**63 - 1
ZERO = uuid.UUID(int=0)
CHECKED_GROUP = "SELECT ledger_create_checked_transfer_group({})".format(
    ", ".join(f"${n}" for n in range(1, 21))
)
PLAIN_GROUP = "SELECT ledger_create_transfer_group({})".format(
    ", ".join(f"${n}" for n in range(1, 20))
)
START = datetime(2026, 3, 1, 12, tzinfo=UTC)


def member_by_member_group() -> str:
    """0026's ledger_create_checked_transfer_group (member by member), to replace 0028's,
    and 0024's ledger_create_transfer_group, which 0028 made call it."""
    sql = {m.version: m.sql for m in load_migrations()}
    checked = sql["0026"][sql["0026"].index("CREATE FUNCTION ledger_create_checked_transfer") :]
    plain = sql["0024"][sql["0024"].index("CREATE FUNCTION ledger_create_transfer_group(") :]
    plain = plain[: plain.index("$$;") + 3]
    return "\n".join(
        f.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1) for f in (checked, plain)
    )


def new_id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128))


class Book:
    """The accounts both schemas start with, drawn from one seed."""

    def __init__(self, rng: random.Random, size: int) -> None:
        self.rng = rng
        self.accounts: list[tuple[Any, ...]] = []
        self.customers: list[tuple[Any, ...]] = []
        for n in range(size):
            flags = rng.choice([0, 0, 1, 1, 1, 2, 8, 1 | 8, 2 | 8, 32, 1 | 32])
            ledger = rng.choice([986] * 6 + [1])
            huge = rng.random() < 0.1
            credits = C_MAX - rng.randint(0, 1_000) if huge else rng.randint(0, 10**9)
            if flags & 1:
                debits = rng.randint(0, credits)
                debits_pending = rng.randint(0, credits - debits)
                credits_pending = rng.randint(0, 1_000)
            elif flags & 2:
                debits = credits + rng.randint(0, min(10**6, C_MAX - credits))
                credits_pending = rng.randint(0, debits - credits)
                debits_pending = rng.randint(0, 1_000)
            else:
                debits = rng.randint(0, 10**9)
                debits_pending = credits_pending = rng.randint(0, 1_000)
            closed = rng.random() < 0.08
            account = new_id(rng)
            self.accounts.append(
                (account, rng.randint(1, 3), flags, ledger, debits_pending, debits,
                 credits_pending, credits, START, closed)
            )  # fmt: skip
            if rng.random() < 0.75:
                status = rng.choice(["active"] * 6 + ["blocked", "closed"])
                owner = rng.choice(["o1", "o2"])
                self.customers.append(
                    (account, owner, "Holder", "individual", None, "0001", f"{n:08d}",
                     "checking", status, START)
                )  # fmt: skip
        self.owner = {row[0]: row[1] for row in self.customers}

    async def load(self, pool: asyncpg.Pool) -> None:
        await pool.executemany(
            "INSERT INTO ledger_accounts (id, code, flags, ledger, debits_pending, debits_posted,"
            " credits_pending, credits_posted, created_at, closed)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            self.accounts,
        )
        await pool.executemany(
            "INSERT INTO customer_accounts VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            self.customers,
        )


class Groups:
    """Random groups over a book's accounts, most of them sharing no account."""

    def __init__(self, rng: random.Random, book: Book) -> None:
        self.rng = rng
        self.book = book
        self.sent: list[dict[str, Any]] = []  # every member sent, to replay

    def member(self, debit: uuid.UUID, credit: uuid.UUID, now: datetime) -> dict[str, Any]:
        rng = self.rng
        ledgers = {a[0]: a[3] for a in self.book.accounts}
        owner = None
        if rng.random() < 0.5:
            owner = self.book.owner.get(debit, "o1") if rng.random() < 0.8 else "o2"
        return {
            "now": now,
            "id": new_id(rng),
            "debit": debit,
            "credit": credit,
            "amount": rng.choice(
                [1, rng.randint(1, 10**6), rng.randint(1, 10**12), C_MAX // 2, C_MAX]
            ),
            "code": rng.randint(1, 3),
            "ledger": ledgers.get(debit, 986) if rng.random() < 0.9 else 1,
            "user_data": rng.choice([None, "memo", ""]),
            "ud128": rng.choice([ZERO, new_id(rng)]),
            "ud64": rng.choice([0, rng.randint(1, 2**62)]),
            "ud32": rng.choice([0, rng.randint(1, 2**30)]),
            "mid": "amount_must_not_be_zero" if rng.random() < 0.05 else None,
            "owner": owner,
        }

    def group(self, now: datetime) -> list[dict[str, Any]]:
        rng = self.rng
        n = rng.randint(2, 8)
        members: list[dict[str, Any]] = []
        used: set[uuid.UUID] = set()
        for _ in range(n):
            if self.sent and rng.random() < 0.2:  # a replay, as sent or with a field changed
                replay = dict(rng.choice(self.sent))
                if {replay["debit"], replay["credit"]} & used:
                    continue
                if rng.random() < 0.5:
                    field = rng.choice(["amount", "code", "user_data", "ud64", "owner"])
                    replay[field] = {"amount": 7, "code": 9, "user_data": "other", "ud64": 5}.get(
                        field, "o2"
                    )
                replay["now"] = now
                members.append(replay)
                used |= {replay["debit"], replay["credit"]}
                continue
            free = [a[0] for a in self.book.accounts if a[0] not in used]
            debit, credit = rng.sample(free, 2)
            if rng.random() < 0.05:
                debit = new_id(rng)  # no such account
            if rng.random() < 0.05:
                credit = new_id(rng)
            if rng.random() < 0.03:  # an account twice: the group runs member by member
                credit = rng.choice(sorted(used)) if used else debit
            used |= {debit, credit}
            members.append(self.member(debit, credit, now + timedelta(microseconds=len(members))))
        self.sent.extend(members)
        return members


def arguments(members: list[dict[str, Any]], rng: random.Random, *, checked: bool) -> list[Any]:
    columns = ["now", "id", "debit", "credit", "amount", "code", "ledger", "user_data",
               "ud128", "ud64", "ud32", "mid"]  # fmt: skip
    args: list[Any] = [[m[c] for m in members] for c in columns]
    if checked:
        args.append([m["owner"] for m in members])
    group: list[int] = []
    for index, _ in enumerate(members, start=1):
        group.extend([index] * rng.randint(0, 2))
    args += [
        group,
        [new_id(rng) for _ in group],
        [f"agg-{g}" for g in group],
        ["transfer.made"] * len(group),
        ["finbank.accounts"] * len(group),
        [START] * len(group),
        [rng.randbytes(rng.randint(1, 64)) for _ in group],
    ]
    return args


def shares_no_account(members: list[dict[str, Any]]) -> bool:
    accounts = [a for m in members for a in (m["debit"], m["credit"])]
    ids = [m["id"] for m in members]
    return len(set(accounts)) == len(accounts) and len(set(ids)) == len(ids) and len(ids) > 2


async def send(pool: asyncpg.Pool, query: str, args: list[Any]) -> tuple[str, Any]:
    try:
        return "ok", await pool.fetchval(query, *args)
    except asyncpg.PostgresError as error:
        return "error", error.sqlstate


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_set_path_answers_and_stores_as_member_by_member(seed: int) -> None:
    require_postgres()
    rng = random.Random(seed)
    book = Book(rng, 40)
    async with isolated_schema() as (new, _), isolated_schema() as (old, _):
        await old.execute(member_by_member_group())
        await book.load(new)
        await book.load(old)
        groups = Groups(rng, book)
        set_wise = 0
        answers: set[str] = set()
        for step in range(120):
            members = groups.group(START + timedelta(seconds=step))
            checked = rng.random() < 0.8
            args = arguments(members, rng, checked=checked)
            query = CHECKED_GROUP if checked else PLAIN_GROUP
            got, expected = await send(new, query, args), await send(old, query, args)
            assert got == expected, (step, members)
            set_wise += shares_no_account(members)
            if got[0] == "ok":
                answers.update(got[1])
        # the set path ran, and the groups reached the answers that matter
        assert set_wise >= 60
        assert {
            "ok", "exists", "exists_with_different_fields", "amount_must_not_be_zero",
            "account_not_found", "debit_account_not_found", "credit_account_not_found",
            "exceeds_credits", "debit_account_already_closed", "overflows",
            "transfer_must_have_the_same_ledger_as_accounts",
        } <= answers | {a.split(":")[0] for a in answers}, answers  # fmt: skip
        assert any(a.startswith("account_not_active:") for a in answers), answers
        stored = await ledger_rows(new)
        assert stored == await ledger_rows(old)
        assert stored["ledger_account_balances"]  # history rows were written and compared
        assert stored["outbox"]


async def test_concurrent_groups_apply_each_transfer_once_and_conserve_money() -> None:
    require_postgres()
    rng = random.Random(7)
    async with isolated_schema(max_size=8) as (pool, _):
        bank = uuid.uuid4()
        customers = [uuid.uuid4() for _ in range(24)]
        await pool.execute(
            "INSERT INTO ledger_accounts (id, code, flags, ledger, created_at) VALUES ($1, 1, 0,"
            " 986, $2)",
            bank,
            START,
        )
        await pool.executemany(
            "INSERT INTO ledger_accounts (id, code, flags, ledger, created_at) VALUES ($1, 1, $2,"
            " 986, $3)",
            [(c, rng.choice([1, 1 | 8]), START) for c in customers],
        )
        await pool.executemany(
            "INSERT INTO customer_accounts VALUES ($1, 'o', 'H', 'individual', NULL, '0001', $2,"
            " 'checking', 'active', $3)",
            [(c, f"{n:08d}", START) for n, c in enumerate(customers)],
        )
        fund = [(START, uuid.uuid4(), bank, c, 1_000, 1, 986) for c in customers]
        for row in fund:
            args = [[v] for v in row] + [[None], [ZERO], [0], [0], [None], [None]]
            args += [[], [], [], [], [], [], []]
            assert await pool.fetchval(CHECKED_GROUP, *args) == ["ok"]

        def draw_group() -> list[Any]:
            n = rng.randint(2, 6)
            accounts = rng.sample(customers, 2 * n)
            now = START + timedelta(minutes=1)
            rows = [
                (now, uuid.uuid4(), accounts[2 * i], accounts[2 * i + 1], rng.randint(1, 400))
                for i in range(n)
            ]
            columns = list(zip(*rows, strict=True))
            return [
                *map(list, columns),
                [1] * n, [986] * n, [None] * n, [ZERO] * n, [0] * n, [0] * n, [None] * n,
                [rng.choice(["o", None]) for _ in range(n)],
                list(range(1, n + 1)), [uuid.uuid4() for _ in range(n)],
                [f"a{i}" for i in range(n)], ["t"] * n, ["topic"] * n, [now] * n,
                [b"e"] * n,
            ]  # fmt: skip

        groups = [draw_group() for _ in range(150)]
        # each group sent twice, by two callers at once: applied once, answered twice
        work = [g for g in groups for _ in range(2)]
        rng.shuffle(work)
        answers: dict[uuid.UUID, list[str]] = {}
        retried = 0

        async def caller(queue: list[list[Any]]) -> None:
            nonlocal retried
            while queue:
                args = queue.pop()
                while True:
                    try:
                        result = await pool.fetchval(CHECKED_GROUP, *args)
                        break
                    except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError):
                        retried += 1  # what PostgresLedger retries
                for transfer_id, answer in zip(args[1], result, strict=True):
                    answers.setdefault(transfer_id, []).append(answer)

        await asyncio.gather(*(caller(work) for _ in range(8)))

        assert len(answers) == sum(len(g[1]) for g in groups)
        applied = {t for t, a in answers.items() if "ok" in a}
        for pair in answers.values():
            # applied at most once; a replay after it answered exists (a refusal stores
            # nothing, so the other call may be refused too, or applied once funds came in)
            assert len(pair) == 2
            assert pair.count("ok") <= 1, pair
            assert pair.count("exists") <= 1, pair
            assert "exists" not in pair or "ok" in pair, pair
            assert set(pair) <= {"ok", "exists", "exceeds_credits"}, pair
        assert applied  # some money moved
        stored = await pool.fetch("SELECT id FROM ledger_transfers WHERE code = 1 AND "
                                  "debit_account_id <> $1", bank)  # fmt: skip
        assert {r["id"] for r in stored} == applied
        events = await pool.fetchval("SELECT count(*) FROM outbox")
        applied_events = sum(
            1 for g in groups for t in g[1] if t in applied
        )  # one event per member in draw_group
        assert events == applied_events
        accounts = await pool.fetch("SELECT * FROM ledger_accounts")
        assert sum(a["credits_posted"] - a["debits_posted"] for a in accounts) == 0
        for account in accounts:
            if account["flags"] & 1:
                assert account["debits_posted"] <= account["credits_posted"]
            entries = await pool.fetch(
                "SELECT side, amount, balance_after FROM ledger_entries WHERE account_id = $1"
                " ORDER BY sequence",
                account["id"],
            )
            balance = 0
            for entry in entries:
                balance += entry["amount"] if entry["side"] == "credit" else -entry["amount"]
                assert entry["balance_after"] == balance
            assert balance == account["credits_posted"] - account["debits_posted"]
        two = await pool.fetchval(
            "SELECT bool_and(n = 2) FROM (SELECT count(*) AS n FROM ledger_entries"
            " GROUP BY transfer_id) AS e"
        )
        assert two is True
        history = await pool.fetch(
            "SELECT h.*, t.amount FROM ledger_account_balances h"
            " JOIN ledger_transfers t ON t.id = h.transfer_id ORDER BY h.account_id, h.seq"
        )
        flagged = {a["id"] for a in accounts if a["flags"] & 8}
        assert history
        assert {h["account_id"] for h in history} <= flagged


@pytest.mark.parametrize("path", ["set-wise", "member by member"])
async def test_a_pending_transfer_that_fell_due_while_the_group_waited_raises_40001(
    path: str,
) -> None:
    """The group checks for a due pending transfer before it locks; one committed while
    it waited for a lock is seen after the lock, and the group is refused with 40001 (the
    caller retries, expires it first, and sends the group again): on both paths."""
    require_postgres()
    async with isolated_schema(max_size=3) as (pool, _):
        if path == "member by member":
            await pool.execute(member_by_member_group())
        accounts = [uuid.uuid4() for _ in range(6)]  # three members: the set path's least
        await pool.executemany(
            "INSERT INTO ledger_accounts (id, code, flags, ledger, created_at) VALUES ($1, 1, 0,"
            " 986, $2)",
            [(a, START) for a in accounts],
        )
        now = START + timedelta(minutes=5)
        n = 3
        group = [
            [now] * n, [uuid.uuid4() for _ in range(n)], accounts[:n], accounts[n:], [10] * n,
            [1] * n, [986] * n, [None] * n, [ZERO] * n, [0] * n, [0] * n, [None] * n,
            [None] * n, [], [], [], [], [], [], [],
        ]  # fmt: skip
        async with pool.acquire() as holder, pool.acquire() as writer:
            holding = holder.transaction()
            await holding.start()
            await holder.execute(
                "SELECT 1 FROM ledger_accounts WHERE id = $1 FOR UPDATE", accounts[0]
            )
            call = asyncio.ensure_future(pool.fetchval(CHECKED_GROUP, *group))
            # the group waits for the lock on accounts[0]
            for _ in range(200):
                waiting = await writer.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%ledger_create_checked_transfer_group%'"
                )
                if waiting:
                    break
                await asyncio.sleep(0.01)
            assert waiting, "the group did not wait for the lock"
            # meanwhile a pending transfer due at the group's time is committed
            await writer.execute(
                "INSERT INTO ledger_transfers (id, req_debit_id, req_credit_id, req_amount, flags,"
                " code, ledger, timeout_seconds, debit_account_id, credit_account_id, amount,"
                " status, expires_at, created_at, seq) VALUES ($1, $2, $3, 5, 2, 1, 986, 1, $2,"
                " $3, 5, 'pending', $4, $5, nextval('ledger_transfers_seq'))",
                uuid.uuid4(),
                accounts[2],
                accounts[3],
                now - timedelta(seconds=1),
                START,
            )
            await holding.rollback()
            with pytest.raises(asyncpg.SerializationError):
                await call
        # nothing of the group was stored
        assert (
            await pool.fetchval("SELECT count(*) FROM ledger_transfers WHERE status = 'none'") == 0
        )
