"""Coalesced reads of rows by id: concurrent callers' look-ups as one statement.

With ``max_in_flight`` reads in flight, a caller that arrives does not send
its own statement: it waits in a queue, and when a read in flight ends, what
waits goes as ONE statement for the union of the waiting callers' ids
(``docs/postgres.md``, "Coalesced account reads"). Each caller gets the rows
of its own ids only. Below the cap a read goes straight out, so at low load
nothing waits.

What a caller is answered with was read by a statement sent after it called
(a waiting caller only joins a statement that has not been sent yet), so a
change committed before it called is seen, as by a read of its own.

Errors: a statement of several callers that raised a driver error gives each
caller its own translated error (``ServiceUnavailable`` for a lost
connection), chained to the driver's; any other error (a bug) sends each
caller's read again alone, so each gets its own outcome. A caller cancelled
while waiting is dropped; once its statement was sent, it runs on in a task
of its own and answers the others.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from finbank_adapters.postgres.errors import translate_error, translated

#: the rows of a read, by id (shared read-only by the callers of one statement)
Rows = dict[uuid.UUID, Any]
#: reads the rows of these ids (a caller's list as given, or the distinct ids of several
#: callers); raises driver errors untranslated
ReadRows = Callable[[list[uuid.UUID]], Awaitable[list[Any]]]


class _Waiter:
    """One caller waiting for a coalesced read."""

    __slots__ = ("future", "ids")

    def __init__(self, ids: Sequence[uuid.UUID], future: asyncio.Future[Rows]) -> None:
        self.ids = ids
        self.future = future


#: the answer that tells a waiting caller to read itself, in the slot it was given
_GO_ALONE: Rows = {}


def _answer(waiter: _Waiter, rows: Rows | None, exception: BaseException | None = None) -> None:
    """Answer a waiting caller, unless it was cancelled meanwhile."""
    future = waiter.future
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        assert rows is not None
        future.set_result(rows)


class CoalescedReads:
    """Reads by id through ``read_rows``, with concurrent callers' reads coalesced.

    ``key``: a row's id (its first column by default). ``max_in_flight``: 0
    sends every read at once (off). ``max_ids``: most distinct ids one
    coalesced statement carries; a caller with more reads alone, uncounted.
    """

    def __init__(
        self,
        read_rows: ReadRows,
        *,
        max_in_flight: int,
        max_ids: int = 256,
        key: Callable[[Any], uuid.UUID] | None = None,
    ) -> None:
        if max_in_flight < 0 or max_ids < 1:
            raise ValueError("max_in_flight >= 0 and max_ids >= 1")
        self._read_rows = read_rows
        self._cap = max_in_flight or sys.maxsize
        self._max_ids = max_ids
        self._key = key
        self._in_flight = 0
        self._queue: deque[_Waiter] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        #: statements that carried several callers, and the callers they carried
        self.coalesced_reads = 0
        self.coalesced_callers = 0
        #: coalesced statements that raised an untranslated error (callers read again alone)
        self.fallbacks = 0

    @property
    def in_flight(self) -> int:
        """Reads (alone or coalesced) sent and not yet answered."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Callers waiting for a coalesced read (cancelled ones until they are dropped)."""
        return len(self._queue)

    async def rows(self, ids: Sequence[uuid.UUID]) -> Rows:
        """The rows of ``ids`` by id (absent ids absent), read after this call began.

        The answer may hold other callers' rows too: read only ``ids`` from it.
        Driver errors leave translated (``ServiceUnavailable``...).
        """
        if self._in_flight >= self._cap and len(ids) <= self._max_ids:
            return await self._queued(ids)
        self._in_flight += 1
        try:
            with translated():
                rows = await self._read_rows(list(ids))
        finally:
            self._release()
        return self._by_id(rows)

    async def _alone(self, ids: Sequence[uuid.UUID]) -> Rows:
        with translated():
            rows = await self._read_rows(list(ids))
        return self._by_id(rows)

    def _by_id(self, rows: list[Any]) -> Rows:
        key = self._key
        if key is None:
            return {row[0]: row for row in rows}
        return {key(row): row for row in rows}

    async def _queued(self, ids: Sequence[uuid.UUID]) -> Rows:
        future: asyncio.Future[Rows] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiter(ids, future))
        try:
            rows = await future
        except asyncio.CancelledError:
            if _told_to_go_alone(future):  # woken, then cancelled before it ran: free its slot
                self._release()
            raise
        if rows is not _GO_ALONE:
            return rows
        # alone in the queue when a slot freed: it reads itself, in that slot
        try:
            return await self._alone(ids)
        finally:
            self._release()

    def _release(self) -> None:
        """A read in flight ended: its slot goes to what waits."""
        self._in_flight -= 1
        if self._queue:
            self._drain()

    def _drain(self) -> None:
        """Send what waits, one statement per free slot."""
        queue = self._queue
        while queue and self._in_flight < self._cap:
            waiters: list[_Waiter] = []
            ids: dict[uuid.UUID, None] = {}
            while queue:
                head = queue[0]
                if head.future.done():  # its caller was cancelled
                    queue.popleft()
                    continue
                if waiters and len(ids) + len(head.ids) > self._max_ids:
                    break
                queue.popleft()
                waiters.append(head)
                ids.update(dict.fromkeys(head.ids))
            if not waiters:
                return
            self._in_flight += 1
            if len(waiters) == 1:  # nobody to read with: its caller reads itself (no task)
                waiters[0].future.set_result(_GO_ALONE)
                continue
            # its own empty context: it serves several callers, none of their traces
            task = asyncio.get_running_loop().create_task(
                self._read_together(waiters, list(ids)), context=contextvars.Context()
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _read_together(self, waiters: list[_Waiter], ids: list[uuid.UUID]) -> None:
        """One statement for the waiters' ids; each waiter answered (its own error if any).

        Once the statement has returned (rows or a driver error), the slot is freed
        before any waiter is answered: the next statement's task is scheduled ahead of
        their wake-ups, so it is on the wire while they run, instead of after them.
        """
        released = False
        try:
            self.coalesced_reads += 1
            self.coalesced_callers += len(waiters)
            try:
                rows = await self._read_rows(ids)
            except Exception as exc:
                if translate_error(exc) is exc:  # not a driver error: each reads again alone
                    self.fallbacks += 1
                    for waiter in waiters:
                        if not waiter.future.done():
                            await self._answer_alone(waiter)
                    return
                released = True
                self._release()
                # each caller its own error, chained to the driver's as a caller alone
                # gets it from translated() (callers in other tasks share none)
                for waiter in waiters:
                    mapped = translate_error(exc)
                    mapped.__cause__ = exc
                    _answer(waiter, None, mapped)
                return
            by_id = self._by_id(rows)
            released = True
            self._release()
            for waiter in waiters:
                _answer(waiter, by_id)
        except Exception as exc:  # a bug: every caller still waiting hears of it
            for waiter in waiters:
                _answer(waiter, None, exc)
        except BaseException:  # cancelled (the loop is closing): so are the waiting callers
            for waiter in waiters:
                waiter.future.cancel()
            raise
        finally:
            if not released:
                self._release()

    async def _answer_alone(self, waiter: _Waiter) -> None:
        try:
            rows = await self._alone(waiter.ids)
        except Exception as exc:
            _answer(waiter, None, exc)
        else:
            _answer(waiter, rows)


def _told_to_go_alone(future: asyncio.Future[Rows]) -> bool:
    return (
        future.done()
        and not future.cancelled()
        and future.exception() is None
        and future.result() is _GO_ALONE
    )
