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
from finbank_core.auth.ports import ATTEMPT_LEASE_SECONDS, LoginThrottle
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


# -- tries held while a password or code is checked -------------------------------------


async def test_tries_held_at_once_never_outnumber_the_tries_left(harness: Harness) -> None:
    throttle = harness.make(POLICY)
    await fail(throttle, "maria", 3)
    for _ in range(7):  # 10 - 3 failures counted: 7 tries left
        await throttle.begin_attempt("maria")
    with pytest.raises(AccountLocked) as busy:
        await throttle.begin_attempt("maria")
    assert busy.value.details["retry_after_seconds"] == 1
    await throttle.begin_attempt("someone-else")  # per account
    await throttle.end_attempt("maria", failed=False)  # one given back (a right answer)
    await throttle.begin_attempt("maria")
    for _ in range(7):
        await throttle.end_attempt("maria", failed=True)
    with pytest.raises(AccountLocked) as locked:  # 3 + 7 failures: the lock itself
        await throttle.begin_attempt("maria")
    assert locked.value.details["retry_after_seconds"] == 1800


async def test_many_tries_begun_at_once_hold_exactly_the_tries_left(harness: Harness) -> None:
    throttle = harness.make(POLICY)
    outcomes = await asyncio.gather(
        *(throttle.begin_attempt("maria") for _ in range(40)), return_exceptions=True
    )
    assert sum(o is None for o in outcomes) == 10
    assert all(isinstance(o, AccountLocked) for o in outcomes if o is not None)


async def test_a_try_never_given_back_stops_counting_after_its_lease(harness: Harness) -> None:
    throttle = harness.make(POLICY)
    for _ in range(10):
        await throttle.begin_attempt("maria")  # a process that died holding them all
    with pytest.raises(AccountLocked):
        await throttle.begin_attempt("maria")
    harness.clock.advance(ATTEMPT_LEASE_SECONDS - 1)
    with pytest.raises(AccountLocked):
        await throttle.begin_attempt("maria")
    harness.clock.advance(1)
    await throttle.begin_attempt("maria")
    await throttle.end_attempt("maria", failed=False)
    await throttle.ensure_not_locked("maria")


async def test_a_success_forgets_the_failures_and_late_give_backs_change_nothing(
    harness: Harness,
) -> None:
    throttle = harness.make(POLICY)
    await fail(throttle, "maria", 9)
    await throttle.begin_attempt("maria")  # the one try left
    await throttle.record_success("maria")  # another login of hers went through
    await throttle.end_attempt("maria", failed=False)  # the try held before: nothing to give
    for _ in range(10):
        await throttle.begin_attempt("maria")
    with pytest.raises(AccountLocked):
        await throttle.begin_attempt("maria")
