"""``MedLedger.release_all`` on every backend (memory, PostgreSQL, DynamoDB): the holds
of a case voided in one ledger call, each as ``release`` alone would have voided it."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from finbank_core.accounts.ledger import PendingStatus
from finbank_core.shared.errors import TransferRejected
from finbank_core.shared.money import Money
from tests.integration.dynamo_support import serial_moto_endpoint
from tests.med_support import MedWorld, med_world

__all__ = ["med_world", "serial_moto_endpoint"]  # fixtures


async def held(w: MedWorld, cents: int, most: int) -> tuple[uuid.UUID, uuid.UUID]:
    """An account of its own with ``cents``, ``most`` of it held; (hold id, account id)."""
    account = await w.open_account(f"holder-{uuid.uuid4().hex[:8]}")
    await w.deposit(account, cents)
    hold_id = uuid.uuid4()
    taken = await w.deps.ledger.hold(hold_id, account.id, Money(most), "med test")
    assert taken == Money(most)
    return hold_id, account.id


@pytest.mark.asyncio
async def test_release_all_frees_every_pending_hold_and_skips_those_already_ended(
    med_world: MedWorld,
) -> None:
    w = med_world
    ledger = w.deps.ledger
    first, first_account = await held(w, 10_000, 4_000)
    second, second_account = await held(w, 10_000, 6_000)
    ended, ended_account = await held(w, 10_000, 1)
    await ledger.release(ended)  # already voided before the batch
    never = uuid.uuid4()  # no such hold
    # repeated ids, an ended hold and an unknown one: nothing raised, each voided once
    await ledger.release_all([first, never, ended, second, first])
    for hold_id in (first, second, ended):
        assert await ledger.status(hold_id) is PendingStatus.VOIDED
    for account in (first_account, second_account, ended_account):
        assert await w.available(account) == 10_000
        assert await w.posted(account) == 10_000
    # and again: safe to repeat
    await ledger.release_all([first, second])
    assert await w.available(first_account) == 10_000
    await ledger.release_all([])  # nothing to void: no call, no error


@pytest.mark.asyncio
async def test_release_all_raises_a_refusal_after_voiding_the_others(
    med_world: MedWorld,
) -> None:
    w = med_world
    ledger = w.deps.ledger
    posted, posted_account = await held(w, 10_000, 3_000)
    await ledger.post(posted, Money(3_000), "returned")
    pending, pending_account = await held(w, 10_000, 5_000)
    with pytest.raises(TransferRejected) as refused:
        await ledger.release_all([posted, pending])
    assert "pending_transfer_already_posted" in str(refused.value)
    # the posted hold stays posted; the other was voided all the same
    assert await ledger.status(posted) is PendingStatus.POSTED
    assert await ledger.status(pending) is PendingStatus.VOIDED
    assert await w.posted(posted_account) == 7_000
    assert await w.available(pending_account) == 10_000


@pytest.mark.asyncio
async def test_many_callers_releasing_the_same_holds_at_once_free_each_once(
    med_world: MedWorld,
) -> None:
    w = med_world
    ledger = w.deps.ledger
    holds = [await held(w, 10_000, cents) for cents in (1, 4_000, 10_000)]
    ids = [hold_id for hold_id, _ in holds]

    results = await asyncio.gather(
        *(ledger.release_all(ids[n % 3 :] + ids[: n % 3]) for n in range(8)),
        return_exceptions=True,
    )

    assert [r for r in results if isinstance(r, BaseException)] == []
    for hold_id, account in holds:
        assert await ledger.status(hold_id) is PendingStatus.VOIDED
        assert await w.available(account) == 10_000
        assert await w.posted(account) == 10_000
    await ledger.release_all(ids)  # a replay answers like the first: nothing raised
