"""The PIX key look-up buckets are chosen by ``FINBANK_PIX_LOOKUP_BACKEND``, PostgreSQL included.

The PostgreSQL bucket (``pix_lookup_take``, migration 0015) was contract-tested
but no setting selected it. These tests read the setting, build the bucket the
container selects, and run the facade's look-ups against PostgreSQL until the
customer's bucket is empty.
"""

from __future__ import annotations

import pytest

from finbank import provided
from finbank.bank import configure, opened
from finbank_adapters.containers import build_container
from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.pix_claims import InMemoryLookupBuckets
from finbank_adapters.settings import LookupBackend, Settings, SettingsError
from finbank_core.accounts import OpenAccountCommand
from finbank_core.pix.claims import KeyLookupRateLimited
from finbank_core.pix.claims.use_cases import LookupPixKeyCommand
from finbank_core.pix.errors import PixKeyNotFound


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("memory", LookupBackend.MEMORY),
        ("local", LookupBackend.REDIS),
        ("aws", LookupBackend.REDIS),
    ],
)
def test_each_profile_presets_the_lookup_backend(profile: str, expected: LookupBackend) -> None:
    assert Settings.from_env({"FINBANK_PROFILE": profile}).backends.pix_lookup is expected


def test_the_variable_selects_postgres_and_refuses_an_unknown_backend() -> None:
    settings = Settings.from_env(
        {"FINBANK_PROFILE": "local", "FINBANK_PIX_LOOKUP_BACKEND": "postgres"}
    )
    assert settings.backends.pix_lookup is LookupBackend.POSTGRES
    assert settings.backends.throttle == "redis"  # the login throttle is another port
    with pytest.raises(
        SettingsError, match="FINBANK_PIX_LOOKUP_BACKEND must be one of memory, redis, postgres"
    ):
        Settings.from_env({"FINBANK_PIX_LOOKUP_BACKEND": "dynamodb"})


def test_postgres_alone_opens_the_pool_and_redis_alone_opens_redis() -> None:
    from finbank_adapters.postgres_wiring import uses_postgres

    assert uses_postgres(Settings.from_env({"FINBANK_PIX_LOOKUP_BACKEND": "postgres"}))
    assert not uses_postgres(Settings.from_env({}))
    assert Settings.from_env({"FINBANK_PIX_LOOKUP_BACKEND": "redis"}).uses_redis()
    assert not Settings.from_env({}).uses_redis()


async def test_the_memory_backend_is_the_in_process_bucket() -> None:
    container = build_container(Settings.from_env({}))
    assert isinstance(await provided(container.pix_claims().lookup_buckets), InMemoryLookupBuckets)


async def test_the_postgres_backend_is_the_postgres_bucket() -> None:
    pytest.importorskip("asyncpg")
    from finbank_adapters.postgres.pix_claims import PostgresLookupBuckets

    container = build_container(Settings.from_env({"FINBANK_PIX_LOOKUP_BACKEND": "postgres"}))
    container.infra().postgres_pool.override(object())  # no server: the bucket only keeps it
    assert isinstance(await provided(container.pix_claims().lookup_buckets), PostgresLookupBuckets)


async def test_look_ups_through_the_bank_spend_the_postgres_bucket() -> None:
    pytest.importorskip("asyncpg")
    from tests.postgres_support import isolated_schema, require_postgres

    require_postgres()
    settings = Settings.from_env({"FINBANK_PIX_LOOKUP_BACKEND": "postgres"})
    clock = FakeClock()
    async with isolated_schema() as (pool, _):
        container = build_container(settings)
        configure(container, None, clock=clock)
        container.infra().postgres_pool.override(pool)
        async with opened(container) as bank:
            ana = await bank.accounts.open(OpenAccountCommand(owner_id="ana", holder_name="Ana"))
            for n in range(5):  # five misses at 20 tokens empty the individual's 100
                with pytest.raises(PixKeyNotFound):
                    await bank.pix.claims.lookup_key(
                        LookupPixKeyCommand(
                            owner_id="ana", account_id=ana.id, key=f"n{n}@example.com"
                        )
                    )
            with pytest.raises(KeyLookupRateLimited) as refused:
                await bank.pix.claims.lookup_key(
                    LookupPixKeyCommand(owner_id="ana", account_id=ana.id, key="x@example.com")
                )
            assert refused.value.details["retry_after_seconds"] == 30
            rows = await pool.fetch("SELECT bucket, tokens FROM pix_lookup_buckets")
            assert len(rows) == 1  # the bucket lives in PostgreSQL
            assert rows[0]["tokens"] == 0.0
