"""``update_announced``: a PIX payment's transition and its outcome events in one write.

``PostgresPixPaymentRepository.update_announced`` (the
``AnnouncedTransitionRecorder`` of :mod:`finbank_core.pix.use_cases.settle`)
stores the final record and appends its outcome events to the outbox in
one statement, only when the record changed: a transition that loses to
another (a version conflict, a final record) stores no event. Through
``SettlePixPayment``, workers racing on one payment leave one outcome and
its event once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from finbank_adapters.postgres.outbox import PostgresEventPublisher
from finbank_adapters.postgres.pix_payments import PostgresPixPaymentRepository
from finbank_core.accounts.events import make_event
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.errors import IllegalPixTransition, PixVersionConflict
from finbank_core.pix.events import PAYMENT_SETTLED, outcome_event_id, payment_payload
from finbank_core.pix.payments import Initiation, PaymentStatus, PixFlow, PixParty, PixPayment
from finbank_core.pix.use_cases.settle import AnnouncedTransitionRecorder
from finbank_core.shared.events import EventEnvelope, decode_event
from finbank_core.shared.money import Money
from tests.postgres_support import isolated_schema

pytestmark = pytest.mark.services

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
ANA = uuid.UUID("00000000-0000-0000-0000-00000000a0a0")


@pytest.fixture
async def store(
    postgres_dsn: str,
) -> AsyncIterator[tuple[PostgresPixPaymentRepository, asyncpg.Pool]]:
    async with isolated_schema(postgres_dsn, max_size=8) as (pool, _):
        yield PostgresPixPaymentRepository(pool), pool


def payment(n: int = 1) -> PixPayment:
    return PixPayment(
        end_to_end_id=f"E99999999202601051200{n:011d}",
        flow=PixFlow.OUTGOING,
        status=PaymentStatus.PENDING,
        amount=Money(10_00),
        payer=PixParty(ispb="99999999", account_id=ANA, owner_id="owner-ana"),
        payee=PixParty(ispb="88888888"),
        initiation=Initiation.KEY,
        created_at=T0,
        idempotency_key=f"pay-{n}",
        request_fingerprint="fp",
    )


def settled_event(p: PixPayment) -> EventEnvelope:
    return make_event(
        event_id=outcome_event_id(PAYMENT_SETTLED, p.end_to_end_id),
        type=PAYMENT_SETTLED,
        occurred_at=T0,
        aggregate_id=p.end_to_end_id,
        payload=payment_payload(p),
    )


async def outbox_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT event_id, aggregate_id, type, envelope FROM outbox ORDER BY id"
    )
    return rows


async def test_the_transition_and_its_events_are_stored_together(
    store: tuple[PostgresPixPaymentRepository, asyncpg.Pool],
) -> None:
    repository, pool = store
    recorder: AnnouncedTransitionRecorder = repository
    pending = await repository.add(payment())
    settled = pending.settle(T0 + timedelta(seconds=1))

    stored = await recorder.update_announced(settled, pending.version, [settled_event(settled)])

    assert stored.version == 2
    assert await repository.get(pending.end_to_end_id) == stored
    [row] = await outbox_rows(pool)
    assert (row["event_id"], row["aggregate_id"], row["type"]) == (
        outcome_event_id(PAYMENT_SETTLED, pending.end_to_end_id),
        pending.end_to_end_id,
        PAYMENT_SETTLED,
    )
    assert decode_event(row["envelope"]).payload["status"] == "SETTLED"


async def test_a_transition_that_loses_stores_no_event(
    store: tuple[PostgresPixPaymentRepository, asyncpg.Pool],
) -> None:
    repository, pool = store
    pending = await repository.add(payment())
    rejected = await repository.update(pending.reject(IsoReason.AB09, T0), pending.version)
    settled = pending.settle(T0)

    with pytest.raises(PixVersionConflict):  # from the version read before the other write
        await repository.update_announced(settled, pending.version, [settled_event(settled)])
    with pytest.raises(IllegalPixTransition):  # from the current version: final already
        await repository.update_announced(settled, rejected.version, [settled_event(settled)])

    assert await outbox_rows(pool) == []
    assert await repository.get(pending.end_to_end_id) == rejected


async def test_racing_transitions_leave_one_outcome_and_its_event_once(
    store: tuple[PostgresPixPaymentRepository, asyncpg.Pool],
) -> None:
    repository, pool = store
    pending = await repository.add(payment())
    settled = pending.settle(T0)

    async def race() -> bool:
        try:
            await repository.update_announced(settled, pending.version, [settled_event(settled)])
        except PixVersionConflict:
            return False
        return True

    won = await asyncio.gather(*(race() for _ in range(8)))

    assert won.count(True) == 1
    assert len(await outbox_rows(pool)) == 1
    assert (await repository.get(pending.end_to_end_id)).status is PaymentStatus.SETTLED


async def test_no_events_is_a_plain_update(
    store: tuple[PostgresPixPaymentRepository, asyncpg.Pool],
) -> None:
    repository, pool = store
    pending = await repository.add(payment())
    stored = await repository.update_announced(pending.settle(T0), pending.version, [])
    assert stored.version == 2
    assert await outbox_rows(pool) == []
    # the publisher the worker would use otherwise writes the same outbox
    await PostgresEventPublisher(pool).publish([settled_event(stored)])
    assert len(await outbox_rows(pool)) == 1
