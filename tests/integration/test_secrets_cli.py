"""``finbank secrets status`` and ``finbank secrets rewrap`` on PostgreSQL, as an operator runs
them after a key rotation (docs/operations.md, "Rotating the key of auth secrets")."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from finbank_adapters.crypto import EnvelopeCipher, LocalKeyEncryptionKey
from finbank_adapters.postgres import PostgresUserStore
from finbank_adapters.postgres.rewrap import secrets_status
from finbank_core.auth.users import UserRecord
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres

V1_RAW, V2_RAW = bytes(range(32)), bytes(range(32, 64))
V1, V2 = LocalKeyEncryptionKey("v1", V1_RAW), LocalKeyEncryptionKey("v2", V2_RAW)


def user(subject: str, secret: str | None = None, pending: str | None = None) -> UserRecord:
    return UserRecord(
        subject=subject,
        username=f"user-{subject}",
        password_hash="$argon2id$not-a-real-hash",
        created_at=datetime(2026, 1, 5, tzinfo=UTC),
        totp_secret=secret,
        pending_totp_secret=pending,
        mfa_enabled=secret is not None,
    )


def secret_of(i: int) -> str:
    return f"SECRET{i:04d}ABCDEFGHIJ"


@pytest.fixture
async def pool() -> AsyncIterator[Any]:
    async with isolated_schema(require_postgres()) as (pool, _):
        yield pool


async def fill(pool: Any) -> None:
    """2 plaintext rows (before 0016), 3 sealed with v1, 1 with v2, 1 user without MFA."""
    for i in (1, 2):
        await PostgresUserStore(pool).add(user(f"legacy-{i}", secret_of(i)))
    for i in (3, 4, 5):
        await PostgresUserStore(pool, EnvelopeCipher(V1)).add(user(f"v1-{i}", secret_of(i)))
    await PostgresUserStore(pool, EnvelopeCipher(V2)).add(
        user("v2-6", secret_of(6), pending=secret_of(7))
    )
    await PostgresUserStore(pool, EnvelopeCipher(V2)).add(user("no-mfa"))


async def finbank(pool: Any, *args: str) -> subprocess.CompletedProcess[str]:
    schema = await pool.fetchval("SELECT current_schema()")
    keys = ",".join(
        f"{key_id}:{base64.b64encode(raw).decode()}"
        for key_id, raw in (("v2", V2_RAW), ("v1", V1_RAW))
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FINBANK_")},
        "FINBANK_PROFILE": "local",
        "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
        "FINBANK_AUTH_SECRETS_KEYS": keys,  # v2 seals, v1 only opens; no JWT secret needed
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "finbank_cli", "secrets", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_status_counts_rows_per_key_and_plaintext_ones(pool: Any) -> None:
    await fill(pool)
    status = await secrets_status(pool, EnvelopeCipher(V2, [V1]))
    assert status.current_key_id == "v2"
    assert status.sealed_by_key == {"v1": 3, "v2": 1}
    assert status.plaintext == 2
    assert status.pending == 5
    # under v1 as the current key, the v2 row is the one to re-seal
    assert (await secrets_status(pool, EnvelopeCipher(V1, [V2]))).pending == 3


async def test_status_then_rewrap_then_status_from_the_command_line(pool: Any) -> None:
    await fill(pool)
    before = await finbank(pool, "status")
    assert before.returncode == 0, before.stderr
    assert before.stdout.splitlines() == [
        "current key: 'v2'",
        "sealed with 'v2' (current): 1 row(s)",
        "sealed with 'v1': 3 row(s)",
        "plaintext (before migration 0016): 2 row(s)",
        "5 row(s) to re-seal: run `finbank secrets rewrap`",
    ]
    strict = await finbank(pool, "status", "--require-current")
    assert strict.returncode == 1, strict.stderr

    rewrap = await finbank(pool, "rewrap")
    assert rewrap.returncode == 0, rewrap.stderr
    assert "re-sealed 5 row(s) with key 'v2'" in rewrap.stdout

    after = await finbank(pool, "status", "--require-current")
    assert after.returncode == 0, after.stderr
    assert after.stdout.splitlines() == [
        "current key: 'v2'",
        "sealed with 'v2' (current): 6 row(s)",
        "plaintext (before migration 0016): 0 row(s)",
        "every secret is sealed with the current key",
    ]
    for done in (before, strict, rewrap, after):
        assert not any(secret_of(i) in done.stdout + done.stderr for i in range(1, 8))
    # v1 retired: every secret opens with v2 alone
    retired = PostgresUserStore(pool, EnvelopeCipher(V2))
    for subject, i in (("legacy-1", 1), ("v1-4", 4), ("v2-6", 6)):
        found = await retired.get(subject)
        assert found is not None
        assert found.totp_secret == secret_of(i)


async def test_a_secret_sealed_with_a_key_no_longer_configured_is_counted_not_opened(
    pool: Any,
) -> None:
    old = LocalKeyEncryptionKey("v0", bytes(range(64, 96)))
    await PostgresUserStore(pool, EnvelopeCipher(old)).add(user("v0-1", secret_of(1)))
    done = await finbank(pool, "status", "--require-current")
    assert done.returncode == 1, done.stderr
    assert "sealed with 'v0': 1 row(s)" in done.stdout
