"""The TokenDenylist contract, run against every adapter (memory, Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.auth import InMemoryTokenDenylist
from finbank_adapters.redis import RedisTokenDenylist
from finbank_core.auth.ports import TokenDenylist
from tests.support_redis import open_test_redis


@dataclass
class Harness:
    denylist: TokenDenylist
    clock: FakeClock


@pytest.fixture(params=["memory", "redis"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    clock = FakeClock()
    if request.param == "memory":
        yield Harness(InMemoryTokenDenylist(clock), clock)
    else:
        async with open_test_redis() as (client, prefix):
            yield Harness(RedisTokenDenylist(client, clock, key_prefix=prefix), clock)


async def test_a_revoked_id_is_denied_until_it_expires(harness: Harness) -> None:
    await harness.denylist.revoke("jti-1", harness.clock.now() + timedelta(minutes=15))
    assert await harness.denylist.is_revoked("jti-1")
    harness.clock.advance(minutes=15)
    assert not await harness.denylist.is_revoked("jti-1")


async def test_an_id_never_revoked_is_not_denied(harness: Harness) -> None:
    await harness.denylist.revoke("jti-1", harness.clock.now() + timedelta(minutes=15))
    assert not await harness.denylist.is_revoked("jti-2")
    assert not await harness.denylist.is_revoked()


async def test_any_revoked_id_among_several_denies(harness: Harness) -> None:
    await harness.denylist.revoke("session-9", harness.clock.now() + timedelta(hours=1))
    assert await harness.denylist.is_revoked("jti-1", "session-9")


async def test_revoking_an_already_expired_token_keeps_nothing(harness: Harness) -> None:
    await harness.denylist.revoke("jti-old", harness.clock.now() - timedelta(seconds=1))
    assert not await harness.denylist.is_revoked("jti-old")


async def test_revoking_twice_keeps_the_later_expiry(harness: Harness) -> None:
    now = harness.clock.now()
    await harness.denylist.revoke("session-1", now + timedelta(hours=2))
    await harness.denylist.revoke("session-1", now + timedelta(minutes=5))
    harness.clock.advance(hours=1)
    assert await harness.denylist.is_revoked("session-1")
