"""What a ledger group costs the client: CPU per transfer at several group sizes, in one process.

Run: ``.venv/bin/python benchmarks/ledger_group_cost.py [--sizes 15,4,2]
[--callers 16] [--calls 400] [--rounds 3] [--dsn DSN] [--ledger-db finbank_bench]``

A ``PostgresLedger`` with group commit at one call in flight
(``group_max_in_flight=1``, the default of the local profile) serves
``--callers`` concurrent callers, each sending ``--calls`` calls of one plain
transfer with one event (the HTTP transfer's call), on uvloop when installed.
``group_max_transfers`` caps the groups at each ``--sizes`` value (with 16
callers and a cap of 15 the groups are full), so the same calls go out as
groups of different sizes. For each size the script prints this process's CPU
(user + system) per transfer, the mean callers per grouped call and the
transfers/s, median over ``--rounds`` interleaved rounds; then the least-squares
fit of CPU per transfer = a + b / size: ``a`` what every transfer costs the
client, ``b`` what a grouped call costs whatever its size (building its
arrays, asyncpg encoding them, the group's task, answering each caller).

The server runs in other processes: only the client's CPU is counted. The CPU
figures depend on the machine, much less on its load than the rates; this
prints, it never asserts. The schema (``ACCOUNTS`` funded accounts, as
``benchmarks/ledger_instructions.py`` makes them) is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ledger_instructions import ACCOUNTS, account_id, drop_schema, event_for, prepare  # noqa: E402
from ledger_postgres import DEFAULT_DSN, ensure_database, transfer_source, with_database  # noqa: E402

from finbank_adapters.postgres import PostgresLedger  # noqa: E402
from finbank_adapters.postgres.pool import create_pool  # noqa: E402
from finbank_adapters.system import SystemClock  # noqa: E402
from finbank_core.accounts.ledger import CreateTransferResult  # noqa: E402


async def measure(dsn: str, schema: str, size: int, callers: int, calls: int) -> dict[str, float]:
    """One run at group size cap ``size``: CPU us per transfer, mean group size, rate."""
    pool = await create_pool(dsn, min_size=4, max_size=4, server_settings={"search_path": schema})
    try:
        ledger = PostgresLedger(
            pool, SystemClock(), group_max_in_flight=1, group_max_transfers=size
        )
        ids = [account_id(n) for n in range(ACCOUNTS + 1)]
        transfer = transfer_source("cheap", 1, ids, ACCOUNTS)
        ok = [CreateTransferResult.OK]

        async def caller(count: int) -> None:
            for _ in range(count):
                t = transfer()
                results = await ledger.create_transfers([t], events=[event_for(t)])
                if results != ok:
                    raise RuntimeError(f"expected [ok], got {results}")

        await asyncio.gather(*(caller(max(1, calls // 8)) for _ in range(callers)))  # warm-up
        groups, members = ledger.grouped_calls, ledger.grouped_members
        before, started = os.times(), time.perf_counter()
        await asyncio.gather(*(caller(calls) for _ in range(callers)))
        after, elapsed = os.times(), time.perf_counter() - started
        total = callers * calls
        grouped = ledger.grouped_calls - groups
        return {
            # each clock's own difference, so equal readings give 0.0, never a rounding
            # error's -0.0 (os.times counts in ticks: a short run may see none)
            "cpu_us": ((after.user - before.user) + (after.system - before.system)) / total * 1e6,
            "mean_size": (ledger.grouped_members - members) / grouped if grouped else 1.0,
            "rate": total / elapsed,
        }
    finally:
        await pool.close()


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares of y = a + b * x over (x, y) points: (a, b)."""
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return mean_y, 0.0
    b = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return mean_y - b * mean_x, b


async def run(options: argparse.Namespace) -> None:
    sizes = [int(s) for s in options.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1:
        raise SystemExit("--sizes: positive group size caps, comma-separated")
    await ensure_database(options.dsn, options.ledger_db)
    dsn = with_database(options.dsn, options.ledger_db)
    schema = f"bench_{secrets.token_hex(4)}"
    try:
        await prepare(dsn, schema)
        runs: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
        for number in range(options.rounds):
            order = sizes if number % 2 == 0 else list(reversed(sizes))
            print(f"round {number + 1}/{options.rounds} ...", flush=True)
            for size in order:
                runs[size].append(await measure(dsn, schema, size, options.callers, options.calls))
    finally:
        await drop_schema(dsn, schema)
    print(
        f"\n{options.callers} callers x {options.calls} calls of one transfer with one event, "
        f"group commit at 1 in flight; median of {options.rounds} interleaved round(s)"
    )
    print(
        f"  {'size cap':>8}  {'mean size':>9}  {'client CPU us/transfer':>22}  {'transfers/s':>11}"
    )
    points: list[tuple[float, float]] = []
    for size in sizes:
        cpu = statistics.median(r["cpu_us"] for r in runs[size])
        mean_size = statistics.median(r["mean_size"] for r in runs[size])
        rate = statistics.median(r["rate"] for r in runs[size])
        low = min(r["cpu_us"] for r in runs[size])
        high = max(r["cpu_us"] for r in runs[size])
        print(
            f"  {size:>8}  {mean_size:>9.1f}  {cpu:>10.1f} ({low:.1f}-{high:.1f})  {rate:>11,.0f}"
        )
        points.append((1 / mean_size, cpu))
    per_transfer, per_group = fit(points)
    print(
        f"fit, CPU per transfer = a + b / mean size: a = {per_transfer:.1f} us a transfer, "
        f"b = {per_group:.1f} us a grouped call"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--ledger-db", default="finbank_bench")
    parser.add_argument("--sizes", default="15,4,2", help="group size caps, comma-separated")
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--calls", type=int, default=400, help="calls per caller and run")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    loop_factory: Any = None
    try:  # the loop finbank serve runs on (uvicorn[standard])
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run(options))


if __name__ == "__main__":
    main()
