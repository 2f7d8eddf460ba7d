"""Client CPU instructions per ``PostgresLedger.create_transfers`` call, independent of load.

Run: ``.venv/bin/python benchmarks/ledger_instructions.py [--calls 2000] [--warmup 500]
[--clients 4] [--events 0] [--inputs cheap] [--dsn DSN] [--ledger-db finbank_bench]
[--keep DIR]``

This process migrates a schema of its own in ``--ledger-db`` and funds
``ACCOUNTS`` customer accounts; a child process then runs under ``valgrind
--tool=callgrind`` with instrumentation off, on uvloop when installed (as
``finbank serve`` runs), opens the pool (``--clients`` connections) and warms
up with ``--warmup`` calls, turns instrumentation on (``callgrind.h``'s client
requests, from ``benchmarks/http_instructions.py``), makes ``--calls`` calls
of one plain transfer each from ``--clients`` concurrent tasks, as
``benchmarks/ledger_postgres.py`` does, turns it off and prints the
instructions divided by the calls. Every answer must be ``ok`` (checked). The
server runs in other processes: only the client's instructions are counted.

The count includes making each call's input, as ``ledger_postgres.py``'s
``--inputs`` says: ``cheap`` (the default: a ``Transfer`` per call, its id
from one ``random.getrandbits(128)`` made a version-4 ``uuid.UUID``, pgbench's
picks from a table drawn before the warm-up; about what pgbench's C
randoms cost) or ``uuid4`` (``uuid.uuid4()`` and three ``random.randrange``
per call, as a caller making everything per call pays: about 24k
instructions more a call).

``--events 1`` sends one ``TransferCompleted``-like event with each transfer
(the HTTP path's call). ``--no-valgrind`` runs the same loop natively and
prints microseconds of wall time and of the process's CPU per call
(load-dependent). ``--keep DIR`` keeps the callgrind file for
``callgrind_annotate``.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from http_instructions import instructions_of, toggle_library  # noqa: E402
from ledger_postgres import (  # noqa: E402
    DEFAULT_DSN,
    INPUTS,
    ensure_database,
    transfer_source,
    with_database,
)

from finbank_adapters.postgres import PostgresLedger  # noqa: E402
from finbank_adapters.postgres.migrations import migrate, quote_ident  # noqa: E402
from finbank_adapters.postgres.pool import create_pool  # noqa: E402
from finbank_adapters.system import SystemClock  # noqa: E402
from finbank_core.accounts.ledger import (  # noqa: E402
    AccountFlags,
    CreateTransferResult,
    NewAccount,
    Transfer,
)
from finbank_core.shared.events import EventEnvelope  # noqa: E402

ACCOUNTS = 1_000


def account_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012d}")


async def prepare(dsn: str, schema: str) -> None:
    await migrate(dsn, schema)
    pool = await create_pool(dsn, server_settings={"search_path": schema})
    try:
        ledger = PostgresLedger(pool, SystemClock())
        bank = uuid.uuid4()
        await ledger.create_accounts([NewAccount(id=bank, code=100)])
        ids = [account_id(n) for n in range(1, ACCOUNTS + 1)]
        flags = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
        await ledger.create_accounts([NewAccount(id=a, code=1, flags=flags) for a in ids])
        funding = [
            Transfer(
                id=uuid.uuid4(), debit_account_id=bank, credit_account_id=a, amount=10**12, code=1
            )
            for a in ids
        ]
        await ledger.create_transfers(funding)
    finally:
        await pool.close()


async def drop_schema(dsn: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
    finally:
        await conn.close()


def event_for(transfer: Transfer) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        type="TransferCompleted",
        version=1,
        aggregate_id=str(transfer.id),
        occurred_at=datetime.now(UTC),
        payload={"amount_cents": transfer.amount},
    )


async def run_child(options: argparse.Namespace) -> None:
    toggle: Any = ctypes.CDLL(options.toggle) if options.toggle else None
    pool = await create_pool(
        options.dsn,
        min_size=options.clients,
        max_size=options.clients,
        server_settings={"search_path": options.schema},
    )
    ledger = PostgresLedger(pool, SystemClock())
    ids = [account_id(n) for n in range(ACCOUNTS + 1)]
    transfer = transfer_source(options.inputs, 1, ids, ACCOUNTS)
    ok = CreateTransferResult.OK
    with_events = options.events

    async def client(calls: int) -> None:
        for _ in range(calls):
            t = transfer()
            if with_events:
                results = await ledger.create_transfers([t], events=[event_for(t)])
            else:
                results = await ledger.create_transfers([t])
            if results != [ok]:
                raise RuntimeError(f"expected [ok], got {results}")

    async def calls(total: int) -> None:
        share, extra = divmod(total, options.clients)
        await asyncio.gather(*(client(share + (i < extra)) for i in range(options.clients)))

    await calls(options.warmup)
    started, cpu = time.perf_counter(), os.times()
    if toggle is not None:
        toggle.finbank_instr_start()
    await calls(options.calls)
    if toggle is not None:
        toggle.finbank_instr_stop()
    elapsed, after = time.perf_counter() - started, os.times()
    await pool.close()
    print(
        json.dumps(
            {
                "us_per_call": elapsed / options.calls * 1e6,
                "user_us_per_call": (after.user - cpu.user) / options.calls * 1e6,
                "system_us_per_call": (after.system - cpu.system) / options.calls * 1e6,
            }
        )
    )


def measure(options: argparse.Namespace, dsn: str, schema: str, workdir: Path) -> str:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    child = [
        sys.executable,
        __file__,
        "--child",
        "--dsn",
        dsn,
        "--schema",
        schema,
        "--calls",
        str(options.calls),
        "--warmup",
        str(options.warmup),
        "--clients",
        str(options.clients),
        "--events",
        str(options.events),
        "--inputs",
        options.inputs,
    ]
    if not options.valgrind:
        done = subprocess.run(child, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(done.stderr[-3000:])
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        return (
            f"{figures['us_per_call']:,.0f} us/call wall, "
            f"client CPU {figures['user_us_per_call']:,.0f} us/call user + "
            f"{figures['system_us_per_call']:,.0f} system (native, load-dependent)"
        )
    library = toggle_library(workdir)
    out = workdir / "callgrind.ledger"
    done = subprocess.run(
        [
            shutil.which("valgrind") or "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}.%p",
            *child,
            "--toggle",
            str(library),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    dumps = sorted(workdir.glob("callgrind.ledger.*"))
    measured = [d for d in dumps if "measured" in d.read_text(errors="replace")[:2000]]
    if not measured:
        raise RuntimeError(f"no measured dump among {dumps}")
    total = instructions_of(measured[0])
    if options.keep:
        kept = Path(options.keep) / "callgrind.ledger.out"
        kept.write_bytes(measured[0].read_bytes())
    return f"{total / options.calls / 1000:,.1f}k instructions/call"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--ledger-db", default="finbank_bench")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--events", type=int, choices=(0, 1), default=0)
    parser.add_argument(
        "--inputs",
        choices=INPUTS,
        default="cheap",
        help="how each call's transfer is made (see benchmarks/ledger_postgres.py)",
    )
    parser.add_argument("--no-valgrind", dest="valgrind", action="store_false")
    parser.add_argument("--keep", help="a folder to keep the callgrind file in")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--toggle", help=argparse.SUPPRESS)
    options = parser.parse_args()
    try:  # the loop finbank serve runs on (uvicorn[standard])
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    if options.child:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(run_child(options))
        return
    dsn = with_database(options.dsn, options.ledger_db)
    schema = f"bench_{secrets.token_hex(4)}"
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(ensure_database(options.dsn, options.ledger_db))
        try:
            runner.run(prepare(dsn, schema))
            with tempfile.TemporaryDirectory() as workdir:
                print(
                    f"{options.clients} clients, events {options.events}, "
                    f"{options.inputs} inputs: "
                    f"{measure(options, dsn, schema, Path(workdir))}",
                    flush=True,
                )
        finally:
            runner.run(drop_schema(dsn, schema))


if __name__ == "__main__":
    main()
