"""Daily reconciliation knows MED returns: ledger, records and statement agree on each one.

A MED return leaves through the settlement account under its rtrId (the
hold is posted from the customer's account to suspense, then to settlement,
with the rtrId in the text), the payment's record lists it as a refund of
nature ``MED_FRAUDE``, and the network's statement has it: all three match,
and the record side names it as a MED return. The holds themselves stay off
the settlement account, so the orphan-hold sweep never sees (or voids) them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import timedelta

from tests.med_support import PEER_ISPB, T0, memory_world

from finbank_adapters.reconciliation.pix_sources import (
    MED_REFERENCE,
    PixLedgerPostings,
    PixRecordsFromRepository,
)
from finbank_core.accounts.use_cases import BankAccounts
from finbank_core.pix.med.model import Decision, FraudSituation
from finbank_core.pix.med.use_cases import (
    AnalyseInfractionReportCommand,
    ReceiveInfractionReportCommand,
    RequestMedRefundCommand,
)
from finbank_core.reconciliation.matching import match_sources
from finbank_core.reconciliation.model import DiscrepancyClass, ReconItem


async def _items(items: Iterable[ReconItem]) -> AsyncIterator[ReconItem]:
    for item in sorted(items, key=lambda i: i.key):
        yield item


async def test_med_returns_match_in_ledger_records_and_statement() -> None:
    w = await memory_world()
    mule = await w.open_account("mule")
    second = await w.open_account("second")
    payment = await w.incoming(mule, 100_00)
    w.clock.advance(minutes=5)
    await w.transfer(mule, second, 80_00)
    e2e = payment.end_to_end_id
    await w.receive_report(
        ReceiveInfractionReportCommand(
            end_to_end_id=e2e,
            report_id="r1",
            situation=FraudSituation.SCAM,
            reporter_ispb=PEER_ISPB,
        )
    )
    await w.analyse(
        AnalyseInfractionReportCommand(end_to_end_id=e2e, decision=Decision.AGREED, analyst_id="a")
    )
    w.clock.advance(hours=2)  # older than the orphan-hold age: the holds must not show up
    case = (
        await w.request_refund(RequestMedRefundCommand(end_to_end_id=e2e, requested_by=PEER_ISPB))
    ).case
    return_ids = {r.return_id for r in case.returns}
    assert len(return_ids) == 2

    start, end = T0 - timedelta(hours=1), T0 + timedelta(days=1)
    lines = [
        line
        async for line in match_sources(
            PixLedgerPostings(w.ledger).postings(start, end),
            PixRecordsFromRepository(w.payments).settled_records(start, end),
            _items(w.network.settled),
            day_start=start,
            day_end=end,
        )
    ]
    by_key = {line.key: line for line in lines}
    assert {line.klass for line in lines} == {DiscrepancyClass.MATCHED}
    assert set(by_key) == {e2e, *return_ids}
    for rtr in return_ids:
        record = by_key[rtr].record
        assert record is not None
        assert record.reference == f"{MED_REFERENCE}{e2e}"
    assert sum(by_key[r].amount_cents for r in return_ids) == 100_00
    holds = [
        h
        async for h in w.ledger.pending_holds(BankAccounts.PIX_SETTLEMENT, start, end)  # type: ignore[attr-defined]
    ]
    assert holds == []
