"""The RefreshTokenStore contract (rotation, reuse detection), against memory and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.auth import InMemoryRefreshTokenStore
from finbank_adapters.redis import RedisRefreshTokenStore
from finbank_core.auth.refresh_tokens import RefreshTokenStore, RotationOutcome
from tests.support_redis import open_test_redis

ROTATED, REUSED, REVOKED, UNKNOWN = (
    RotationOutcome.ROTATED,
    RotationOutcome.REUSED,
    RotationOutcome.REVOKED,
    RotationOutcome.UNKNOWN,
)


@dataclass
class Harness:
    store: RefreshTokenStore
    clock: FakeClock

    async def start(self, family: str = "fam-1", subject: str = "sub-1", days: int = 30) -> None:
        expires_at = self.clock.now() + timedelta(days=days)
        await self.store.start_family(family, subject, "t0", expires_at)


@pytest.fixture(params=["memory", "redis"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    clock = FakeClock()
    if request.param == "memory":
        yield Harness(InMemoryRefreshTokenStore(clock), clock)
    else:
        async with open_test_redis() as (client, prefix):
            yield Harness(RedisRefreshTokenStore(client, clock, key_prefix=prefix), clock)


async def test_the_current_token_rotates_into_the_next(harness: Harness) -> None:
    await harness.start()
    assert await harness.store.rotate("fam-1", "t0", "t1") is ROTATED
    assert await harness.store.rotate("fam-1", "t1", "t2") is ROTATED


async def test_reusing_a_rotated_token_revokes_the_whole_family(harness: Harness) -> None:
    await harness.start()
    await harness.store.rotate("fam-1", "t0", "t1")
    assert await harness.store.rotate("fam-1", "t0", "stolen") is REUSED
    # the legitimate holder of t1 is logged out too
    assert await harness.store.rotate("fam-1", "t1", "t2") is REVOKED


async def test_two_concurrent_rotations_of_one_token_let_one_through_and_revoke(
    harness: Harness,
) -> None:
    await harness.start()
    outcomes = await asyncio.gather(
        harness.store.rotate("fam-1", "t0", "a"), harness.store.rotate("fam-1", "t0", "b")
    )
    assert sorted(outcomes) == sorted([ROTATED, REUSED])


async def test_a_family_expires_at_its_login_time_limit(harness: Harness) -> None:
    await harness.start(days=30)
    await harness.store.rotate("fam-1", "t0", "t1")
    harness.clock.advance(days=30)
    assert await harness.store.rotate("fam-1", "t1", "t2") is UNKNOWN


async def test_an_unknown_family_is_refused(harness: Harness) -> None:
    assert await harness.store.rotate("nope", "t0", "t1") is UNKNOWN


async def test_revoking_a_family_refuses_its_current_token(harness: Harness) -> None:
    await harness.start()
    await harness.store.revoke_family("fam-1")
    assert await harness.store.rotate("fam-1", "t0", "t1") is REVOKED


async def test_revoking_a_subject_revokes_all_its_families_and_no_other(
    harness: Harness,
) -> None:
    await harness.start("fam-1", "sub-1")
    await harness.start("fam-2", "sub-1")
    await harness.start("fam-3", "sub-2")
    assert sorted(await harness.store.revoke_subject("sub-1")) == ["fam-1", "fam-2"]
    assert await harness.store.rotate("fam-1", "t0", "x") is REVOKED
    assert await harness.store.rotate("fam-2", "t0", "x") is REVOKED
    assert await harness.store.rotate("fam-3", "t0", "x") is ROTATED


# -- concurrency: many callers on the same family ---------------------------------------------

CALLERS = 32


async def test_many_concurrent_rotations_of_one_token_rotate_once_and_revoke_the_family(
    harness: Harness,
) -> None:
    await harness.start()
    outcomes = await asyncio.gather(
        *(harness.store.rotate("fam-1", "t0", f"next-{i}") for i in range(CALLERS))
    )
    assert outcomes.count(ROTATED) == 1
    assert REUSED in outcomes  # the first loser detects the reuse...
    assert set(outcomes) <= {ROTATED, REUSED, REVOKED}  # ...later ones find the family dead
    winner = f"next-{outcomes.index(ROTATED)}"
    # the family is gone for everyone: the winner's token and every replay
    assert await harness.store.rotate("fam-1", winner, "after") is REVOKED
    assert await harness.store.rotate("fam-1", "t0", "again") is REVOKED


async def test_concurrent_rotations_of_distinct_families_do_not_interfere(
    harness: Harness,
) -> None:
    families = [f"fam-{i}" for i in range(CALLERS)]
    await asyncio.gather(*(harness.start(f, f"sub-{i % 4}") for i, f in enumerate(families)))
    outcomes = await asyncio.gather(*(harness.store.rotate(f, "t0", "t1") for f in families))
    assert outcomes == [ROTATED] * CALLERS
    outcomes = await asyncio.gather(*(harness.store.rotate(f, "t1", "t2") for f in families))
    assert outcomes == [ROTATED] * CALLERS


async def test_a_revocation_racing_rotations_leaves_the_family_revoked(
    harness: Harness,
) -> None:
    await harness.start("fam-1", "sub-1")
    results = await asyncio.gather(
        *(harness.store.rotate("fam-1", "t0", f"n{i}") for i in range(CALLERS // 2)),
        harness.store.revoke_subject("sub-1"),
        harness.store.revoke_family("fam-1"),
    )
    assert results[: CALLERS // 2].count(ROTATED) <= 1
    for i in range(CALLERS // 2):
        assert await harness.store.rotate("fam-1", f"n{i}", "x") is REVOKED


async def test_revoking_a_subject_without_families_returns_none(harness: Harness) -> None:
    await harness.start("fam-1", "sub-1")
    assert await harness.store.revoke_subject("sub-2") == ()
