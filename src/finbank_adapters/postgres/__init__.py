"""PostgreSQL adapters on asyncpg: ledger, accounts, users, outbox, revocations.

Every adapter takes an already-open ``asyncpg.Pool`` (the container's
``postgres_pool`` resource) and never connects by itself. The schema comes
from :mod:`finbank_adapters.postgres.migrations`.
"""

from finbank_adapters._extras import require_extra

require_extra("finbank_adapters.postgres", "postgres", ["asyncpg"])

from finbank_adapters.postgres.accounts import PostgresAccountRepository  # noqa: E402
from finbank_adapters.postgres.ledger import PostgresLedger  # noqa: E402
from finbank_adapters.postgres.outbox import PostgresEventPublisher, PostgresOutbox  # noqa: E402
from finbank_adapters.postgres.revocations import PostgresTokenDenylist  # noqa: E402
from finbank_adapters.postgres.users import PostgresUserStore  # noqa: E402

__all__ = [
    "PostgresAccountRepository",
    "PostgresEventPublisher",
    "PostgresLedger",
    "PostgresOutbox",
    "PostgresTokenDenylist",
    "PostgresUserStore",
]
