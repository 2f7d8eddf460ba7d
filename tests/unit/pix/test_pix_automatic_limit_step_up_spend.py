"""``SetAutomaticLimit`` spends the step-up token after every check that can refuse, once.

The command's ``step_up`` spends the request's token (over HTTP, with the
step-up store). It is not called for someone else's account nor for a figure
of zero or less; it is called exactly once for a change that applies, a
lowering too (a token sent is spent, not kept); when it refuses the token
(``StepUpRequired``) nothing changes.
"""

from __future__ import annotations

import pytest
from tests.contract.test_pix_automatic_contract import World

from finbank_adapters.memory import (
    FakeClock,
    InMemoryAccountRepository,
    InMemoryEventPublisher,
    InMemoryLedger,
)
from finbank_adapters.memory.pix_automatic import InMemoryRecurrenceStore
from finbank_core.accounts.model import CustomerAccount
from finbank_core.auth.errors import StepUpRequired
from finbank_core.pix.automatic import InvalidRecurrence
from finbank_core.pix.automatic.use_cases import SetAutomaticLimit, SetAutomaticLimitCommand
from finbank_core.shared.errors import AccountNotFound
from finbank_core.shared.money import Money


class Spender:
    """Counts the spends; refuses once ``valid`` is False, as a spent token is."""

    def __init__(self, *, valid: bool = True) -> None:
        self.calls = 0
        self.valid = valid

    async def __call__(self) -> None:
        self.calls += 1
        if not self.valid:
            raise StepUpRequired(purpose="pix_limit_raise")
        self.valid = False  # single use


@pytest.fixture
def world() -> World:
    clock = FakeClock()
    return World(
        InMemoryRecurrenceStore(),
        InMemoryLedger(clock, InMemoryEventPublisher()),
        InMemoryAccountRepository(),
        clock,
    )


def change(
    world: World, owner: str, account: CustomerAccount, cents: int | None, spend: Spender
) -> SetAutomaticLimitCommand:
    return SetAutomaticLimitCommand(
        owner_id=owner,
        account_id=account.id,
        daily_limit=None if cents is None else Money(cents),
        step_up=spend,
    )


async def test_the_token_is_spent_once_and_only_by_a_change_that_passed_every_check(
    world: World,
) -> None:
    ana = await world.customer("ana")
    set_limit = SetAutomaticLimit(store=world.store, accounts=world.accounts)
    await world.store.set_payer_limit(ana.id, Money(10_00))
    spend = Spender()

    with pytest.raises(AccountNotFound):
        await set_limit(change(world, "mallory", ana, 500_00, spend))
    with pytest.raises(InvalidRecurrence):
        await set_limit(change(world, "ana", ana, 0, spend))
    assert spend.calls == 0
    assert await world.store.get_payer_limit(ana.id) == Money(10_00)

    raised = await set_limit(change(world, "ana", ana, 90_00, spend))
    assert raised.daily_limit == Money(90_00)
    assert spend.calls == 1
    with pytest.raises(StepUpRequired):  # the same token again
        await set_limit(change(world, "ana", ana, None, spend))
    assert spend.calls == 2
    assert await world.store.get_payer_limit(ana.id) == Money(90_00)

    lowering = Spender()
    await set_limit(change(world, "ana", ana, 50_00, lowering))
    assert lowering.calls == 1  # a token sent is spent, even where it was not needed
    assert await world.store.get_payer_limit(ana.id) == Money(50_00)
