"""Creating the asyncpg pool the PostgreSQL adapters share.

The container opens it in the app lifespan (never at import) and closes it on
shutdown. asyncpg's default release resets every connection with one more
round trip (``RESET ALL``, ``UNLISTEN *``, advisory unlocks...); the adapters
here set no session state, listen to nothing and hold only
transaction-scoped advisory locks (the migration runner, which holds a
session lock, releases it itself), so release only rolls back a transaction
left open, e.g. by a cancelled task.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from finbank_adapters.postgres.errors import translated


async def _rollback_if_open(conn: asyncpg.Connection) -> None:
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    server_settings: Mapping[str, str] | None = None,
) -> asyncpg.Pool:
    """Open a pool; raises ``ServiceUnavailable`` when the server cannot be reached."""
    with translated():
        return await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            reset=_rollback_if_open,
            server_settings=dict(server_settings or {}),
        )
