"""``AnnouncedPaymentRecorder``: a new PIX record and its event in one write.

Only PostgreSQL provides the port (the record store and the outbox share the
database); elsewhere ``SendPix`` stores the record, then publishes, and the
PIX repository and publisher contracts hold those. Checked here, on
PostgreSQL with a migrated schema per test: the record and exactly one
outbox row appear together; a clash on the EndToEndId or on the idempotency
key stores neither; many callers racing on one idempotency key leave one
record and one event, the winner's.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from finbank_adapters.postgres.pix_payments import PostgresPixPaymentRepository
from finbank_core.accounts.events import make_event
from finbank_core.pix.errors import PixPaymentAlreadyExists
from finbank_core.pix.events import PAYMENT_REQUESTED, payment_payload
from finbank_core.pix.payments import Initiation, PaymentStatus, PixFlow, PixParty, PixPayment
from finbank_core.pix.ports import AnnouncedPaymentRecorder
from finbank_core.shared.events import EventEnvelope, decode_event
from finbank_core.shared.money import Money
from tests.postgres_support import isolated_schema

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
ANA = uuid.UUID("00000000-0000-0000-0000-00000000a0a0")


@pytest.fixture
async def store(
    postgres_dsn: str,
) -> AsyncIterator[tuple[PostgresPixPaymentRepository, asyncpg.Pool]]:
    async with isolated_schema(postgres_dsn) as (pool, _):
        yield PostgresPixPaymentRepository(pool), pool


def payment(n: int, key: str | None = "pay-1") -> PixPayment:
    return PixPayment(
        end_to_end_id=f"E99999999202601051200{n:011d}",
        flow=PixFlow.OUTGOING,
        status=PaymentStatus.PENDING,
        amount=Money(10_00),
        payer=PixParty(ispb="99999999", account_id=ANA, owner_id="owner-ana"),
        payee=PixParty(ispb="88888888"),
        initiation=Initiation.KEY,
        created_at=T0,
        idempotency_key=key,
        request_fingerprint="fp",
    )


def requested(p: PixPayment) -> EventEnvelope:
    return make_event(
        event_id=uuid.uuid4(),
        type=PAYMENT_REQUESTED,
        occurred_at=T0,
        aggregate_id=p.end_to_end_id,
        payload=payment_payload(p),
    )


async def outbox_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT event_id, aggregate_id, type, envelope FROM outbox ORDER BY id"
    )
    return rows


async def test_the_record_and_its_event_are_stored_together(
    store: tuple[PostgresPixPaymentRepository, asyncpg.Pool],
) -> None:
    repository, pool = store
    recorder: AnnouncedPaymentRecorder = repository
    first = payment(1)
    event = requested(first)

    stored = await recorder.add_announced(first, event)

    assert stored.version == 1
    assert await repository.get(first.end_to_end_id) == stored
    [row] = await outbox_rows(pool)
    assert (row["event_id"], row["aggregate_id"], row["type"]) == (
        event.event_id,
        first.end_to_end_id,
        PAYMENT_REQUESTED,
    )
    assert decode_event(row["envelope"]).payload == payment_payload(first)


@pytest.mark.parametrize("clash", ["end_to_end_id", "idempotency_key"])
async def test_a_clash_stores_neither_record_nor_event(
    store: tuple[PostgresPixPaymentRepository, asyncpg.Pool], clash: str
) -> None:
    repository, pool = store
    first = payment(1)
    await repository.add_announced(first, requested(first))
    # the same EndToEndId under another key, or another EndToEndId under the same key
    second = payment(1, key="pay-2") if clash == "end_to_end_id" else payment(2)

    with pytest.raises(PixPaymentAlreadyExists):
        await repository.add_announced(second, requested(second))

    assert len(await outbox_rows(pool)) == 1
    assert await repository.get_by_idempotency_key("owner-ana", "pay-1") == await repository.get(
        first.end_to_end_id
    )
    count = await pool.fetchval("SELECT count(*) FROM pix_payments")
    assert count == 1


async def test_callers_racing_on_one_key_leave_one_record_and_one_event_the_winners(
    store: tuple[PostgresPixPaymentRepository, asyncpg.Pool],
) -> None:
    repository, pool = store
    racers = [payment(n) for n in range(1, 21)]  # 20 EndToEndIds, one idempotency key

    async def race(p: PixPayment) -> str | None:
        try:
            await repository.add_announced(p, requested(p))
        except PixPaymentAlreadyExists:
            return None
        return p.end_to_end_id

    outcomes = await asyncio.gather(*(race(p) for p in racers))

    winners = [e2e for e2e in outcomes if e2e is not None]
    assert len(winners) == 1
    [row] = await outbox_rows(pool)
    assert row["aggregate_id"] == winners[0]
    assert await pool.fetchval("SELECT count(*) FROM pix_payments") == 1
    stored = await repository.get_by_idempotency_key("owner-ana", "pay-1")
    assert stored is not None
    assert stored.end_to_end_id == winners[0]
