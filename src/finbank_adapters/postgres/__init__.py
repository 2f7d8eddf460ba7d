"""PostgreSQL adapters on asyncpg: ledger, accounts, users, outbox, revocations.

Every adapter takes an already-open ``asyncpg.Pool`` (the container's
``postgres_pool`` resource) and never connects by itself. The schema comes
from :mod:`finbank_adapters.postgres.migrations`.
"""

from finbank_adapters.postgres.accounts import PostgresAccountRepository
from finbank_adapters.postgres.ledger import PostgresLedger
from finbank_adapters.postgres.outbox import PostgresEventPublisher, PostgresOutbox
from finbank_adapters.postgres.revocations import PostgresTokenDenylist
from finbank_adapters.postgres.users import PostgresUserStore

__all__ = [
    "PostgresAccountRepository",
    "PostgresEventPublisher",
    "PostgresLedger",
    "PostgresOutbox",
    "PostgresTokenDenylist",
    "PostgresUserStore",
]
