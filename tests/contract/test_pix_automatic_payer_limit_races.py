"""The payer's daily Pix Automático limit under concurrent changes, on every backend.

``SetAutomaticLimit`` writes with one atomic step of the store (a
conditional upsert in PostgreSQL, a check and write with no await between
them in memory), so:

* concurrent lowerings without a step-up end at the lowest of them, whatever
  the order: a lowering that lands after a lower one would raise the limit,
  so it is refused (``StepUpRequired``) and changes nothing;
* a raise or a removal without a step-up never applies over a limit;
* with raises that did step up among them, the limit ends at the value of
  one of the changes that applied (the last), never at a refused one.
"""

from __future__ import annotations

import asyncio
import random

from finbank_core.accounts.model import CustomerAccount
from finbank_core.auth.errors import StepUpRequired
from finbank_core.pix.automatic.use_cases import (
    AutomaticLimitQuery,
    GetAutomaticLimit,
    SetAutomaticLimit,
    SetAutomaticLimitCommand,
)
from finbank_core.shared.money import Money
from tests.contract.test_pix_automatic_contract import CALLERS, World, world  # noqa: F401

ROUNDS = 5
START = 1_000_00


async def limit_of(world: World, account: CustomerAccount) -> Money | None:  # noqa: F811
    found = await GetAutomaticLimit(store=world.store, accounts=world.accounts)(
        AutomaticLimitQuery(owner_id=account.owner_id, account_id=account.id)
    )
    return found.daily_limit


async def attempt(
    world: World,  # noqa: F811
    account: CustomerAccount,
    cents: int | None,
    *,
    allow_raise: bool = False,
) -> bool:
    """Whether the change applied (False: refused with ``StepUpRequired``)."""
    try:
        await SetAutomaticLimit(store=world.store, accounts=world.accounts)(
            SetAutomaticLimitCommand(
                owner_id=account.owner_id,
                account_id=account.id,
                daily_limit=None if cents is None else Money(cents),
                allow_raise=allow_raise,
            )
        )
    except StepUpRequired:
        return False
    return True


async def test_concurrent_lowerings_end_at_the_lowest_and_raises_without_step_up_never_apply(
    world: World,  # noqa: F811
) -> None:
    payer = await world.customer("ana")
    rng = random.Random(20260105)
    for _ in range(ROUNDS):
        assert await attempt(world, payer, START, allow_raise=True)
        lowerings = rng.sample(range(1_00, START, 1_00), CALLERS)
        raises: list[int | None] = [START + 1_00 * n for n in range(1, CALLERS // 2)]
        raises.append(None)  # a removal is a raise too
        changes: list[int | None] = [*lowerings, *raises]
        rng.shuffle(changes)
        applied = await asyncio.gather(*(attempt(world, payer, c) for c in changes))
        outcome = dict(zip(changes, applied, strict=True))

        assert await limit_of(world, payer) == Money(min(lowerings))
        assert outcome[min(lowerings)]
        assert not any(outcome[r] for r in raises)


async def test_concurrent_changes_with_step_ups_end_at_one_that_applied(
    world: World,  # noqa: F811
) -> None:
    payer = await world.customer("ana")
    rng = random.Random(7)
    for _ in range(ROUNDS):
        assert await attempt(world, payer, START, allow_raise=True)
        # distinct figures, so the one the limit ends at names the change that set it
        figures = rng.sample(range(1_00, 3 * START, 1_00), 2 * CALLERS)
        stepped_up: set[int | None] = {*figures[: CALLERS // 2], None}  # None: a removal
        changes: list[int | None] = [*figures, None]
        rng.shuffle(changes)
        applied = await asyncio.gather(
            *(attempt(world, payer, c, allow_raise=c in stepped_up) for c in changes)
        )
        outcome = dict(zip(changes, applied, strict=True))

        final = await limit_of(world, payer)
        assert all(outcome[c] for c in stepped_up)  # a change that stepped up always applies
        assert outcome[None if final is None else final.cents]  # the limit is one that applied
