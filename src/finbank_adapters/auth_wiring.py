"""Builders for the auth adapters, used by ``finbank_adapters.containers`` only.

The container chooses; these functions construct. They import Redis,
aioboto3 and Litestar lazily so the memory profile runs with none of the
optional extras installed, and the resources yield ``None`` when no port of
the configured profile needs them (``init_resources`` opens every resource).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from finbank_adapters._extras import require_extra
from finbank_adapters.local_auth import LocalTokenIssuer
from finbank_adapters.settings import Settings, SettingsError
from finbank_core.auth.lockout import LockoutPolicy
from finbank_core.shared.clock import Clock

# -- resources -------------------------------------------------------------------


def redis_backends(settings: Settings) -> str:
    """The backend variables that put a port on Redis, for an error that names them."""
    on_redis = {"redis", "redis_postgres"}
    return ", ".join(
        f"FINBANK_{port.upper()}_BACKEND={value}"
        for port in settings.backends.__struct_fields__
        if (value := str(getattr(settings.backends, port))) in on_redis
    )


async def redis_client(settings: Settings) -> AsyncIterator[Any]:
    """A ``redis.asyncio`` client (connects on first use), closed on shutdown."""
    if not settings.uses_redis():
        yield None
        return
    require_extra(redis_backends(settings), "redis", ["redis"])
    from redis.asyncio import from_url

    client = from_url(
        settings.redis.url,
        socket_timeout=settings.redis.timeout_seconds,
        socket_connect_timeout=settings.redis.timeout_seconds,
        health_check_interval=30,
    )
    try:
        yield client
    finally:
        from finbank_adapters.redis.pipe import close_pipe

        await close_pipe(client)  # the denylist's own connection (finbank_adapters.redis.pipe)
        await client.aclose()


async def cognito_client(settings: Settings) -> AsyncIterator[Any]:
    """An aioboto3 ``cognito-idp`` client, when the identity backend is Cognito."""
    if settings.backends.identity != "cognito":
        yield None
        return
    require_extra("FINBANK_IDENTITY_BACKEND=cognito", "aws", ["aioboto3", "botocore"])
    import aioboto3

    session = aioboto3.Session()
    async with session.client(
        "cognito-idp",
        region_name=settings.aws.region,
        endpoint_url=settings.aws.endpoint_url or None,
    ) as client:
        yield client


# -- adapters --------------------------------------------------------------------


def lockout_policy(settings: Settings) -> LockoutPolicy:
    return LockoutPolicy(
        max_failures=settings.auth.lockout_max_failures,
        failure_window_seconds=settings.auth.lockout_window_seconds,
        lock_seconds=settings.auth.lockout_seconds,
        exponential=settings.auth.lockout_exponential,
        max_lock_seconds=max(settings.auth.lockout_max_seconds, settings.auth.lockout_seconds),
    )


def local_token_issuer(settings: Settings, clock: Clock) -> LocalTokenIssuer:
    return LocalTokenIssuer(
        secret=settings.jwt_secret_bytes(),
        issuer=settings.jwt.issuer,
        audience=settings.jwt.audience,
        clock=clock,
        access_ttl_seconds=settings.auth.access_token_ttl_seconds,
        refresh_ttl_seconds=settings.auth.refresh_token_ttl_seconds,
    )


def redis_challenge_store(client: Any, clock: Clock, settings: Settings) -> Any:
    from finbank_adapters.redis import RedisChallengeStore

    return RedisChallengeStore(client, clock, key_prefix=settings.redis.key_prefix)


def redis_login_throttle(client: Any, clock: Clock, settings: Settings) -> Any:
    from finbank_adapters.redis import RedisLoginThrottle

    return RedisLoginThrottle(
        client, clock, lockout_policy(settings), key_prefix=settings.redis.key_prefix
    )


def redis_token_denylist(client: Any, clock: Clock, settings: Settings) -> Any:
    from finbank_adapters.redis import RedisTokenDenylist

    return RedisTokenDenylist(client, clock, key_prefix=settings.redis.key_prefix)


def cached_token_denylist(pool: Any, client: Any, clock: Clock, settings: Settings) -> Any:
    """``redis_postgres``: revocations kept in PostgreSQL, cached in Redis (docs/auth.md)."""
    from finbank_adapters.postgres import PostgresTokenDenylist
    from finbank_adapters.redis import RedisCachedTokenDenylist

    if pool is None or client is None:
        raise SettingsError("the redis_postgres denylist needs both PostgreSQL and Redis")
    return RedisCachedTokenDenylist(
        client, clock, PostgresTokenDenylist(pool, clock), key_prefix=settings.redis.key_prefix
    )


def redis_refresh_token_store(client: Any, clock: Clock, settings: Settings) -> Any:
    from finbank_adapters.redis import RedisRefreshTokenStore

    return RedisRefreshTokenStore(client, clock, key_prefix=settings.redis.key_prefix)


def cognito_identity_provider(client: Any, settings: Settings) -> Any:
    from finbank_adapters.aws.cognito import CognitoIdentityProvider

    settings.require_cognito()
    return CognitoIdentityProvider(
        client,
        client_id=settings.cognito.client_id,
        client_secret=settings.cognito.client_secret or None,
        auth_session_seconds=settings.cognito.auth_session_seconds,
        sign_in_attribute=settings.cognito.sign_in_attribute.value,
    )


def cognito_token_verifier(settings: Settings, clock: Clock) -> Any:
    from finbank_adapters.aws.jwks import CognitoTokenVerifier, HttpJwksFetcher, JwksKeySet

    settings.require_cognito()
    keys = JwksKeySet(HttpJwksFetcher(settings.cognito_jwks_endpoint()), clock)
    return CognitoTokenVerifier(
        keys,
        issuer=settings.cognito_issuer_url(),
        client_id=settings.cognito.client_id,
        clock=clock,
    )


def challenge_ttl_seconds(settings: Settings) -> int:
    """The MFA challenge TTL, never longer than the Cognito auth session when Cognito is used."""
    if settings.backends.identity == "cognito":
        return min(settings.auth.mfa_challenge_ttl_seconds, settings.cognito.auth_session_seconds)
    return settings.auth.mfa_challenge_ttl_seconds


def redis_rate_limit_store(client: Any, settings: Settings) -> Any:
    """The Litestar store behind the rate limiter on /v1/auth/*, on Redis."""
    from finbank_adapters.redis.rate_limit import FailClosedRedisStore

    return FailClosedRedisStore(
        client, namespace=f"{settings.redis.key_prefix}ratelimit", handle_client_shutdown=False
    )


def memory_rate_limit_store() -> Any:
    """The rate limiter's store in this process (no Redis)."""
    from litestar.stores.memory import MemoryStore

    return MemoryStore()
