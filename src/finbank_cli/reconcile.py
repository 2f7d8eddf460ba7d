"""``finbank reconcile``: a progress line while it streams, a summary table at the end.

Exit codes: 0 when the day reconciled with no discrepancy, 1 when the report
lists discrepancies (the report is written either way), 2 on bad input.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import date

from finbank import open_bank
from finbank_adapters._extras import require_extra
from finbank_core.reconciliation.model import ReconciliationSummary, ReconLine
from finbank_core.reconciliation.use_cases import ReconcileCommand
from finbank_core.shared.errors import DomainError
from finbank_core.shared.money import Money

require_extra("finbank_cli.reconcile", "http", ["rich"])

from rich.console import Console  # noqa: E402
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402


def summary_table(summary: ReconciliationSummary) -> Table:
    table = Table(
        title=f"Reconciliation of {summary.business_day.isoformat()} ({summary.timezone})"
    )
    table.add_column("class")
    table.add_column("items", justify="right")
    table.add_column("amount", justify="right")
    for klass, totals in summary.totals.items():
        table.add_row(klass, f"{totals.count:,}", Money(totals.amount_cents).format_brl())
    return table


async def _run(day: date | None, apply: bool, console: Console) -> ReconciliationSummary:
    async with open_bank() as bank:
        business_day = day or bank.reconciliation.yesterday()
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:,} lines"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task(f"reconciling {business_day.isoformat()}", total=None)
            last = time.monotonic()
            count = 0

            def advance(_line: ReconLine) -> None:
                nonlocal last, count
                count += 1
                now = time.monotonic()
                if now - last > 0.1:  # a refresh per line would cost more than the matching
                    progress.update(task, completed=count)
                    last = now

            command = ReconcileCommand(business_day=business_day, apply=apply)
            return await bank.reconciliation.reconcile_day(command, progress=advance)


def run_reconcile(date_text: str | None, *, apply: bool) -> int:
    console = Console(stderr=True)
    try:
        day = date.fromisoformat(date_text) if date_text else None
    except ValueError:
        console.print("--date must look like 2026-03-10")
        return 2
    try:
        summary = asyncio.run(_run(day, apply, console))
    except DomainError as exc:
        console.print(f"reconciliation failed: {exc.message} ({exc.code})")
        return 2
    out = Console(file=sys.stdout)
    out.print(summary_table(summary))
    mode = "applied" if summary.applied else "dry run"
    out.print(
        f"{summary.discrepancies:,} discrepancies; orphan holds voided: "
        f"{summary.orphan_holds_voided} ({mode}); report: {', '.join(summary.report_files[-1:])}"
    )
    return 1 if summary.discrepancies else 0
