"""Reconcile a real PIX day from a statement on S3 (moto), for the memory and PostgreSQL ledgers.

Payments go through the real use cases (on-us, off-us through the SPI
simulator, incoming, a refund); the statement is what the simulator settled.
Then known discrepancies are injected on each side, and the report must name
every one of them and nothing else; a re-run gives the same report and voids
nothing twice.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import aioboto3
import msgspec
import pytest

from finbank_adapters.files.s3 import S3FileStore
from finbank_adapters.memory import InMemoryEventPublisher
from finbank_adapters.memory.ids import SequentialIdGenerator
from finbank_adapters.postgres import PostgresLedger
from finbank_adapters.postgres.holds import PostgresPendingHolds
from finbank_adapters.reconciliation.pix_sources import PixLedgerPostings, PixRecordsFromRepository
from finbank_adapters.reconciliation.report import FileStoreReportSink
from finbank_adapters.reconciliation.sources import FileStatementSource
from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_core.accounts.ledger import Transfer, TransferCode, TransferFlags
from finbank_core.accounts.use_cases import BankAccounts
from finbank_core.pix.codes.identifiers import EndToEndId
from finbank_core.pix.payments import PaymentStatus, PixFlow, PixPayment
from finbank_core.pix.use_cases import RefundPixCommand, SendPixCommand
from finbank_core.reconciliation.model import Direction, DiscrepancyClass, ReconItem
from finbank_core.reconciliation.ports import PendingHoldsSource
from finbank_core.reconciliation.statement import CSV_HEADER, format_csv_line
from finbank_core.reconciliation.use_cases import ReconcileCommand, ReconcileDay
from finbank_core.shared.money import Money
from tests.integration.aws_fixtures import aws_endpoint
from tests.pix_support import PEER_ISPB, PixWorld, build_world
from tests.postgres_support import isolated_schema, require_postgres

__all__ = ["aws_endpoint"]

DAY = date(2026, 1, 5)  # build_world starts at 09:00 São Paulo on this day
BUCKET = "finbank-recon-test"
D = DiscrepancyClass


@pytest.fixture(params=["memory", "postgres"])
async def world(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[PixWorld, PendingHoldsSource]]:
    if request.param == "memory":
        built = await build_world()
        yield built, built.ledger  # type: ignore[misc]  # InMemoryLedger is a holds source
        return
    require_postgres()
    async with isolated_schema() as (pool, _):
        built = await build_world(
            ledger_factory=lambda clock, _publisher: PostgresLedger(pool, clock)
        )
        yield built, PostgresPendingHolds(pool)


@pytest.fixture
async def s3(aws_endpoint: str) -> AsyncIterator[S3FileStore]:
    session = aioboto3.Session()
    async with session.client("s3", endpoint_url=aws_endpoint, region_name="sa-east-1") as client:
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            await client.create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "sa-east-1"}
            )
        yield S3FileStore(client, BUCKET, prefix=f"run-{uuid.uuid4().hex[:8]}")


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def make_a_day(world: PixWorld) -> dict[str, Any]:
    """Real payments of every kind; returns names of what was made."""
    ana = await world.open("ana", "Ana", deposit=Money(1_000_00))
    bruno = await world.open("bruno", "Bruno")
    bruno_key = await world.evp(bruno)

    async def send(idem: str, cents: int, key: str) -> PixPayment:
        world.clock.advance(minutes=7)
        result = await world.send(
            SendPixCommand(
                owner_id="ana",
                account_id=ana.id,
                idempotency_key=idem,
                amount=Money(cents),
                key=key,
            )
        )
        return result.payment

    on_us = await send("p1", 50_00, bruno_key)
    off_us = [await send(f"p{n}", 100_00 + n, PEER_KEY_EMAIL) for n in range(2, 7)]
    world.clock.advance(minutes=5)
    incoming = await world.receive(
        world.spi.originate_payment(
            from_ispb=PEER_ISPB,
            from_account_number="123456-7",
            amount=Money(200_00),
            to_branch=bruno.branch,
            to_account_number=bruno.number,
        )
    )
    world.clock.advance(minutes=5)
    refund = await world.refund(
        RefundPixCommand(
            owner_id="bruno",
            end_to_end_id=incoming.payment.end_to_end_id,
            amount=Money(20_00),
            client_refund_id="r1",
        )
    )
    assert on_us.flow is PixFlow.ON_US
    assert all(p.status is PaymentStatus.SETTLED for p in off_us)
    return {"ana": ana, "off_us": off_us, "refund": refund, "incoming": incoming}


async def inject(world: PixWorld, made: dict[str, Any]) -> tuple[list[ReconItem], dict[str, D]]:
    """Statement lines plus injected discrepancies on every side; returns (statement, expected)."""
    statement = list(world.spi.settled)
    expected: dict[str, D] = {}
    off_us: list[PixPayment] = made["off_us"]

    # 1. the central bank settled a different amount for one payment
    victim = off_us[0].end_to_end_id
    statement = [
        msgspec.structs.replace(i, amount_cents=i.amount_cents + 1) if i.key == victim else i
        for i in statement
    ]
    expected[victim] = D.AMOUNT_MISMATCH
    # 2. one payment is missing from the statement
    missing = off_us[1].end_to_end_id
    statement = [i for i in statement if i.key != missing]
    expected[missing] = D.BOOKED_NOT_IN_STATEMENT
    # 3. the statement lists a payment we never booked nor recorded
    stranger = EndToEndId.generate(PEER_ISPB, world.clock.now(), None).value
    statement.append(
        ReconItem(
            key=stranger,
            amount_cents=77_00,
            direction=Direction.IN,
            at=world.clock.now(),
            reference="SPIX",
        )
    )
    expected[stranger] = D.IN_STATEMENT_NOT_BOOKED
    # 4. a settlement posting nobody recorded (and the statement has it)
    ghost = EndToEndId.generate("99999999", world.clock.now(), None).value
    await world.ledger.create_transfers(
        [
            Transfer(
                id=uuid.uuid4(),
                debit_account_id=made["ana"].id,
                credit_account_id=BankAccounts.PIX_SETTLEMENT,
                amount=5_00,
                code=TransferCode.PIX_OUT,
                user_data=f"PIX enviado {ghost}",
            )
        ]
    )
    statement.append(
        ReconItem(
            key=ghost,
            amount_cents=5_00,
            direction=Direction.OUT,
            at=world.clock.now(),
            reference="SPIG",
        )
    )
    expected[ghost] = D.POSTING_WITHOUT_RECORD
    # 5. a settled record with no posting and nothing at the central bank
    phantom = EndToEndId.generate("99999999", world.clock.now(), None).value
    template = off_us[2]
    await world.payments.add(
        msgspec.structs.replace(
            template, end_to_end_id=phantom, idempotency_key=None, version=0, refunds=()
        )
    )
    expected[phantom] = D.RECORD_WITHOUT_POSTING
    # 6. an orphan hold on the settlement account (no timeout, hours old by tomorrow)
    hold = uuid.uuid4()
    await world.ledger.create_transfers(
        [
            Transfer(
                id=hold,
                debit_account_id=made["ana"].id,
                credit_account_id=BankAccounts.PIX_SETTLEMENT,
                amount=3_00,
                code=TransferCode.PIX_OUT,
                flags=TransferFlags.PENDING,
                user_data="crashed before the payment record was written",
            )
        ]
    )
    expected[str(hold)] = D.ORPHAN_HOLD
    return statement, expected


def report_keys(files: dict[str, bytes]) -> dict[str, D]:
    found: dict[str, D] = {}
    for klass in D:
        if klass is D.MATCHED:
            continue
        lines = files[f"{klass.value}.csv"].decode().splitlines()[1:]
        for line in lines:
            found[line.split(",")[0]] = klass
    return found


async def read_report(s3: S3FileStore, prefix: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name in [*(f"{k.value}.csv" for k in D), "summary.json"]:
        out[name] = b"".join([c async for c in s3.get(f"{prefix}/{name}")])
    return out


async def test_a_real_day_reconciled_from_s3_reports_exactly_the_injected_discrepancies(
    world: tuple[PixWorld, PendingHoldsSource], s3: S3FileStore
) -> None:
    pix, holds = world
    made = await make_a_day(pix)
    statement, expected = await inject(pix, made)
    csv = CSV_HEADER + "\n" + "".join(format_csv_line(i) + "\n" for i in reversed(statement))
    await s3.put(f"statements/{DAY.isoformat()}.csv", _chunks(csv.encode()))
    pix.clock.set(datetime(2026, 1, 6, 9, tzinfo=UTC))  # the next morning
    events = InMemoryEventPublisher()

    async def run(prefix: str, apply: bool) -> dict[str, bytes]:
        summary = await ReconcileDay(
            postings=PixLedgerPostings(pix.ledger),
            records=PixRecordsFromRepository(pix.payments),
            statement=FileStatementSource(s3),
            holds=holds,
            ledger=pix.ledger,
            sink=FileStoreReportSink(s3, prefix),
            publisher=events,
            clock=pix.clock,
            ids=SequentialIdGenerator(),
        )(ReconcileCommand(business_day=DAY, apply=apply))
        assert summary.items_read["statement"] == len(statement)
        return await read_report(s3, prefix)

    first = await run("reports/first", apply=True)
    assert report_keys(first) == expected
    matched = first["matched.csv"].decode().splitlines()[1:]
    # off-us payments (minus the two tampered) + the incoming payment + the refund
    assert len(matched) == len(made["off_us"]) - 2 + 2
    [settlement] = await pix.ledger.lookup_accounts([BankAccounts.PIX_SETTLEMENT])
    assert settlement.credits_pending == 0  # the orphan hold was voided

    second = await run("reports/second", apply=True)
    assert {k: v for k, v in second.items() if k != "summary.json"} == {
        k: v for k, v in first.items() if k != "summary.json"
    }
    summary = msgspec.json.decode(second["summary.json"])
    assert summary["orphan_holds_voided"] == 0
    [again] = await pix.ledger.lookup_accounts([made["ana"].id])
    assert again.debits_pending == 0
