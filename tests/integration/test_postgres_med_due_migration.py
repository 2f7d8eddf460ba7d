"""Migration ``0031`` over MED records written before it: every case and block that
something is due on is listed by the sweeper's query, at the time the model says.

The cases and blocks are stored as ``PostgresMedRepository`` stored them up to
``0030`` (no ``attention_at``); the migration computes it from each body in SQL.
What it computes must be what ``MedCase.attention_at()`` says, to the microsecond,
or a case written before the upgrade would never be swept (or swept too early).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
import pytest

from finbank_adapters.postgres import migrations as migrations_module
from finbank_adapters.postgres.migrations import load_migrations, migrate, quote_ident
from finbank_adapters.postgres.pix_med import PostgresMedRepository
from finbank_adapters.postgres.pool import create_pool
from finbank_core.pix.med.model import (
    BlockStatus,
    CaseStatus,
    FraudSituation,
    MedCase,
    MedDue,
    MedReturn,
    MedSide,
    PrecautionaryBlock,
)
from finbank_core.pix.refunds import RefundStatus
from finbank_core.shared.money import Money
from tests.postgres_support import require_postgres

pytestmark = pytest.mark.services

CUT = "0030"  # the last migration before attention_at
T = datetime(2026, 3, 2, 13, 0, 0, 123457, tzinfo=UTC)
ACCOUNT = uuid.UUID(int=0xA1)


def case(n: int, status: CaseStatus, side: MedSide = MedSide.RECEIVER, **more: object) -> MedCase:
    fields: dict[str, object] = {
        "end_to_end_id": f"E99999999202603021300{n:011d}",
        "report_id": f"report-{n}",
        "side": side,
        "situation": FraudSituation.SCAM,
        "status": status,
        "amount": Money(100_00),
        "paid_at": T,
        "opened_at": T,
        "analysis_deadline": T + timedelta(days=7),
        "payer_ispb": "88888888",
        "payee_ispb": "99999999",
        "version": 1,
        **more,
    }
    return msgspec.convert(fields, MedCase, from_attributes=True, strict=False)


def a_return(n: int, status: RefundStatus, at: datetime, attempted: datetime | None) -> MedReturn:
    return MedReturn(
        return_id=f"D88888888202603021300{n:011d}",
        account_id=ACCOUNT,
        hold_id=uuid.UUID(int=n),
        amount=Money(10_00),
        status=status,
        requested_at=at,
        attempted_at=attempted,
    )


def block(n: int, status: BlockStatus, expires_at: datetime) -> PrecautionaryBlock:
    return PrecautionaryBlock(
        end_to_end_id=f"E99999999202603021300{n:011d}",
        account_id=ACCOUNT,
        owner_id="holder",
        amount=Money(30_00),
        status=status,
        blocked_at=T,
        expires_at=expires_at,
        hold_id=uuid.UUID(int=0x100 + n),
        blocked_by="engine",
        version=1,
    )


CASES = [
    # accepted, not asked back: due one microsecond after its deadline
    case(1, CaseStatus.AGREED, refund_deadline=T + timedelta(hours=72, microseconds=5)),
    # the payer's side: the earliest return in progress (one finished beside it)
    case(
        2,
        CaseStatus.CLOSED,
        MedSide.PAYER,
        returns=(
            a_return(20, RefundStatus.DEVOLVIDO, T, None),
            a_return(21, RefundStatus.EM_PROCESSAMENTO, T + timedelta(minutes=3), None),
            a_return(22, RefundStatus.EM_PROCESSAMENTO, T + timedelta(minutes=2), None),
        ),
    ),
    # the receiving side: taken by a caller, due from when it was taken
    case(
        3,
        CaseStatus.REFUND_REQUESTED,
        returns=(a_return(30, RefundStatus.EM_PROCESSAMENTO, T, T + timedelta(seconds=61)),),
    ),
    # a refund request under way (or stopped) since its mark: due REQUEST_LEASE after it
    case(
        8,
        CaseStatus.AGREED,
        refund_deadline=T + timedelta(hours=72),
        request_started_at=T + timedelta(hours=1, microseconds=7),
    ),
    # the same mark on a recorded request: nothing due (its returns are final)
    case(
        9,
        CaseStatus.CLOSED,
        refund_deadline=T + timedelta(hours=72),
        request_started_at=T,
        returns=(a_return(90, RefundStatus.DEVOLVIDO, T, T),),
    ),
    # lapsed before the field existed: due until a reader voids its holds again
    case(5, CaseStatus.LAPSED, refund_deadline=T),
    # nothing due
    case(4, CaseStatus.OPEN),
    case(6, CaseStatus.CLOSED, returns=(a_return(60, RefundStatus.DEVOLVIDO, T, T),)),
    case(7, CaseStatus.LAPSED, refund_deadline=T, lapse_finished=True),
]
BLOCKS = [
    block(1, BlockStatus.ACTIVE, T + timedelta(hours=72)),
    block(2, BlockStatus.ACTIVE, T + timedelta(hours=1, microseconds=1)),
    block(3, BlockStatus.RELEASED, T + timedelta(hours=2)),
]
OLD_CASE = (
    "INSERT INTO pix_med_cases (end_to_end_id, report_id, version, side, status, opened_at, body)"
    " VALUES ($1, $2, 1, $3, $4, $5, $6)"
)
OLD_BLOCK = (
    "INSERT INTO pix_med_blocks (end_to_end_id, account_id, version, status, expires_at, body)"
    " VALUES ($1, $2, 1, $3, $4, $5)"
)


async def test_cases_and_blocks_stored_before_the_migration_are_listed_when_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn = require_postgres()
    every = load_migrations()
    assert CUT in [m.version for m in every]
    assert every[-1].version != CUT
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(dsn)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(
                migrations_module,
                "load_migrations",
                lambda: [m for m in every if int(m.version) <= int(CUT)],
            )
            assert (await migrate(admin, schema))[-1] == CUT
        await admin.execute(f"SET search_path TO {quote_ident(schema)}")
        encoder = msgspec.json.Encoder()
        for stored in CASES:
            await admin.execute(
                OLD_CASE,
                stored.end_to_end_id,
                stored.report_id,
                stored.side.value,
                stored.status.value,
                stored.opened_at,
                encoder.encode(stored).decode(),
            )
        for stored_block in BLOCKS:
            await admin.execute(
                OLD_BLOCK,
                stored_block.end_to_end_id,
                stored_block.account_id,
                stored_block.status.value,
                stored_block.expires_at,
                encoder.encode(stored_block).decode(),
            )
        assert await migrate(admin, schema) == [m.version for m in every if int(m.version) > 30]

        pool = await create_pool(
            dsn, min_size=1, max_size=2, server_settings={"search_path": schema}
        )
        try:
            repository = PostgresMedRepository(pool)
            later = T + timedelta(days=365)
            expected_cases = sorted(
                MedDue(at, c.end_to_end_id) for c in CASES if (at := c.attention_at()) is not None
            )
            assert [d.end_to_end_id[-1] for d in expected_cases] == ["5", "3", "2", "8", "1"]
            assert await repository.due_cases(later) == expected_cases
            first = expected_cases[0].at
            assert first == T + timedelta(microseconds=1)  # the lapse not yet finished
            assert await repository.due_cases(first - timedelta(microseconds=1)) == []
            assert await repository.due_cases(first) == expected_cases[:1]
            assert expected_cases[1].at == T + timedelta(seconds=61)  # its return's taking
            assert expected_cases[2].at == T + timedelta(minutes=2)  # the earliest in progress
            # a request's mark, to the microsecond, plus the lease
            assert expected_cases[3].at == T + timedelta(hours=1, seconds=60, microseconds=7)
            lapse = expected_cases[-1].at
            assert lapse == T + timedelta(hours=72, microseconds=6)
            before_the_lapse = await repository.due_cases(lapse - timedelta(microseconds=1))
            assert before_the_lapse == expected_cases[:4]
            assert await repository.due_blocks(later) == sorted(
                MedDue(b.expires_at, b.end_to_end_id) for b in BLOCKS[:2]
            )
            # a write through the adapter keeps it: a request recorded, nothing due
            agreed = CASES[0]
            await repository.update_case(
                msgspec.structs.replace(agreed, status=CaseStatus.REFUND_REQUESTED), 1
            )
            left = await repository.due_cases(later)
            assert [d.end_to_end_id[-1] for d in left] == ["5", "3", "2", "8"]
        finally:
            await pool.close()
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        await admin.close()
