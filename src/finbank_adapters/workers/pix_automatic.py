"""``finbank worker pix-automatic``: runs the Pix Automático debits that are due, exactly once.

Each round leases up to ``limit`` charges due today (Brasília) through the
store (PostgreSQL: ``FOR UPDATE SKIP LOCKED`` and a lease stamped in the same
statement; a lease lapses after ``lease_seconds``, so a crashed instance's
charges are picked up again) and runs each with ``ExecuteDueDebit``. Any
number of instances may run: the lease splits the work between them, and
the debit itself is exactly-once on its own (an attempt is claimed on the
charge's version, its ledger steps have ids derived from its EndToEndId; see
:mod:`finbank_core.pix.automatic.use_cases.debits`). A round that found
nothing waits ``interval_seconds`` (or until stopped).

This module holds the loop, which receives the use case it runs; the process
(the use case resolved from the bank's containers, run until stopped) is
:func:`finbank.runtime.run_pix_automatic_worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from finbank_adapters import tracing
from finbank_core.pix.automatic.use_cases import RunDueDebitsCommand, RunDueDebitsResult
from finbank_core.shared.errors import ServiceUnavailable

log = logging.getLogger(__name__)

RunDue = Callable[[RunDueDebitsCommand], Awaitable[RunDueDebitsResult]]


def default_holder() -> str:
    """This instance's name on its leases: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class PixAutomaticWorker:
    """The scheduler loop over ``run_due`` (``bank.pix.automatic.run_due``)."""

    run_due: RunDue
    holder: str
    limit: int = 100
    lease_seconds: int = 60
    interval_seconds: float = 5.0

    async def run_once(self) -> RunDueDebitsResult:
        """One round: lease the due charges and run each (one trace per round, tracing on)."""
        with tracing.root_span("RunDueDebits", {"finbank.worker": "pix-automatic"}):
            result = await self.run_due(
                RunDueDebitsCommand(
                    holder=self.holder, limit=self.limit, lease_seconds=self.lease_seconds
                )
            )
        for txid, code in result.failed:
            log.warning("pix automatic debit failed", extra={"txid": txid, "code": code})
        for charge in result.charges:
            log.info(
                "pix automatic debit",
                extra={
                    "txid": charge.txid,
                    "status": charge.status.value,
                    "attempts": len(charge.attempts),
                },
            )
        return result

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until ``stop`` is set; a full round goes again at once."""
        while not stop.is_set():
            try:
                result = await self.run_once()
            except ServiceUnavailable:
                log.warning("pix automatic: a dependency is unavailable; trying again")
                result = RunDueDebitsResult(charges=[])
            if len(result.charges) >= self.limit:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_seconds)
