"""Journey 3 in one step (``bank.pix.automatic.pay_and_authorise``), memory and PostgreSQL.

Both or neither: a refusal before the payment pays nothing and authorises
nothing; a payment that cannot be made authorises nothing; a repeat pays
once; and when the authorisation fails after the payment (a concurrent
change to the recurrence) the payment is reported, with an event naming it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime

import pytest

from finbank import Bank, open_bank
from finbank_adapters.containers import resolve
from finbank_adapters.memory import FakeClock
from finbank_core.accounts.errors import InsufficientFunds
from finbank_core.accounts.model import CustomerAccount
from finbank_core.accounts.use_cases import GetBalanceQuery, MoveCashCommand, OpenAccountCommand
from finbank_core.pix import CreateChargeCommand, RegisterPixKeyCommand
from finbank_core.pix.automatic import (
    BRASILIA,
    JOURNEY3_AUTHORISATION_FAILED,
    AuthoriseRecurrence,
    AuthoriseRecurrenceCommand,
    CancelRecurrenceCommand,
    CreateRecurrenceCommand,
    GetRecurrenceQuery,
    InvalidRecurrence,
    Journey,
    PayAndAuthorise,
    PayAndAuthoriseCommand,
    Periodicity,
    Recurrence,
    RecurrenceCodeQuery,
    RecurrenceNotActive,
    RecurrenceStatus,
    RetryPolicy,
)
from finbank_core.pix.codes.keys import PixKeyType
from finbank_core.pix.payments import PaymentStatus
from finbank_core.shared.money import Money
from tests.postgres_support import (
    all_postgres_settings,
    isolated_schema,
    require_postgres,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=BRASILIA)


@pytest.fixture(params=["memory", "postgres"])
async def bank(request: pytest.FixtureRequest) -> AsyncIterator[Bank]:
    clock = FakeClock(START)
    if request.param == "memory":
        async with open_bank(profile="memory", clock=clock) as opened:
            yield opened
        return
    require_postgres()
    async with isolated_schema() as (_, schema):
        settings = all_postgres_settings(schema)
        async with open_bank(settings, clock=clock) as opened:
            yield opened


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


async def _journey3(bank: Bank, gym: CustomerAccount) -> tuple[str, str]:
    key = await bank.pix.register_key(
        RegisterPixKeyCommand(owner_id="gym", account_id=gym.id, key_type=PixKeyType.EVP)
    )
    first = await bank.pix.create_charge(
        CreateChargeCommand(
            owner_id="gym", account_id=gym.id, pix_key=key.key.value, amount=Money(30_00)
        )
    )
    plan = await bank.pix.automatic.create(
        CreateRecurrenceCommand(
            owner_id="gym",
            account_id=gym.id,
            contract="PLANO-3",
            debtor_name="Ana",
            debtor_document="52998224725",
            purpose=None,
            periodicity=Periodicity.MENSAL,
            start=date(2026, 4, 2),
            retry_policy=RetryPolicy.PERMITE_3R_7D,
            fixed_amount=Money(30_00),
        )
    )
    code = await bank.pix.automatic.code(
        RecurrenceCodeQuery(
            owner_id="gym",
            recurrence_id=plan.recurrence_id,
            journey=Journey.JORNADA_3,
            charge_txid=first.charge.txid,
        )
    )
    return plan.recurrence_id, code.br_code


async def _status(bank: Bank, recurrence_id: str) -> RecurrenceStatus:
    found = await bank.pix.automatic.get(
        GetRecurrenceQuery(owner_id="gym", recurrence_id=recurrence_id)
    )
    return found.status


async def test_journey_three_pays_and_authorises_in_one_step_once(bank: Bank) -> None:
    gym = await _customer(bank, "gym")
    ana = await _customer(bank, "ana", 100_00)
    rec_id, code = await _journey3(bank, gym)
    command = PayAndAuthoriseCommand(
        owner_id="ana", account_id=ana.id, br_code=code, idempotency_key="adesao-1"
    )

    results = await asyncio.gather(
        *(bank.pix.automatic.pay_and_authorise(command) for _ in range(4)),
        return_exceptions=True,
    )

    done = [r for r in results if not isinstance(r, BaseException)]
    assert done, results
    assert all(r.authorised and r.payment.status is PaymentStatus.SETTLED for r in done)
    assert {r.payment.end_to_end_id for r in done} == {done[0].payment.end_to_end_id}
    again = await bank.pix.automatic.pay_and_authorise(command)
    assert again.authorised
    assert again.payment.end_to_end_id == done[0].payment.end_to_end_id
    assert again.recurrence.journey is Journey.JORNADA_3
    assert await _status(bank, rec_id) is RecurrenceStatus.APROVADA
    assert await _available(bank, ana) == 70_00  # paid once
    assert await _available(bank, gym) == 30_00


async def test_a_payment_that_cannot_be_made_authorises_nothing(bank: Bank) -> None:
    gym = await _customer(bank, "gym")
    ana = await _customer(bank, "ana", 10_00)  # short of R$ 30,00
    rec_id, code = await _journey3(bank, gym)
    with pytest.raises(InsufficientFunds):
        await bank.pix.automatic.pay_and_authorise(
            PayAndAuthoriseCommand(
                owner_id="ana", account_id=ana.id, br_code=code, idempotency_key="adesao-2"
            )
        )
    assert await _status(bank, rec_id) is RecurrenceStatus.CRIADA
    assert await _available(bank, ana) == 10_00


async def test_a_refusal_before_paying_pays_nothing(bank: Bank) -> None:
    gym = await _customer(bank, "gym")
    ana = await _customer(bank, "ana", 100_00)
    rec_id, code = await _journey3(bank, gym)
    with pytest.raises(InvalidRecurrence) as refused:  # a maximum on a fixed amount
        await bank.pix.automatic.pay_and_authorise(
            PayAndAuthoriseCommand(
                owner_id="ana",
                account_id=ana.id,
                br_code=code,
                idempotency_key="adesao-3",
                max_amount=Money(10_00),
            )
        )
    assert refused.value.details["field"] == "max_amount"
    await bank.pix.automatic.cancel(CancelRecurrenceCommand(owner_id="gym", recurrence_id=rec_id))
    with pytest.raises(RecurrenceNotActive):
        await bank.pix.automatic.pay_and_authorise(
            PayAndAuthoriseCommand(
                owner_id="ana", account_id=ana.id, br_code=code, idempotency_key="adesao-4"
            )
        )
    assert await _available(bank, ana) == 100_00


async def test_an_authorisation_lost_after_the_payment_is_reported(bank: Bank) -> None:
    gym = await _customer(bank, "gym")
    ana = await _customer(bank, "ana", 100_00)
    rec_id, code = await _journey3(bank, gym)
    container = bank.container.pix_automatic()
    authorise: AuthoriseRecurrence = await resolve(container.authorise_recurrence())

    class CancelledMeanwhile:
        """The receiver cancels between the check and the authorisation."""

        async def __call__(self, command: AuthoriseRecurrenceCommand) -> Recurrence:
            await bank.pix.automatic.cancel(
                CancelRecurrenceCommand(owner_id="gym", recurrence_id=rec_id)
            )
            return await authorise(command)

    use_case = PayAndAuthorise(
        read=await resolve(container.read_recurrence_code()),
        authorise=CancelledMeanwhile(),  # type: ignore[arg-type]
        send=await resolve(bank.container.pix().send_pix()),
        events=await resolve(bank.container.pix().pix_events()),
    )
    result = await use_case(
        PayAndAuthoriseCommand(
            owner_id="ana", account_id=ana.id, br_code=code, idempotency_key="adesao-5"
        )
    )
    assert (result.authorised, result.reason) == (False, "pix_recurrence_not_active")
    assert result.payment.status is PaymentStatus.SETTLED
    assert await _status(bank, rec_id) is RecurrenceStatus.CANCELADA
    publisher = await resolve(bank.container.events().publisher())
    published = getattr(publisher, "published", None)
    if published is not None:  # the memory publisher keeps what it was given
        [reported] = [e for e in published if e.type == JOURNEY3_AUTHORISATION_FAILED]
        assert reported.payload["end_to_end_id"] == result.payment.end_to_end_id
