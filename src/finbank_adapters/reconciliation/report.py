"""The report: one CSV per class and a JSON summary, written to a ``FileStore``.

Lines are spooled to temporary files while the run streams (memory stays
flat) and uploaded when it finishes. Nothing in the report depends on when it
ran, so the same inputs give byte-identical files.
"""

from __future__ import annotations

import os
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


def _cells(item: ReconItem | None) -> tuple[str, str, str, str]:
    if item is None:
        return "", "", "", ""
    return (
        Money(item.amount_cents).to_bcb(),
        item.direction.value,
        item.reference,
        item.at.isoformat(),
    )


def csv_row(line: ReconLine) -> str:
    led, rec, stm = _cells(line.ledger), _cells(line.record), _cells(line.statement)
    cells = [line.key, line.klass.value]
    for column in range(4):
        cells += (led[column], rec[column], stm[column])
    return ",".join(cells) + "\n"


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
            handle.write((",".join(CSV_COLUMNS) + "\n").encode())
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
