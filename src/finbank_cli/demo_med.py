"""The MED chapter of ``finbank demo``: a fraud reported, blocked, traced and returned.

Carla is tricked into paying Davi; Davi moves most of it on to Eva at once.
The fraud engine places a precautionary block on what is left, Carla
contests the payment in the app, an analyst accepts the report: the block
is kept for MED and the money is followed to Eva's account and blocked
there too; the refund request returns all of it to Carla. A second,
uncontested block ends by itself at its 72-hour deadline.

Every payment is on-us (both accounts here), so the chapter runs the same
on every profile. Time: like the PIX chapter, the container's clock is a
:class:`FakeClock` for the chapter (records follow it; the ledger keeps its
own clock, so its holds are released on the record's deadline by the
first reader, as the rules say).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dependency_injector import providers

from finbank import Bank
from finbank_adapters.memory import FakeClock
from finbank_cli.story import Story
from finbank_core.accounts.model import CustomerAccount
from finbank_core.accounts.use_cases import (
    GetBalanceQuery,
    InternalTransferCommand,
    MoveCashCommand,
    OpenAccountCommand,
)
from finbank_core.pix.codes.keys import PixKeyType
from finbank_core.pix.med.model import BlockStatus, CaseStatus, Decision, FraudSituation
from finbank_core.pix.med.use_cases import (
    AnalyseInfractionReportCommand,
    ContestPixPaymentCommand,
    MedViewQuery,
    PlacePrecautionaryBlockCommand,
    RequestMedRefundCommand,
)
from finbank_core.pix.payments import PixPayment
from finbank_core.pix.refunds import RefundNature
from finbank_core.pix.use_cases import GetPixPaymentQuery, RegisterPixKeyCommand, SendPixCommand
from finbank_core.shared.money import Money

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


async def chapter(bank: Bank, story: Story) -> None:
    """A fraud reported, blocked, traced and returned; a block released at its deadline."""
    clock = FakeClock(datetime(2026, 3, 11, 10, 0, tzinfo=SAO_PAULO))
    infra = bank.container.infra()
    infra.clock.override(providers.Object(clock))
    try:
        await _chapter(bank, story, clock)
    finally:
        infra.clock.reset_override()


async def _chapter(bank: Bank, story: Story, clock: FakeClock) -> None:
    suffix = uuid.uuid4().hex[:6]
    story.step("MED: Carla, Davi and Eva open accounts; Carla has R$ 1.000,00")
    carla = await _open(bank, f"med-carla-{suffix}", "Carla Dias")
    davi = await _open(bank, f"med-davi-{suffix}", "Davi Rocha")
    eva = await _open(bank, f"med-eva-{suffix}", "Eva Nunes")
    await bank.accounts.deposit(
        MoveCashCommand(
            account_id=carla.id,
            amount=Money(1_000_00),
            idempotency_key=f"med-demo-{suffix}",
            operator_id="teller-1",
        )
    )

    story.step("Carla is tricked into paying Davi R$ 600,00; Davi moves R$ 450,00 to Eva")
    fraud = await _pay(bank, carla, davi, Money(600_00), f"med-fraud-{suffix}")
    e2e = fraud.end_to_end_id
    clock.advance(minutes=2)
    await bank.accounts.transfer(
        InternalTransferCommand(
            owner_id=davi.owner_id,
            from_account_id=davi.id,
            to_account_id=eva.id,
            amount=Money(450_00),
            idempotency_key=f"med-move-{suffix}",
        )
    )

    story.step("The fraud engine blocks what is left in Davi's account (bloqueio cautelar)")
    placed = await bank.pix.med.place_block(
        PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by="fraud-engine")
    )
    story.say(f"held {placed.block.amount}, until {placed.block.expires_at:%Y-%m-%d %H:%M} UTC")
    story.check(placed.block.amount == Money(150_00), "the block holds the R$ 150,00 left")
    story.check(await _available(bank, davi) == Money(0), "Davi cannot spend it")

    story.step("Carla contests the payment in the app; the report goes to analysis")
    contested = await bank.pix.med.contest(
        ContestPixPaymentCommand(
            owner_id=carla.owner_id, end_to_end_id=e2e, situation=FraudSituation.SCAM
        )
    )
    story.check(contested.case.status is CaseStatus.OPEN, "an infraction report is open")
    story.say(f"analysis due by {contested.case.analysis_deadline:%Y-%m-%d %H:%M} UTC")

    story.step("An analyst accepts it: the block is kept and the money is followed to Eva")
    clock.advance(hours=3)
    accepted = await bank.pix.med.analyse(
        AnalyseInfractionReportCommand(
            end_to_end_id=e2e, decision=Decision.AGREED, analyst_id="analyst-1"
        )
    )
    held = {b.account_id: b.amount for b in accepted.case.blocks}
    story.check(held.get(davi.id) == Money(150_00), "R$ 150,00 held in Davi's account")
    story.check(held.get(eva.id) == Money(450_00), "R$ 450,00 traced and held in Eva's")
    view = await bank.pix.med.view(MedViewQuery(end_to_end_id=e2e))
    story.check(
        view.block is not None and view.block.status is BlockStatus.KEPT_FOR_MED,
        "the precautionary block now belongs to the MED case",
    )

    story.step("The refund is requested: the money goes back to Carla")
    returned = await bank.pix.med.request_refund(
        RequestMedRefundCommand(end_to_end_id=e2e, requested_by="analyst-1")
    )
    story.check(returned.case.status is CaseStatus.CLOSED, "every return executed")
    story.check(await _available(bank, carla) == Money(1_000_00), "Carla has her R$ 1.000,00")
    story.check(
        await _available(bank, davi) == Money(0) and await _available(bank, eva) == Money(0),
        "Davi and Eva keep nothing of it",
    )
    payment = await bank.pix.get_payment(
        GetPixPaymentQuery(owner_id=carla.owner_id, end_to_end_id=e2e)
    )
    story.check(
        {r.nature for r in payment.refunds} == {RefundNature.MED_FRAUDE}
        and payment.refunded_amount == Money(600_00),
        "the payment lists the returns as MED_FRAUDE refunds",
    )

    story.step("A block nobody follows up ends by itself 72 hours after the credit")
    other = await _pay(bank, carla, davi, Money(80_00), f"med-other-{suffix}")
    blocked = await bank.pix.med.place_block(
        PlacePrecautionaryBlockCommand(end_to_end_id=other.end_to_end_id, blocked_by="engine")
    )
    clock.set(blocked.block.expires_at - timedelta(seconds=1))
    before = await bank.pix.med.view(MedViewQuery(end_to_end_id=other.end_to_end_id))
    clock.set(blocked.block.expires_at)
    after = await bank.pix.med.view(MedViewQuery(end_to_end_id=other.end_to_end_id))
    story.check(
        before.block is not None and before.block.status is BlockStatus.ACTIVE,
        "one second before the deadline it still holds",
    )
    story.check(
        after.block is not None and after.block.status is BlockStatus.RELEASED,
        "at the deadline it is released",
    )
    story.check(await _available(bank, davi) == Money(80_00), "Davi can spend the R$ 80,00")


async def _open(bank: Bank, owner_id: str, name: str) -> CustomerAccount:
    return await bank.accounts.open(OpenAccountCommand(owner_id=owner_id, holder_name=name))


async def _pay(
    bank: Bank, payer: CustomerAccount, payee: CustomerAccount, amount: Money, key: str
) -> PixPayment:
    """``payer`` pays ``payee`` by a random key (both here: settled in the call)."""
    evp = await bank.pix.register_key(
        RegisterPixKeyCommand(owner_id=payee.owner_id, account_id=payee.id, key_type=PixKeyType.EVP)
    )
    assert evp.key is not None  # the directory issued it
    sent = await bank.pix.send(
        SendPixCommand(
            owner_id=payer.owner_id,
            account_id=payer.id,
            idempotency_key=key,
            amount=amount,
            key=evp.key.value,
        )
    )
    return sent.payment


async def _available(bank: Bank, account: CustomerAccount) -> Money:
    balance = await bank.accounts.balance(
        GetBalanceQuery(owner_id=account.owner_id, account_id=account.id)
    )
    return balance.available
