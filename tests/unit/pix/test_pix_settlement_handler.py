"""The settlement worker's handler: which event runs which use case, once, and what it refuses.

Events are the ones the use cases published in the in-memory world, fed to
the handler as the consumer runner would; the inbox is a fake that records
event ids like ``PostgresInbox`` does (rolled back when the effect fails).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from tests.pix_support import PEER_ISPB, PixWorld, build_world

from finbank_adapters.kafka import KafkaConsumerRunner
from finbank_adapters.sandbox import PEER_ACCOUNT_NUMBER, PEER_KEY_EMAIL
from finbank_adapters.workers.pix_settlement import PixSettlementHandler
from finbank_core.pix.errors import MalformedPixEvent, PixPaymentNotFound
from finbank_core.pix.events import (
    INCOMING_ACCEPTED,
    PAYMENT_RECEIVED,
    PAYMENT_REQUESTED,
    PAYMENT_SETTLED,
    REFUND_COMPLETED,
    REFUND_REQUESTED,
)
from finbank_core.pix.use_cases import (
    AcceptIncomingPix,
    RefundPix,
    RefundPixCommand,
    SendPixCommand,
)
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.events import EventEnvelope
from finbank_core.shared.money import Money


@dataclass
class RecordingInbox:
    """Processed event ids; an effect that raises records nothing."""

    processed: list[uuid.UUID] = field(default_factory=list)

    async def process_once(
        self, event: EventEnvelope, effect: Callable[[Any], Awaitable[None]]
    ) -> bool:
        if event.event_id in self.processed:
            return False
        await effect(None)
        self.processed.append(event.event_id)
        return True


@dataclass
class WorkerWorld:
    """The local profile in memory: nothing settles in the request, the handler does it."""

    world: PixWorld
    refund: RefundPix
    accept: AcceptIncomingPix
    inbox: RecordingInbox
    handler: PixSettlementHandler

    def last(self, event_type: str) -> EventEnvelope:
        return self.world.publisher.of_type(event_type)[-1]


@pytest.fixture
async def ww() -> WorkerWorld:
    world = await build_world(inline_settlement=False)
    inbox = RecordingInbox()
    return WorkerWorld(
        world=world,
        refund=world.refund_with(world.spi, settle_inline=False),
        accept=world.accept_incoming(credit_inline=False),
        inbox=inbox,
        handler=PixSettlementHandler(
            world.settle, world.settle_refund_with(world.spi), world.receive, inbox
        ),
    )


async def accepted_from_carla(ww: WorkerWorld, to_owner: str) -> tuple[uuid.UUID, str]:
    """An account for ``to_owner`` and an incoming payment to it, accepted (not credited)."""
    world = ww.world
    account = await world.open(to_owner, "Ana")
    order = world.spi.originate_payment(
        from_ispb=PEER_ISPB,
        from_account_number=PEER_ACCOUNT_NUMBER,
        amount=Money(50_00),
        to_branch=account.branch,
        to_account_number=account.number,
    )
    acceptance = await ww.accept(order)
    return account.id, acceptance.end_to_end_id


async def test_payment_requested_settles_the_payment(ww: WorkerWorld) -> None:
    world = ww.world
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    sent = await world.send(
        SendPixCommand(
            owner_id="ana",
            account_id=ana.id,
            idempotency_key="k",
            amount=Money(25_00),
            key=PEER_KEY_EMAIL,
        )
    )
    e2e = sent.payment.end_to_end_id

    await ww.handler(ww.last(PAYMENT_REQUESTED))

    assert ww.handler.outcomes == {e2e: "SETTLED"}
    assert ww.handler.runs_by_type == {PAYMENT_REQUESTED: 1}
    assert (await world.payments.get(e2e)).status.value == "SETTLED"
    assert await world.posted(ana.id) == 75_00


async def test_incoming_accepted_credits_the_account(ww: WorkerWorld) -> None:
    world = ww.world
    ana_id, e2e = await accepted_from_carla(ww, "ana")

    await ww.handler(ww.last(INCOMING_ACCEPTED))

    assert ww.handler.outcomes == {e2e: "SETTLED"}
    assert ww.handler.runs_by_type == {INCOMING_ACCEPTED: 1}
    assert (await world.payments.get(e2e)).payee.account_id == ana_id
    assert await world.posted(ana_id) == 50_00
    assert len(world.publisher.of_type(PAYMENT_RECEIVED)) == 1


async def test_refund_requested_settles_the_refund(ww: WorkerWorld) -> None:
    world = ww.world
    ana_id, e2e = await accepted_from_carla(ww, "ana")
    await ww.handler(ww.last(INCOMING_ACCEPTED))
    requested = await ww.refund(
        RefundPixCommand(
            owner_id="ana", end_to_end_id=e2e, amount=Money(20_00), client_refund_id="r"
        )
    )
    rtr = requested.refund.return_id

    await ww.handler(ww.last(REFUND_REQUESTED))

    assert ww.handler.outcomes == {e2e: "SETTLED", rtr: "DEVOLVIDO"}
    assert ww.handler.runs_by_type == {INCOMING_ACCEPTED: 1, REFUND_REQUESTED: 1}
    assert ww.handler.runs == 2
    assert await world.posted(ana_id) == 30_00
    assert len(world.publisher.of_type(REFUND_COMPLETED)) == 1
    await world.assert_ledger_balanced()


async def test_a_redelivered_event_is_skipped_by_the_inbox(ww: WorkerWorld) -> None:
    world = ww.world
    ana_id, _ = await accepted_from_carla(ww, "ana")
    event = ww.last(INCOMING_ACCEPTED)
    await ww.handler(event)

    await ww.handler(event)
    # a copy under another id passes the inbox; the use case sees the record and does nothing
    await ww.handler(msgspec.structs.replace(event, event_id=uuid.uuid4()))

    assert (ww.handler.runs, ww.handler.duplicates) == (2, 1)
    assert ww.handler.duplicates_by_type == {INCOMING_ACCEPTED: 1}
    assert len(ww.inbox.processed) == 2
    assert await world.posted(ana_id) == 50_00
    assert len(world.publisher.applied(PAYMENT_RECEIVED)) == 1  # the copy re-announced it


async def test_other_event_types_are_skipped(ww: WorkerWorld) -> None:
    world = ww.world
    _, e2e = await accepted_from_carla(ww, "ana")
    await ww.handler(ww.last(INCOMING_ACCEPTED))

    await ww.handler(ww.last(PAYMENT_RECEIVED))

    assert ww.handler.skipped == 1
    assert ww.handler.runs == 1
    assert world.publisher.of_type(PAYMENT_SETTLED) == []
    assert e2e in ww.handler.outcomes


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        (REFUND_REQUESTED, {"end_to_end_id": "E8888888820260105120000000000001"}),
        (REFUND_REQUESTED, {"end_to_end_id": 42, "return_id": "D1"}),
        (INCOMING_ACCEPTED, {"end_to_end_id": "E8888888820260105120000000000001"}),
        (PAYMENT_REQUESTED, {"end_to_end_id": ["E1"]}),
    ],
)
async def test_a_malformed_payload_raises_an_error_the_runner_dead_letters(
    ww: WorkerWorld, event_type: str, payload: dict[str, Any]
) -> None:
    world = ww.world
    _, e2e = await accepted_from_carla(ww, "ana")
    good = ww.last(INCOMING_ACCEPTED)
    bad = msgspec.structs.replace(good, event_id=uuid.uuid4(), type=event_type, payload=payload)

    with pytest.raises(MalformedPixEvent) as caught:
        await ww.handler(bad)

    # Not one of the errors the runner retries without bound: after its bounded
    # attempts the record goes to the DLQ (docs/events.md, "Delivery guarantees").
    transient = inspect.signature(KafkaConsumerRunner).parameters["transient"].default
    assert not isinstance(caught.value, transient)
    assert isinstance(caught.value, InvalidInput)
    assert ww.inbox.processed == []  # nothing recorded: a fixed copy would still run
    assert ww.handler.runs == 0
    with pytest.raises(PixPaymentNotFound):  # and nothing credited
        await world.payments.get(e2e)
