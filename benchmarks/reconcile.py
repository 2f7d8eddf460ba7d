"""Reconciliation throughput and peak memory for 100k and 1M synthetic items.

Run: ``python benchmarks/reconcile.py [--sizes 100000 1000000]``

Each size runs in its own process so its peak RSS is its own. The ledger and
record sources are synthetic (sorted by construction); the statement is a
CSV file written to a local ``FileStore``, read back and external-sorted
(spilling to disk), and the report is written through the ``FileStore``
sink, as in production. The goal is linear time and flat memory: the
``x first`` columns should stay near the size ratio for time and near 1 for
memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from typing import cast

DAY = date(2026, 3, 10)


async def run_one(size: int) -> dict[str, float]:
    from finbank_adapters.files import LocalFileStore
    from finbank_adapters.memory import FakeClock, InMemoryEventPublisher, InMemoryLedger
    from finbank_adapters.memory.ids import SequentialIdGenerator
    from finbank_adapters.reconciliation.generator import SyntheticDay
    from finbank_adapters.reconciliation.report import FileStoreReportSink
    from finbank_adapters.reconciliation.sources import FileStatementSource
    from finbank_core.accounts.ports import Ledger
    from finbank_core.reconciliation.use_cases import ReconcileCommand, ReconcileDay

    with tempfile.TemporaryDirectory() as root:
        files = LocalFileStore(root)
        day = SyntheticDay(DAY, size, seed=1)
        await files.put(f"statements/{DAY.isoformat()}.csv", day.statement_csv())
        clock = FakeClock(datetime(2026, 3, 11, 9, tzinfo=UTC))
        ledger = InMemoryLedger(clock)
        use_case = ReconcileDay(
            postings=day,
            records=day,
            statement=FileStatementSource(files, spill_dir=root),
            holds=ledger,
            ledger=cast(
                Ledger, ledger
            ),  # the metrics decorator's Awaitable is the port's async def
            sink=FileStoreReportSink(files, "reports", spill_dir=root),
            publisher=InMemoryEventPublisher(),
            clock=clock,
            ids=SequentialIdGenerator(),
        )
        start = time.perf_counter()
        summary = await use_case(ReconcileCommand(business_day=DAY))
        elapsed = time.perf_counter() - start
    items = sum(summary.items_read.values())
    return {
        "size": size,
        "items": items,
        "seconds": elapsed,
        "items_per_s": items / elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "discrepancies": summary.discrepancies,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(run_one(args.child))))
        return
    results = []
    for size in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(size)],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(out.stdout))
    first = results[0]
    print(
        f"{'items/source':>12}{'items read':>12}{'seconds':>9}{'items/s':>10}"
        f"{'x first time':>13}{'peak RSS MB':>12}{'x first RSS':>12}"
    )
    for r in results:
        print(
            f"{r['size']:>12,}{r['items']:>12,}{r['seconds']:>9.1f}{r['items_per_s']:>10,.0f}"
            f"{r['seconds'] / first['seconds']:>13.2f}{r['peak_rss_mb']:>12.0f}"
            f"{r['peak_rss_mb'] / first['peak_rss_mb']:>12.2f}"
        )


if __name__ == "__main__":
    main()
