"""The payer's own daily Pix Automático limit in the core, and the debtor's name of a recurrence.

Lowering the limit (or setting one where there was none) applies at once;
raising or removing it needs the caller to have re-authenticated
(``allow_raise``, a spent step-up token over HTTP): without it the core
refuses with ``StepUpRequired`` and nothing changes. Someone else's account
is not found. A recurrence's debtor name must contain a letter.
"""

from __future__ import annotations

import pytest
from tests.contract.test_pix_automatic_contract import CPF, TODAY, World

from finbank_adapters.memory import (
    FakeClock,
    InMemoryAccountRepository,
    InMemoryEventPublisher,
    InMemoryLedger,
)
from finbank_adapters.memory.pix_automatic import InMemoryRecurrenceStore
from finbank_core.accounts.model import CustomerAccount
from finbank_core.auth.errors import StepUpRequired
from finbank_core.pix.automatic import (
    CreateRecurrenceCommand,
    InvalidRecurrence,
    Periodicity,
    Recurrence,
    RetryPolicy,
)
from finbank_core.pix.automatic.use_cases import (
    AutomaticLimitQuery,
    GetAutomaticLimit,
    SetAutomaticLimit,
    SetAutomaticLimitCommand,
)
from finbank_core.shared.errors import AccountNotFound
from finbank_core.shared.money import Money


@pytest.fixture
def world() -> World:
    clock = FakeClock()
    return World(
        InMemoryRecurrenceStore(),
        InMemoryLedger(clock, InMemoryEventPublisher()),
        InMemoryAccountRepository(),
        clock,
    )


@pytest.fixture
async def payer(world: World) -> CustomerAccount:
    return await world.customer("ana", 200_00)


def setter(world: World) -> SetAutomaticLimit:
    return SetAutomaticLimit(store=world.store, accounts=world.accounts)


async def limit_of(world: World, account: CustomerAccount) -> Money | None:
    found = await GetAutomaticLimit(store=world.store, accounts=world.accounts)(
        AutomaticLimitQuery(owner_id=account.owner_id, account_id=account.id)
    )
    return found.daily_limit


def command(
    account: CustomerAccount, cents: int | None, *, allow_raise: bool = False
) -> SetAutomaticLimitCommand:
    return SetAutomaticLimitCommand(
        owner_id=account.owner_id,
        account_id=account.id,
        daily_limit=None if cents is None else Money(cents),
        allow_raise=allow_raise,
    )


async def test_setting_and_lowering_apply_at_once_raising_and_removing_need_a_step_up(
    world: World, payer: CustomerAccount
) -> None:
    set_limit = setter(world)
    assert await limit_of(world, payer) is None
    first = await set_limit(command(payer, 100_00))  # from no limit: takes nothing more
    assert first.daily_limit == Money(100_00)
    assert (await set_limit(command(payer, 40_00))).daily_limit == Money(40_00)
    assert (await set_limit(command(payer, 40_00))).daily_limit == Money(40_00)  # the same

    for wider in (40_01, None):
        with pytest.raises(StepUpRequired) as refused:
            await set_limit(command(payer, wider))
        assert refused.value.details["purpose"] == "pix_limit_raise"
        assert await limit_of(world, payer) == Money(40_00)  # nothing changed

    raised = await set_limit(command(payer, 90_00, allow_raise=True))
    assert raised.daily_limit == Money(90_00)
    assert (await set_limit(command(payer, None, allow_raise=True))).daily_limit is None
    assert await limit_of(world, payer) is None
    assert (await set_limit(command(payer, None))).daily_limit is None  # none again: no wider


@pytest.mark.parametrize("cents", [0, -1, -100_00])
async def test_a_limit_of_zero_or_less_is_refused_naming_the_field(
    world: World, payer: CustomerAccount, cents: int
) -> None:
    with pytest.raises(InvalidRecurrence) as refused:
        await setter(world)(command(payer, cents, allow_raise=True))
    assert refused.value.details["field"] == "daily_limit"
    assert await limit_of(world, payer) is None


async def test_someone_elses_account_is_not_found_and_keeps_its_limit(
    world: World, payer: CustomerAccount
) -> None:
    await setter(world)(command(payer, 50_00))
    other = SetAutomaticLimitCommand(
        owner_id="mallory", account_id=payer.id, daily_limit=Money(10_00), allow_raise=True
    )
    with pytest.raises(AccountNotFound):
        await setter(world)(other)
    with pytest.raises(AccountNotFound):
        await GetAutomaticLimit(store=world.store, accounts=world.accounts)(
            AutomaticLimitQuery(owner_id="mallory", account_id=payer.id)
        )
    assert await limit_of(world, payer) == Money(50_00)


async def create_for(world: World, name: str) -> Recurrence:
    receiver = await world.customer("gym")
    return await world.create(
        CreateRecurrenceCommand(
            owner_id=receiver.owner_id,
            account_id=receiver.id,
            contract="CT-2026-001",
            debtor_name=name,
            debtor_document=CPF,
            periodicity=Periodicity.MENSAL,
            start=TODAY,
            retry_policy=RetryPolicy.PERMITE_3R_7D,
            fixed_amount=Money(50_00),
        )
    )


@pytest.mark.parametrize("name", ["12", "  42  ", "-", "12.345.678/0001-95", "(11) 91234-5678"])
async def test_a_debtor_name_without_a_letter_is_refused_naming_the_field(
    world: World, name: str
) -> None:
    with pytest.raises(InvalidRecurrence) as refused:
        await create_for(world, name)
    assert refused.value.details["field"] == "debtor_name"
    assert "letter" in str(refused.value)
    assert await world.store.list_recurrences(receiver_owner_id="gym") == []


@pytest.mark.parametrize("name", ["Ana Souza", "Zé", "João 2º", "X Æ A-12"])
async def test_a_debtor_name_with_a_letter_is_accepted(world: World, name: str) -> None:
    assert (await create_for(world, name)).debtor_name == name
