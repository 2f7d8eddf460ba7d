"""Creating the asyncpg pool the PostgreSQL adapters share.

The container opens it in the app lifespan (never at import) and closes it on
shutdown. asyncpg's default release resets every connection with one more
round trip (``RESET ALL``, ``UNLISTEN *``, advisory unlocks...); the adapters
here set no session state, listen to nothing and hold only
transaction-scoped advisory locks (the migration runner, which holds a
session lock, releases it itself), so release only rolls back a transaction
left open, e.g. by a cancelled task.

JIT compilation is off for these sessions (``jit=off``, overridable through
``server_settings``): every statement here is short OLTP work, and once a
table grows past the planner's ``jit_above_cost`` (the outbox with a backlog
of ~100k events) the compilation alone took 25 ms of a 35 ms relay claim.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from finbank_adapters.postgres.errors import translated

#: session settings of every pool, before the caller's own
DEFAULT_SERVER_SETTINGS: Mapping[str, str] = {"jit": "off"}


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
            server_settings={**DEFAULT_SERVER_SETTINGS, **(server_settings or {})},
        )
