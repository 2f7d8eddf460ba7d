"""The PostgreSQL ledger from Python against pgbench, on the same server, side by side.

Run: ``.venv/bin/python benchmarks/ledger_postgres.py [--seconds 10] [--rounds 3]
[--dsn DSN] [--pgbench-db finbank_pgbench] [--ledger-db finbank_bench] [--clients 1,4]
[--inputs cheap,uuid4]``

Prints, for each ``--clients`` count (concurrent clients), the median over
``--rounds`` rounds, with the lowest and highest run, of:

* **pgbench TPC-B, prepared**: ``pgbench -b tpcb-like -M prepared``
  transactions/s (one bank transfer per transaction: update an account, read
  it, update a teller and a branch, insert history; prepared statements, as
  asyncpg uses), in a schema of its own of ``--pgbench-db`` initialised with
  ``pgbench -i -s 4``;
* **the server-side floor**: pgbench calling our own ``ledger_create_transfer``
  (a custom script, ``-M prepared``), one transfer per transaction among the
  same accounts as the ledger's: what the SQL function costs with a client
  that costs nothing;
* **the ledger from Python**: ``PostgresLedger.create_transfers`` transfers/s
  with 1 and with 100 transfers per call (random transfers among 10,000
  customer accounts, in a schema of its own of ``--ledger-db``), ``clients``
  asyncio tasks on one pool, on uvloop when installed (as ``finbank serve`` runs);
* **asyncpg alone** (the driver's floor): the floor's statement from Python with
  nothing of ours in the way: ``clients`` asyncio tasks on the same loop, each
  with an asyncpg connection of its own and the statement prepared on it
  (``PreparedStatement.fetchval``), the transfer's id, accounts and amount as
  parameters and the time and the rest as the floor writes them, every answer
  checked ``ok``. Each call's ``Transfer`` is made as the ledger side's is, so
  the two differ only by the library: ``ledger / asyncpg`` is what
  ``PostgresLedger`` costs over the driver, ``asyncpg / floor`` what a Python
  client on one event loop costs against pgbench's threads in C;
* **the ledger from Python with group commit**: the same 1-transfer calls
  through a ``PostgresLedger`` with ``group_max_in_flight`` set (one line per
  ``--group-max-in-flight`` value; the setting
  ``postgres.ledger_group_max_in_flight``): with that many calls already in
  flight, the callers that arrive wait and are sent together as ONE call of
  ``ledger_create_transfers_grouped``, so several callers' transfers share
  one round trip, one transaction and ONE commit. It is printed beside the
  ledger without it (coalescing off) in the same interleaved rounds, with the
  mean callers per grouped call;
* each figure's ratio to the floor and to TPC-B at the same client count;
* what each client costs, independent of the machine's load: CPU µs per
  transaction of pgbench's own process (user + system, from the children's
  rusage) and of this Python process per ``create_transfers`` call, and the
  server CPU µs per transfer of the ledger pool's backends (from ``/proc``,
  when the server is local). On a machine whose cores the server and the
  client share, the client's CPU is what separates the Python figure from the
  floor: roughly ``(server + pgbench client) / (server + Python client)``;
* what bounds the client, side by side: the CPU of every process on the
  machine per transaction (``/proc/stat``, busy time over the run; with a
  local server, the floor's and the ledger's differ by their clients' CPU
  when the server does the same work for both), and the client's involuntary
  context switches per call (``getrusage``). With the server on the same
  cores, a client's send wakes a backend that can take the client's core:
  pgbench's threads stall one connection each, while one event loop serving
  several callers stalls them all. A client that runs longer per call is
  preempted more often;
* what each side asks of the server: the WAL it wrote per transaction
  (``pg_current_wal_insert_lsn`` before and after the run, from a connection
  of its own). TPC-B's transaction updates three rows in place and inserts a
  small history row with no index; a ledger transfer inserts the transfer
  (its primary key and the indexes by time and by account that statements
  and queries read) and two entries, and moves two balances: about 3.5 times
  TPC-B's WAL here (1,609 against 481 bytes). The floor is the like-for-like
  comparison; the TPC-B ratio says how close the ledger comes to a smaller
  transaction, and moves more between machines (0.57-1.06x seen). A
  checkpoint during a run makes the first change of each page after it write
  the whole page, so one side's WAL can jump in one round; the median keeps
  such a round out when the others are clean.

What the Python client's time and CPU per call include besides the library
(``--inputs``, comma-separated; each mode is a side of its own in the same
interleaved rounds):

* ``cheap`` (the default): the caller's inputs cost about what pgbench's do
  (pgbench draws its randoms in C; the floor's transfer id is even drawn by
  the server). The picks (pgbench's: ``a``, then ``c`` among the others, and
  the amount) come from a table of 65,536 drawn before the timed rounds and
  are taken in turn; the transfer id is a version-4 UUID of 122 random bits
  from one ``random.getrandbits(128)`` per call (C), made a ``uuid.UUID``
  without ``UUID.__init__``'s Python checks. Ids stay random, not sequential,
  so the server's index inserts are the same as with ``uuid4``. A
  ``Transfer`` is still built per call.
* ``uuid4``: what a caller that makes everything per call pays: ``uuid.uuid4()``
  (``os.urandom`` and ``UUID.__init__``) and three ``random.randrange`` picks
  per transfer, then the ``Transfer`` (about 3.5 us more a call than ``cheap``
  on this machine). Its sides are labelled ``(uuid4 per call)``.

In both, the accounts' ids are built once (a caller has them) and the picks
follow the same seed, so both modes move the same accounts by the same amounts.

``--dsn`` names the server for both sides, pgbench included: a TCP address
(the default, loopback) or the Unix socket, e.g.
``postgresql://postgres@/test?host=/var/run/postgresql``, so that the
comparison stays like for like whichever transport is measured.

The sides run interleaved: every round runs each side at each client count,
in an order that alternates between rounds, so a change in the machine's
load hits every side alike; the load average is printed before each round.
Figures still vary with whatever else runs on the machine; this prints, it
never asserts. Both databases are created if missing; the schemas are
dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg

from finbank_adapters.postgres import PostgresLedger
from finbank_adapters.postgres.migrations import migrate, quote_ident
from finbank_adapters.postgres.pool import DEFAULT_SERVER_SETTINGS, create_pool
from finbank_adapters.system import SystemClock
from finbank_core.accounts.ledger import (
    BRL_LEDGER,
    AccountFlags,
    CreateTransferResult,
    NewAccount,
    Transfer,
)

DEFAULT_DSN = os.environ.get(
    "FINBANK_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
ACCOUNTS = 10_000  # pgbench -s 4 has 400,000; fewer would make 100-transfer batches collide
BATCH_SIZES = (1, 100)
#: the client count the goals (>= 0.9x the floor and TPC-B, one transfer a call) are stated
#: at; a run without it is judged at its most clients
GOAL_CLIENTS = 4
TRANSFER_CODE = 3


def account_id(n: int) -> uuid.UUID:
    """Customer account ``n`` (1..ACCOUNTS): an id pgbench can compute as well."""
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012d}")


#: the floor's pgbench script: what ``PostgresLedger`` sends for one plain transfer
FLOOR_SCRIPT = f"""\\set a random(1, {ACCOUNTS})
\\set b random(1, {ACCOUNTS - 1})
\\set c (:a + :b - 1) % {ACCOUNTS} + 1
\\set amount random(1, 100)
SELECT ledger_create_transfer(now(), gen_random_uuid(),
  ('00000000-0000-4000-8000-' || lpad(:a::text, 12, '0'))::uuid,
  ('00000000-0000-4000-8000-' || lpad(:c::text, 12, '0'))::uuid,
  :amount, {TRANSFER_CODE}, {BRL_LEDGER}, NULL,
  '00000000-0000-0000-0000-000000000000'::uuid, 0, 0, NULL);
"""


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def ensure_database(dsn: str, database: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f"CREATE DATABASE {quote_ident(database)}")
    finally:
        await conn.close()


async def create_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE SCHEMA {quote_ident(schema)}")
    finally:
        await conn.close()


async def drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
    finally:
        await conn.close()


# -- pgbench ----------------------------------------------------------------------


def pgbench_binary() -> str:
    found = shutil.which("pgbench")
    if found is None:
        raise SystemExit("pgbench not found on PATH (package postgresql-client)")
    return found


def connection_args(dsn: str) -> list[str]:
    """pgbench's ``-h -p -U dbname`` for ``dsn`` (``?host=/dir`` is a Unix socket's directory)."""
    parts = urlsplit(dsn)
    host = parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0]
    args = ["-h", host, "-p", str(parts.port or 5432)]
    if parts.username:
        args += ["-U", parts.username]
    return [*args, parts.path.lstrip("/")]


def pgbench(dsn: str, schema: str, args: list[str]) -> str:
    """Run pgbench on ``dsn``'s database with ``schema`` first on its search path."""
    # PGOPTIONS separates options by spaces: a space inside a value is escaped
    settings = " ".join(
        f"-c {k}={v.replace(' ', chr(92) + ' ')}" for k, v in DEFAULT_SERVER_SETTINGS.items()
    )
    done = subprocess.run(
        [pgbench_binary(), *args, *connection_args(dsn)],
        capture_output=True,
        text=True,
        env={**os.environ, "PGOPTIONS": f"-c search_path={schema} {settings}"},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgbench {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


@dataclass
class Side:
    """One run of one side: its rate and its client's CPU seconds per transaction."""

    rate: float
    client_user: float
    client_system: float
    server: float | None = None  # the backends' CPU seconds per transaction, when known
    grouped: float | None = None  # callers per grouped call (group commit), when any
    machine: float | None = None  # every process's CPU seconds per transaction (/proc/stat)
    preempted: float | None = None  # the client's involuntary context switches per call
    transactions: int = 0  # transactions (transfers) the run made
    wal: float | None = None  # WAL bytes the server wrote per transaction, measured around it


def machine_busy() -> float | None:
    """CPU seconds every process on the machine has used so far (``/proc/stat``), or
    ``None`` where there is no ``/proc``. Not idle and not waiting for I/O."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def per(before: float | None, after: float | None, count: int) -> float | None:
    if before is None or after is None or not count:
        return None
    return (after - before) / count


def pgbench_run(dsn: str, schema: str, script: list[str], clients: int, seconds: float) -> Side:
    before, busy_before = os.times(), machine_busy()
    switches_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_nivcsw
    stdout = pgbench(
        dsn,
        schema,
        [
            *script,
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            str(clients),
            "-T",
            str(max(1, round(seconds))),
        ],
    )
    failed = re.search(r"number of failed transactions: (\d+)", stdout)
    if failed and int(failed.group(1)):
        raise RuntimeError(f"pgbench transactions failed:\n{stdout}")
    match = re.search(r"tps = ([0-9.]+)", stdout)
    processed = re.search(r"number of transactions actually processed: (\d+)", stdout)
    if match is None or processed is None or not int(processed.group(1)):
        raise RuntimeError(f"no tps in pgbench output:\n{stdout}")
    after, busy_after = os.times(), machine_busy()
    switches = resource.getrusage(resource.RUSAGE_CHILDREN).ru_nivcsw - switches_before
    count = int(processed.group(1))
    return Side(
        float(match.group(1)),
        (after.children_user - before.children_user) / count,
        (after.children_system - before.children_system) / count,
        machine=per(busy_before, busy_after, count),
        preempted=switches / count,
        transactions=count,
    )


# -- the ledger -----------------------------------------------------------------


@dataclass
class LedgerRun:
    transfers: int
    calls: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.transfers / self.seconds


#: the accounts' ids, built once: index n is account_id(n)
ACCOUNT_IDS = [account_id(n) for n in range(ACCOUNTS + 1)]


#: ``--inputs``: how the client makes each call's transfer (see the module's docstring)
INPUTS = ("cheap", "uuid4")
#: picks drawn before the timed rounds for ``cheap`` (taken in turn, then again)
PICKS = 1 << 16

# uuid.uuid4's version and variant bits (RFC 4122), applied to 128 random bits
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
_new_object = object.__new__
_set_slot = object.__setattr__
_SAFE_UNKNOWN = uuid.SafeUUID.unknown


def draw_picks(
    randrange: Callable[..., int], ids: list[uuid.UUID], accounts: int
) -> tuple[uuid.UUID, uuid.UUID, int]:
    """pgbench's picks: account ``a``, then ``c`` among the other ``accounts - 1``, an amount."""
    debit = randrange(accounts)
    credit = (debit + randrange(1, accounts)) % accounts
    return ids[debit + 1], ids[credit + 1], randrange(1, 101)


def transfer_source(
    inputs: str, seed: int, ids: list[uuid.UUID] | None = None, accounts: int = ACCOUNTS
) -> Callable[[], Transfer]:
    """Each call's ``Transfer`` for ``--inputs`` ``inputs``; the picks follow ``seed``.

    ``ids[n]`` is account ``n`` (1..``accounts``). Both modes make the same picks
    for the same seed (``cheap``'s repeat after ``PICKS``); the ids are random in
    both, never from the seed, so that no two runs on one schema share an id.
    """
    ids = ACCOUNT_IDS if ids is None else ids
    randrange = random.Random(seed).randrange
    if inputs == "uuid4":
        uuid4 = uuid.uuid4

        def per_call() -> Transfer:  # draw_picks, inline as the caller's loop had it
            debit = randrange(accounts)
            credit = (debit + randrange(1, accounts)) % accounts
            return Transfer(
                id=uuid4(),
                debit_account_id=ids[debit + 1],
                credit_account_id=ids[credit + 1],
                amount=randrange(1, 101),
                code=TRANSFER_CODE,
            )

        return per_call
    if inputs != "cheap":
        raise ValueError(f"--inputs: {inputs!r} is none of {', '.join(INPUTS)}")
    table = [draw_picks(randrange, ids, accounts) for _ in range(PICKS)]
    mask = PICKS - 1
    getrandbits = random.Random().getrandbits  # seeded from os.urandom: ids of its own
    turn = 0

    def cheap() -> Transfer:
        nonlocal turn
        debit, credit, amount = table[turn & mask]
        turn += 1
        # uuid.UUID(int=...) without its Python __init__ (which ends the same way)
        transfer_id = _new_object(uuid.UUID)
        _set_slot(transfer_id, "int", getrandbits(128) & _UUID4_CLEAR | _UUID4_SET)
        _set_slot(transfer_id, "is_safe", _SAFE_UNKNOWN)
        return Transfer(
            id=transfer_id,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            code=TRANSFER_CODE,
        )

    return cheap


async def ledger_rate(
    ledger: PostgresLedger,
    clients: int,
    batch: int,
    seconds: float,
    transfer: Callable[[], Transfer],
) -> LedgerRun:
    ok = CreateTransferResult.OK
    applied = 0
    calls = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal applied, calls
        while time.perf_counter() < deadline:
            results = await ledger.create_transfers([transfer() for _ in range(batch)])
            applied += results.count(ok)
            calls += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return LedgerRun(applied, calls, time.perf_counter() - started)


#: the floor's statement, its picks and the transfer's id as parameters (``driver_run``)
DRIVER_STATEMENT = (
    "SELECT ledger_create_transfer(now(), $1, $2, $3, $4, "
    f"{TRANSFER_CODE}, {BRL_LEDGER}, NULL, '00000000-0000-0000-0000-000000000000'::uuid, "
    "0, 0, NULL)"
)


async def driver_connections(dsn: str, schema: str, count: int) -> list[asyncpg.Connection]:
    """``count`` asyncpg connections with the pool's settings, the statement checked once."""
    settings = {**DEFAULT_SERVER_SETTINGS, "search_path": schema}
    conns = [await asyncpg.connect(dsn, server_settings=settings) for _ in range(count)]
    answer = await conns[0].fetchval(
        DRIVER_STATEMENT, uuid.uuid4(), account_id(1), account_id(2), 1
    )
    if answer != "ok":
        raise RuntimeError(f"the driver's statement answers {answer!r}, not 'ok'")
    return conns


async def driver_run(
    conns: list[asyncpg.Connection],
    clients: int,
    seconds: float,
    seed: int,
    inputs: str = "cheap",
) -> Side:
    """asyncpg alone: ``clients`` tasks, each on a connection of its own with the
    statement prepared there, one transfer per call (see the module's docstring)."""
    transfer = transfer_source(inputs, seed)
    used = conns[:clients]
    statements = [await conn.prepare(DRIVER_STATEMENT) for conn in used]
    pids = [conn.get_server_pid() for conn in used]
    applied = 0
    calls = 0
    refused: list[str] = []
    deadline = time.perf_counter() + seconds

    async def client(statement: asyncpg.prepared_stmt.PreparedStatement) -> None:
        nonlocal applied, calls
        fetchval = statement.fetchval
        while time.perf_counter() < deadline:
            t = transfer()
            answer = await fetchval(t.id, t.debit_account_id, t.credit_account_id, t.amount)
            calls += 1
            if answer == "ok":
                applied += 1
            else:
                refused.append(answer)

    before, server_before, busy_before = os.times(), backends_cpu(pids), machine_busy()
    switches_before = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
    started = time.perf_counter()
    await asyncio.gather(*(client(statement) for statement in statements))
    elapsed = time.perf_counter() - started
    after, server_after, busy_after = os.times(), backends_cpu(pids), machine_busy()
    switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - switches_before
    if refused:  # the accounts are funded for far more than a run moves
        raise RuntimeError(f"asyncpg alone: {len(refused)} call(s) refused, e.g. {refused[0]!r}")
    calls = max(calls, 1)
    server = None
    if server_before is not None and server_after is not None and applied:
        server = (server_after - server_before) / applied
    return Side(
        applied / elapsed,
        (after.user - before.user) / calls,
        (after.system - before.system) / calls,
        server,
        machine=per(busy_before, busy_after, applied),
        preempted=switches / calls,
        transactions=applied,
    )


async def backend_pids(pool: asyncpg.Pool, clients: int) -> list[int]:
    """The server pids of the pool's connections (all held at once, so each is seen)."""
    held = [await pool.acquire() for _ in range(clients)]
    try:
        return [conn.get_server_pid() for conn in held]
    finally:
        for conn in held:
            await pool.release(conn)


def backends_cpu(pids: list[int]) -> float | None:
    """CPU seconds the backends ``pids`` used so far; ``None`` when /proc cannot tell."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return None
    return total / ticks


async def ledger_run(
    ledger: PostgresLedger,
    pids: list[int],
    clients: int,
    batch: int,
    seconds: float,
    seed: int,
    inputs: str = "cheap",
) -> Side:
    # the same picks for every side (seed decides them), drawn before the clocks start
    transfer = transfer_source(inputs, seed)
    before, server_before, busy_before = os.times(), backends_cpu(pids), machine_busy()
    switches_before = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
    calls_before, members_before = ledger.grouped_calls, ledger.grouped_members
    done = await ledger_rate(ledger, clients, batch, seconds, transfer)
    after, server_after, busy_after = os.times(), backends_cpu(pids), machine_busy()
    switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - switches_before
    grouped_calls = ledger.grouped_calls - calls_before
    grouped = (ledger.grouped_members - members_before) / grouped_calls if grouped_calls else None
    calls = max(done.calls, 1)
    server = None
    if server_before is not None and server_after is not None and done.transfers:
        server = (server_after - server_before) / done.transfers
    return Side(
        done.per_second,
        (after.user - before.user) / calls,
        (after.system - before.system) / calls,
        server,
        grouped,
        # per transaction, as pgbench's: a 100-transfer call is 100 of them
        machine=per(busy_before, busy_after, done.transfers),
        preempted=switches / calls,
        transactions=done.transfers,
    )


async def check_floor_statement(pool: asyncpg.Pool) -> None:
    """The floor's statement applies a transfer (``ok``), not a cheaper refusal."""
    statement = FLOOR_SCRIPT.split("SELECT", 1)[1]
    values = {"a": "1", "c": "2", "amount": "1"}
    statement = re.sub(r"(?<!:):(\w+)\b", lambda m: values[m.group(1)], statement)
    result = await pool.fetchval("SELECT" + statement)
    if result != "ok":
        raise RuntimeError(f"the floor's statement answers {result!r}, not 'ok'")


async def prepare_ledger(ledger: PostgresLedger) -> None:
    bank = uuid.uuid4()
    await ledger.create_accounts([NewAccount(id=bank, code=100)])
    for start in range(1, ACCOUNTS + 1, 1_000):
        chunk = [account_id(n) for n in range(start, min(start + 1_000, ACCOUNTS + 1))]
        await ledger.create_accounts(
            [
                NewAccount(id=a, code=1, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
                for a in chunk
            ]
        )
        funding = [
            Transfer(
                id=uuid.uuid4(), debit_account_id=bank, credit_account_id=a, amount=10**9, code=1
            )
            for a in chunk
        ]
        await ledger.create_transfers(funding)


# -- the run -------------------------------------------------------------------------


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


async def run(options: argparse.Namespace) -> None:
    clients_counts = [int(c) for c in options.clients.split(",") if c]
    pgbench_dsn = with_database(options.dsn, options.pgbench_db)
    ledger_dsn = with_database(options.dsn, options.ledger_db)
    await ensure_database(options.dsn, options.pgbench_db)
    await ensure_database(options.dsn, options.ledger_db)
    tpcb_schema = f"pgbench_{secrets.token_hex(4)}"
    ledger_schema = f"bench_{secrets.token_hex(4)}"
    await create_schema(pgbench_dsn, tpcb_schema)
    try:
        await migrate(ledger_dsn, ledger_schema)
        print(f"initialising {options.pgbench_db}.{tpcb_schema} (pgbench -i -s 4) ...", flush=True)
        pgbench(pgbench_dsn, tpcb_schema, ["-i", "-s", "4", "-q"])
        pool = await create_pool(
            ledger_dsn,
            min_size=max(clients_counts),
            max_size=max(clients_counts),
            server_settings={"search_path": ledger_schema},
        )
        try:
            ledger = PostgresLedger(pool, SystemClock())
            grouped = {
                cap: PostgresLedger(pool, SystemClock(), group_max_in_flight=cap)
                for cap in group_caps(options)
            }
            print(f"funding {ACCOUNTS:,} accounts in {options.ledger_db}.{ledger_schema} ...")
            await prepare_ledger(ledger)
            await check_floor_statement(pool)
            pids = await backend_pids(pool, max(clients_counts))
            driver = await driver_connections(ledger_dsn, ledger_schema, max(clients_counts))
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    floor_script = Path(tmp) / "ledger_create_transfer.sql"
                    floor_script.write_text(FLOOR_SCRIPT)
                    await measure(
                        options,
                        clients_counts,
                        ledger,
                        grouped,
                        pids,
                        floor_script,
                        tpcb_schema,
                        ledger_schema,
                        driver,
                    )
            finally:
                for conn in driver:
                    await conn.close()
        finally:
            await pool.close()
    finally:
        await drop_schema(pgbench_dsn, tpcb_schema)
        await drop_schema(ledger_dsn, ledger_schema)


async def wal_position(conn: asyncpg.Connection) -> int:
    """The server's WAL insert position, in bytes from the start."""
    return int(await conn.fetchval("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"))


async def measure(
    options: argparse.Namespace,
    clients_counts: list[int],
    ledger: PostgresLedger,
    grouped: dict[int, PostgresLedger],
    pids: list[int],
    floor_script: Path,
    tpcb_schema: str,
    ledger_schema: str,
    driver: list[asyncpg.Connection],
) -> None:
    seconds: float = options.seconds
    pgbench_dsn = with_database(options.dsn, options.pgbench_db)
    ledger_dsn = with_database(options.dsn, options.ledger_db)
    runs: dict[tuple[str, int], list[Side]] = {}
    loads: list[str] = []

    inputs: list[str] = options.inputs

    def sides(
        clients: int,
    ) -> list[tuple[str, Callable[[], Side] | tuple[PostgresLedger, int, str] | None]]:
        return [
            (
                "tpcb",
                lambda: pgbench_run(
                    pgbench_dsn, tpcb_schema, ["-b", "tpcb-like"], clients, seconds
                ),
            ),
            (
                "floor",
                lambda: pgbench_run(
                    ledger_dsn, ledger_schema, ["-f", str(floor_script)], clients, seconds
                ),
            ),
            ("driver", None),
            *((ledger_key(b, i), (ledger, b, i)) for i in inputs for b in BATCH_SIZES),
            *((f"grouped-{cap}", (g, 1, inputs[0])) for cap, g in grouped.items()),
        ]

    # WAL is written for the whole server: a connection of its own reads its position
    wal_reader = await asyncpg.connect(ledger_dsn)
    for n in range(options.rounds):
        loads.append(load_average())
        print(f"round {n + 1}/{options.rounds} (load average {loads[-1]}) ...", flush=True)
        for clients in clients_counts:
            order = sides(clients)
            if n % 2:
                order.reverse()  # alternate who goes first
            for name, side in order:
                wal_before = await wal_position(wal_reader)
                if side is None:  # asyncpg alone, with the ledger side's first inputs
                    done = await driver_run(driver, clients, seconds, n * 100 + clients, inputs[0])
                elif isinstance(side, tuple):
                    on, batch, mode = side
                    done = await ledger_run(
                        on, pids, clients, batch, seconds, n * 100 + clients, mode
                    )
                else:
                    done = await asyncio.to_thread(side)
                if done.transactions:
                    done.wal = (await wal_position(wal_reader) - wal_before) / done.transactions
                runs.setdefault((name, clients), []).append(done)
    await wal_reader.close()
    loads.append(load_average())
    report(options, clients_counts, sorted(grouped), runs, loads)


def report(
    options: argparse.Namespace,
    clients_counts: list[int],
    caps: list[int],
    runs: dict[tuple[str, int], list[Side]],
    loads: list[str],
) -> None:
    median = {key: statistics.median(s.rate for s in sides) for key, sides in runs.items()}
    inputs: list[str] = options.inputs
    labels = {
        "tpcb": "pgbench tpcb-like -M prepared",
        "floor": "pgbench ledger_create_transfer (floor)",
        "driver": "asyncpg alone, prepared, 1/call",
        **{ledger_key(b, i): ledger_label(b, i) for i in inputs for b in BATCH_SIZES},
        **{f"grouped-{cap}": f"ledger 1/call, grouped at {cap} in flight" for cap in caps},
    }
    print(
        f"\n{options.seconds:g} s per run, median of {options.rounds} interleaved round(s), "
        "transactions (or transfers)/s; lowest-highest in brackets"
    )
    print("the Python client's rate and CPU include making each call's inputs:")
    for mode in inputs:
        print(f"  {INPUTS_SAID[mode]}")
    print(f"load average (1 5 15 min) before each round and at the end: {' | '.join(loads)}")
    for clients in clients_counts:
        print(f"\n{clients} client(s):")
        floor, tpcb = median[("floor", clients)], median[("tpcb", clients)]
        for name, label in labels.items():
            values = [s.rate for s in runs[(name, clients)]]
            value = median[(name, clients)]
            ratios = ""
            if name.startswith(("ledger", "grouped", "driver")):
                ratios = f"  {value / floor:5.2f}x floor  {value / tpcb:5.2f}x tpcb"
            groups = [s.grouped for s in runs[(name, clients)] if s.grouped is not None]
            if groups:
                ratios += f"  {statistics.median(groups):.1f} callers/grouped call"
            print(f"  {label:46}{value:>10,.0f}  ({min(values):,.0f}-{max(values):,.0f}){ratios}")
        print("  CPU per transaction (call), median, us: client user+system; server backends")
        for name, label in labels.items():
            print(f"    {label:46}{cpu_line(runs[(name, clients)])}")
        print(
            "  CPU of every process on the machine per transaction (/proc/stat; whatever "
            "else runs counts too), median; the client's involuntary context switches per "
            "call (pgbench: per transaction, all its threads); the WAL the server wrote per "
            "transaction (what it flushes and replicates; whatever else writes counts too)"
        )
        for name, label in labels.items():
            print(f"    {label:46}{machine_line(runs[(name, clients)])}")
    # the goals are stated at 4 clients: judged there when it ran, else at the most
    last = GOAL_CLIENTS if GOAL_CLIENTS in clients_counts else max(clients_counts)
    for n, mode in enumerate(inputs):
        one = median[(ledger_key(1, mode), last)]
        print(
            f"{'' if n else chr(10)}goals at {last} clients, 1 transfer/call ({mode} inputs): "
            f">= 0.9x the floor: {one / median[('floor', last)]:.2f}x; >= 0.9x TPC-B prepared: "
            f"{one / median[('tpcb', last)]:.2f}x"
        )
    driver = median[("driver", last)]
    print(
        f"  what bounds it: asyncpg alone (the same statement, nothing of ours) reaches "
        f"{driver / median[('floor', last)]:.2f}x the floor; the ledger 1/call "
        f"({inputs[0]} inputs) is {median[(ledger_key(1, inputs[0]), last)] / driver:.2f}x "
        "asyncpg alone"
    )
    for cap in caps:
        on = median[(f"grouped-{cap}", last)]
        print(
            f"  with group commit at {cap} in flight (several callers' transfers in one "
            f"commit): {on / median[('floor', last)]:.2f}x the floor, "
            f"{on / median[('tpcb', last)]:.2f}x TPC-B prepared"
        )


#: what each ``--inputs`` mode puts in the client's figures, said in the report
INPUTS_SAID = {
    "cheap": "cheap: a Transfer per call; its id from one random.getrandbits(128) (C) made a "
    "version-4 uuid.UUID; pgbench's picks taken in turn from a table of 65,536 drawn "
    "before the timed rounds",
    "uuid4": "uuid4 (uuid4 per call): a Transfer per call; its id from uuid.uuid4(); "
    "pgbench's picks drawn per call with random.randrange (three calls)",
}


def ledger_key(batch: int, inputs: str) -> str:
    """A ledger side's key: ``ledger-1``, or ``ledger-1-uuid4`` for another ``--inputs``."""
    return f"ledger-{batch}" if inputs == "cheap" else f"ledger-{batch}-{inputs}"


def ledger_label(batch: int, inputs: str) -> str:
    label = f"ledger from Python, {batch}/call"
    return label if inputs == "cheap" else f"{label} ({inputs} per call)"


def group_caps(options: argparse.Namespace) -> list[int]:
    return sorted({int(c) for c in options.group_max_in_flight.split(",") if c and int(c) > 0})


def cpu_line(sides: list[Side]) -> str:
    user = statistics.median(s.client_user for s in sides) * 1e6
    system = statistics.median(s.client_system for s in sides) * 1e6
    totals = [(s.client_user + s.client_system) * 1e6 for s in sides]
    line = (
        f"client {statistics.median(totals):6.0f} ({min(totals):.0f}-{max(totals):.0f}; "
        f"user {user:.0f} sys {system:.0f})"
    )
    servers = [s.server * 1e6 for s in sides if s.server is not None]
    if servers:
        line += f"  server {statistics.median(servers):6.0f}"
    return line


def machine_line(sides: list[Side]) -> str:
    """Every process's CPU per transaction and the client's preemptions per call."""
    line = ""
    machines = [s.machine * 1e6 for s in sides if s.machine is not None]
    if machines:
        line = f"machine {statistics.median(machines):6.0f} us/transaction"
    preempted = [s.preempted for s in sides if s.preempted is not None]
    if preempted:
        line += f"  client preempted {statistics.median(preempted):.2f}/call"
    wal = [s.wal for s in sides if s.wal is not None]
    if wal:
        line += f"  WAL {statistics.median(wal):5.0f} B/transaction"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="server (its database is not used)")
    parser.add_argument("--pgbench-db", default="finbank_pgbench", help="TPC-B's database")
    parser.add_argument("--ledger-db", default="finbank_bench", help="the ledger's database")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default="1,4", help="comma-separated client counts")
    parser.add_argument(
        "--group-max-in-flight",
        default="1,2",
        help="comma-separated group commit caps, one ledger side each ('' or 0: none)",
    )
    parser.add_argument(
        "--inputs",
        default="cheap",
        help="comma-separated: how the client makes each call's transfer, one ledger side "
        "each: cheap (ids from getrandbits, picks drawn beforehand) or uuid4 (uuid4 and "
        "randrange per call); group commit uses the first",
    )
    options = parser.parse_args()
    options.rounds = max(1, options.rounds)
    options.inputs = list(dict.fromkeys(i for i in options.inputs.split(",") if i))
    unknown = [i for i in options.inputs if i not in INPUTS]
    if unknown or not options.inputs:
        parser.error(f"--inputs: {', '.join(unknown) or 'none'}; choose among {', '.join(INPUTS)}")
    # on uvloop when installed, as ``finbank serve`` runs (uvicorn[standard])
    try:
        import uvloop
    except ImportError:  # pragma: no cover - without the http extra
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run(options))


if __name__ == "__main__":
    main()
