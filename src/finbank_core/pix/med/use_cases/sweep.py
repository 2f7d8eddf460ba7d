"""The MED sweeper: the reader of last resort.

What a deadline or a stopped delivery leaves behind is finished by the next
caller that reads the case or the block (``common``'s module doc). When no
caller comes, the money waits: a case's holds have no timeout, and a return
the case took is owed to our customer. :class:`SweepMed` is that caller for
everything due (``MedCase.attention_at``, ``PrecautionaryBlock.attention_at``):

* an accepted case with no request past its deadline is lapsed and its holds
  voided (the customer's money is free again), as any reader would;
* as the payer's bank, a return the case took and did not finish is credited
  once and recorded ``DEVOLVIDO`` (:func:`finish_taken_returns`);
* as the receiving bank, returns still in progress are executed again
  (:class:`ExecuteMedReturns`: one another caller took within its lease is
  left to it);
* a block whose deadline passed, still recorded ``ACTIVE``, is recorded
  ``RELEASED`` and ``pix.med.block_released`` published (the ledger voided its
  hold at the deadline already).

Each is what a view (or a redelivery) does, under the same ids and versions:
a sweep at once with views, deliveries and other sweeps moves money once.
One pass lists what is due up to the clock's ``now``, page by page, and
looks at each item once. An item whose step fails (the ledger or the network
unreachable, a version race lost ``RETRIES`` times) is named in the result
and stays due for the next pass; the others go on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import msgspec

from finbank_core.pix.med.model import MedDue, MedSide
from finbank_core.pix.med.use_cases.common import MedDeps
from finbank_core.pix.med.use_cases.payer import finish_taken_returns
from finbank_core.pix.med.use_cases.refund import ExecuteMedReturns, ExecuteMedReturnsCommand
from finbank_core.pix.refunds import RefundStatus
from finbank_core.shared.errors import DomainError, InvalidInput

#: most items one page of a pass reads from the store
MAX_PAGE_SIZE = 1000


class SweepMedCommand(msgspec.Struct, frozen=True, kw_only=True):
    #: items read from the store at a time (1 to :data:`MAX_PAGE_SIZE`)
    page_size: int = 100


class SweepMedResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one pass looked at, up to ``until``."""

    until: datetime
    #: due cases and blocks read and moved on (or found moved on by another caller)
    cases: int = 0
    blocks: int = 0
    #: EndToEndIds whose step failed this pass: they stay due (no personal data)
    failed_cases: tuple[str, ...] = ()
    failed_blocks: tuple[str, ...] = ()


class SweepMed:
    """One pass over the MED cases and blocks due (see the module docstring)."""

    def __init__(self, deps: MedDeps) -> None:
        self._d = deps

    async def __call__(self, cmd: SweepMedCommand) -> SweepMedResult:
        if not 1 <= cmd.page_size <= MAX_PAGE_SIZE:
            raise InvalidInput(f"page_size is 1 to {MAX_PAGE_SIZE}", field="page_size")
        d = self._d
        until = d.clock.now()
        cases, failed_cases = await self._pass(
            lambda after: d.repository.due_cases(until, after=after, limit=cmd.page_size),
            self._case,
        )
        blocks, failed_blocks = await self._pass(
            lambda after: d.repository.due_blocks(until, after=after, limit=cmd.page_size),
            d.current_block,
        )
        return SweepMedResult(
            until=until,
            cases=cases,
            blocks=blocks,
            failed_cases=tuple(failed_cases),
            failed_blocks=tuple(failed_blocks),
        )

    @staticmethod
    async def _pass(
        page: Callable[[MedDue | None], Awaitable[list[MedDue]]],
        step: Callable[[str], Awaitable[object]],
    ) -> tuple[int, list[str]]:
        """Every item ``page`` lists, each once: keyset pages, so one that stays due
        is not read again; and one whose step moved its due time on (a return taken
        again, due from then), listed again further on, is skipped in this pass."""
        done, failed = 0, []
        seen: set[str] = set()
        after: MedDue | None = None
        while True:
            due = await page(after)
            for item in due:
                if item.end_to_end_id in seen:
                    continue
                seen.add(item.end_to_end_id)
                try:
                    await step(item.end_to_end_id)
                except DomainError:
                    failed.append(item.end_to_end_id)
                else:
                    done += 1
            if not due:
                return done, failed
            after = due[-1]

    async def _case(self, end_to_end_id: str) -> None:
        d = self._d
        case = await d.current_case(end_to_end_id)  # lapsed first, holds voided, if due
        if case is None:
            return
        if case.side is MedSide.PAYER:
            await finish_taken_returns(d, case)
        elif any(r.status is RefundStatus.EM_PROCESSAMENTO for r in case.returns):
            await ExecuteMedReturns(d)(ExecuteMedReturnsCommand(end_to_end_id=end_to_end_id))


__all__ = ["MAX_PAGE_SIZE", "SweepMed", "SweepMedCommand", "SweepMedResult"]
