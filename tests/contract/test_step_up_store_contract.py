"""The StepUpStore contract, run against every adapter (memory, Redis).

Time is a FakeClock the store must obey; Redis's own TTL only cleans up.
The concurrent layer: many takers of one token, and many tokens taken at
once, each token granted exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.step_up import InMemoryStepUpStore
from finbank_adapters.redis.step_up import RedisStepUpStore
from finbank_core.auth.step_up import (
    StepUpGrant,
    StepUpPurpose,
    StepUpStore,
    new_step_up_token,
)
from tests.support_redis import open_test_redis

TTL = timedelta(seconds=300)


@dataclass
class Harness:
    store: StepUpStore
    clock: FakeClock
    #: everything the backend holds, as text (keys and values)
    dump: Callable[[], Awaitable[str]]


@pytest.fixture(params=["memory", "redis"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    clock = FakeClock()
    if request.param == "memory":
        memory = InMemoryStepUpStore(clock)

        async def memory_dump() -> str:
            return repr(vars(memory))

        yield Harness(memory, clock, memory_dump)
    else:
        async with open_test_redis() as (client, prefix):

            async def redis_dump() -> str:
                keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
                values = [await client.get(key) for key in keys]
                return repr(keys) + repr(values)

            yield Harness(RedisStepUpStore(client, clock, key_prefix=prefix), clock, redis_dump)


def grant(clock: FakeClock, subject: str = "user-1") -> StepUpGrant:
    return StepUpGrant(
        subject=subject,
        session_id="sid-1",
        purpose=StepUpPurpose.MFA_CHANGE,
        expires_at=clock.now() + TTL,
    )


async def test_a_grant_is_taken_once_with_everything_it_carries(harness: Harness) -> None:
    token = new_step_up_token()
    stored = grant(harness.clock)
    await harness.store.put(token, stored)
    assert await harness.store.take(token) == stored
    assert await harness.store.take(token) is None


async def test_an_unknown_token_finds_nothing(harness: Harness) -> None:
    await harness.store.put(new_step_up_token(), grant(harness.clock))
    assert await harness.store.take(new_step_up_token()) is None


async def test_a_grant_is_valid_until_just_before_its_expiry(harness: Harness) -> None:
    token = new_step_up_token()
    await harness.store.put(token, grant(harness.clock))
    harness.clock.advance(TTL.total_seconds() - 0.001)
    assert await harness.store.take(token) is not None


async def test_a_grant_is_gone_exactly_at_its_expiry(harness: Harness) -> None:
    token = new_step_up_token()
    await harness.store.put(token, grant(harness.clock))
    harness.clock.advance(TTL.total_seconds())
    assert await harness.store.take(token) is None


async def test_an_already_expired_grant_is_not_kept(harness: Harness) -> None:
    token = new_step_up_token()
    expired = grant(harness.clock)
    harness.clock.advance(TTL.total_seconds() + 1)
    await harness.store.put(token, expired)
    assert await harness.store.take(token) is None


async def test_concurrent_takers_of_one_token_get_it_exactly_once(harness: Harness) -> None:
    token = new_step_up_token()
    await harness.store.put(token, grant(harness.clock))
    results = await asyncio.gather(*(harness.store.take(token) for _ in range(50)))
    assert sum(r is not None for r in results) == 1


async def test_many_tokens_taken_concurrently_are_each_granted_once(harness: Harness) -> None:
    tokens = [new_step_up_token() for _ in range(20)]
    for i, token in enumerate(tokens):
        await harness.store.put(token, grant(harness.clock, subject=f"user-{i}"))
    takes = [harness.store.take(token) for token in tokens for _ in range(5)]
    results = await asyncio.gather(*takes)
    granted = [r for r in results if r is not None]
    assert sorted(g.subject for g in granted) == sorted(f"user-{i}" for i in range(20))


async def test_the_store_keys_never_contain_the_token(harness: Harness) -> None:
    token = new_step_up_token()
    await harness.store.put(token, grant(harness.clock))
    dump = await harness.dump()
    assert "user-1" in dump  # the dump does show what is stored
    assert token not in dump
    assert await harness.store.take(token) is not None
