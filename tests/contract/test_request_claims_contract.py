"""Contract of ``RequestClaims`` (in-flight claims of idempotent requests), on every adapter.

Memory, and DynamoDB on a moto server that serves one request at a time
(DynamoDB serializes conditional writes per item; moto's threaded server does
not, see tests/integration/dynamo_support.py). Many concurrent callers on one
claim: exactly one holds it; a lease that ended can be taken over; only the
holder's token releases it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from finbank_adapters.memory.claims import InMemoryRequestClaims
from finbank_core.shared.idempotency import RequestClaims, claim_id_for
from tests.integration.dynamo_support import dynamodb_client, new_table, serial_moto_endpoint
from tests.postgres_support import isolated_schema

__all__ = ["serial_moto_endpoint"]  # fixture

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
CALLERS = 32


@pytest.fixture(
    params=[
        "memory",
        pytest.param("dynamodb", marks=pytest.mark.services),
        pytest.param("postgres", marks=pytest.mark.services),
    ]
)
async def claims(request: pytest.FixtureRequest) -> AsyncIterator[RequestClaims]:
    if request.param == "memory":
        yield InMemoryRequestClaims()
        return
    if request.param == "postgres":  # a migrated schema of its own, a connection per caller
        from finbank_adapters.postgres.pix_request_claims import PostgresRequestClaims

        dsn = request.getfixturevalue("postgres_dsn")
        async with isolated_schema(dsn, max_size=CALLERS) as (pool, _):
            yield PostgresRequestClaims(pool)
        return
    from finbank_adapters.aws.dynamo_claims import DynamoRequestClaims

    endpoint: str = request.getfixturevalue("serial_moto_endpoint")
    async with (
        dynamodb_client(endpoint, max_pool_connections=CALLERS) as client,
        new_table(client) as table,
    ):
        yield DynamoRequestClaims(client, table)


async def take(claims: RequestClaims, claim: str, token: str, at: datetime = T0) -> bool:
    return await claims.acquire(claim, token, now=at, until=at + LEASE)


async def test_one_holder_until_it_releases(claims: RequestClaims) -> None:
    claim = claim_id_for("pix-send", "ana", "key-1")
    assert await take(claims, claim, "a")
    assert not await take(claims, claim, "b")
    assert not await take(claims, claim, "a")  # not re-entrant either
    await claims.release(claim, "b")  # not b's: nothing happens
    assert not await take(claims, claim, "c")
    await claims.release(claim, "a")
    assert await take(claims, claim, "c")
    await claims.release(claim, "c")
    await claims.release(claim, "c")  # twice: harmless


async def test_claims_are_independent(claims: RequestClaims) -> None:
    one = claim_id_for("pix-send", "ana", "key-1")
    assert await take(claims, one, "a")
    for other in (
        claim_id_for("pix-send", "ana", "key-2"),
        claim_id_for("pix-send", "bia", "key-1"),
        claim_id_for("pix-refund", "ana", "key-1"),
    ):
        assert await take(claims, other, "b")


def test_claim_ids_never_collide_by_joining_parts() -> None:
    assert claim_id_for("s", "a#b", "c") != claim_id_for("s", "a", "b#c")
    assert claim_id_for("s", "ab", "c") != claim_id_for("s", "a", "bc")
    assert claim_id_for("s", "a") == claim_id_for("s", "a")
    assert len(claim_id_for("s", "x" * 10_000)) == 64


async def test_a_lease_that_ended_is_taken_over(claims: RequestClaims) -> None:
    claim = claim_id_for("pix-send", "ana", "key-1")
    assert await take(claims, claim, "crashed")
    just_before = T0 + LEASE - timedelta(milliseconds=1)
    assert not await take(claims, claim, "b", at=just_before)
    assert await take(claims, claim, "b", at=T0 + LEASE)
    await claims.release(claim, "crashed")  # the old holder comes back: no longer its claim
    assert not await take(claims, claim, "c", at=T0 + LEASE)
    await claims.release(claim, "b")
    assert await take(claims, claim, "c", at=T0 + LEASE)


async def test_many_concurrent_callers_one_holder(claims: RequestClaims) -> None:
    claim = claim_id_for("pix-send", "ana", "key-1")
    for round_ in range(3):
        tokens = [f"{round_}-{n}" for n in range(CALLERS)]
        taken = await asyncio.gather(*(take(claims, claim, t) for t in tokens))
        assert sum(taken) == 1
        losers = [t for t, won in zip(tokens, taken, strict=True) if not won]
        await asyncio.gather(*(claims.release(claim, t) for t in losers))
        assert not await take(claims, claim, f"{round_}-check")  # still the winner's
        winner = tokens[taken.index(True)]
        await claims.release(claim, winner)


async def test_concurrent_takeover_of_an_ended_lease_has_one_winner(
    claims: RequestClaims,
) -> None:
    claim = claim_id_for("pix-refund", "bia", "e2e", "r-1")
    assert await take(claims, claim, "crashed")
    later = T0 + LEASE + timedelta(seconds=1)
    taken = await asyncio.gather(*(take(claims, claim, f"t{n}", at=later) for n in range(CALLERS)))
    assert sum(taken) == 1
