"""``InFlightGuard``: the block runs holding the request's claim, released on every exit."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from finbank_adapters.memory import FakeClock, SequentialIdGenerator
from finbank_adapters.memory.claims import InMemoryRequestClaims
from finbank_core.accounts.errors import InsufficientFunds
from finbank_core.shared import idempotency
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.idempotency import InFlightGuard, RequestInProgress, claim_id_for


class FlakyReleaseClaims(InMemoryRequestClaims):
    """Releasing fails as a store that went down would."""

    async def release(self, claim_id: str, token: str) -> None:
        raise ServiceUnavailable("the store is down")


def guard(claims: InMemoryRequestClaims, clock: FakeClock, **kwargs: int) -> InFlightGuard:
    return InFlightGuard(claims, clock, SequentialIdGenerator(), **kwargs)


async def test_a_second_holder_is_told_to_retry_and_the_claim_is_released_after() -> None:
    claims, clock = InMemoryRequestClaims(), FakeClock()
    in_flight = guard(claims, clock, retry_after_seconds=2)
    async with in_flight.hold("pix-send", "ana", "k"):
        with pytest.raises(RequestInProgress) as raised:
            async with in_flight.hold("pix-send", "ana", "k"):
                pytest.fail("ran twice")
        assert raised.value.retry_after_seconds == 2
        assert raised.value.code == "idempotency_request_in_progress"
        async with in_flight.hold("pix-send", "ana", "other"):
            pass  # another key is another request
    assert len(claims) == 0


async def test_an_error_in_the_block_releases_the_claim() -> None:
    claims, clock = InMemoryRequestClaims(), FakeClock()
    in_flight = guard(claims, clock)
    with pytest.raises(InsufficientFunds):
        async with in_flight.hold("pix-send", "ana", "k"):
            raise InsufficientFunds()
    async with in_flight.hold("pix-send", "ana", "k"):
        pass


async def test_a_release_that_fails_leaves_the_answer_and_the_lease_frees_the_claim() -> None:
    claims, clock = FlakyReleaseClaims(), FakeClock()
    in_flight = guard(claims, clock, lease_seconds=30)
    async with in_flight.hold("pix-send", "ana", "k"):
        answer = "paid"
    assert answer == "paid"  # the release failed quietly
    with pytest.raises(RequestInProgress):
        async with in_flight.hold("pix-send", "ana", "k"):
            pass
    clock.advance(seconds=30)
    async with in_flight.hold("pix-send", "ana", "k"):
        pass


async def test_the_lease_is_taken_from_the_injected_clock() -> None:
    claims, clock = InMemoryRequestClaims(), FakeClock()
    now: datetime = clock.now()
    await claims.acquire(
        claim_id_for("pix-send", "ana", "k"), "other", now=now, until=now + timedelta(seconds=5)
    )
    in_flight = guard(claims, clock)
    clock.advance(seconds=4)
    with pytest.raises(RequestInProgress):
        async with in_flight.hold("pix-send", "ana", "k"):
            pass
    clock.advance(seconds=1)
    async with in_flight.hold("pix-send", "ana", "k"):
        pass


def test_the_lease_and_retry_after_must_be_positive() -> None:
    for bad in ({"lease_seconds": 0}, {"retry_after_seconds": 0}):
        with pytest.raises(ValueError, match="positive"):
            guard(InMemoryRequestClaims(), FakeClock(), **bad)


async def test_a_waiting_holder_takes_the_claim_when_the_first_lets_go() -> None:
    claims, clock = InMemoryRequestClaims(), FakeClock()
    in_flight = guard(claims, clock)
    order: list[str] = []
    first_holds = asyncio.Event()

    async def first() -> None:
        async with in_flight.hold("pix-refund-payment", "E1"):
            first_holds.set()
            await asyncio.sleep(0.02)  # a few of the waiter's pauses
            order.append("first")

    async def second() -> None:
        await first_holds.wait()
        async with in_flight.hold("pix-refund-payment", "E1", wait=True):
            order.append("second")

    await asyncio.gather(first(), second())

    assert order == ["first", "second"]
    assert len(claims) == 0


async def test_a_waiting_holder_gives_up_after_its_pauses_with_its_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    claims, clock = InMemoryRequestClaims(), FakeClock()
    in_flight = guard(claims, clock)
    tries: list[str] = []
    acquire = claims.acquire

    async def counted(claim_id: str, token: str, *, now: datetime, until: datetime) -> bool:
        tries.append(claim_id)
        return await acquire(claim_id, token, now=now, until=until)

    monkeypatch.setattr(claims, "acquire", counted)
    monkeypatch.setattr(idempotency, "WAIT_PAUSES", (0.001, 0.001, 0.001))
    async with in_flight.hold("pix-refund-payment", "E1"):
        with pytest.raises(RequestInProgress) as raised:
            async with in_flight.hold("pix-refund-payment", "E1", wait=True, busy="in turn"):
                pytest.fail("held twice")
    assert len(tries) == 1 + 1 + 3  # the holder's, then the waiter's first and one a pause
    assert str(raised.value).startswith("in turn; retry in 1 s")
    assert raised.value.retry_after_seconds == 1
    async with in_flight.hold("pix-refund-payment", "E1", wait=True):
        pass  # free again
