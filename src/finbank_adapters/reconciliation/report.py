"""The report: one CSV per class and a JSON summary, written to a ``FileStore``.

Lines are spooled to temporary files while the run streams (memory stays
flat) and uploaded when it finishes. Nothing in the report depends on when it
ran, so the same inputs give byte-identical files.

Some cells come from outside the bank (a statement's entry reference), and
the report is opened in spreadsheets: rows are written by :mod:`csv` (a cell
with a comma, a quote or a line break is quoted, so it cannot forge a row) and
a cell a spreadsheet would run as a formula is defused (see :func:`_csv_text`).
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import AsyncIterator
from typing import IO

import msgspec

from finbank_core.reconciliation.model import (
    DiscrepancyClass,
    ReconciliationSummary,
    ReconItem,
    ReconLine,
)
from finbank_core.reconciliation.ports import FileStore
from finbank_core.shared.money import Money

CSV_COLUMNS = (
    "key",
    "class",
    "ledger_amount",
    "record_amount",
    "statement_amount",
    "ledger_direction",
    "record_direction",
    "statement_direction",
    "ledger_ref",
    "record_ref",
    "statement_ref",
    "ledger_at",
    "record_at",
    "statement_at",
)
SPOOL_BYTES = 4 << 20
CHUNK_BYTES = 1 << 16
#: what a spreadsheet reads as the start of a formula (OWASP's CSV injection list)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: a plain decimal number (``-1.00``): a spreadsheet reads it as a number, never a formula
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def _cells(item: ReconItem | None) -> tuple[str, str, str, str]:
    if item is None:
        return "", "", "", ""
    return (
        Money(item.amount_cents).to_bcb(),
        item.direction.value,
        item.reference,
        item.at.isoformat(),
    )


def _csv_text(cells: tuple[str, ...] | list[str]) -> str:
    """One CSV record, ``\\n``-terminated, quoted only where a cell needs it (so the
    usual row is the same bytes as a plain comma join).

    A cell a spreadsheet would run as a formula gets a single quote in front,
    so that it is shown as text. A plain number is left alone: ``-1.00`` is an
    amount, not a formula, and a quote in front would turn it into text.
    """
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(
        [
            "'" + cell
            if cell.startswith(_FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(cell)
            else cell
            for cell in cells
        ]
    )
    return buffer.getvalue()


_HEADER = _csv_text(CSV_COLUMNS)


def csv_row(line: ReconLine) -> str:
    led, rec, stm = _cells(line.ledger), _cells(line.record), _cells(line.statement)
    cells = [line.key, line.klass.value]
    for column in range(4):
        cells += (led[column], rec[column], stm[column])
    return _csv_text(cells)


class FileStoreReportSink:
    """Writes ``{prefix}/{class}.csv`` for every class and ``{prefix}/summary.json``."""

    def __init__(
        self, files: FileStore, prefix: str, spill_dir: str | os.PathLike[str] | None = None
    ) -> None:
        self._files = files
        self._prefix = prefix.rstrip("/")
        self._spool: dict[DiscrepancyClass, IO[bytes]] = {}
        self._spill_dir = os.fspath(spill_dir) if spill_dir is not None else None

    def _handle(self, klass: DiscrepancyClass) -> IO[bytes]:
        handle = self._spool.get(klass)
        if handle is None:
            handle = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed in finish()
                max_size=SPOOL_BYTES, dir=self._spill_dir
            )
            handle.write(_HEADER.encode())
            self._spool[klass] = handle
        return handle

    async def add(self, line: ReconLine) -> None:
        self._handle(line.klass).write(csv_row(line).encode())

    async def finish(self, summary: ReconciliationSummary) -> list[str]:
        paths: list[str] = []
        try:
            for klass in DiscrepancyClass:
                handle = self._handle(klass)  # every class gets a file, even if empty
                handle.seek(0)
                path = f"{self._prefix}/{klass.value}.csv"
                await self._files.put(path, _read(handle))
                paths.append(path)
        finally:
            for handle in self._spool.values():
                handle.close()
            self._spool.clear()
        summary_path = f"{self._prefix}/summary.json"
        paths.append(summary_path)
        summary.report_files = paths
        await self._files.put(
            summary_path, _once(msgspec.json.format(msgspec.json.encode(summary)))
        )
        return paths


async def _read(handle: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := handle.read(CHUNK_BYTES):
        yield chunk


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
