"""Reconciliation sources over finbank's own ports and the statement files.

Each source sorts its items by key with :func:`sort_items` (bounded memory),
since neither the ledger's entry order nor a statement file's is by key.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

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
from finbank_core.reconciliation.use_cases import BUSINESS_TZ, day_bounds

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


_ONE_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)


class FileStatementSource:
    """Reads a day's statement (CSV or JSON Lines, see ``statement``) from a ``FileStore``.

    One file per business day, and a payment near midnight can be booked on
    one side and settled on the other: a run's window reaches a tolerance into
    the neighbouring days, so the run reads the statement of every day its
    window touches (the day's own, which must exist, and, when they exist, the
    day before and the day after), not its own file alone. Which run
    reconciles an entry:

    - the run of the business day its ``booking_datetime`` falls in (the
      matcher reports a line by its statement time), provided that run reads
      the entry's file, i.e. that day's window touches the file's day. Every
      run whose window holds the entry is given it, so a booking on the other
      side of midnight pairs with it, but only that one reports it;
    - otherwise (the time lies further from the file's day than any window
      reaching that file: another day, or a time in no day at all), the
      file's own run, which yields it although it lies outside the window: the
      matcher reports a statement item from outside the window as
      ``in_statement_not_booked``, whatever the other sources hold, since no
      run could match it. The neighbours' runs leave it out.

    So, once every day has been run with its neighbours' files in the store,
    every entry of every file has been matched or reported by exactly one run.
    A neighbouring file that does not exist is read as empty: a day reconciled
    before the next day's statement is in the store cannot see past its
    closing midnight, and the next file's entries timed on the day are reported
    by no run until the day is run again (see ``docs/reconciliation.md``).
    """

    def __init__(
        self,
        files: FileStore,
        *,
        path_for_day: Callable[[date], str] = default_statement_path,
        timezone: str = BUSINESS_TZ,
        chunk_size: int = DEFAULT_CHUNK,
        spill_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._files = files
        self._path_for_day = path_for_day
        self._zone = ZoneInfo(timezone)
        self._timezone = timezone
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

    async def _entries(self, path: str) -> AsyncIterator[ReconItem]:
        """Every entry of the file at ``path``; a malformed one names the file and line."""
        is_csv = path.endswith(".csv")
        number = 0
        try:
            async for line in self._lines(path):
                number += 1
                if not line.strip():
                    continue
                if is_csv and number == 1:
                    if line.rstrip("\r") != CSV_HEADER:
                        raise InvalidStatement(f"line 1: the header must be {CSV_HEADER}")
                    continue
                yield parse_csv_line(line, number) if is_csv else parse_jsonl_line(line, number)
        except InvalidStatement as exc:
            raise InvalidStatement(f"{path}: {exc.message}", path=path) from None

    def _local_day(self, at: datetime) -> date | None:
        """The business day of ``at``; ``None`` past the calendar's ends (year 1 or 9999)."""
        try:
            return at.astimezone(self._zone).date()
        except (OverflowError, ValueError):
            return None

    def _days_touched(
        self, day: date, before: timedelta, after: timedelta
    ) -> tuple[date, date] | None:
        """First and last business day that ``day``'s window touches (``None`` if off the
        calendar), the window reaching ``before`` ahead of the day and ``after`` past it."""
        try:
            start, end = day_bounds(day, self._timezone)
            first = self._local_day(start - before)
            last = self._local_day(end + after - _TICK)
        except (OverflowError, ValueError):
            return None
        return None if first is None or last is None else (first, last)

    async def _unsorted(
        self, business_day: date, start: datetime, end: datetime
    ) -> AsyncIterator[ReconItem]:
        day_start, day_end = day_bounds(business_day, self._timezone)
        before, after = max(day_start - start, timedelta(0)), max(end - day_end, timedelta(0))
        touched: dict[date, tuple[date, date] | None] = {}

        def reaches(home: date | None, file_day: date) -> bool:
            """Does the run of ``home`` (an entry's day) read ``file_day``'s statement?"""
            if home is None:
                return False
            if home not in touched:
                touched[home] = self._days_touched(home, before, after)
            span = touched[home]
            return span is not None and span[0] <= file_day <= span[1]

        span = self._days_touched(business_day, before, after) or (business_day, business_day)
        file_day = span[0]
        while file_day <= span[1]:
            path = self._path_for_day(file_day)
            if file_day == business_day:
                async for item in self._entries(path):
                    if start <= item.at < end:
                        yield item  # in the window: paired; reported by its own day's run
                    elif not reaches(self._local_day(item.at), file_day):
                        yield item  # no run can match it: reported here, unpaired
            elif await self._files.exists(path):  # a neighbour's may not be in yet
                async for item in self._entries(path):
                    if start <= item.at < end and reaches(self._local_day(item.at), file_day):
                        yield item
            file_day += _ONE_DAY

    def statement_items(
        self, business_day: date, start: datetime, end: datetime
    ) -> AsyncIterator[ReconItem]:
        return sort_items(
            self._unsorted(business_day, start, end),
            chunk_size=self._chunk_size,
            directory=self._spill_dir,
        )
