"""The PIX chapter of ``finbank demo``.

Time: limits depend on the hour in São Paulo, so the chapter overrides the
container's clock with a :class:`FakeClock` set to 10:00 there (and moves it
to 21:30 for the nighttime limit), then restores it. Adapters built before
the chapter keep the clock they were built with (the ledger does), so
statement timestamps are real time while payment records follow the demo's
clock. Payments to other banks go through the simulated SPI and its peer
bank, "Banco Simulado" (see ``finbank_adapters.sandbox``).
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from dependency_injector import providers

from finbank import Bank, provided
from finbank_adapters.memory import FakeClock
from finbank_adapters.sandbox import PEER_CLOSED_KEY, PEER_KEY_EMAIL
from finbank_cli.demo_settlement import final_payment, received_payment, settled_refund
from finbank_cli.story import Story
from finbank_core.accounts.ledger import TransferFlags
from finbank_core.accounts.use_cases import (
    BankAccounts,
    GetStatementQuery,
    MoveCashCommand,
    OpenAccountCommand,
)
from finbank_core.pix.charges import ChargeStatus
from finbank_core.pix.codes.documents import generate_cpf
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.errors import PixLimitExceeded
from finbank_core.pix.payments import PaymentStatus, pix_transfer_id
from finbank_core.pix.refunds import RefundStatus
from finbank_core.pix.use_cases import (
    CreateChargeCommand,
    GetChargeQuery,
    ListPixKeysQuery,
    RefundPixCommand,
    RegisterPixKeyCommand,
    SendPixCommand,
    SimulateIncomingPixCommand,
)
from finbank_core.shared.money import Money

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


async def chapter(bank: Bank, story: Story) -> None:
    """Keys, payments on-us and to another bank, a charge, a rejection, a refund, a limit."""
    clock = FakeClock(datetime(2026, 3, 10, 10, 0, tzinfo=SAO_PAULO))
    infra = bank.container.infra()
    infra.clock.override(providers.Object(clock))
    try:
        await _chapter(bank, story, clock)
    finally:
        infra.clock.reset_override()


async def _chapter(bank: Bank, story: Story, clock: FakeClock) -> None:
    suffix = uuid.uuid4().hex[:6]
    ana_owner, bruno_owner = f"pix-ana-{suffix}", f"pix-bruno-{suffix}"
    story.step("PIX: Ana and Bruno open accounts; a teller deposits R$ 2.000,00 for Ana")
    ana_cpf = generate_cpf(random.Random())  # noqa: S311 - a demo document, not a secret
    ana = await bank.accounts.open(
        OpenAccountCommand(owner_id=ana_owner, holder_name="Ana Souza", holder_document=ana_cpf)
    )
    bruno = await bank.accounts.open(
        OpenAccountCommand(owner_id=bruno_owner, holder_name="Bruno Lima")
    )
    await bank.accounts.deposit(
        MoveCashCommand(
            account_id=ana.id,
            amount=Money(2_000_00),
            idempotency_key=f"pix-demo-{suffix}",
            operator_id="teller-1",
        )
    )

    story.step("Keys: Ana registers her CPF, Bruno gets a random key (EVP) and an email")
    await bank.pix.register_key(
        RegisterPixKeyCommand(
            owner_id=ana_owner, account_id=ana.id, key_type=PixKeyType.CPF, key=ana_cpf
        )
    )
    evp = await bank.pix.register_key(
        RegisterPixKeyCommand(owner_id=bruno_owner, account_id=bruno.id, key_type=PixKeyType.EVP)
    )
    await bank.pix.register_key(
        RegisterPixKeyCommand(
            owner_id=bruno_owner,
            account_id=bruno.id,
            key_type=PixKeyType.EMAIL,
            key=f"bruno.{suffix}@example.com",
        )
    )
    directory = await provided(bank.container.pix().key_directory)
    entry = await directory.lookup(PixKey.parse(ana_cpf))
    story.say(
        f"a payer looking up Ana's CPF key sees: {entry.owner_name}, {entry.owner_document_masked}"
    )
    story.check(entry.owner_document_masked != ana_cpf, "the directory masks the holder's CPF")
    story.check(
        len(await bank.pix.list_keys(ListPixKeysQuery(owner_id=bruno_owner))) == 2,
        "Bruno has 2 keys",
    )

    story.step("Ana pays Bruno R$ 50,00 by his random key (both here: settles at once)")
    by_key = await bank.pix.send(
        SendPixCommand(
            owner_id=ana_owner,
            account_id=ana.id,
            idempotency_key=f"key-{suffix}",
            amount=Money(50_00),
            key=evp.key.value,
            description="almoço",
        )
    )
    story.say(f"EndToEndId {by_key.payment.end_to_end_id}")
    story.check(by_key.payment.status is PaymentStatus.SETTLED, "the on-us payment is SETTLED")

    story.step("Bruno charges R$ 80,00 (cob); Ana pays the dynamic BR Code")
    view = await bank.pix.create_charge(
        CreateChargeCommand(
            owner_id=bruno_owner,
            account_id=bruno.id,
            pix_key=evp.key.value,
            amount=Money(80_00),
            description="conserto da bicicleta",
        )
    )
    story.say(f"Pix Copia e Cola: {view.dynamic_brcode}")
    by_code = await bank.pix.send(
        SendPixCommand(
            owner_id=ana_owner,
            account_id=ana.id,
            idempotency_key=f"charge-{suffix}",
            br_code=view.dynamic_brcode,
        )
    )
    charge = (
        await bank.pix.get_charge(GetChargeQuery(owner_id=bruno_owner, txid=view.charge.txid))
    ).charge
    story.check(by_code.payment.amount == Money(80_00), "the amount came from the charge")
    story.check(charge.status is ChargeStatus.CONCLUIDA, f"the charge is {charge.status.value}")

    story.step("Ana pays Carla at Banco Simulado R$ 120,00; the simulated SPI settles it")
    off_us = await bank.pix.send(
        SendPixCommand(
            owner_id=ana_owner,
            account_id=ana.id,
            idempotency_key=f"peer-{suffix}",
            amount=Money(120_00),
            key=PEER_KEY_EMAIL,
        )
    )
    off_us_payment = await final_payment(bank, ana_owner, off_us.payment)
    story.check(off_us_payment.status is PaymentStatus.SETTLED, "settled by the network")

    story.step("Ana tries to pay a closed account at Banco Simulado")
    rejected = await bank.pix.send(
        SendPixCommand(
            owner_id=ana_owner,
            account_id=ana.id,
            idempotency_key=f"closed-{suffix}",
            amount=Money(30_00),
            key=PEER_CLOSED_KEY,
        )
    )
    closed = await final_payment(bank, ana_owner, rejected.payment)
    reason = closed.reject_reason.value if closed.reject_reason else "-"
    story.check(closed.status is PaymentStatus.REJECTED, f"REJECTED with {reason}")
    story.check(await _posted(bank, ana.id) == 1_750_00, "and nothing left Ana's account")

    story.step("Carla pays Bruno R$ 200,00 from Banco Simulado; Bruno refunds R$ 50,00")
    incoming = await bank.pix.simulate_incoming(
        SimulateIncomingPixCommand(owner_id=bruno_owner, account_id=bruno.id, amount=Money(200_00))
    )
    await received_payment(bank, bruno_owner, incoming.end_to_end_id)
    refund = await bank.pix.refund(
        RefundPixCommand(
            owner_id=bruno_owner,
            end_to_end_id=incoming.end_to_end_id,
            amount=Money(50_00),
            client_refund_id=f"refund-{suffix}",
        )
    )
    story.say(f"rtrId {refund.refund.return_id}, reason {refund.refund.reason.value}")
    returned = await settled_refund(
        bank, bruno_owner, incoming.end_to_end_id, refund.refund.return_id
    )
    story.check(returned.status is RefundStatus.DEVOLVIDO, "the refund is DEVOLVIDO")

    story.step("21:30 in São Paulo: the nighttime limit refuses R$ 1.500,00")
    clock.set(datetime(2026, 3, 10, 21, 30, tzinfo=SAO_PAULO))
    try:
        await bank.pix.send(
            SendPixCommand(
                owner_id=ana_owner,
                account_id=ana.id,
                idempotency_key=f"night-{suffix}",
                amount=Money(1_500_00),
                key=evp.key.value,
            )
        )
        story.check(False, "the nighttime limit refused the payment")
    except PixLimitExceeded as exc:
        story.check(True, f"refused: {exc.code} ({exc.details.get('limit')})")

    story.step("PIX statements")
    expected = {"Ana": 1_750_00, "Bruno": 280_00}
    for name, owner, account in (("Ana", ana_owner, ana), ("Bruno", bruno_owner, bruno)):
        story.say(f"-- {name}")
        statement = await bank.accounts.statement(
            GetStatementQuery(owner_id=owner, account_id=account.id)
        )
        for line in statement.lines:
            story.say(
                f"{line.amount.format_brl():>14}  saldo {line.balance_after.format_brl():>14}  "
                f"{line.description or ''}"
            )
        total = sum(line.amount.cents for line in statement.lines)
        story.check(total == expected[name], f"{name}'s entries add up to {Money(total)}")
    # Every payment and return of this chapter, on-us ones too: what they moved on the
    # settlement account. Not its balance before and after: other runs of the demo (or
    # anything else on the same database) move the bank's one settlement account too.
    spi_ids = [
        by_key.payment.end_to_end_id,
        by_code.payment.end_to_end_id,
        off_us.payment.end_to_end_id,
        rejected.payment.end_to_end_id,
        incoming.end_to_end_id,
        refund.refund.return_id,
    ]
    settlement_delta = await _moved(bank, BankAccounts.PIX_SETTLEMENT, spi_ids)
    # out 120,00 to Carla, in 200,00 from Carla, 50,00 back to her: net 30,00 came in
    story.check(settlement_delta == -30_00, "the settlement account moved by the off-us net only")


#: the steps a payment's or a return's money takes through the ledger (PixLedgerSteps)
_STEPS = ("pending", "post", "credit", "void")


async def _moved(bank: Bank, account_id: uuid.UUID, spi_ids: list[str]) -> int:
    """What the ledger transfers of these payments and returns posted on ``account_id``:
    credits minus debits, as its posted balance counts them (a pending transfer and its
    void post nothing)."""
    ledger = await provided(bank.container.accounts().ledger)
    records = await ledger.lookup_transfers(
        [pix_transfer_id(spi_id, step) for spi_id in spi_ids for step in _STEPS]
    )
    moved = 0
    for record in records:
        if record.flags & (TransferFlags.PENDING | TransferFlags.VOID_PENDING_TRANSFER):
            continue
        if record.credit_account_id == account_id:
            moved += record.amount
        if record.debit_account_id == account_id:
            moved -= record.amount
    return moved


async def _posted(bank: Bank, account_id: uuid.UUID) -> int:
    """A ledger account's posted balance (the bank's own accounts have no owner to ask as)."""
    ledger = await provided(bank.container.accounts().ledger)
    [account] = await ledger.lookup_accounts([account_id])
    return int(account.balance_posted)
