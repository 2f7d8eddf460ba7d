"""The rate limiter's store and the relay's outbox are chosen by typed settings like every port.

``FINBANK_RATE_LIMIT_BACKEND`` (``memory`` or ``redis``, Redis on the local and
aws profiles) picks the store behind the HTTP rate limiter; the relay's outbox
follows ``FINBANK_EVENTS_BACKEND``, and asking for it where events stay in
process is a ``SettingsError`` that says what to set.
"""

from __future__ import annotations

import pytest

from finbank import provided
from finbank_adapters.containers import build_container
from finbank_adapters.settings import CacheBackend, Profile, Settings, SettingsError


@pytest.mark.parametrize(
    ("profile", "expected"),
    [("memory", CacheBackend.MEMORY), ("local", CacheBackend.REDIS), ("aws", CacheBackend.REDIS)],
)
def test_each_profile_presets_the_rate_limit_backend(profile: str, expected: CacheBackend) -> None:
    settings = Settings.from_env({"FINBANK_PROFILE": profile})
    assert settings.backends.rate_limit is expected


def test_the_variable_overrides_the_preset_and_an_unknown_name_is_refused() -> None:
    settings = Settings.from_env(
        {"FINBANK_PROFILE": "local", "FINBANK_RATE_LIMIT_BACKEND": "memory"}
    )
    assert settings.backends.rate_limit is CacheBackend.MEMORY
    assert settings.profile is Profile.LOCAL
    with pytest.raises(
        SettingsError, match="FINBANK_RATE_LIMIT_BACKEND must be one of memory, redis"
    ):
        Settings.from_env({"FINBANK_RATE_LIMIT_BACKEND": "memcached"})


async def test_the_memory_backend_keeps_the_counters_in_process() -> None:
    pytest.importorskip("litestar")
    from litestar.stores.memory import MemoryStore

    container = build_container(Settings.from_env({}))
    assert isinstance(await provided(container.auth().rate_limit_store), MemoryStore)


async def test_the_redis_backend_alone_is_enough_to_open_redis() -> None:
    pytest.importorskip("redis")
    from finbank_adapters.redis.rate_limit import FailClosedRedisStore

    settings = Settings.from_env({"FINBANK_RATE_LIMIT_BACKEND": "redis"})
    assert settings.uses_redis()  # every other cache port is still in memory
    container = build_container(settings)
    try:
        # the client connects on first use: building the store touches no server
        store = await provided(container.auth().rate_limit_store)
        assert isinstance(store, FailClosedRedisStore)
    finally:
        result = container.shutdown_resources()
        if result is not None:
            await result


async def test_the_relay_outbox_where_events_stay_in_process_says_what_to_set() -> None:
    container = build_container(Settings.from_env({}))
    with pytest.raises(SettingsError, match="FINBANK_EVENTS_BACKEND=postgres"):
        await provided(container.events().outbox)


async def test_the_relay_outbox_on_postgres_is_the_postgres_outbox() -> None:
    from finbank_adapters.postgres import PostgresOutbox

    settings = Settings.from_env({"FINBANK_EVENTS_BACKEND": "postgres"})
    container = build_container(settings)
    container.infra().postgres_pool.override(object())  # no server: the outbox only keeps it
    assert isinstance(await provided(container.events().outbox), PostgresOutbox)
