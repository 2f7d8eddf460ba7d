"""The LoginThrottle contract, run against every adapter (memory, Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.auth import InMemoryLoginThrottle
from finbank_adapters.redis import RedisLoginThrottle
from finbank_core.auth.errors import AccountLocked
from finbank_core.auth.lockout import LockoutPolicy
from finbank_core.auth.ports import LoginThrottle
from tests.support_redis import open_test_redis

POLICY = LockoutPolicy(max_failures=10, failure_window_seconds=900, lock_seconds=1800)
EXPONENTIAL = LockoutPolicy(
    max_failures=3,
    failure_window_seconds=900,
    lock_seconds=60,
    exponential=True,
    max_lock_seconds=200,
)


@dataclass
class Harness:
    make: Callable[[LockoutPolicy], LoginThrottle]
    clock: FakeClock


@pytest.fixture(params=["memory", "redis"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    clock = FakeClock()
    if request.param == "memory":
        yield Harness(lambda policy: InMemoryLoginThrottle(clock, policy), clock)
    else:
        async with open_test_redis() as (client, prefix):
            yield Harness(
                lambda policy: RedisLoginThrottle(client, clock, policy, key_prefix=prefix), clock
            )


async def fail(throttle: LoginThrottle, account: str, times: int) -> None:
    for _ in range(times):
        await throttle.record_failure(account)


async def test_nine_failures_do_not_lock_the_tenth_does(harness: Harness) -> None:
    throttle = harness.make(POLICY)
    await fail(throttle, "maria", 9)
    await throttle.ensure_not_locked("maria")
    await throttle.record_failure("maria")
    with pytest.raises(AccountLocked) as locked:
        await throttle.ensure_not_locked("maria")
    assert locked.value.details["retry_after_seconds"] == 1800


async def test_the_lock_lifts_after_thirty_minutes(harness: Harness) -> None:
    throttle = harness.make(POLICY)
    await fail(throttle, "maria", 10)
    harness.clock.advance(minutes=29, seconds=59)
    with pytest.raises(AccountLocked):
        await throttle.ensure_not_locked("maria")
    harness.clock.advance(seconds=1)
    await throttle.ensure_not_locked("maria")


async def test_failures_outside_the_window_do_not_add_up(harness: Harness) -> None:
    throttle = harness.make(POLICY)
    await fail(throttle, "maria", 9)
    harness.clock.advance(seconds=900)
    await fail(throttle, "maria", 9)
    await throttle.ensure_not_locked("maria")


async def test_a_success_forgets_the_failures(harness: Harness) -> None:
    throttle = harness.make(POLICY)
    await fail(throttle, "maria", 9)
    await throttle.record_success("maria")
    await fail(throttle, "maria", 9)
    await throttle.ensure_not_locked("maria")


async def test_accounts_are_counted_separately(harness: Harness) -> None:
    throttle = harness.make(POLICY)
    await fail(throttle, "maria", 10)
    await throttle.ensure_not_locked("joao")


async def test_exponential_locks_double_up_to_the_cap(harness: Harness) -> None:
    throttle = harness.make(EXPONENTIAL)
    lock_lengths = []
    for _ in range(4):
        await fail(throttle, "maria", 3)
        with pytest.raises(AccountLocked) as locked:
            await throttle.ensure_not_locked("maria")
        seconds = locked.value.details["retry_after_seconds"]
        lock_lengths.append(seconds)
        harness.clock.advance(seconds)
    assert lock_lengths == [60, 120, 200, 200]


# -- concurrency: many failures of one account at once -------------------------------------


async def test_concurrent_failures_are_all_counted(harness: Harness) -> None:
    throttle = harness.make(POLICY)
    await asyncio.gather(*(throttle.record_failure("maria") for _ in range(9)))
    await throttle.ensure_not_locked("maria")  # nine: no increment lost, none invented
    await asyncio.gather(*(throttle.record_failure("maria") for _ in range(1)))
    with pytest.raises(AccountLocked):
        await throttle.ensure_not_locked("maria")


async def test_fifty_concurrent_failures_lock_once_and_every_check_is_refused(
    harness: Harness,
) -> None:
    throttle = harness.make(POLICY)
    await asyncio.gather(*(throttle.record_failure("maria") for _ in range(50)))
    checks = await asyncio.gather(
        *(throttle.ensure_not_locked("maria") for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(c, AccountLocked) for c in checks)
    # every refusal tells the same retry time: one consistent lock state
    assert {c.details["retry_after_seconds"] for c in checks if isinstance(c, AccountLocked)} == {
        POLICY.lock_seconds
    }
    await throttle.ensure_not_locked("joao")
