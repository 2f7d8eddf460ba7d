"""Reconciliation sources over the PIX records and the ledger's PIX postings.

On-us payments never reach the central bank: their record is skipped, and
their two settlement-account postings (in and out under one EndToEndId)
cancel out and are dropped, so neither shows up as a discrepancy.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from finbank_adapters.reconciliation.sorting import DEFAULT_CHUNK, sort_items
from finbank_adapters.reconciliation.sources import LedgerSettlementPostings
from finbank_core.accounts.ports import Ledger
from finbank_core.pix.payments import PaymentStatus, PixFlow, PixPayment
from finbank_core.pix.ports import PixPaymentRepository
from finbank_core.pix.refunds import RefundNature, RefundStatus
from finbank_core.reconciliation.model import Direction, ReconItem
from finbank_core.reconciliation.use_cases import BUSINESS_TZ

#: the record reference of a MED return: this prefix, then the original EndToEndId
MED_REFERENCE = "MED "
MED_NATURES = frozenset({RefundNature.MED_FRAUDE, RefundNature.MED_OPERACIONAL})
#: an EndToEndId or rtrId inside a statement text (see ``finbank_core.pix.ledger_steps.memo``)
SPI_ID = re.compile(r"\b[ED][0-9A-Z]{8}\d{12}[a-zA-Z0-9]{11}\b")
PAGE = 500


def spi_id_in(text: str | None) -> str | None:
    match = SPI_ID.search(text or "")
    return match.group(0) if match else None


async def _net_on_us(items: AsyncIterator[ReconItem]) -> AsyncIterator[ReconItem]:
    """Drop key groups whose postings go out and come back in equal amounts."""
    group: list[ReconItem] = []
    async for item in items:
        if group and item.key != group[0].key:
            for kept in _settle_group(group):
                yield kept
            group = []
        group.append(item)
    for kept in _settle_group(group):
        yield kept


def _settle_group(group: list[ReconItem]) -> list[ReconItem]:
    out = sum(i.amount_cents for i in group if i.direction is Direction.OUT)
    back = sum(i.amount_cents for i in group if i.direction is Direction.IN)
    if out and back and out == back:
        return []
    return group


class PixLedgerPostings:
    """Settlement-account postings keyed by the SPI id in their text, on-us pairs removed."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        chunk_size: int = DEFAULT_CHUNK,
        spill_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._inner = LedgerSettlementPostings(
            ledger, chunk_size=chunk_size, spill_dir=spill_dir, key_of=spi_id_in
        )

    def postings(self, start: datetime, end: datetime) -> AsyncIterator[ReconItem]:
        return _net_on_us(self._inner.postings(start, end))


class PixRecordsFromRepository:
    """Settled off-us payments and completed refunds of the window's business days."""

    def __init__(
        self,
        payments: PixPaymentRepository,
        *,
        timezone: str = BUSINESS_TZ,
        chunk_size: int = DEFAULT_CHUNK,
        spill_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._payments = payments
        self._zone = ZoneInfo(timezone)
        self._chunk_size = chunk_size
        self._spill_dir = spill_dir

    async def _unsorted(self, start: datetime, end: datetime) -> AsyncIterator[ReconItem]:
        day = start.astimezone(self._zone).date()
        last = (end - timedelta(microseconds=1)).astimezone(self._zone).date()
        seen: set[str] = set()  # a record indexed under two days of the window
        while day <= last:
            cursor: str | None = None
            while True:
                page = await self._payments.list_by_settlement_day(day, limit=PAGE, cursor=cursor)
                for payment in page.items:
                    if payment.end_to_end_id in seen:
                        continue
                    seen.add(payment.end_to_end_id)
                    for item in _items_of(payment):
                        if start <= item.at < end:
                            yield item
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            day += timedelta(days=1)

    def settled_records(self, start: datetime, end: datetime) -> AsyncIterator[ReconItem]:
        return sort_items(
            self._unsorted(start, end), chunk_size=self._chunk_size, directory=self._spill_dir
        )


def _items_of(payment: PixPayment) -> list[ReconItem]:
    if payment.flow is PixFlow.ON_US:
        return []
    items: list[ReconItem] = []
    if payment.status is PaymentStatus.SETTLED and payment.settled_at is not None:
        items.append(
            ReconItem(
                key=payment.end_to_end_id,
                amount_cents=payment.amount.cents,
                direction=Direction.OUT if payment.flow is PixFlow.OUTGOING else Direction.IN,
                at=payment.settled_at,
                reference=payment.end_to_end_id,
            )
        )
    for refund in payment.refunds:
        if refund.status is RefundStatus.DEVOLVIDO and refund.completed_at is not None:
            # We refund what we received: the money goes back out. A MED return
            # (taken from the receiving account or from accounts the money was
            # traced to) is named as such in the report. A MED return of a
            # payment we sent (we are the payer's bank) comes in.
            items.append(
                ReconItem(
                    key=refund.return_id,
                    amount_cents=refund.amount.cents,
                    direction=Direction.IN if payment.flow is PixFlow.OUTGOING else Direction.OUT,
                    at=refund.completed_at,
                    reference=(
                        f"{MED_REFERENCE}{payment.end_to_end_id}"
                        if refund.nature in MED_NATURES
                        else payment.end_to_end_id
                    ),
                )
            )
    return items
