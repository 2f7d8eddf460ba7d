"""Redis stops in the middle of a login: everything that needs it fails closed.

The test starts a redis-server of its own on a free port (the machine's
shared Redis keeps running) and kills it between the password step and the
MFA answer.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from finbank_adapters.memory import FakeClock
from finbank_adapters.redis import (
    RedisChallengeStore,
    RedisLoginThrottle,
    RedisRefreshTokenStore,
    RedisTokenDenylist,
)
from finbank_core.auth import (
    AnswerChallengeCommand,
    AuthenticateQuery,
    LoginCommand,
    RefreshCommand,
)
from finbank_core.shared.errors import ServiceUnavailable
from tests.integration.auth.harness import PASSWORD, POLICY, AuthWorld
from tests.support_redis import own_redis_server


@pytest.fixture
def redis_server() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    with own_redis_server() as server:
        yield server


@pytest.fixture
async def world_on_own_redis(
    redis_server: tuple[subprocess.Popen[bytes], int],
) -> AsyncIterator[tuple[AuthWorld, subprocess.Popen[bytes]]]:
    process, port = redis_server
    client = Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)
    clock = FakeClock()
    world = AuthWorld.build(
        clock,
        RedisChallengeStore(client, clock),
        RedisLoginThrottle(client, clock, POLICY),
        RedisTokenDenylist(client, clock),
        RedisRefreshTokenStore(client, clock),
    )
    try:
        yield world, process
    finally:
        await client.aclose()


async def test_with_redis_stopped_mid_login_mfa_fails_closed(
    world_on_own_redis: tuple[AuthWorld, subprocess.Popen[bytes]],
) -> None:
    world, server = world_on_own_redis
    totp = await world.user_with_totp("maria")
    other = await world.user_without_mfa("joao")
    challenge = await world.challenge("maria")
    assert challenge.challenge_id is not None

    server.kill()
    server.wait(timeout=10)

    # the right code cannot complete the login: no tokens without the stored challenge
    with pytest.raises(ServiceUnavailable):
        await world.answer(
            AnswerChallengeCommand(challenge_id=challenge.challenge_id, answer=world.code(totp))
        )
    # a valid access token is not accepted unchecked against the denylist
    with pytest.raises(ServiceUnavailable):
        await world.authenticate(AuthenticateQuery(access_token=other.access_token))
    # a new login cannot check the lockout, so it does not proceed
    with pytest.raises(ServiceUnavailable):
        await world.login(LoginCommand(username="joao", password=PASSWORD))
    assert other.refresh_token is not None
    with pytest.raises(ServiceUnavailable):
        await world.refresh(RefreshCommand(refresh_token=other.refresh_token))
