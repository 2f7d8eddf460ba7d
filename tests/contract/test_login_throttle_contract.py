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
    held = [await throttle.begin_attempt("maria") for _ in range(7)]  # 10 - 3 failures
    with pytest.raises(AccountLocked) as busy:
        await throttle.begin_attempt("maria")
    assert busy.value.details["retry_after_seconds"] == 1
    await throttle.begin_attempt("someone-else")  # per account
    await throttle.end_attempt("maria", held.pop(), failed=False)  # a right answer
    held.append(await throttle.begin_attempt("maria"))
    for token in held:
        await throttle.end_attempt("maria", token, failed=True)
    with pytest.raises(AccountLocked) as locked:  # 3 + 7 failures: the lock itself
        await throttle.begin_attempt("maria")
    assert locked.value.details["retry_after_seconds"] == 1800


async def test_many_tries_begun_at_once_hold_exactly_the_tries_left(harness: Harness) -> None:
    throttle = harness.make(POLICY)
    outcomes = await asyncio.gather(
        *(throttle.begin_attempt("maria") for _ in range(40)), return_exceptions=True
    )
    tokens = [o for o in outcomes if isinstance(o, str)]
    assert len(set(tokens)) == 10
    assert all(isinstance(o, AccountLocked) for o in outcomes if not isinstance(o, str))


async def test_a_try_never_given_back_stops_counting_a_lease_after_its_own_start(
    harness: Harness,
) -> None:
    throttle = harness.make(POLICY)
    for _ in range(9):
        await throttle.begin_attempt("maria")  # a process that died holding them
    # others keep checking, one at a time, more often than the lease: the dead
    # process's tries must still lapse a lease after they began
    for _ in range(3):
        harness.clock.advance(ATTEMPT_LEASE_SECONDS // 3)
        token = await throttle.begin_attempt("maria")
        await throttle.end_attempt("maria", token, failed=False)
    tokens = [await throttle.begin_attempt("maria") for _ in range(10)]  # all ten are back
    with pytest.raises(AccountLocked):
        await throttle.begin_attempt("maria")
    for token in tokens:
        await throttle.end_attempt("maria", token, failed=False)
    await throttle.ensure_not_locked("maria")


async def test_a_success_forgets_the_failures_but_not_the_tries_still_held(
    harness: Harness,
) -> None:
    throttle = harness.make(POLICY)
    await fail(throttle, "maria", 5)
    held = [await throttle.begin_attempt("maria") for _ in range(5)]
    await throttle.record_success("maria")  # another login of hers went through
    more = [await throttle.begin_attempt("maria") for _ in range(5)]  # 10 - 5 held
    with pytest.raises(AccountLocked):
        await throttle.begin_attempt("maria")
    for token in (*held, *more):
        await throttle.end_attempt("maria", token, failed=False)
    await throttle.end_attempt("maria", held[0], failed=False)  # twice: nothing to give
    tokens = [await throttle.begin_attempt("maria") for _ in range(10)]
    assert len(set(tokens)) == 10
