"""Reconciliation sources over finbank's own ports and the statement files.

Each source sorts its items by key with :func:`sort_items` (bounded memory),
since neither the ledger's entry order nor a statement file's is by key.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime

from finbank_adapters.reconciliation.sorting import DEFAULT_CHUNK, sort_items
from finbank_core.accounts.ledger import EntrySide
from finbank_core.accounts.ports import Ledger
from finbank_core.accounts.use_cases import BankAccounts
from finbank_core.reconciliation.model import Direction, ReconItem
from finbank_core.reconciliation.ports import FileStore
from finbank_core.reconciliation.statement import (
    CSV_HEADER,
    InvalidStatement,
    parse_csv_line,
    parse_jsonl_line,
)

PAGE = 1_000


def _whole_text(user_data: str | None) -> str | None:
    return user_data or None


class LedgerSettlementPostings:
    """Posted entries on the PIX settlement account, keyed by ``key_of(user_data)``.

    By default the whole ``user_data`` is the key; the PIX sources pass a
    function that finds the EndToEndId in the statement text. Entries without
    a key are skipped. A credit on the settlement account is money leaving
    the bank (``OUT``).
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        chunk_size: int = DEFAULT_CHUNK,
        spill_dir: str | os.PathLike[str] | None = None,
        key_of: Callable[[str | None], str | None] = _whole_text,
    ) -> None:
        self._ledger = ledger
        self._chunk_size = chunk_size
        self._spill_dir = spill_dir
        self._key_of = key_of

    async def _unsorted(self, start: datetime, end: datetime) -> AsyncIterator[ReconItem]:
        after: int | None = None
        while True:
            page = await self._ledger.get_account_entries(
                BankAccounts.PIX_SETTLEMENT,
                since=start,
                until=end,
                after_sequence=after,
                limit=PAGE,
            )
            for entry in page.entries:
                key = self._key_of(entry.user_data)
                if key is None:
                    continue
                yield ReconItem(
                    key=key,
                    amount_cents=entry.amount,
                    direction=Direction.OUT if entry.side is EntrySide.CREDIT else Direction.IN,
                    at=entry.timestamp,
                    reference=str(entry.transfer_id),
                )
            if page.next_after_sequence is None:
                return
            after = page.next_after_sequence

    def postings(self, start: datetime, end: datetime) -> AsyncIterator[ReconItem]:
        return sort_items(
            self._unsorted(start, end), chunk_size=self._chunk_size, directory=self._spill_dir
        )


def default_statement_path(day: date) -> str:
    return f"statements/{day.isoformat()}.csv"


class FileStatementSource:
    """Reads the day's statement (CSV or JSON Lines, see ``statement``) from a ``FileStore``."""

    def __init__(
        self,
        files: FileStore,
        *,
        path_for_day: Callable[[date], str] = default_statement_path,
        chunk_size: int = DEFAULT_CHUNK,
        spill_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._files = files
        self._path_for_day = path_for_day
        self._chunk_size = chunk_size
        self._spill_dir = spill_dir

    async def _lines(self, path: str) -> AsyncIterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")()
        pending = ""
        async for chunk in self._files.get(path):
            pending += decoder.decode(chunk)
            *complete, pending = pending.split("\n")
            for line in complete:
                yield line
        pending += decoder.decode(b"", final=True)
        if pending:
            yield pending

    async def _unsorted(
        self, path: str, start: datetime, end: datetime
    ) -> AsyncIterator[ReconItem]:
        is_csv = path.endswith(".csv")
        number = 0
        async for line in self._lines(path):
            number += 1
            if not line.strip():
                continue
            if is_csv and number == 1:
                if line.rstrip("\r") != CSV_HEADER:
                    raise InvalidStatement(f"line 1: the header must be {CSV_HEADER}")
                continue
            item = parse_csv_line(line, number) if is_csv else parse_jsonl_line(line, number)
            if start <= item.at < end:
                yield item

    def statement_items(
        self, business_day: date, start: datetime, end: datetime
    ) -> AsyncIterator[ReconItem]:
        return sort_items(
            self._unsorted(self._path_for_day(business_day), start, end),
            chunk_size=self._chunk_size,
            directory=self._spill_dir,
        )
