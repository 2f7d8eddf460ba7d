"""Which token denylist each profile gets, and that the durable one needs both its stores."""

from __future__ import annotations

import pytest

from finbank_adapters import auth_wiring, postgres_wiring
from finbank_adapters.containers import build_container, resolve
from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.auth import InMemoryTokenDenylist
from finbank_adapters.settings import Backends, DenylistBackend, Settings, SettingsError


@pytest.mark.parametrize("profile", ["local", "aws"])
def test_the_local_and_aws_profiles_keep_revocations_in_postgresql_behind_redis(
    profile: str,
) -> None:
    settings = Settings.from_env({"FINBANK_PROFILE": profile, "FINBANK_JWT_SECRET": "x" * 32})
    assert settings.backends.denylist == "redis_postgres"
    assert settings.uses_redis()
    assert postgres_wiring.uses_postgres(settings)


def test_the_durable_denylist_alone_opens_both_redis_and_postgresql() -> None:
    settings = Settings(backends=Backends(denylist=DenylistBackend.REDIS_POSTGRES))
    assert settings.uses_redis()
    assert postgres_wiring.uses_postgres(settings)


def test_the_durable_denylist_refuses_to_start_without_postgresql() -> None:
    with pytest.raises(SettingsError, match="PostgreSQL and Redis"):
        auth_wiring.cached_token_denylist(None, object(), FakeClock(), Settings())


async def test_the_memory_profile_keeps_the_in_memory_denylist() -> None:
    container = build_container(Settings())
    assert isinstance(await resolve(container.auth.token_denylist()), InMemoryTokenDenylist)
    assert not Settings().uses_redis()
