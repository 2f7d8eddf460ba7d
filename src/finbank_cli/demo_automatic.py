"""The Pix Automático chapter of ``finbank demo``: a gym's monthly plan, debited on its due dates.

A gym creates a monthly recurrence and shows its QR code; Bia reads it and
authorises from her account. The March charge is sent three days ahead and
debited at midnight on its due date; April's finds Bia short and is retried
the next day, once she has money again; Bia cancels, and May's charge is
refused; then she authorises a power company's plan at another bank (the
sandbox's peer), whose debit goes out as a PIX payment. Every debit runs
through ``bank.pix.automatic.execute``: what a scheduler round (``run_due``,
``finbank worker pix-automatic``) runs for each charge it leased. The chapter
runs its own charges only, not a round: a round takes every charge due on the
database, so a demo run beside another (or beside a worker) would debit the
other's charges at its own demo time and miss its own.

Both accounts are here, so the chapter runs the same on every profile.
Time: the container's clock is a :class:`FakeClock` for the chapter, moved
to each due date (the ledger keeps its own clock; nothing here depends on it).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from dependency_injector import providers

from finbank import Bank
from finbank_adapters.containers import resolve
from finbank_adapters.memory import FakeClock
from finbank_adapters.sandbox import PEER_ACCOUNT_NUMBER
from finbank_adapters.sandbox.recurrences import SandboxRecurrenceNetwork
from finbank_cli.story import Story
from finbank_core.accounts.model import CustomerAccount
from finbank_core.accounts.use_cases import GetBalanceQuery, MoveCashCommand, OpenAccountCommand
from finbank_core.pix.automatic import (
    BRASILIA,
    AuthoriseRecurrenceCommand,
    CancelRecurrenceCommand,
    ChargeOutsideWindow,
    ChargeStatus,
    CreateRecurrenceCommand,
    ExecuteDebitCommand,
    Periodicity,
    ReadRecurrenceCodeQuery,
    RecurrenceCodeQuery,
    RecurrenceNotActive,
    RecurrenceStatus,
    RecurringCharge,
    RetryPolicy,
    ScheduleChargeCommand,
)
from finbank_core.pix.codes.brcode_reader import read_brcode
from finbank_core.shared.money import Money

PLAN = Money(40_00)


async def chapter(bank: Bank, story: Story) -> None:
    """A monthly plan: authorised from its QR code, debited, retried, cancelled."""
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=BRASILIA))
    infra = bank.container.infra()
    infra.clock.override(providers.Object(clock))
    try:
        await _chapter(bank, story, clock)
    finally:
        infra.clock.reset_override()


async def _chapter(bank: Bank, story: Story, clock: FakeClock) -> None:
    suffix = uuid.uuid4().hex[:6]
    automatic = bank.pix.automatic
    story.step("Pix Automático: a gym and Bia open accounts; Bia has R$ 100,00")
    gym = await _open(bank, f"auto-gym-{suffix}", "Academia Forte")
    bia = await _open(bank, f"auto-bia-{suffix}", "Bia Castro")
    await _cash(bank, bia, Money(100_00), f"auto-in-{suffix}")

    story.step("The gym creates a monthly plan of R$ 40,00 (retries allowed) and its QR code")
    plan = await automatic.create(
        CreateRecurrenceCommand(
            owner_id=gym.owner_id,
            account_id=gym.id,
            contract=f"PLANO-{suffix}",
            purpose="Mensalidade",
            debtor_name="Bia Castro",
            debtor_document="52998224725",
            periodicity=Periodicity.MENSAL,
            start=date(2026, 3, 5),
            retry_policy=RetryPolicy.PERMITE_3R_7D,
            fixed_amount=PLAN,
        )
    )
    code = await automatic.code(
        RecurrenceCodeQuery(owner_id=gym.owner_id, recurrence_id=plan.recurrence_id)
    )
    story.say(f"recurrence {plan.recurrence_id}; code {code.br_code[:40]}...")
    strict = read_brcode(code.br_code, "strict")
    story.check(strict.kind == "recurrence", "the code carries the recurrence only (journey 2)")

    story.step("Bia scans it, reads the terms and authorises from her account")
    offer = await automatic.read(
        ReadRecurrenceCodeQuery(owner_id=bia.owner_id, br_code=code.br_code)
    )
    story.check(offer.recurrence.fixed_amount == PLAN, "she is shown R$ 40,00 a month")
    approved = await automatic.authorise(
        AuthoriseRecurrenceCommand(owner_id=bia.owner_id, account_id=bia.id, br_code=code.br_code)
    )
    story.check(approved.status is RecurrenceStatus.APROVADA, "the recurrence is APROVADA")

    story.step("The gym sends March's charge 3 days ahead; one sent 1 day ahead is refused")
    try:
        await _charge(bank, gym, plan.recurrence_id, date(2026, 3, 3))
        story.check(False, "a charge 1 day ahead is refused")
    except ChargeOutsideWindow:
        story.check(True, "a charge 1 day ahead is refused (2 to 10 days)")
    march = await _charge(bank, gym, plan.recurrence_id, date(2026, 3, 5))
    story.check(march.status is ChargeStatus.ATIVA, "March's charge is scheduled for the 5th")

    story.step("Midnight on the 5th: the scheduler debits it")
    clock.set(datetime(2026, 3, 5, 0, 5, tzinfo=BRASILIA))
    ran = await _debit(bank, march.txid)
    story.check(ran.status is ChargeStatus.CONCLUIDA, "March is CONCLUIDA")
    story.check(await _available(bank, bia) == Money(60_00), "Bia has R$ 60,00 left")
    story.check(await _available(bank, gym) == PLAN, "the gym received R$ 40,00")
    again = await _debit(bank, march.txid)
    story.check(
        again.status is ChargeStatus.CONCLUIDA
        and len(again.attempts) == len(ran.attempts)
        and await _available(bank, bia) == Money(60_00),
        "running it again debits nothing",
    )

    story.step("April: Bia has spent her money; the debit fails and is retried the next day")
    await bank.accounts.withdraw(
        MoveCashCommand(
            account_id=bia.id,
            amount=Money(50_00),
            idempotency_key=f"auto-out-{suffix}",
            operator_id="teller-1",
        )
    )
    clock.set(datetime(2026, 3, 30, 10, 0, tzinfo=BRASILIA))
    april = await _charge(bank, gym, plan.recurrence_id, date(2026, 4, 5))
    clock.set(datetime(2026, 4, 5, 0, 5, tzinfo=BRASILIA))
    failed = await _debit(bank, april.txid)
    story.check(
        failed.status is ChargeStatus.ATIVA and len(failed.attempts) == 1,
        "the first attempt failed (short of funds); the charge waits for its retry",
    )
    await _cash(bank, bia, Money(50_00), f"auto-in2-{suffix}")
    clock.set(datetime(2026, 4, 6, 0, 5, tzinfo=BRASILIA))
    retried = await _debit(bank, april.txid)
    story.check(retried.status is ChargeStatus.CONCLUIDA, "the retry settled it")
    story.check(await _available(bank, bia) == Money(20_00), "Bia has R$ 20,00 left")

    story.step("Bia cancels the plan; May's charge is refused")
    cancelled = await automatic.cancel(
        CancelRecurrenceCommand(owner_id=bia.owner_id, recurrence_id=plan.recurrence_id)
    )
    story.check(cancelled.status is RecurrenceStatus.CANCELADA, "the recurrence is CANCELADA")
    clock.set(datetime(2026, 4, 30, 10, 0, tzinfo=BRASILIA))
    try:
        await _charge(bank, gym, plan.recurrence_id, date(2026, 5, 5))
        story.check(False, "no charge on a cancelled recurrence")
    except RecurrenceNotActive:
        story.check(True, "no charge on a cancelled recurrence")

    story.step("Bia authorises a power company's plan at Banco Simulado, another bank")
    await _elsewhere(bank, story, clock, bia, suffix)


async def _elsewhere(
    bank: Bank, story: Story, clock: FakeClock, bia: CustomerAccount, suffix: str
) -> None:
    """Payer here, receiver at the sandbox's peer bank: the debit goes out as a PIX payment."""
    peer = await resolve(bank.container.pix_automatic().recurrence_network())
    if not isinstance(peer, SandboxRecurrenceNetwork):  # pragma: no cover - other networks
        story.check(True, "no peer bank on this network: skipped")
        return
    await _cash(bank, bia, Money(50_00), f"auto-in3-{suffix}")
    served, code = peer.offer(
        ispb=bank.settings.pix.sandbox_peer_ispb,
        account_number=PEER_ACCOUNT_NUMBER,
        contract=f"LUZ-{suffix}",
        debtor_name="Bia Castro",
        periodicity=Periodicity.MENSAL,
        start=date(2026, 5, 5),
        fixed_amount=PLAN,
    )
    approved = await bank.pix.automatic.authorise(
        AuthoriseRecurrenceCommand(owner_id=bia.owner_id, account_id=bia.id, br_code=code)
    )
    story.check(
        approved.receiver_party is not None
        and [a.status for a in peer.answers][-1:] == [RecurrenceStatus.APROVADA],
        "authorised from the other bank's code; the answer went back through the network",
    )
    txid = f"luz{suffix}".ljust(32, "0")
    await bank.pix.automatic.receive_charge(
        peer.peer_charge(served.recurrence_id, txid=txid, amount=PLAN, due_date=date(2026, 5, 5))
    )
    clock.set(datetime(2026, 5, 5, 0, 5, tzinfo=BRASILIA))
    debited = await _debit(bank, txid)
    story.check(
        debited.status is ChargeStatus.CONCLUIDA,
        "on May 5 the debit went out as a PIX payment to Banco Simulado and settled",
    )


async def _open(bank: Bank, owner_id: str, name: str) -> CustomerAccount:
    return await bank.accounts.open(OpenAccountCommand(owner_id=owner_id, holder_name=name))


async def _cash(bank: Bank, account: CustomerAccount, amount: Money, key: str) -> None:
    await bank.accounts.deposit(
        MoveCashCommand(
            account_id=account.id, amount=amount, idempotency_key=key, operator_id="teller-1"
        )
    )


async def _charge(
    bank: Bank, gym: CustomerAccount, recurrence_id: str, due: date
) -> RecurringCharge:
    result = await bank.pix.automatic.schedule(
        ScheduleChargeCommand(
            owner_id=gym.owner_id, recurrence_id=recurrence_id, amount=PLAN, due_date=due
        )
    )
    return result.charge


async def _debit(bank: Bank, txid: str) -> RecurringCharge:
    """The due attempt of one charge, as a scheduler round runs it for each it leased."""
    return await bank.pix.automatic.execute(ExecuteDebitCommand(txid=txid))


async def _available(bank: Bank, account: CustomerAccount) -> Money:
    balance = await bank.accounts.balance(
        GetBalanceQuery(owner_id=account.owner_id, account_id=account.id)
    )
    return balance.available
