"""Pix Automático with another institution (the sandbox peer bank), on memory and PostgreSQL.

Payer here, receiver at the peer: the payer scans the peer's code (its
recurrence fetched through the network), authorises (the answer reaches the
peer), the peer's receiver charges, and on the due date the debit goes out
as a PIX payment through the settlement flow: reserved, sent, posted, or
voided when the network rejects it. Receiver here, payer at the peer: the
peer's payer authorises, our receiver's charge is sent to the peer, and
the peer's payment is credited once and concludes the charge.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime

import msgspec
import pytest

from finbank import Bank, open_bank
from finbank_adapters.containers import resolve
from finbank_adapters.memory import FakeClock
from finbank_adapters.sandbox import PEER_ACCOUNT_NUMBER, SimulatedSpi
from finbank_adapters.sandbox.recurrences import PEER_LOCATION_HOST, SandboxRecurrenceNetwork
from finbank_core.accounts.model import CustomerAccount
from finbank_core.accounts.use_cases import GetBalanceQuery, MoveCashCommand, OpenAccountCommand
from finbank_core.pix import GetPixPaymentQuery
from finbank_core.pix.automatic import (
    BRASILIA,
    ELSEWHERE,
    AttemptStatus,
    AuthoriseRecurrenceCommand,
    CancelRecurrenceCommand,
    ChargeStatus,
    CreateRecurrenceCommand,
    GetRecurringChargeQuery,
    ListAuthorisationsQuery,
    Party,
    Periodicity,
    ReadRecurrenceCodeQuery,
    RecurrenceNotActive,
    RecurrenceNotFound,
    RecurrenceStatus,
    RejectRecurrenceCommand,
    RetryPolicy,
    RunDueDebitsCommand,
    ScheduleChargeCommand,
)
from finbank_core.pix.codes.brcode import BRCode
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.payments import PaymentStatus, PixFlow
from finbank_core.shared.money import Money
from tests.postgres_support import (
    all_postgres_settings,
    isolated_schema,
    require_postgres,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=BRASILIA)
DUE = date(2026, 3, 5)
PEER = "88888888"
TXID = "peerCharge0000000000000000000001"


@pytest.fixture(params=["memory", "postgres"])
async def bank(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Bank, FakeClock]]:
    clock = FakeClock(START)
    if request.param == "memory":
        async with open_bank(profile="memory", clock=clock) as opened:
            yield opened, clock
        return
    require_postgres()
    async with isolated_schema() as (_, schema):
        settings = all_postgres_settings(schema)
        async with open_bank(settings, clock=clock) as opened:
            yield opened, clock


async def _peer(bank: Bank) -> tuple[SandboxRecurrenceNetwork, SimulatedSpi]:
    container = bank.container.pix_automatic()
    network: object = await resolve(container.recurrence_network())
    spi: object = await resolve(bank.container.pix().payment_network())
    assert isinstance(network, SandboxRecurrenceNetwork)
    assert isinstance(spi, SimulatedSpi)
    return network, spi


async def _customer(bank: Bank, owner: str, cents: int = 0) -> CustomerAccount:
    account = await bank.accounts.open(
        OpenAccountCommand(owner_id=owner, holder_name=owner.title())
    )
    if cents:
        await bank.accounts.deposit(
            MoveCashCommand(
                account_id=account.id,
                amount=Money(cents),
                idempotency_key=f"in-{owner}",
                operator_id="teller",
            )
        )
    return account


async def _available(bank: Bank, account: CustomerAccount) -> int:
    balance = await bank.accounts.balance(
        GetBalanceQuery(owner_id=account.owner_id, account_id=account.id)
    )
    return balance.available.cents


async def _authorised_peer_plan(
    bank: Bank, network: SandboxRecurrenceNetwork, payer: CustomerAccount, **terms: object
) -> str:
    served, code = network.offer(
        ispb=PEER,
        account_number=PEER_ACCOUNT_NUMBER,
        contract="LUZ-2026",
        debtor_name="Ana",
        periodicity=Periodicity.MENSAL,
        start=DUE,
        fixed_amount=Money(40_00),
        **terms,  # type: ignore[arg-type]
    )
    offer = await bank.pix.automatic.read(ReadRecurrenceCodeQuery(owner_id="ana", br_code=code))
    assert offer.recurrence.recurrence_id == served.recurrence_id
    assert offer.recurrence.receiver_party is not None
    assert offer.recurrence.receiver_party.ispb == PEER
    assert offer.recurrence.fixed_amount == Money(40_00)
    approved = await bank.pix.automatic.authorise(
        AuthoriseRecurrenceCommand(owner_id="ana", account_id=payer.id, br_code=code)
    )
    assert approved.status is RecurrenceStatus.APROVADA
    assert (approved.receiver_owner_id, approved.receiver_account_id) == ("", ELSEWHERE)
    return served.recurrence_id


async def test_a_payer_here_authorises_a_peer_recurrence_and_the_debit_goes_out_as_pix(
    bank: tuple[Bank, FakeClock],
) -> None:
    opened, clock = bank
    network, spi = await _peer(opened)
    ana = await _customer(opened, "ana", 100_00)
    rec_id = await _authorised_peer_plan(opened, network, ana)
    # the peer was told, once even when asked twice (a replayed authorisation)
    assert [(a.recurrence_id, a.status) for a in network.answers] == [
        (rec_id, RecurrenceStatus.APROVADA)
    ]
    assert network.answers[0].payer.ispb != PEER
    peer_before = spi.institutions[PEER].accounts[0].balance_cents

    scheduled = await opened.pix.automatic.receive_charge(
        network.peer_charge(rec_id, txid=TXID, amount=Money(40_00), due_date=DUE)
    )
    assert scheduled.charge.status is ChargeStatus.ATIVA
    again = await opened.pix.automatic.receive_charge(
        network.peer_charge(rec_id, txid=TXID, amount=Money(40_00), due_date=DUE)
    )
    assert again.replayed

    clock.set(datetime(2026, 3, 5, 0, 5, tzinfo=BRASILIA))
    rounds = await asyncio.gather(
        *(opened.pix.automatic.run_due(RunDueDebitsCommand(holder=f"w{n}")) for n in range(3)),
        opened.pix.automatic.run_due(RunDueDebitsCommand(holder="w9")),
    )
    assert all(r.failed == [] for r in rounds)
    charge = await opened.pix.automatic.charge(GetRecurringChargeQuery(owner_id="ana", txid=TXID))
    assert charge.status is ChargeStatus.CONCLUIDA
    [attempt] = charge.attempts
    # one order on the network, recorded as ana's outgoing PIX payment, settled
    assert [p.end_to_end_id for p in spi.payments] == [attempt.end_to_end_id]
    payment = await opened.pix.get_payment(
        GetPixPaymentQuery(owner_id="ana", end_to_end_id=attempt.end_to_end_id)
    )
    assert (payment.flow, payment.status, payment.txid) == (
        PixFlow.OUTGOING,
        PaymentStatus.SETTLED,
        TXID,
    )
    assert payment.payee.account_number == PEER_ACCOUNT_NUMBER
    assert await _available(opened, ana) == 60_00
    assert spi.institutions[PEER].accounts[0].balance_cents == peer_before + 40_00


async def test_a_debit_the_peer_rejects_is_voided_and_the_charge_fails(
    bank: tuple[Bank, FakeClock],
) -> None:
    opened, clock = bank
    network, spi = await _peer(opened)
    ana = await _customer(opened, "ana", 100_00)
    rec_id = await _authorised_peer_plan(opened, network, ana)
    await opened.pix.automatic.receive_charge(
        network.peer_charge(rec_id, txid=TXID, amount=Money(40_00), due_date=DUE)
    )
    spi.reject_when(IsoReason.AC07, payee_account_number=PEER_ACCOUNT_NUMBER)
    clock.set(datetime(2026, 3, 5, 0, 5, tzinfo=BRASILIA))

    [charge] = (await opened.pix.automatic.run_due(RunDueDebitsCommand(holder="w"))).charges

    assert (charge.status, charge.reason) == (ChargeStatus.EXPIRADA, "rejected_AC07")
    assert [a.status for a in charge.attempts] == [AttemptStatus.FAILED]
    payment = await opened.pix.get_payment(
        GetPixPaymentQuery(owner_id="ana", end_to_end_id=charge.attempts[0].end_to_end_id)
    )
    assert payment.status is PaymentStatus.REJECTED
    assert await _available(opened, ana) == 100_00  # the reservation was voided


async def test_a_peer_recurrence_the_network_does_not_serve_is_not_found(
    bank: tuple[Bank, FakeClock],
) -> None:
    opened, _ = bank
    network, _ = await _peer(opened)
    ana = await _customer(opened, "ana", 100_00)
    _, code = network.offer(
        ispb=PEER,
        account_number=PEER_ACCOUNT_NUMBER,
        contract="X",
        debtor_name="Ana",
        periodicity=Periodicity.MENSAL,
        start=DUE,
    )
    unknown = BRCode.recurrence_only(
        recurrence_url=f"{PEER_LOCATION_HOST}/rec/RR{PEER}2026030200000000099",
        merchant_name="LOJA",
        merchant_city="SAO PAULO",
    ).encode()
    assert code != unknown
    with pytest.raises(RecurrenceNotFound):
        await opened.pix.automatic.authorise(
            AuthoriseRecurrenceCommand(owner_id="ana", account_id=ana.id, br_code=unknown)
        )
    assert await opened.pix.automatic.authorisations(ListAuthorisationsQuery(owner_id="ana")) == []
    assert network.answers == []


async def test_a_receiver_here_is_authorised_and_paid_by_a_payer_at_the_peer(
    bank: tuple[Bank, FakeClock],
) -> None:
    opened, clock = bank
    network, _ = await _peer(opened)
    gym = await _customer(opened, "gym")
    plan = await opened.pix.automatic.create(
        CreateRecurrenceCommand(
            owner_id="gym",
            account_id=gym.id,
            contract="PLANO-9",
            debtor_name="Carla Dias",
            debtor_document="52998224725",
            purpose=None,
            periodicity=Periodicity.MENSAL,
            start=DUE,
            retry_policy=RetryPolicy.NAO_PERMITE,
            fixed_amount=Money(30_00),
        )
    )
    answer = network.peer_answer(
        recurrence_id=plan.recurrence_id,
        receiver_ispb=plan.receiver_ispb,
        ispb=PEER,
        account_number=PEER_ACCOUNT_NUMBER,
    )
    approved = await opened.pix.automatic.record_answer(answer)
    assert approved.status is RecurrenceStatus.APROVADA
    assert approved.authorisation is not None
    assert approved.authorisation.payer_party is not None
    assert approved.authorisation.payer_party.ispb == PEER
    assert (await opened.pix.automatic.record_answer(answer)).version == approved.version

    scheduled = await opened.pix.automatic.schedule(
        ScheduleChargeCommand(
            owner_id="gym", recurrence_id=plan.recurrence_id, amount=Money(30_00), due_date=DUE
        )
    )
    charge = scheduled.charge
    assert (charge.status, charge.next_attempt_on) == (ChargeStatus.ATIVA, None)
    [sent] = network.charges
    assert (sent.txid, sent.payer.ispb, sent.receiver.account_number) == (
        charge.txid,
        PEER,
        gym.number,
    )
    # our scheduler does not debit it: the payer's institution does
    clock.set(datetime(2026, 3, 5, 0, 5, tzinfo=BRASILIA))
    assert (await opened.pix.automatic.run_due(RunDueDebitsCommand(holder="w"))).charges == []

    order = network.peer_pays(charge.txid)
    results = await asyncio.gather(*(opened.pix.automatic.receive_payment(order) for _ in range(5)))
    assert {r.payment.end_to_end_id for r in results} == {order.end_to_end_id}
    concluded = await opened.pix.automatic.charge(
        GetRecurringChargeQuery(owner_id="gym", txid=charge.txid)
    )
    assert (concluded.status, concluded.paid_by) == (ChargeStatus.CONCLUIDA, order.end_to_end_id)
    assert await _available(opened, gym) == 30_00  # credited once

    with pytest.raises(RecurrenceNotFound):  # nobody here is its payer
        await opened.pix.automatic.cancel(
            CancelRecurrenceCommand(owner_id="", recurrence_id=plan.recurrence_id)
        )


async def test_a_network_timeout_fails_the_attempt_and_it_is_retried(
    bank: tuple[Bank, FakeClock],
) -> None:
    opened, clock = bank
    network, spi = await _peer(opened)
    ana = await _customer(opened, "ana", 100_00)
    rec_id = await _authorised_peer_plan(opened, network, ana)
    await opened.pix.automatic.receive_charge(
        network.peer_charge(rec_id, txid=TXID, amount=Money(40_00), due_date=DUE)
    )
    spi.reject_when(IsoReason.AB03, amount=Money(40_00))  # the peer does not answer in time
    clock.set(datetime(2026, 3, 5, 0, 5, tzinfo=BRASILIA))
    [charge] = (await opened.pix.automatic.run_due(RunDueDebitsCommand(holder="w"))).charges
    assert (charge.status, charge.attempts[0].reason) == (ChargeStatus.ATIVA, "rejected_AB03")
    assert charge.next_attempt_at == datetime(2026, 3, 5, 18, 0, tzinfo=BRASILIA)
    assert await _available(opened, ana) == 100_00

    spi.rules.clear()
    clock.set(datetime(2026, 3, 5, 18, 0, tzinfo=BRASILIA))
    [charge] = (await opened.pix.automatic.run_due(RunDueDebitsCommand(holder="w"))).charges
    assert charge.status is ChargeStatus.CONCLUIDA
    assert [a.status for a in charge.attempts] == [AttemptStatus.FAILED, AttemptStatus.SETTLED]
    assert await _available(opened, ana) == 60_00


async def test_a_payer_here_rejects_a_peer_recurrence_and_the_peer_is_told(
    bank: tuple[Bank, FakeClock],
) -> None:
    opened, _ = bank
    network, _ = await _peer(opened)
    await _customer(opened, "ana", 100_00)
    served, code = network.offer(
        ispb=PEER,
        account_number=PEER_ACCOUNT_NUMBER,
        contract="TV",
        debtor_name="Ana",
        periodicity=Periodicity.MENSAL,
        start=DUE,
    )
    rejected = await opened.pix.automatic.reject(
        RejectRecurrenceCommand(owner_id="ana", br_code=code)
    )
    assert rejected.status is RecurrenceStatus.REJEITADA
    assert [(a.recurrence_id, a.status) for a in network.answers] == [
        (served.recurrence_id, RecurrenceStatus.REJEITADA)
    ]
    with pytest.raises(RecurrenceNotActive):
        await opened.pix.automatic.receive_charge(
            network.peer_charge(served.recurrence_id, txid=TXID, amount=Money(40_00), due_date=DUE)
        )


async def test_cancellations_cross_the_network_both_ways(
    bank: tuple[Bank, FakeClock],
) -> None:
    opened, _ = bank
    network, _ = await _peer(opened)
    ours = opened.settings.pix.ispb
    # payer here: the peer's receiver cancels; our copy and its waiting charge end
    ana = await _customer(opened, "ana", 100_00)
    rec_id = await _authorised_peer_plan(opened, network, ana)
    scheduled = await opened.pix.automatic.receive_charge(
        network.peer_charge(rec_id, txid=TXID, amount=Money(40_00), due_date=DUE)
    )
    cancellation = network.peer_cancels(rec_id, payer_ispb=ours, reason="contrato encerrado")
    ended = await opened.pix.automatic.record_cancellation(cancellation)
    assert (ended.status, ended.ended_by) == (RecurrenceStatus.CANCELADA, Party.PSP_RECEBEDOR)
    assert (await opened.pix.automatic.record_cancellation(cancellation)).version == ended.version
    charge = await opened.pix.automatic.charge(
        GetRecurringChargeQuery(owner_id="ana", txid=scheduled.charge.txid)
    )
    assert charge.status is ChargeStatus.CANCELADA

    # receiver here: our receiver cancels; the payer's institution is told
    gym = await _customer(opened, "gym")
    plan = await opened.pix.automatic.create(
        CreateRecurrenceCommand(
            owner_id="gym",
            account_id=gym.id,
            contract="PLANO-10",
            debtor_name="Carla Dias",
            debtor_document="52998224725",
            purpose=None,
            periodicity=Periodicity.MENSAL,
            start=DUE,
            retry_policy=RetryPolicy.NAO_PERMITE,
            fixed_amount=Money(30_00),
        )
    )
    await opened.pix.automatic.record_answer(
        network.peer_answer(
            recurrence_id=plan.recurrence_id,
            receiver_ispb=ours,
            ispb=PEER,
            account_number=PEER_ACCOUNT_NUMBER,
        )
    )
    await opened.pix.automatic.cancel(
        CancelRecurrenceCommand(owner_id="gym", recurrence_id=plan.recurrence_id)
    )
    assert [(c.recurrence_id, c.payer_ispb) for c in network.cancellations] == [
        (plan.recurrence_id, PEER)
    ]
    with pytest.raises(RecurrenceNotFound):  # only copies of recurrences elsewhere
        await opened.pix.automatic.record_cancellation(
            msgspec.structs.replace(cancellation, recurrence_id=plan.recurrence_id)
        )
