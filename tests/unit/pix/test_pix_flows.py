"""Payments on-us, to the peer bank, rejected, received and refunded: the ledger stays balanced."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from tests.pix_support import PEER_ISPB, PixWorld, build_world

from finbank_adapters.sandbox import PEER_CLOSED_KEY, PEER_KEY_EMAIL
from finbank_core.accounts.errors import InsufficientFunds
from finbank_core.accounts.ledger import PendingStatus, TransferCode
from finbank_core.accounts.use_cases import (
    BankAccounts,
    Deposit,
    GetStatement,
    GetStatementQuery,
    MoveCashCommand,
)
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.errors import (
    PixLimitExceeded,
    PixPaymentNotFound,
    PixPaymentNotRefundable,
    PixRecipientInvalid,
    PixRefundExceedsOriginal,
    PixRefundWindowExpired,
)
from finbank_core.pix.events import (
    PAYMENT_REJECTED,
    PAYMENT_REQUESTED,
    PAYMENT_SETTLED,
    outcome_event_id,
)
from finbank_core.pix.payments import PaymentStatus, PixFlow, pix_transfer_id
from finbank_core.pix.refunds import RefundStatus
from finbank_core.pix.use_cases import (
    AccountData,
    GetPixPaymentQuery,
    RefundPixCommand,
    SendPixCommand,
    SettlePixPaymentCommand,
)
from finbank_core.shared.errors import AccountNotFound, IdempotencyKeyReused
from finbank_core.shared.events import EventEnvelope
from finbank_core.shared.money import Money


@pytest.fixture
async def world() -> PixWorld:
    return await build_world()


def pay(account_id: object, key: str, cents: int, idem: str, **extra: object) -> SendPixCommand:
    return SendPixCommand(
        owner_id="ana",
        account_id=account_id,  # type: ignore[arg-type]
        idempotency_key=idem,
        amount=Money(cents),
        key=key,
        **extra,  # type: ignore[arg-type]
    )


async def test_on_us_payment_settles_at_once_and_moves_the_money(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    bia = await world.open("bia", "Bia")
    result = await world.send(pay(ana.id, await world.evp(bia), 30_25, "k1"))
    payment = result.payment
    assert (payment.flow, payment.status) == (PixFlow.ON_US, PaymentStatus.SETTLED)
    assert (await world.posted(ana.id), await world.posted(bia.id)) == (69_75, 30_25)
    assert await world.posted(BankAccounts.PIX_SETTLEMENT) == 0
    assert world.spi.payments == []  # on-us never reaches the network
    assert payment.payee.owner_id == "bia"
    assert payment.is_visible_to("bia")
    await world.assert_ledger_balanced()
    statement = await GetStatement(world.ledger, world.accounts)(
        GetStatementQuery(owner_id="bia", account_id=bia.id)
    )
    assert [(line.amount.cents, line.code) for line in statement.lines] == [
        (30_25, TransferCode.PIX_IN)
    ]


async def test_payment_to_the_peer_bank_is_settled_by_the_network(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    result = await world.send(pay(ana.id, PEER_KEY_EMAIL, 40_00, "k1"))
    assert (result.payment.flow, result.payment.status) == (PixFlow.OUTGOING, PaymentStatus.SETTLED)
    assert result.payment.payee.ispb == PEER_ISPB
    assert result.payment.payee.document_masked == "***.982.247-**"
    assert await world.posted(ana.id) == 60_00
    # the money left through the settlement account at the central bank: an asset of the
    # bank, so paying out credits it (posted credit balance as the ledger reports it)
    assert await world.posted(BankAccounts.PIX_SETTLEMENT) == 40_00
    [order] = world.spi.payments
    assert order.end_to_end_id == result.payment.end_to_end_id
    await world.assert_ledger_balanced()


async def test_rejection_voids_the_reservation_and_keeps_the_iso_reason(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    result = await world.send(pay(ana.id, PEER_CLOSED_KEY, 40_00, "k1"))
    assert (result.payment.status, result.payment.reject_reason) == (
        PaymentStatus.REJECTED,
        IsoReason.AC07,
    )
    assert await world.available(ana.id) == 100_00
    assert await world.posted(ana.id) == 100_00
    assert [e.type for e in world.publisher.published if e.type.startswith("pix.payment")] == [
        PAYMENT_REQUESTED,
        PAYMENT_REJECTED,
    ]
    await world.assert_ledger_balanced()


async def test_network_timeout_rule_rejects_with_ab03(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    world.spi.reject_when(IsoReason.AB03, amount=Money(12_34))
    result = await world.send(pay(ana.id, PEER_KEY_EMAIL, 12_34, "k1"))
    assert result.payment.reject_reason is IsoReason.AB03
    assert await world.available(ana.id) == 100_00


async def test_insufficient_funds_refuse_at_once_and_leave_no_record(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(10_00))
    bia = await world.open("bia", "Bia")
    command = pay(ana.id, await world.evp(bia), 10_01, "k1")
    with pytest.raises(InsufficientFunds):
        await world.send(command)
    assert (await world.payments.list_by_account(ana.id)).items == []
    assert await world.available(ana.id) == 10_00
    # the key stays free: once funded, the same request goes through
    await Deposit(world.ledger, world.accounts, world.clock, world.ids)(
        MoveCashCommand(
            account_id=ana.id, amount=Money(1), idempotency_key="top-up", operator_id="t"
        )
    )
    retry = await world.send(command)
    assert (retry.replayed, retry.payment.status) == (False, PaymentStatus.SETTLED)
    assert await world.posted(ana.id) == 0


async def test_same_idempotency_key_replays_and_another_body_is_refused(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    bia = await world.open("bia", "Bia")
    key = await world.evp(bia)
    first = await world.send(pay(ana.id, key, 10_00, "same"))
    again = await world.send(pay(ana.id, key, 10_00, "same"))
    assert again.replayed
    assert again.payment.end_to_end_id == first.payment.end_to_end_id
    assert await world.posted(ana.id) == 90_00
    with pytest.raises(IdempotencyKeyReused):
        await world.send(pay(ana.id, key, 11_00, "same"))


async def test_the_worker_settles_later_and_rerunning_it_changes_nothing() -> None:
    world = await build_world(inline_settlement=False)
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    result = await world.send(pay(ana.id, PEER_KEY_EMAIL, 25_00, "k1"))
    e2e = result.payment.end_to_end_id
    assert result.payment.status is PaymentStatus.PENDING
    assert (await world.posted(ana.id), await world.available(ana.id)) == (100_00, 75_00)
    settled = await world.settle(SettlePixPaymentCommand(end_to_end_id=e2e))
    assert settled.status is PaymentStatus.SETTLED
    again = await world.settle(SettlePixPaymentCommand(end_to_end_id=e2e))
    assert again == settled
    assert len(world.spi.payments) == 1
    # the re-run announces the outcome again (a crash may have eaten it) under the same id
    first, repeated = world.publisher.of_type(PAYMENT_SETTLED)
    assert repeated.event_id == first.event_id
    assert repeated.payload == first.payload
    assert len(world.publisher.applied(PAYMENT_SETTLED)) == 1
    assert await world.posted(ana.id) == 75_00
    await world.assert_ledger_balanced()


async def test_an_outcome_event_lost_to_a_crash_is_announced_by_the_next_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await build_world(inline_settlement=False)
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    e2e = (await world.send(pay(ana.id, PEER_KEY_EMAIL, 25_00, "k1"))).payment.end_to_end_id
    publish = world.publisher.publish

    async def crash_before_the_outcome(events: Sequence[EventEnvelope]) -> None:
        if any(event.type == PAYMENT_SETTLED for event in events):
            raise RuntimeError("the worker died here")
        await publish(events)

    monkeypatch.setattr(world.publisher, "publish", crash_before_the_outcome)
    with pytest.raises(RuntimeError):
        await world.settle(SettlePixPaymentCommand(end_to_end_id=e2e))
    assert (await world.payments.get(e2e)).status is PaymentStatus.SETTLED  # recorded...
    assert world.publisher.of_type(PAYMENT_SETTLED) == []  # ...but never announced
    monkeypatch.setattr(world.publisher, "publish", publish)

    await world.settle(SettlePixPaymentCommand(end_to_end_id=e2e))  # the redelivered request

    [event] = world.publisher.of_type(PAYMENT_SETTLED)
    assert event.event_id == outcome_event_id(PAYMENT_SETTLED, e2e)
    assert event.payload["status"] == "SETTLED"
    assert len(world.spi.payments) == 1
    assert await world.posted(ana.id) == 75_00


async def test_worker_does_not_send_a_payment_whose_reservation_was_voided() -> None:
    world = await build_world(inline_settlement=False)
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    e2e = (await world.send(pay(ana.id, PEER_KEY_EMAIL, 25_00, "k1"))).payment.end_to_end_id
    await world.steps.void(e2e, TransferCode.PIX_OUT)  # e.g. reconciliation after a timeout
    rejected = await world.settle(SettlePixPaymentCommand(end_to_end_id=e2e))
    assert (rejected.status, rejected.reject_reason) == (PaymentStatus.REJECTED, IsoReason.AB03)
    assert world.spi.payments == []
    [pending] = await world.ledger.lookup_transfers([pix_transfer_id(e2e, "pending")])
    assert pending.status is PendingStatus.VOIDED


async def test_payment_by_account_data_to_the_peer_and_here(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    bia = await world.open("bia", "Bia", document="11144477735")
    base = {"owner_id": "ana", "account_id": ana.id, "amount": Money(5_00)}
    to_peer = AccountData(
        ispb=PEER_ISPB, branch="0001", account_number="123456-7", document="52998224725"
    )
    sent = await world.send(SendPixCommand(idempotency_key="a", account_data=to_peer, **base))  # type: ignore[arg-type]
    assert sent.payment.status is PaymentStatus.SETTLED
    here = AccountData(
        ispb="99999999", branch=bia.branch, account_number=bia.number, document="111.444.777-35"
    )
    on_us = await world.send(SendPixCommand(idempotency_key="b", account_data=here, **base))  # type: ignore[arg-type]
    assert on_us.payment.flow is PixFlow.ON_US
    assert await world.posted(bia.id) == 5_00
    wrong = AccountData(
        ispb="99999999", branch=bia.branch, account_number=bia.number, document="52998224725"
    )
    with pytest.raises(PixRecipientInvalid):
        await world.send(SendPixCommand(idempotency_key="c", account_data=wrong, **base))  # type: ignore[arg-type]
    unknown = AccountData(
        ispb=PEER_ISPB, branch="0001", account_number="999-9", document="52998224725"
    )
    refused = await world.send(SendPixCommand(idempotency_key="d", account_data=unknown, **base))  # type: ignore[arg-type]
    assert refused.payment.reject_reason is IsoReason.AC03
    await world.assert_ledger_balanced()


async def test_nighttime_limit_refuses_before_anything_is_reserved(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(5_000_00))
    world.clock.set(world.clock.now().replace(hour=23, minute=30))  # 20:30 in São Paulo
    with pytest.raises(PixLimitExceeded):
        await world.send(pay(ana.id, PEER_KEY_EMAIL, 1_000_01, "night"))
    ok = await world.send(pay(ana.id, PEER_KEY_EMAIL, 600_00, "n1"))
    assert ok.payment.status is PaymentStatus.SETTLED
    with pytest.raises(PixLimitExceeded) as caught:
        await world.send(pay(ana.id, PEER_KEY_EMAIL, 400_01, "n2"))
    assert caught.value.details["limit"] == "night_per_period"
    assert await world.available(ana.id) == 4_400_00


async def test_a_rejected_payment_does_not_use_up_the_limit(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(5_000_00))
    world.clock.set(world.clock.now().replace(hour=23, minute=30))
    await world.send(pay(ana.id, PEER_CLOSED_KEY, 1_000_00, "r"))
    ok = await world.send(pay(ana.id, PEER_KEY_EMAIL, 1_000_00, "ok"))
    assert ok.payment.status is PaymentStatus.SETTLED


async def test_new_device_cap_applies_until_the_device_is_trusted(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(5_000_00))
    with pytest.raises(PixLimitExceeded):
        await world.send(pay(ana.id, PEER_KEY_EMAIL, 200_01, "d0", device_id="phone"))
    await world.send(pay(ana.id, PEER_KEY_EMAIL, 200_00, "d1", device_id="phone"))
    world.clock.advance(hours=25)
    done = await world.send(pay(ana.id, PEER_KEY_EMAIL, 900_00, "d2", device_id="phone"))
    assert done.payment.status is PaymentStatus.SETTLED


async def test_received_payment_is_credited_once_per_end_to_end_id(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana")
    order = world.spi.originate_payment(
        from_ispb=PEER_ISPB,
        from_account_number="123456-7",
        amount=Money(50_00),
        to_branch=ana.branch,
        to_account_number=ana.number,
    )
    first = await world.receive(order)
    again = await world.receive(order)
    assert not first.replayed
    assert again.replayed
    assert first.payment.status is PaymentStatus.SETTLED
    assert await world.posted(ana.id) == 50_00
    assert await world.posted(BankAccounts.PIX_SETTLEMENT) == -50_00  # money came in
    await world.assert_ledger_balanced()


async def test_incoming_to_an_unknown_key_is_refused_with_ac03(world: PixWorld) -> None:
    order = world.spi.originate_payment(
        from_ispb=PEER_ISPB,
        from_account_number="123456-7",
        amount=Money(50_00),
        to_key="nobody@example.com",
    )
    with pytest.raises(PixRecipientInvalid) as caught:
        await world.receive(order)
    assert caught.value.details["reason"] == "AC03"


async def test_refund_of_an_incoming_payment_goes_back_through_the_network(
    world: PixWorld,
) -> None:
    ana = await world.open("ana", "Ana")
    order = world.spi.originate_payment(
        from_ispb=PEER_ISPB,
        from_account_number="123456-7",
        amount=Money(50_00),
        to_branch=ana.branch,
        to_account_number=ana.number,
    )
    received = (await world.receive(order)).payment
    cmd = RefundPixCommand(
        owner_id="ana",
        end_to_end_id=received.end_to_end_id,
        amount=Money(20_00),
        client_refund_id="r1",
    )
    result = await world.refund(cmd)
    assert result.refund.status is RefundStatus.DEVOLVIDO
    assert result.refund.return_id.startswith("D99999999")
    assert (await world.refund(cmd)).replayed
    assert await world.posted(ana.id) == 30_00
    assert await world.posted(BankAccounts.PIX_SETTLEMENT) == -30_00
    [returned] = world.spi.returns
    assert (returned.reason, returned.to_ispb) == (IsoReason.MD06, PEER_ISPB)
    with pytest.raises(PixRefundExceedsOriginal):
        await world.refund(
            RefundPixCommand(
                owner_id="ana",
                end_to_end_id=received.end_to_end_id,
                amount=Money(30_01),
                client_refund_id="r2",
            )
        )
    await world.assert_ledger_balanced()


async def test_refund_of_an_on_us_payment_credits_the_payer_back(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    bia = await world.open("bia", "Bia")
    e2e = (await world.send(pay(ana.id, await world.evp(bia), 40_00, "k"))).payment.end_to_end_id
    with pytest.raises(PixPaymentNotRefundable):  # the payer cannot refund what she sent
        await world.refund(
            RefundPixCommand(
                owner_id="ana", end_to_end_id=e2e, amount=Money(1), client_refund_id="x"
            )
        )
    with pytest.raises(PixPaymentNotFound):  # a stranger does not even see it
        await world.refund(
            RefundPixCommand(
                owner_id="eve", end_to_end_id=e2e, amount=Money(1), client_refund_id="x"
            )
        )
    result = await world.refund(
        RefundPixCommand(
            owner_id="bia", end_to_end_id=e2e, amount=Money(40_00), client_refund_id="r"
        )
    )
    assert result.refund.status is RefundStatus.DEVOLVIDO
    assert (await world.posted(ana.id), await world.posted(bia.id)) == (100_00, 0)
    assert await world.posted(BankAccounts.PIX_SETTLEMENT) == 0
    await world.assert_ledger_balanced()


async def test_refund_after_90_days_is_refused(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana")
    order = world.spi.originate_payment(
        from_ispb=PEER_ISPB,
        from_account_number="123456-7",
        amount=Money(50_00),
        to_branch=ana.branch,
        to_account_number=ana.number,
    )
    e2e = (await world.receive(order)).payment.end_to_end_id
    world.clock.advance(timedelta(days=90, seconds=1).total_seconds())
    with pytest.raises(PixRefundWindowExpired):
        await world.refund(
            RefundPixCommand(
                owner_id="ana", end_to_end_id=e2e, amount=Money(1), client_refund_id="r"
            )
        )
    assert await world.posted(ana.id) == 50_00


async def test_refund_rejected_by_the_network_is_nao_realizado_and_releases_funds(
    world: PixWorld,
) -> None:
    ana = await world.open("ana", "Ana")
    order = world.spi.originate_payment(
        from_ispb=PEER_ISPB,
        from_account_number="123456-7",
        amount=Money(50_00),
        to_branch=ana.branch,
        to_account_number=ana.number,
    )
    e2e = (await world.receive(order)).payment.end_to_end_id
    world.spi.timeout_seconds = 0.0  # every answer now times out (AB03), without waiting
    result = await world.refund(
        RefundPixCommand(
            owner_id="ana", end_to_end_id=e2e, amount=Money(50_00), client_refund_id="r"
        )
    )
    assert (result.refund.status, result.refund.failure_reason) == (
        RefundStatus.NAO_REALIZADO,
        IsoReason.AB03,
    )
    assert await world.available(ana.id) == 50_00
    assert result.payment.refunded_amount == Money(0)
    await world.assert_ledger_balanced()


async def test_payments_are_visible_to_payer_and_payee_only(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    bia = await world.open("bia", "Bia")
    e2e = (await world.send(pay(ana.id, await world.evp(bia), 1_00, "k"))).payment.end_to_end_id
    assert (
        await world.get_payment(GetPixPaymentQuery(owner_id="ana", end_to_end_id=e2e))
    ).end_to_end_id == e2e
    assert (
        await world.get_payment(GetPixPaymentQuery(owner_id="bia", end_to_end_id=e2e))
    ).end_to_end_id == e2e
    with pytest.raises(PixPaymentNotFound):
        await world.get_payment(GetPixPaymentQuery(owner_id="eve", end_to_end_id=e2e))


async def test_paying_from_someone_elses_account_is_not_found(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    with pytest.raises(AccountNotFound):
        await world.send(
            SendPixCommand(
                owner_id="eve",
                account_id=ana.id,
                idempotency_key="steal",
                amount=Money(1_00),
                key=PEER_KEY_EMAIL,
            )
        )
    assert await world.posted(ana.id) == 100_00
