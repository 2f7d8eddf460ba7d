"""Builders for the PostgreSQL adapters, used by ``finbank_adapters.containers`` only.

asyncpg is imported lazily so the memory profile runs without the
``postgres`` extra; the pool resource yields ``None`` when no port of the
configured profile is on PostgreSQL (``init_resources`` opens every resource).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from finbank_adapters.settings import Settings
from finbank_core.shared.clock import Clock

#: the ports whose backend can be "postgres"
POSTGRES_PORTS = ("ledger", "accounts", "users", "events", "pix", "pix_lookup")


def uses_postgres(settings: Settings) -> bool:
    backends = settings.backends
    on_postgres = any(getattr(backends, port) == "postgres" for port in POSTGRES_PORTS)
    return on_postgres or backends.denylist == "redis_postgres"


async def postgres_pool(settings: Settings) -> AsyncIterator[Any]:
    """The shared asyncpg pool (``settings.postgres.dsn``), closed on shutdown."""
    if not uses_postgres(settings):
        yield None
        return
    from finbank_adapters.postgres.pool import create_pool

    pool = await create_pool(
        settings.postgres.dsn,
        min_size=settings.postgres.pool_min,
        max_size=settings.postgres.pool_max,
    )
    try:
        yield pool
    finally:
        await pool.close()


async def postgres_inbox_pool(settings: Settings) -> AsyncIterator[Any]:
    """The consumers' inbox pool: its own, not the shared one, closed on shutdown.

    An inbox holds a connection in an open transaction while the event's effect
    runs, and the effect (a use case) takes its connections from the shared
    pool. On one pool, a fetched batch spanning as many partitions as the pool
    has connections left every connection held by an inbox transaction and every
    effect waiting for one, for good: the settlement worker of the default pool
    (10) stopped for good on the 12 partitions the deployment plans. On its own pool the
    inbox only ever waits for other inbox transactions, each of which ends when
    its effect, served by the shared pool, does. Its size (the shared pool's
    maximum) bounds the partitions handled at once.
    """
    from finbank_adapters.postgres.pool import create_pool

    pool = await create_pool(settings.postgres.dsn, min_size=1, max_size=settings.postgres.pool_max)
    try:
        yield pool
    finally:
        await pool.close()


def postgres_ledger(pool: Any, clock: Clock, settings: Settings | None = None) -> Any:
    """The PostgreSQL ledger, with group commit as ``settings.postgres`` sets it."""
    from finbank_adapters.postgres import PostgresLedger

    if settings is None:
        return PostgresLedger(pool, clock)
    return PostgresLedger(
        pool,
        clock,
        group_max_in_flight=settings.postgres.ledger_group_max_in_flight,
        group_max_transfers=settings.postgres.ledger_group_max_transfers,
        group_split=settings.postgres.ledger_group_split,
    )


def checked_transfers(ledger: Any, accounts: Any, settings: Settings) -> Any:
    """The ``CheckedTransfers`` port of ``InternalTransfer``: fused in the ledger's call
    (one round trip, ``PostgresCheckedTransfers``) when the ledger and the accounts are
    both PostgreSQL adapters on the same pool (one database), else composed of the two
    ports (``ComposedCheckedTransfers``: memory, DynamoDB, mixed backends, or a port
    replaced by something else, as a test may)."""
    from finbank_core.accounts.access import ComposedCheckedTransfers

    backends = settings.backends
    if backends.ledger != "postgres" or backends.accounts != "postgres":
        return ComposedCheckedTransfers(accounts, ledger)
    from finbank_adapters.postgres import PostgresAccountRepository, PostgresLedger
    from finbank_adapters.postgres.ledger import PostgresCheckedTransfers

    if (
        isinstance(ledger, PostgresLedger)
        and isinstance(accounts, PostgresAccountRepository)
        and ledger._pool is accounts._pool
    ):
        return PostgresCheckedTransfers(ledger, accounts)
    return ComposedCheckedTransfers(accounts, ledger)


def postgres_account_repository(pool: Any, settings: Settings | None = None) -> Any:
    """The PostgreSQL account repository, its reads coalesced as ``settings.postgres`` sets."""
    from finbank_adapters.postgres import PostgresAccountRepository

    if settings is None:
        return PostgresAccountRepository(pool)
    return PostgresAccountRepository(
        pool, read_max_in_flight=settings.postgres.accounts_read_max_in_flight
    )


def postgres_user_store(pool: Any) -> Any:
    from finbank_adapters.postgres import PostgresUserStore

    return PostgresUserStore(pool)


def postgres_event_publisher(pool: Any) -> Any:
    from finbank_adapters.postgres import PostgresEventPublisher

    return PostgresEventPublisher(pool)


def postgres_pix_payment_repository(pool: Any) -> Any:
    from finbank_adapters.postgres.pix_payments import PostgresPixPaymentRepository

    return PostgresPixPaymentRepository(pool)


def postgres_charge_repository(pool: Any) -> Any:
    from finbank_adapters.postgres.pix_records import PostgresChargeRepository

    return PostgresChargeRepository(pool)


def postgres_account_limits_store(pool: Any) -> Any:
    from finbank_adapters.postgres.pix_records import PostgresAccountLimitsStore

    return PostgresAccountLimitsStore(pool)


def postgres_device_registry(pool: Any) -> Any:
    from finbank_adapters.postgres.pix_records import PostgresDeviceRegistry

    return PostgresDeviceRegistry(pool)


def postgres_request_claims(pool: Any) -> Any:
    from finbank_adapters.postgres.pix_request_claims import PostgresRequestClaims

    return PostgresRequestClaims(pool)


def postgres_key_directory(pool: Any, seed: list[Any]) -> Any:
    from finbank_adapters.postgres.pix_directory import PostgresKeyDirectory

    return PostgresKeyDirectory(pool, seed=seed)
