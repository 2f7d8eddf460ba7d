"""The PostgreSQL ledger against pgbench's TPC-B-like script, on the same server.

Run: ``.venv/bin/python benchmarks/ledger_postgres.py [--seconds 10] [--rounds 3] [--dsn DSN]``

Prints, for 1 and 4 concurrent clients, the median over ``--rounds`` rounds
(and the lowest and highest) of:

* pgbench ``-b tpcb-like`` transactions/s (one bank transfer per transaction:
  update an account, read it, update a teller and a branch, insert history),
  in a fresh schema of database ``finbank_pgbench`` initialised with
  ``pgbench -i -s 4`` (each run has its own, so two runs at once do not collide);
* ``PostgresLedger.create_transfers`` transfers/s with 1 and with 100
  transfers per call (random transfers among 10,000 customer accounts, in a
  fresh schema of database ``finbank_bench``);
* each figure's ratio to pgbench at the same client count.

Same server, same settings (fsync and synchronous_commit as configured).
The runs are interleaved: each round runs pgbench and then the ledger at
each client count, so a change in the machine's load during the benchmark
hits both sides alike instead of biasing the ratio. Figures still vary with
whatever else runs on the machine; this prints, it never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from finbank_adapters.postgres import PostgresLedger
from finbank_adapters.postgres.migrations import migrate, quote_ident
from finbank_adapters.postgres.pool import create_pool
from finbank_adapters.system import SystemClock
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateTransferResult,
    NewAccount,
    Transfer,
)

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PGBENCH_DB = "finbank_pgbench"
LEDGER_DB = "finbank_bench"
ACCOUNTS = 10_000  # pgbench -s 4 has 400,000; fewer would make 100-transfer batches collide
CLIENTS = (1, 4)
BATCH_SIZES = (1, 100)


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


# -- pgbench ----------------------------------------------------------------------


def pgbench_binary() -> str:
    found = shutil.which("pgbench")
    if found is None:
        raise SystemExit("pgbench not found on PATH (package postgresql-client)")
    return found


def pgbench_args(dsn: str) -> list[str]:
    parts = urlsplit(dsn)
    args = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    if parts.username:
        args += ["-U", parts.username]
    return args


def pgbench(args: list[str], schema: str) -> str:
    """Run pgbench on its tables in ``schema`` (a run's own: concurrent runs do not collide)."""
    done = subprocess.run(
        [pgbench_binary(), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PGOPTIONS": f"-c search_path={schema}"},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgbench {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def pgbench_init(dsn: str, schema: str) -> None:
    pgbench(["-i", "-s", "4", "-q", *pgbench_args(dsn), PGBENCH_DB], schema)


def pgbench_tps(dsn: str, schema: str, clients: int, seconds: int) -> float:
    stdout = pgbench(
        [
            "-b",
            "tpcb-like",
            "-c",
            str(clients),
            "-j",
            str(clients),
            "-T",
            str(seconds),
            *pgbench_args(dsn),
            PGBENCH_DB,
        ],
        schema,
    )
    match = re.search(r"tps = ([0-9.]+)", stdout)
    if match is None:
        raise RuntimeError(f"no tps in pgbench output:\n{stdout}")
    return float(match.group(1))


# -- the ledger -----------------------------------------------------------------


@dataclass
class LedgerRun:
    transfers: int
    calls: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.transfers / self.seconds


async def ledger_rate(
    pool: asyncpg.Pool, accounts: list[uuid.UUID], clients: int, batch: int, seconds: float
) -> LedgerRun:
    ledger = PostgresLedger(pool, SystemClock())
    rng = random.Random(clients * 1000 + batch)
    applied = 0
    calls = 0
    deadline = time.perf_counter() + seconds

    def transfer() -> Transfer:
        debit, credit = rng.sample(accounts, 2)
        return Transfer(
            id=uuid.uuid4(),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=rng.randint(1, 100),
            code=3,
        )

    async def client() -> None:
        nonlocal applied, calls
        while time.perf_counter() < deadline:
            results = await ledger.create_transfers([transfer() for _ in range(batch)])
            applied += sum(r is CreateTransferResult.OK for r in results)
            calls += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return LedgerRun(applied, calls, time.perf_counter() - started)


async def prepare_ledger(pool: asyncpg.Pool) -> list[uuid.UUID]:
    ledger = PostgresLedger(pool, SystemClock())
    bank = uuid.uuid4()
    accounts = [uuid.uuid4() for _ in range(ACCOUNTS)]
    await ledger.create_accounts([NewAccount(id=bank, code=100)])
    for start in range(0, ACCOUNTS, 1_000):
        chunk = accounts[start : start + 1_000]
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
    return accounts


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    seconds: int = options.seconds
    rounds: int = max(1, options.rounds)

    await ensure_database(options.dsn, PGBENCH_DB)
    await ensure_database(options.dsn, LEDGER_DB)
    pgbench_dsn = with_database(options.dsn, PGBENCH_DB)
    pgbench_schema = f"pgbench_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(pgbench_dsn)
    try:
        await conn.execute(f"CREATE SCHEMA {quote_ident(pgbench_schema)}")
    finally:
        await conn.close()
    try:
        await run(options.dsn, pgbench_schema, seconds, rounds)
    finally:
        conn = await asyncpg.connect(pgbench_dsn)
        try:
            await conn.execute(f"DROP SCHEMA {quote_ident(pgbench_schema)} CASCADE")
        finally:
            await conn.close()


async def run(dsn: str, pgbench_schema: str, seconds: int, rounds: int) -> None:
    print(f"initialising {PGBENCH_DB}.{pgbench_schema} (pgbench -i -s 4) ...", flush=True)
    pgbench_init(dsn, pgbench_schema)
    pgbench_runs: dict[int, list[float]] = {c: [] for c in CLIENTS}

    ledger_dsn = with_database(dsn, LEDGER_DB)
    schema = f"bench_{secrets.token_hex(4)}"
    await migrate(ledger_dsn, schema)
    ledger_runs: dict[tuple[int, int], list[float]] = {
        (b, c): [] for b in BATCH_SIZES for c in CLIENTS
    }
    try:
        pool = await create_pool(
            ledger_dsn,
            min_size=max(CLIENTS),
            max_size=max(CLIENTS),
            server_settings={"search_path": schema},
        )
        try:
            accounts = await prepare_ledger(pool)
            for n in range(rounds):
                print(f"round {n + 1}/{rounds} ...", flush=True)
                for clients in CLIENTS:
                    tps = pgbench_tps(dsn, pgbench_schema, clients, seconds)
                    pgbench_runs[clients].append(tps)
                    for batch in BATCH_SIZES:
                        run = await ledger_rate(pool, accounts, clients, batch, seconds)
                        ledger_runs[(batch, clients)].append(run.per_second)
        finally:
            await pool.close()
    finally:
        conn = await asyncpg.connect(ledger_dsn)
        try:
            await conn.execute(f"DROP SCHEMA {quote_ident(schema)} CASCADE")
        finally:
            await conn.close()

    pgbench = {c: statistics.median(runs) for c, runs in pgbench_runs.items()}
    results = {key: statistics.median(runs) for key, runs in ledger_runs.items()}
    print(
        f"\n{seconds} s per run, median of {rounds} interleaved round(s); transfers/s"
        " (ratio to pgbench tpcb-like at the same clients)"
    )
    print(f"{'':32}" + "".join(f"{f'{c} client(s)':>22}" for c in CLIENTS))
    print(f"{'pgbench -b tpcb-like':32}" + "".join(f"{pgbench[c]:>22,.0f}" for c in CLIENTS))
    for batch in BATCH_SIZES:
        label = f"ledger, {batch} transfer(s)/call"
        cells = "".join(
            f"{results[(batch, c)]:>14,.0f} ({results[(batch, c)] / pgbench[c]:5.2f}x)"
            for c in CLIENTS
        )
        print(f"{label:32}{cells}")
    print("\nlowest-highest per run:")
    for c in CLIENTS:
        print(f"  pgbench, {c} client(s): {min(pgbench_runs[c]):,.0f}-{max(pgbench_runs[c]):,.0f}")
        for batch in BATCH_SIZES:
            runs = ledger_runs[(batch, c)]
            print(f"  ledger {batch}/call, {c} client(s): {min(runs):,.0f}-{max(runs):,.0f}")
    one, hundred = results[(1, 4)], results[(100, 4)]
    print(
        f"\ngoals at 4 clients: 1/call >= 0.9x pgbench: {one / pgbench[4]:.2f}x; "
        f"100/call >= 5x pgbench: {hundred / pgbench[4]:.2f}x"
    )


if __name__ == "__main__":
    asyncio.run(main())
