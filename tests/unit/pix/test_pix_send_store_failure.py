"""A payment store that fails while ``SendPix`` records a payment.

The money was already reserved; no event will ever name a payment that was
not recorded, so ``SendPix`` must give the reservation, the limit holds and a
charge claim back itself, unless the record did land (the write went through
and only its answer was lost), and must not undo anything when it cannot tell.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from tests.pix_support import PixWorld, build_world

from finbank_adapters.memory.pix import InMemoryPixPaymentRepository
from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_core.accounts.ledger import PendingStatus
from finbank_core.pix.payments import PixPayment
from finbank_core.pix.use_cases import SendPixCommand
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.money import Money


@dataclass
class FailingAdds:
    """Wraps the in-memory store: ``add`` fails (optionally after writing), lookups may too."""

    inner: InMemoryPixPaymentRepository
    write_before_failing: bool = False
    lookups_fail: bool = False
    failed_e2e: str | None = None

    async def add(self, payment: PixPayment) -> PixPayment:
        self.failed_e2e = payment.end_to_end_id
        if self.write_before_failing:
            await self.inner.add(payment)
        raise ServiceUnavailable("the payment store timed out")

    async def get_by_idempotency_key(self, owner_id: str, key: str) -> PixPayment | None:
        if self.lookups_fail and self.failed_e2e is not None:
            raise ServiceUnavailable("the payment store is unreachable")
        return await self.inner.get_by_idempotency_key(owner_id, key)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


async def send_with(world: PixWorld, store: FailingAdds) -> tuple[str, object]:
    account = await world.open("ana", "Ana", deposit=Money(100_00))
    world.send._payments = store  # type: ignore[assignment]
    with pytest.raises(ServiceUnavailable):
        await world.send(
            SendPixCommand(
                owner_id="ana",
                account_id=account.id,
                idempotency_key="k-1",
                amount=Money(40_00),
                key=PEER_KEY_EMAIL,
            )
        )
    assert store.failed_e2e is not None
    return store.failed_e2e, account.id


def holds_of(world: PixWorld, account_id: object) -> list[str]:
    """The limit holds the in-memory store keeps for ``account_id``."""
    return [hold_id for (account, hold_id) in world.limits_store._holds if account == account_id]


async def test_a_failed_record_write_gives_the_reservation_and_the_limits_back() -> None:
    world = await build_world(inline_settlement=False)
    store = FailingAdds(world.payments)
    e2e, account_id = await send_with(world, store)

    assert await world.steps.pending_status(e2e) is PendingStatus.VOIDED
    assert await world.available(account_id) == 100_00  # type: ignore[arg-type]
    assert holds_of(world, account_id) == []
    await world.assert_ledger_balanced()


async def test_a_write_that_landed_though_its_answer_was_lost_keeps_its_reservation() -> None:
    world = await build_world(inline_settlement=False)
    store = FailingAdds(world.payments, write_before_failing=True)
    e2e, account_id = await send_with(world, store)

    assert await world.steps.pending_status(e2e) is PendingStatus.PENDING
    assert await world.available(account_id) == 60_00  # type: ignore[arg-type]
    assert (await world.payments.get(e2e)).end_to_end_id == e2e
    assert holds_of(world, account_id) == [e2e]


async def test_when_the_store_cannot_tell_nothing_is_undone() -> None:
    world = await build_world(inline_settlement=False)
    store = FailingAdds(world.payments, lookups_fail=True)
    e2e, account_id = await send_with(world, store)

    # the daily reconciliation voids it as an orphan hold if no record shows up; undoing
    # a payment whose record may exist would leave a recorded payment with no money
    assert await world.steps.pending_status(e2e) is PendingStatus.PENDING
    assert await world.available(account_id) == 60_00  # type: ignore[arg-type]
