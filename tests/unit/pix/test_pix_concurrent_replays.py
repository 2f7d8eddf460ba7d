"""Concurrent replays of a PIX payment or refund: applied once, the others wait their turn.

Identical requests (same idempotency key, same body, the whole balance),
the first one held in flight while the others run (:class:`Burst`): one
runs, the others get ``RequestInProgress`` (HTTP 409 with ``Retry-After``)
and, retried, the first answer. Never ``InsufficientFunds``
caused by the first request's own reservation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from tests.pix_support import PixWorld, build_world

from finbank_core.accounts.errors import InsufficientFunds
from finbank_core.accounts.use_cases import Deposit, MoveCashCommand
from finbank_core.pix.events import PAYMENT_REQUESTED
from finbank_core.pix.payments import PaymentStatus
from finbank_core.pix.refunds import RefundStatus
from finbank_core.pix.use_cases import RefundPixCommand, SendPixCommand
from finbank_core.shared.events import EventEnvelope
from finbank_core.shared.idempotency import RequestInProgress, claim_id_for
from finbank_core.shared.money import Money

N = 20


@pytest.fixture
async def world() -> PixWorld:
    return await build_world()


class Burst:
    """``N`` calls at once; the first ledger write waits until all the others have answered.

    So the first request is in flight (its claim held, its money about to be
    reserved) while every other one runs: the race of the issue, every time.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, world: PixWorld) -> None:
        self._answered = 0
        self._others_answered = asyncio.Event()
        write = world.ledger.create_transfers
        parked = False

        async def first_write_waits(*args: Any, **kwargs: Any) -> Any:
            nonlocal parked
            if not parked:
                parked = True
                await self._others_answered.wait()
            return await write(*args, **kwargs)

        monkeypatch.setattr(world.ledger, "create_transfers", first_write_waits)

    async def __call__(self, call: Callable[[], Awaitable[Any]]) -> list[object]:
        async def one() -> Any:
            try:
                return await call()
            finally:
                self._answered += 1
                if self._answered == N - 1:
                    self._others_answered.set()

        return list(await asyncio.gather(*(one() for _ in range(N)), return_exceptions=True))


async def ana_and_bias_key(world: PixWorld, cents: int = 100_00) -> tuple[Any, Any, str]:
    ana = await world.open("ana", "Ana", deposit=Money(cents) if cents else None)
    bia = await world.open("bia", "Bia")
    return ana, bia, await world.evp(bia)


def pay(account_id: Any, key: str, cents: int = 100_00, idem: str = "rent") -> SendPixCommand:
    return SendPixCommand(
        owner_id="ana", account_id=account_id, idempotency_key=idem, key=key, amount=Money(cents)
    )


def split(outcomes: Sequence[object]) -> tuple[Any, list[Any], list[RequestInProgress]]:
    """The first answer, the replays of it, the requests told to wait; nothing else."""
    done: list[Any] = [o for o in outcomes if not isinstance(o, BaseException)]
    waiting = [o for o in outcomes if isinstance(o, RequestInProgress)]
    errors = [o for o in outcomes if isinstance(o, BaseException) and o not in waiting]
    assert not errors, errors
    [first] = [r for r in done if not r.replayed]
    return first, [r for r in done if r.replayed], waiting


async def test_concurrent_identical_payments_pay_once(
    world: PixWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana, bia, key = await ana_and_bias_key(world)
    burst = Burst(monkeypatch, world)

    outcomes = await burst(lambda: world.send(pay(ana.id, key)))

    first, replays, waiting = split(outcomes)
    assert first.payment.status is PaymentStatus.SETTLED
    assert (len(replays), len(waiting)) == (0, N - 1)  # all answered while the first was parked
    assert {w.retry_after_seconds for w in waiting} == {1}
    assert {w.code for w in waiting} == {"idempotency_request_in_progress"}
    retried = await asyncio.gather(*(world.send(pay(ana.id, key)) for _ in waiting))
    for replay in [*replays, *retried]:
        assert replay.replayed
        assert replay.payment == first.payment
    assert (await world.posted(ana.id), await world.posted(bia.id)) == (0, 100_00)
    assert await world.available(ana.id) == 0
    await world.assert_ledger_balanced()
    assert len(world.claims) == 0  # every claim released


async def test_a_replay_while_the_first_is_settling_gets_409_not_its_pending_record(
    world: PixWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana, _bia, key = await ana_and_bias_key(world)
    recorded, go_on = asyncio.Event(), asyncio.Event()
    publish = world.publisher.publish

    async def held_after_recording(events: Sequence[EventEnvelope]) -> None:
        await publish(events)
        if any(e.type == PAYMENT_REQUESTED for e in events):
            recorded.set()
            await go_on.wait()

    monkeypatch.setattr(world.publisher, "publish", held_after_recording)
    first = asyncio.create_task(world.send(pay(ana.id, key)))
    await recorded.wait()
    stored = await world.payments.get_by_idempotency_key("ana", "rent")
    assert stored is not None
    assert stored.status is PaymentStatus.PENDING

    with pytest.raises(RequestInProgress):
        await world.send(pay(ana.id, key))

    go_on.set()
    answered = await first
    again = await world.send(pay(ana.id, key))
    assert answered.payment.status is PaymentStatus.SETTLED
    assert again.replayed
    assert again.payment == answered.payment


async def test_a_refused_payment_releases_its_claim_and_leaves_the_key_free(
    world: PixWorld,
) -> None:
    ana, _bia, key = await ana_and_bias_key(world, cents=0)
    with pytest.raises(InsufficientFunds):
        await world.send(pay(ana.id, key))
    assert len(world.claims) == 0
    await Deposit(world.ledger, world.accounts, world.clock, world.ids)(
        MoveCashCommand(
            account_id=ana.id, amount=Money(100_00), idempotency_key="cash", operator_id="teller"
        )
    )

    result = await world.send(pay(ana.id, key))  # the same key, now funded
    assert not result.replayed
    assert result.payment.status is PaymentStatus.SETTLED


async def test_a_claim_left_by_a_crashed_request_holds_until_its_lease_ends(
    world: PixWorld,
) -> None:
    ana, bia, key = await ana_and_bias_key(world)
    now = world.clock.now()
    claim = claim_id_for("pix-send", "ana", "rent")
    assert await world.claims.acquire(claim, "crashed", now=now, until=now + timedelta(seconds=30))

    with pytest.raises(RequestInProgress):
        await world.send(pay(ana.id, key))
    world.clock.advance(seconds=29)
    with pytest.raises(RequestInProgress):
        await world.send(pay(ana.id, key))
    world.clock.advance(seconds=1)
    result = await world.send(pay(ana.id, key))
    assert not result.replayed
    assert result.payment.status is PaymentStatus.SETTLED
    assert (await world.posted(ana.id), await world.posted(bia.id)) == (0, 100_00)


async def test_concurrent_identical_refunds_refund_once(
    world: PixWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana, bia, key = await ana_and_bias_key(world)
    paid = await world.send(pay(ana.id, key))
    e2e = paid.payment.end_to_end_id
    refund = RefundPixCommand(
        owner_id="bia", end_to_end_id=e2e, amount=Money(100_00), client_refund_id="back"
    )
    burst = Burst(monkeypatch, world)

    outcomes = await burst(lambda: world.refund(refund))

    first, replays, waiting = split(outcomes)
    assert first.refund.status is RefundStatus.DEVOLVIDO
    assert (len(replays), len(waiting)) == (0, N - 1)
    retried = await asyncio.gather(*(world.refund(refund) for _ in waiting))
    for replay in [*replays, *retried]:
        assert replay.replayed
        assert replay.refund == first.refund
    stored = await world.payments.get(e2e)
    assert [r.return_id for r in stored.refunds] == [first.refund.return_id]
    assert (await world.posted(ana.id), await world.posted(bia.id)) == (100_00, 0)
    await world.assert_ledger_balanced()
    assert len(world.claims) == 0
