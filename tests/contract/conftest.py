"""Adapter fixtures for the contract suites.

Each port's fixture is parametrized over its adapters; an adapter joins a
suite by adding its name to ``*_BACKENDS`` and a branch to the factory.
Every test gets fresh state (a new instance, or for a database its own
schema) and a :class:`FakeClock` that the adapter must use for time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import pytest

from finbank_adapters.crypto import EnvelopeCipher, LocalKeyEncryptionKey
from finbank_adapters.memory import (
    FakeClock,
    InMemoryAccountRepository,
    InMemoryEventPublisher,
    InMemoryLedger,
)
from finbank_adapters.memory.users import InMemoryUserStore
from finbank_adapters.postgres import PostgresAccountRepository, PostgresLedger, PostgresUserStore
from finbank_core.accounts.ports import AccountRepository, Ledger
from finbank_core.auth.users import UserStore
from finbank_core.shared.events import EventEnvelope, decode_event
from tests.postgres_support import isolated_schema, require_postgres

#: ``postgres_grouped``: PostgresLedger with group commit at one call in flight, so that
#: concurrent callers' batches are sent together (ledger_create_transfers_grouped)
LEDGER_BACKENDS = ["memory", "postgres", "postgres_grouped"]
POSTGRES_LEDGERS = frozenset({"postgres", "postgres_grouped"})
ACCOUNT_REPOSITORY_BACKENDS = ["memory", "postgres"]
USER_STORE_BACKENDS = ["memory", "postgres"]
EVENT_PUBLISHER_BACKENDS = ["memory", "postgres"]


def postgres_ledger(backend: str, pool: asyncpg.Pool, clock: FakeClock) -> PostgresLedger:
    """The PostgreSQL ledger a ``LEDGER_BACKENDS`` name stands for."""
    if backend == "postgres_grouped":
        return PostgresLedger(pool, clock, group_max_in_flight=1)
    return PostgresLedger(pool, clock)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The test server's DSN, once it is known to be reachable (else skip, or fail in CI)."""
    return require_postgres()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class LedgerHarness:
    """A ledger under test, the clock it obeys and how to read what it recorded."""

    ledger: Ledger
    clock: FakeClock
    #: the events the ledger recorded with its batches (publisher or outbox), in order
    recorded_events: Callable[[], Awaitable[list[EventEnvelope]]]


@pytest.fixture(params=LEDGER_BACKENDS)
async def ledger_harness(
    request: pytest.FixtureRequest, clock: FakeClock
) -> AsyncIterator[LedgerHarness]:
    if request.param == "memory":
        publisher = InMemoryEventPublisher()

        async def recorded() -> list[EventEnvelope]:
            return list(publisher.published)

        yield LedgerHarness(InMemoryLedger(clock, publisher), clock, recorded)
    elif request.param in POSTGRES_LEDGERS:
        async with isolated_schema(request.getfixturevalue("postgres_dsn")) as (pool, _):

            async def from_outbox() -> list[EventEnvelope]:
                rows = await pool.fetch("SELECT envelope FROM outbox ORDER BY id")
                return [decode_event(row["envelope"]) for row in rows]

            yield LedgerHarness(postgres_ledger(request.param, pool, clock), clock, from_outbox)
    else:  # pragma: no cover - each backend adds its branch
        raise AssertionError(request.param)


@pytest.fixture(params=ACCOUNT_REPOSITORY_BACKENDS)
async def account_repository(request: pytest.FixtureRequest) -> AsyncIterator[AccountRepository]:
    if request.param == "memory":
        yield InMemoryAccountRepository()
    elif request.param == "postgres":
        async with isolated_schema(request.getfixturevalue("postgres_dsn")) as (pool, _):
            # as the service builds it: concurrent reads coalesced (the setting's default),
            # so the contract's concurrent callers go through the shared statements
            yield PostgresAccountRepository(pool, read_max_in_flight=1)
    else:  # pragma: no cover
        raise AssertionError(request.param)


#: the stores hold their TOTP secrets sealed, as the container builds them
USER_STORE_CIPHER = EnvelopeCipher(LocalKeyEncryptionKey("contract-test", bytes(range(32))))


@pytest.fixture(params=USER_STORE_BACKENDS)
async def user_store(request: pytest.FixtureRequest) -> AsyncIterator[UserStore]:
    if request.param == "memory":
        yield InMemoryUserStore(USER_STORE_CIPHER)
    elif request.param == "postgres":
        async with isolated_schema(request.getfixturevalue("postgres_dsn")) as (pool, _):
            yield PostgresUserStore(pool, USER_STORE_CIPHER)
    else:  # pragma: no cover
        raise AssertionError(request.param)
