"""A ``pix.payment_requested`` whose payment record is missing: bounded retries, then the
reservation is voided, an alert logged and counted; never money held with no record.

A store that lost an acknowledged write (threaded moto did: payments answered
201, then 404) is played by deleting the record from the in-memory store
after ``SendPix`` wrote it. The ledger is the in-memory one and PostgreSQL
(a schema of the test's own), since the release goes through the ledger.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec
import pytest
from tests.pix_support import PixWorld, build_world
from tests.postgres_support import isolated_schema, require_postgres
from tests.unit.pix.test_pix_settlement_handler import RecordingInbox

from finbank_adapters.postgres import PostgresLedger
from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_adapters.workers.pix_settlement import (
    UNRECORDED,
    MissingRecordPolicy,
    PixSettlementHandler,
)
from finbank_core.accounts.ledger import PendingStatus
from finbank_core.pix.errors import PixPaymentNotFound
from finbank_core.pix.events import PAYMENT_REQUESTED
from finbank_core.pix.payments import PixPayment
from finbank_core.pix.use_cases import SendPixCommand
from finbank_core.shared.events import EventEnvelope
from finbank_core.shared.money import Money

HOLDER = "Maria Secreta da Silva"
DOCUMENT = "52998224725"


@dataclass
class Sleeps:
    """Records the waits instead of waiting."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture(params=["memory", "postgres"])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[PixWorld]:
    if request.param == "memory":
        yield await build_world(inline_settlement=False)
        return
    require_postgres()
    async with isolated_schema(max_size=20) as (pool, _):
        yield await build_world(
            inline_settlement=False,
            ledger_factory=lambda clock, _publisher: PostgresLedger(pool, clock),
        )


def handler_for(
    world: PixWorld, sleeps: Sleeps, inbox: RecordingInbox | None = None, *, release: bool = True
) -> PixSettlementHandler:
    return PixSettlementHandler(
        world.settle,
        world.settle_refund_with(world.spi),
        world.receive,
        inbox,
        release_unrecorded=world.settle.release_unrecorded if release else None,
        missing_record=MissingRecordPolicy(attempts=4, delay_seconds=0.25),
        sleep=sleeps,
    )


@dataclass(frozen=True)
class Lost:
    account_id: uuid.UUID
    e2e: str
    event: EventEnvelope
    record: PixPayment


async def lost_payment(world: PixWorld, owner: str = "ana") -> Lost:
    """A payment sent (reserved, recorded, event published), then its record lost."""
    account = await world.open(owner, HOLDER, document=DOCUMENT, deposit=Money(100_00))
    sent = await world.send(
        SendPixCommand(
            owner_id=owner,
            account_id=account.id,
            idempotency_key=f"k-{owner}",
            amount=Money(25_00),
            key=PEER_KEY_EMAIL,
        )
    )
    e2e = sent.payment.end_to_end_id
    assert await world.available(account.id) == 75_00
    record = await world.payments.get(e2e)
    del world.payments._records[e2e]  # the store "loses" the acknowledged write
    event = next(e for e in world.publisher.of_type(PAYMENT_REQUESTED) if e.aggregate_id == e2e)
    return Lost(account.id, e2e, event, record)


async def test_a_missing_record_is_retried_then_its_reservation_voided_with_an_alert(
    world: PixWorld, caplog: pytest.LogCaptureFixture
) -> None:
    lost = await lost_payment(world)
    account_id, e2e, event = lost.account_id, lost.e2e, lost.event
    sleeps, inbox = Sleeps(), RecordingInbox()
    handler = handler_for(world, sleeps, inbox)

    with caplog.at_level(logging.INFO, logger="finbank_adapters.workers.pix_settlement"):
        await handler(event)  # handled: nothing for the runner to retry or dead-letter

    assert sleeps.delays == [0.25, 0.5, 0.75]  # 4 attempts, bounded
    assert await world.steps.pending_status(e2e) is PendingStatus.VOIDED
    assert await world.available(account_id) == 100_00
    assert await world.posted(account_id) == 100_00
    assert handler.unrecorded_released == 1
    assert handler.unrecorded == {e2e: PendingStatus.VOIDED}
    assert handler.outcomes == {e2e: UNRECORDED}
    assert inbox.processed == [event.event_id]
    [alert] = [r for r in caplog.records if "ALERT" in r.getMessage()]
    assert alert.levelno == logging.ERROR
    assert e2e in alert.getMessage()
    assert "voided" in alert.getMessage()
    logged = caplog.text
    assert HOLDER not in logged
    assert DOCUMENT not in logged
    await world.assert_ledger_balanced()


async def test_a_record_that_shows_up_during_the_retries_is_settled_normally(
    world: PixWorld,
) -> None:
    lost = await lost_payment(world)
    sleeps = Sleeps()

    async def late_store(seconds: float) -> None:
        await sleeps(seconds)
        if len(sleeps.delays) == 2:  # the record arrives after the second attempt
            world.payments._records[lost.e2e] = lost.record

    handler = handler_for(world, sleeps)
    handler._sleep = late_store

    await handler(lost.event)

    assert sleeps.delays == [0.25, 0.5]
    assert handler.outcomes == {lost.e2e: "SETTLED"}
    assert handler.unrecorded_released == 0
    assert await world.steps.pending_status(lost.e2e) is PendingStatus.POSTED
    assert await world.posted(lost.account_id) == 75_00
    await world.assert_ledger_balanced()


async def test_without_a_release_the_old_behaviour_stays_an_error(world: PixWorld) -> None:
    lost = await lost_payment(world)
    handler = handler_for(world, Sleeps(), release=False)
    with pytest.raises(PixPaymentNotFound):
        await handler(lost.event)
    assert await world.steps.pending_status(lost.e2e) is PendingStatus.PENDING


async def test_a_release_when_the_reservation_is_already_resolved_changes_nothing(
    world: PixWorld,
) -> None:
    lost = await lost_payment(world)
    account_id, e2e, event = lost.account_id, lost.e2e, lost.event
    handler = handler_for(world, Sleeps())
    await handler(event)
    # The same event again (another id: a copy); the void exists once.
    await handler(msgspec.structs.replace(event, event_id=uuid.uuid4()))
    assert handler.unrecorded == {e2e: PendingStatus.VOIDED}
    assert handler.unrecorded_released == 2
    assert await world.available(account_id) == 100_00
    await world.assert_ledger_balanced()


async def test_many_concurrent_copies_of_the_event_void_the_reservation_once(
    world: PixWorld,
) -> None:
    """30 copies of the event (relay retries, redeliveries) handled at once, no inbox."""
    lost = await lost_payment(world)
    account_id, e2e, event = lost.account_id, lost.e2e, lost.event
    handler = handler_for(world, Sleeps())
    copies = [msgspec.structs.replace(event, event_id=uuid.uuid4()) for _ in range(30)]

    await asyncio.gather(*(handler(copy) for copy in copies))

    assert handler.unrecorded == {e2e: PendingStatus.VOIDED}
    assert handler.unrecorded_released == 30
    assert await world.available(account_id) == 100_00
    assert await world.posted(account_id) == 100_00
    await world.assert_ledger_balanced()
