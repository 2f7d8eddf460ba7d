"""``finbank demo`` on every profile: waiting for asynchronous PIX settlement.

On the ``memory`` profile PIX settles within the request; on ``local`` and
``aws`` the request answers ``PENDING`` and the outcome comes from two other
processes: ``finbank relay`` (outbox -> Kafka) and ``finbank worker
pix-settlement`` (Kafka -> the network -> ``SETTLED``/``REJECTED``). The
chapters call :func:`final_payment`, :func:`received_payment` and
:func:`settled_refund`, which return at once when the outcome is already
there and otherwise poll the bank, for at most ``timeout`` seconds (wall
time: this waits for other processes, it is no business deadline).

When the wait runs out, :class:`SettlementTimeout` says which process is
missing: the payment's event still in the PostgreSQL outbox means no relay
is draining it; an event gone from the outbox means the worker did not
handle it. ``finbank demo --with-workers`` runs the relay and the worker in
the demo's own process (:func:`background_workers`) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from finbank import Bank, provided
from finbank_adapters.settings import Settings
from finbank_core.pix.errors import PixPaymentNotFound
from finbank_core.pix.payments import PaymentStatus, PixPayment
from finbank_core.pix.refunds import PixRefund, RefundStatus
from finbank_core.pix.use_cases import GetPixPaymentQuery

#: how long the demo waits for one outcome by default
DEFAULT_TIMEOUT_SECONDS = 30.0
_POLL_SECONDS = 0.05
RELAY = "`finbank relay`"
WORKER = "`finbank worker pix-settlement`"


class SettlementTimeout(RuntimeError):
    """An outcome did not arrive in time; the message names the process that is not running."""


class Settlement:
    """How long to wait, and how to tell which process is missing (set per demo run)."""

    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS


async def _until(
    bank: Bank,
    what: str,
    aggregate_id: str,
    probe: Callable[[], Any],
) -> Any:
    deadline = time.monotonic() + Settlement.timeout_seconds
    while True:
        found = await probe()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise SettlementTimeout(await _diagnosis(bank, what, aggregate_id))
        await asyncio.sleep(_POLL_SECONDS)


async def final_payment(bank: Bank, owner_id: str, payment: PixPayment) -> PixPayment:
    """``payment`` once it is no longer ``PENDING`` (at once when settled in the request)."""
    if payment.status is not PaymentStatus.PENDING:
        return payment

    async def probe() -> PixPayment | None:
        current = await bank.pix.get_payment(
            GetPixPaymentQuery(owner_id=owner_id, end_to_end_id=payment.end_to_end_id)
        )
        return None if current.status is PaymentStatus.PENDING else current

    found: PixPayment = await _until(bank, "the payment", payment.end_to_end_id, probe)
    return found


async def received_payment(bank: Bank, owner_id: str, end_to_end_id: str) -> PixPayment:
    """The incoming payment ``end_to_end_id`` once credited (the worker records it)."""

    async def probe() -> PixPayment | None:
        try:
            current = await bank.pix.get_payment(
                GetPixPaymentQuery(owner_id=owner_id, end_to_end_id=end_to_end_id)
            )
        except PixPaymentNotFound:
            return None
        return None if current.status is PaymentStatus.PENDING else current

    found: PixPayment = await _until(bank, "the incoming payment", end_to_end_id, probe)
    return found


async def settled_refund(
    bank: Bank, owner_id: str, end_to_end_id: str, return_id: str
) -> PixRefund:
    """The refund ``return_id`` of a payment once it left ``EM_PROCESSAMENTO``."""

    async def probe() -> PixRefund | None:
        current = await bank.pix.get_payment(
            GetPixPaymentQuery(owner_id=owner_id, end_to_end_id=end_to_end_id)
        )
        refund = current.refund_by_return_id(return_id)
        if refund is None or refund.status is RefundStatus.EM_PROCESSAMENTO:
            return None
        return refund

    found: PixRefund = await _until(bank, "the refund", end_to_end_id, probe)
    return found


async def _diagnosis(bank: Bank, what: str, aggregate_id: str) -> str:
    waited = f"{what} {aggregate_id} had no outcome after {Settlement.timeout_seconds:g} s"
    hint = "or run `finbank demo --with-workers`"
    if bank.settings.backends.events != "postgres":
        return f"{waited}: is {WORKER} running? ({hint})"
    try:
        pool = await provided(bank.container.infra().postgres_pool)
        waiting = await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE aggregate_id = $1", aggregate_id
        )
    except Exception:  # a diagnosis must not hide the timeout it explains
        return f"{waited}: are {RELAY} and {WORKER} running? ({hint})"
    if waiting:
        return (
            f"{waited}: its event is still in the outbox, so {RELAY} is not running"
            f" (and {WORKER} is needed too; {hint})"
        )
    return (
        f"{waited}: its event left the outbox, so {WORKER} is not running"
        f" or cannot keep up ({hint})"
    )


@contextlib.asynccontextmanager
async def background_workers(settings: Settings) -> AsyncIterator[None]:
    """The outbox relay and the PIX settlement worker as tasks of this process.

    Nothing to run when PIX settles in the request (the ``memory`` profile).
    """
    if settings.pix.inline_settlement or settings.backends.events != "postgres":
        yield
        return
    from finbank.runtime import PixSettlementWorker, run_relay

    stop = asyncio.Event()
    worker = PixSettlementWorker(settings, group_id=settings.kafka.settlement_group)
    tasks = [asyncio.create_task(run_relay(settings, stop)), asyncio.create_task(worker.run(stop))]
    try:
        ready = asyncio.create_task(worker.ready.wait())
        done, _ = await asyncio.wait(
            [ready, *tasks], timeout=Settlement.timeout_seconds, return_when="FIRST_COMPLETED"
        )
        if ready not in done:
            ready.cancel()
            for task in done:  # a relay or worker that stopped at start: say why
                task.result()
            raise SettlementTimeout(
                f"the in-process settlement worker did not join its consumer group within"
                f" {Settlement.timeout_seconds:g} s: is Kafka reachable?"
            )
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
