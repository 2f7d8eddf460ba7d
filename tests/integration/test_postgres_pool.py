"""The adapters' pool: session settings every finbank connection gets."""

from __future__ import annotations

import pytest

from finbank_adapters.postgres.pool import create_pool
from tests.postgres_support import require_postgres

pytestmark = pytest.mark.services


async def test_jit_is_off_unless_the_caller_turns_it_back_on() -> None:
    dsn = require_postgres()
    pool = await create_pool(dsn, max_size=1)
    try:
        assert await pool.fetchval("SHOW jit") == "off"
    finally:
        await pool.close()
    pool = await create_pool(dsn, max_size=1, server_settings={"jit": "on"})
    try:
        assert await pool.fetchval("SHOW jit") == "on"
    finally:
        await pool.close()
