"""The auth world, once with in-memory stores and once with the machine's Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.auth import (
    InMemoryChallengeStore,
    InMemoryLoginThrottle,
    InMemoryRefreshTokenStore,
    InMemoryTokenDenylist,
)
from finbank_adapters.memory.step_up import InMemoryStepUpStore
from finbank_adapters.redis import (
    RedisChallengeStore,
    RedisLoginThrottle,
    RedisRefreshTokenStore,
    RedisTokenDenylist,
)
from finbank_adapters.redis.step_up import RedisStepUpStore
from tests.integration.auth.harness import POLICY, AuthWorld
from tests.support_redis import open_test_redis


@pytest.fixture(params=["memory", "redis"])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[AuthWorld]:
    clock = FakeClock()
    if request.param == "memory":
        yield AuthWorld.build(
            clock,
            InMemoryChallengeStore(clock),
            InMemoryLoginThrottle(clock, POLICY),
            InMemoryTokenDenylist(clock),
            InMemoryRefreshTokenStore(clock),
            InMemoryStepUpStore(clock),
        )
        return
    async with open_test_redis() as (client, prefix):
        yield AuthWorld.build(
            clock,
            RedisChallengeStore(client, clock, key_prefix=prefix),
            RedisLoginThrottle(client, clock, POLICY, key_prefix=prefix),
            RedisTokenDenylist(client, clock, key_prefix=prefix),
            RedisRefreshTokenStore(client, clock, key_prefix=prefix),
            RedisStepUpStore(client, clock, key_prefix=prefix),
        )
