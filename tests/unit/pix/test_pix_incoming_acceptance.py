"""AcceptIncomingPix: the answer to the network, then the credit now or through the worker."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import pytest
from tests.pix_support import OUR_ISPB, PEER_ISPB, PixWorld, build_world

from finbank_adapters.sandbox import PEER_ACCOUNT_NUMBER
from finbank_core.accounts.model import AccountStatus, CustomerAccount
from finbank_core.accounts.use_cases import BankAccounts
from finbank_core.pix.errors import MalformedPixEvent, PixPaymentNotFound, PixRecipientInvalid
from finbank_core.pix.events import INCOMING_ACCEPTED, PAYMENT_RECEIVED
from finbank_core.pix.network import IncomingPixOrder
from finbank_core.pix.payments import PaymentStatus, PixFlow
from finbank_core.pix.use_cases import (
    AcceptIncomingPix,
    IncomingAccepted,
    SimulateIncomingPix,
    SimulateIncomingPixCommand,
)
from finbank_core.shared.errors import InvalidAmount, InvalidInput
from finbank_core.shared.money import MAX_BCB_CENTS, Money


@dataclass
class IncomingWorld:
    world: PixWorld
    accept_inline: AcceptIncomingPix
    #: as the local and aws profiles wire it: the worker credits
    accept_later: AcceptIncomingPix


@pytest.fixture
async def iw() -> IncomingWorld:
    world = await build_world()
    return IncomingWorld(
        world=world,
        accept_inline=world.accept_incoming(),
        accept_later=world.accept_incoming(credit_inline=False),
    )


def from_carla(
    world: PixWorld, cents: int, *, to: CustomerAccount | None = None, key: str | None = None
) -> IncomingPixOrder:
    return world.spi.originate_payment(
        from_ispb=PEER_ISPB,
        from_account_number=PEER_ACCOUNT_NUMBER,
        amount=Money(cents),
        to_key=key,
        to_branch=to.branch if to else None,
        to_account_number=to.number if to else None,
        description="aluguel",
    )


async def test_inline_acceptance_credits_at_once(iw: IncomingWorld) -> None:
    world = iw.world
    ana = await world.open("ana", "Ana")

    acceptance = await iw.accept_inline(from_carla(world, 50_00, to=ana))

    assert acceptance.payment is not None
    assert (acceptance.status, acceptance.replayed) == ("SETTLED", False)
    assert acceptance.payment.end_to_end_id == acceptance.end_to_end_id
    assert (acceptance.payment.flow, acceptance.payment.payee.account_id) == (
        PixFlow.INCOMING,
        ana.id,
    )
    assert await world.posted(ana.id) == 50_00
    assert len(world.publisher.of_type(PAYMENT_RECEIVED)) == 1
    assert world.publisher.of_type(INCOMING_ACCEPTED) == []
    await world.assert_ledger_balanced()


async def test_acceptance_for_the_worker_publishes_and_credits_nothing_yet(
    iw: IncomingWorld,
) -> None:
    world = iw.world
    ana = await world.open("ana", "Ana")
    order = from_carla(world, 50_00, to=ana)

    acceptance = await iw.accept_later(order)

    assert (acceptance.end_to_end_id, acceptance.status) == (order.end_to_end_id, "ACCEPTED")
    assert acceptance.payment is None
    assert await world.posted(ana.id) == 0
    with pytest.raises(PixPaymentNotFound):
        await world.payments.get(order.end_to_end_id)
    [event] = world.publisher.of_type(INCOMING_ACCEPTED)
    assert event.aggregate_id == order.end_to_end_id
    accepted = IncomingAccepted.from_payload(event.payload)
    assert (accepted.amount_cents, accepted.payee_account_id, accepted.payee_ispb) == (
        50_00,
        ana.id,
        OUR_ISPB,
    )
    assert (accepted.payee_branch, accepted.payee_account_number) == (ana.branch, ana.number)
    assert world.publisher.of_type(PAYMENT_RECEIVED) == []


async def test_the_worker_credits_the_accepted_order_once(iw: IncomingWorld) -> None:
    world = iw.world
    ana = await world.open("ana", "Ana")
    order = from_carla(world, 50_00, to=ana)
    await iw.accept_later(order)
    [event] = world.publisher.of_type(INCOMING_ACCEPTED)
    rebuilt = IncomingAccepted.from_payload(event.payload).order()

    first = await world.receive(rebuilt)
    again = await world.receive(IncomingAccepted.from_payload(event.payload).order())

    assert (first.replayed, again.replayed) == (False, True)
    payment = first.payment
    assert (payment.status, payment.amount, payment.description) == (
        PaymentStatus.SETTLED,
        Money(50_00),
        "aluguel",
    )
    assert payment.payer == order.payer  # the payer's name and masked document came through
    assert payment.initiation is order.initiation
    assert await world.posted(ana.id) == 50_00
    assert await world.posted(BankAccounts.PIX_SETTLEMENT) == -50_00
    # the replay announced the credit again, under the same id: one event for consumers
    assert len(world.publisher.of_type(PAYMENT_RECEIVED)) == 2
    assert len(world.publisher.applied(PAYMENT_RECEIVED)) == 1
    # the network asking again now gets the record
    replay = await iw.accept_later(order)
    assert (replay.replayed, replay.status) == (True, "SETTLED")
    assert len(world.publisher.of_type(INCOMING_ACCEPTED)) == 1
    await world.assert_ledger_balanced()


async def test_the_event_names_the_payee_by_account_never_by_key(iw: IncomingWorld) -> None:
    world = iw.world
    ana = await world.open("ana", "Ana", document="11144477735")
    key = await world.evp(ana)

    await iw.accept_later(from_carla(world, 12_34, key=key))

    [event] = world.publisher.of_type(INCOMING_ACCEPTED)
    encoded = msgspec.json.encode(event.payload).decode()
    assert key not in encoded
    assert not [name for name in event.payload if "key" in name]
    assert "11144477735" not in encoded  # nor a full document: Ana's...
    assert "52998224725" not in encoded  # ...or Carla's, the payer
    assert event.payload["payee_account_id"] == str(ana.id)
    assert event.payload["payer_document_masked"] == "***.982.247-**"
    assert event.payload["initiation"] == "DICT"


async def test_an_unknown_recipient_is_refused_with_ac03_and_nothing_published(
    iw: IncomingWorld,
) -> None:
    world = iw.world
    for accept in (iw.accept_inline, iw.accept_later):
        with pytest.raises(PixRecipientInvalid) as caught:
            await accept(from_carla(world, 50_00, key="nobody@example.com"))
        assert caught.value.details["reason"] == "AC03"
    assert world.publisher.of_type(INCOMING_ACCEPTED) == []


async def test_an_inactive_recipient_is_refused_with_ac06(iw: IncomingWorld) -> None:
    world = iw.world
    ana = await world.open("ana", "Ana")
    await world.accounts.set_status(ana.id, AccountStatus.BLOCKED)
    for accept in (iw.accept_inline, iw.accept_later):
        with pytest.raises(PixRecipientInvalid) as caught:
            await accept(from_carla(world, 50_00, to=ana))
        assert caught.value.details["reason"] == "AC06"
    assert world.publisher.of_type(INCOMING_ACCEPTED) == []
    assert await world.posted(ana.id) == 0


async def test_an_order_from_this_institution_is_not_incoming(iw: IncomingWorld) -> None:
    world = iw.world
    ana = await world.open("ana", "Ana")
    order = from_carla(world, 50_00, to=ana)
    ours = msgspec.structs.replace(order, payer=msgspec.structs.replace(order.payer, ispb=OUR_ISPB))
    with pytest.raises(InvalidInput):
        await iw.accept_later(ours)
    assert world.publisher.of_type(INCOMING_ACCEPTED) == []


@pytest.mark.parametrize(
    "change",
    [
        {"amount_cents": 0},
        {"amount_cents": MAX_BCB_CENTS + 1},
        {"amount_cents": "12.34"},
        {"end_to_end_id": "E123"},
        {"payee_account_id": "not-a-uuid"},
        {"initiation": "PIGEON"},
    ],
)
async def test_a_malformed_payload_is_refused(iw: IncomingWorld, change: dict[str, object]) -> None:
    world = iw.world
    ana = await world.open("ana", "Ana")
    await iw.accept_later(from_carla(world, 50_00, to=ana))
    [event] = world.publisher.of_type(INCOMING_ACCEPTED)
    with pytest.raises(MalformedPixEvent):
        IncomingAccepted.from_payload({**event.payload, **change})
    without_payee = {k: v for k, v in event.payload.items() if k != "payee_branch"}
    with pytest.raises(MalformedPixEvent):
        IncomingAccepted.from_payload(without_payee)


@pytest.mark.parametrize("credit_inline", [True, False], ids=["inline", "for-the-worker"])
async def test_an_order_above_what_a_pix_carries_is_refused_and_nothing_moves(
    iw: IncomingWorld, credit_inline: bool
) -> None:
    world = iw.world
    ana = await world.open("ana", "Ana")
    accept = iw.accept_inline if credit_inline else iw.accept_later
    too_much = from_carla(world, 50_00, to=ana)
    too_much = msgspec.structs.replace(too_much, amount=Money(MAX_BCB_CENTS + 1))

    with pytest.raises(InvalidAmount):
        await accept(too_much)

    assert await world.posted(ana.id) == 0
    assert world.publisher.of_type(PAYMENT_RECEIVED) == []
    assert world.publisher.of_type(INCOMING_ACCEPTED) == []
    most = await accept(from_carla(world, MAX_BCB_CENTS, to=ana))  # the largest passes
    assert most.status == ("SETTLED" if credit_inline else "ACCEPTED")
    with pytest.raises(PixPaymentNotFound):
        await world.payments.get(too_much.end_to_end_id)


async def test_the_sandbox_goes_through_acceptance(iw: IncomingWorld) -> None:
    world = iw.world
    ana = await world.open("ana", "Ana")
    simulate = SimulateIncomingPix(
        accounts=world.accounts,
        originator=world.spi,
        accept=iw.accept_later,
        peer_ispb=PEER_ISPB,
        peer_account_number=PEER_ACCOUNT_NUMBER,
    )

    acceptance = await simulate(
        SimulateIncomingPixCommand(owner_id="ana", account_id=ana.id, amount=Money(7_00))
    )

    assert (acceptance.status, acceptance.payment) == ("ACCEPTED", None)
    [event] = world.publisher.of_type(INCOMING_ACCEPTED)
    assert event.aggregate_id == acceptance.end_to_end_id
    assert await world.posted(ana.id) == 0


async def test_accepting_an_order_twice_before_the_worker_ran_announces_it_once(
    iw: IncomingWorld,
) -> None:
    world = iw.world
    ana = await world.open("ana", "Ana")
    order = from_carla(world, 30_00, to=ana)
    await iw.accept_later(order)
    await iw.accept_later(order)  # the network asked again before the worker credited it

    first, again = world.publisher.of_type(INCOMING_ACCEPTED)
    assert again.event_id == first.event_id  # the inbox drops the second
    assert len(world.publisher.applied(INCOMING_ACCEPTED)) == 1
    await world.receive(IncomingAccepted.from_payload(again.payload).order())
    await world.receive(IncomingAccepted.from_payload(first.payload).order())
    assert await world.posted(ana.id) == 30_00
