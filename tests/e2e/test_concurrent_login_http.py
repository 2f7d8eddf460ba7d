"""Concurrent logins over HTTP on the local profile, through two app instances.

Two apps (two "replicas", each with its own container, as two processes
would have) share one PostgreSQL schema and one Redis key prefix: users and
revocations in PostgreSQL; MFA challenges, lockout counters, refresh
families and the denylist cache in Redis. Both containers use one FakeClock,
so every TOTP code is computed for a step the test chose, never by luck.
PIX runs on its in-memory backend here: only auth is under test.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest
from dependency_injector import providers
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from finbank_adapters.containers import build_container
from finbank_adapters.memory import FakeClock
from finbank_adapters.settings import Settings
from finbank_http import create_app
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

pytestmark = pytest.mark.services

PASSWORD = "correct horse battery staple"
PROBLEM = "application/problem+json"
CALLERS = 24


@dataclass
class Replicas:
    one: AsyncTestClient[Any]
    two: AsyncTestClient[Any]
    clock: FakeClock
    redis: Redis
    redis_prefix: str

    def pick(self, i: int) -> AsyncTestClient[Any]:
        return (self.one, self.two)[i % 2]

    async def flush_redis(self) -> None:
        keys = [k async for k in self.redis.scan_iter(match=f"{self.redis_prefix}*", count=500)]
        if keys:
            await self.redis.delete(*keys)


def local_settings(schema: str, redis_prefix: str, jwt_secret: str) -> Settings:
    return Settings.from_env(
        {
            "FINBANK_PROFILE": "local",
            "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
            "FINBANK_POSTGRES_POOL_MIN": "4",
            "FINBANK_REDIS_KEY_PREFIX": redis_prefix,
            "FINBANK_JWT_SECRET": jwt_secret,
            "FINBANK_PIX_BACKEND": "memory",
            # the race's losers count as failed logins; the limits are not under test here
            "FINBANK_LOCKOUT_MAX_FAILURES": "1000",
            "FINBANK_AUTH_RATE_LIMIT_PER_MINUTE": "100000",
        }
    )


@pytest.fixture
async def replicas() -> AsyncIterator[Replicas]:
    require_postgres()
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    async with isolated_schema() as (_, schema), open_test_redis() as (redis, prefix):
        settings = local_settings(schema, prefix, secrets.token_hex(32))
        assert (settings.backends.users, settings.backends.denylist) == (
            "postgres",
            "redis_postgres",
        )
        apps = []
        for _ in range(2):
            container = build_container(settings)
            container.infra.clock.override(providers.Object(clock))
            apps.append(create_app(container))
        async with AsyncTestClient(app=apps[0]) as one, AsyncTestClient(app=apps[1]) as two:
            yield Replicas(one, two, clock, redis, prefix)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def log_in(client: AsyncTestClient[Any], username: str) -> Any:
    response = await client.post(
        "/v1/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def sign_up(client: AsyncTestClient[Any], username: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/auth/signup", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    tokens: dict[str, Any] = (await log_in(client, username))["tokens"]
    return tokens


async def enrol_totp(replicas: Replicas, username: str) -> pyotp.TOTP:
    """Sign up on replica one, enrol an authenticator; the clock then moves to a fresh step."""
    access = (await sign_up(replicas.one, username))["access_token"]
    stepped_up = await replicas.two.post(
        "/v1/auth/step-up",
        json={"purpose": "mfa_change", "password": PASSWORD},
        headers=bearer(access),
    )
    assert stepped_up.status_code == 201, stepped_up.text
    setup = await replicas.one.post(
        "/v1/auth/totp/setup",
        headers={**bearer(access), "X-Step-Up-Token": stepped_up.json()["step_up_token"]},
    )
    assert setup.status_code == 200, setup.text
    totp = pyotp.TOTP(setup.json()["secret"])
    verified = await replicas.two.post(
        "/v1/auth/totp/verify",
        json={"code": totp.at(replicas.clock.now())},
        headers=bearer(access),
    )
    assert verified.status_code == 204, verified.text
    replicas.clock.advance(30)
    return totp


async def challenge(client: AsyncTestClient[Any], username: str) -> str:
    body = await log_in(client, username)
    assert body["mfa_required"] is True
    challenge_id: str = body["challenge_id"]
    return challenge_id


def assert_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code


async def test_many_mfa_answers_with_one_code_through_two_replicas_get_tokens_once(
    replicas: Replicas,
) -> None:
    totp = await enrol_totp(replicas, "maria")
    challenge_ids = await asyncio.gather(
        *(challenge(replicas.pick(i), "maria") for i in range(CALLERS))
    )
    code = totp.at(replicas.clock.now())
    responses = await asyncio.gather(
        *(
            replicas.pick(i).post("/v1/auth/mfa", json={"challenge_id": c, "code": code})
            for i, c in enumerate(challenge_ids)
        )
    )
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, [r.status_code for r in responses]
    for response in responses:
        if response.status_code != 200:
            assert_problem(response, 401, "incorrect_code")
    # a replay later is answered like every loser, on both replicas
    for client in (replicas.one, replicas.two):
        replay = await client.post(
            "/v1/auth/mfa",
            json={"challenge_id": await challenge(client, "maria"), "code": code},
        )
        assert_problem(replay, 401, "incorrect_code")
    # the winner's tokens work on both replicas; the next step's code is accepted once
    access = winners[0].json()["tokens"]["access_token"]
    for client in (replicas.one, replicas.two):
        assert (await client.get("/v1/accounts", headers=bearer(access))).status_code == 200
    replicas.clock.advance(30)
    fresh = await replicas.two.post(
        "/v1/auth/mfa",
        json={
            "challenge_id": await challenge(replicas.two, "maria"),
            "code": totp.at(replicas.clock.now()),
        },
    )
    assert fresh.status_code == 200, fresh.text


async def test_a_logout_on_one_replica_holds_on_the_other_even_after_redis_is_flushed(
    replicas: Replicas,
) -> None:
    tokens = await sign_up(replicas.one, "joao")
    renewed = await replicas.two.post(
        "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert renewed.status_code == 200, renewed.text
    sibling = renewed.json()
    assert (
        await replicas.one.post("/v1/auth/logout", headers=bearer(tokens["access_token"]))
    ).status_code == 204
    await replicas.flush_redis()
    for client in (replicas.one, replicas.two):
        for access in (tokens["access_token"], sibling["access_token"]):
            assert_problem(
                await client.get("/v1/accounts", headers=bearer(access)), 401, "invalid_token"
            )
    refused = await replicas.two.post(
        "/v1/auth/refresh", json={"refresh_token": sibling["refresh_token"]}
    )
    assert_problem(refused, 401, "invalid_token")


async def test_concurrent_refreshes_with_one_token_through_two_replicas(
    replicas: Replicas,
) -> None:
    tokens = await sign_up(replicas.one, "ana")
    responses = await asyncio.gather(
        *(
            replicas.pick(i).post(
                "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
            )
            for i in range(CALLERS)
        )
    )
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, [r.status_code for r in responses]
    for response in responses:
        if response.status_code != 200:
            assert_problem(response, 401, "invalid_token")
    # reuse was detected: every access token of the login is refused at once, everywhere
    for access in (tokens["access_token"], winners[0].json()["access_token"]):
        for client in (replicas.one, replicas.two):
            assert_problem(
                await client.get("/v1/accounts", headers=bearer(access)), 401, "invalid_token"
            )
