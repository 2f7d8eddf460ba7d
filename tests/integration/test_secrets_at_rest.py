"""Secrets at rest on the real backends: PostgreSQL users, Redis challenges, AWS KMS (moto).

What is checked: the stored bytes hold no secret; a value moved to another
row does not open; old values open after a key rotation; the re-wrap
command re-seals old and plaintext (pre-0016) rows, concurrently with writers
and with another re-wrap, losing no write; a tampered record is refused;
KMS data keys open only with their key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from finbank_adapters.crypto import EnvelopeCipher, LocalKeyEncryptionKey, SecretUnreadable
from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.users import InMemoryUserStore
from finbank_adapters.postgres import PostgresUserStore
from finbank_adapters.postgres.rewrap import rewrap_user_secrets
from finbank_adapters.redis import RedisChallengeStore
from finbank_core.auth.model import ChallengeType, MfaChallenge, ProviderChallenge
from finbank_core.auth.users import UserRecord
from finbank_core.shared.errors import ServiceUnavailable
from tests.integration.aws_fixtures import aws_endpoint
from tests.postgres_support import isolated_schema, require_postgres
from tests.support_redis import open_test_redis

__all__ = ["aws_endpoint"]  # the fixture is used by name

V1 = LocalKeyEncryptionKey("v1", bytes(range(32)))
V2 = LocalKeyEncryptionKey("v2", bytes(range(32, 64)))


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


async def test_postgres_keeps_only_sealed_secrets_and_the_key_id(pool: Any) -> None:
    store = PostgresUserStore(pool, EnvelopeCipher(V1))
    await store.add(user("s1", secret_of(1), pending=secret_of(2)))
    row = await pool.fetchrow(
        "SELECT totp_secret, pending_totp_secret, secrets_key_id FROM auth_users"
    )
    assert row["totp_secret"].startswith("fbx1.")
    assert secret_of(1) not in row["totp_secret"]
    assert secret_of(2) not in row["pending_totp_secret"]
    assert row["secrets_key_id"] == "v1"
    found = await store.get("s1")
    assert found is not None
    assert (found.totp_secret, found.pending_totp_secret) == (secret_of(1), secret_of(2))
    assert secret_of(1) not in repr(found)


async def test_a_secret_copied_to_another_user_does_not_open(pool: Any) -> None:
    store = PostgresUserStore(pool, EnvelopeCipher(V1))
    await store.add(user("victim", secret_of(1)))
    await store.add(user("attacker", secret_of(2)))
    await pool.execute(
        "UPDATE auth_users SET totp_secret = (SELECT totp_secret FROM auth_users"
        " WHERE subject = 'victim') WHERE subject = 'attacker'"
    )
    with pytest.raises(SecretUnreadable):
        await store.get("attacker")


async def test_a_tampered_secret_is_refused(pool: Any) -> None:
    store = PostgresUserStore(pool, EnvelopeCipher(V1))
    await store.add(user("s1", secret_of(1)))
    sealed: str = await pool.fetchval("SELECT totp_secret FROM auth_users")
    head, tail = sealed[:-4], sealed[-4:]
    tampered = head + ("A" if tail[0] != "A" else "B") + tail[1:]
    await pool.execute("UPDATE auth_users SET totp_secret = $1", tampered)
    with pytest.raises(SecretUnreadable):
        await store.get("s1")


async def test_rotation_then_rewrap_reseals_old_and_plaintext_rows(pool: Any) -> None:
    old_store = PostgresUserStore(pool, EnvelopeCipher(V1))
    for i in range(5):
        await old_store.add(user(f"old-{i}", secret_of(i)))
    # Two rows written before migration 0016: plaintext, no key id.
    for i in (100, 101):
        await PostgresUserStore(pool).add(user(f"legacy-{i}", secret_of(i)))
    assert await pool.fetchval("SELECT count(*) FROM auth_users WHERE secrets_key_id IS NULL") == 2

    rotated = EnvelopeCipher(V2, [V1])
    store = PostgresUserStore(pool, rotated)
    for i in range(5):
        found = await store.get(f"old-{i}")
        assert found is not None
        assert found.totp_secret == secret_of(i)
    legacy = await store.get("legacy-100")
    assert legacy is not None
    assert legacy.totp_secret == secret_of(100)

    report = await rewrap_user_secrets(pool, rotated, batch_size=3)
    assert (report.rewrapped, report.skipped) == (7, 0)
    assert await pool.fetchval("SELECT count(*) FROM auth_users WHERE secrets_key_id <> 'v2'") == 0
    raw = await pool.fetch("SELECT totp_secret FROM auth_users")
    assert all(r["totp_secret"].startswith("fbx1.") for r in raw)
    assert not any(secret_of(i) in r["totp_secret"] for r in raw for i in (100, 101))
    # v1 retired: everything still opens with v2 alone.
    retired = PostgresUserStore(pool, EnvelopeCipher(V2))
    for subject, i in [*((f"old-{i}", i) for i in range(5)), ("legacy-101", 101)]:
        found = await retired.get(subject)
        assert found is not None
        assert found.totp_secret == secret_of(i)
    again = await rewrap_user_secrets(pool, rotated)
    assert (again.rewrapped, again.skipped) == (0, 0)


async def test_rewrap_beside_writers_and_another_rewrap_loses_nothing(pool: Any) -> None:
    old_store = PostgresUserStore(pool, EnvelopeCipher(V1))
    subjects = [f"u-{i:02d}" for i in range(30)]
    for i, subject in enumerate(subjects):
        await old_store.add(user(subject, secret_of(i)))
    rotated = EnvelopeCipher(V2, [V1])
    store = PostgresUserStore(pool, rotated)

    async def enrol(i: int, subject: str) -> None:
        current = await store.get(subject)
        assert current is not None
        await store.update(msgspec.structs.replace(current, pending_totp_secret=secret_of(500 + i)))

    results = await asyncio.gather(
        rewrap_user_secrets(pool, rotated, batch_size=4),
        rewrap_user_secrets(pool, rotated, batch_size=7),
        *(enrol(i, s) for i, s in enumerate(subjects) if i % 2 == 0),
    )
    reports = results[:2]
    assert all(r.rewrapped + r.skipped <= len(subjects) for r in reports)  # type: ignore[union-attr]
    retired = PostgresUserStore(pool, EnvelopeCipher(V2))
    for i, subject in enumerate(subjects):
        found = await retired.get(subject)
        assert found is not None
        assert found.totp_secret == secret_of(i)
        assert found.pending_totp_secret == (secret_of(500 + i) if i % 2 == 0 else None)
    assert await pool.fetchval("SELECT count(*) FROM auth_users WHERE secrets_key_id <> 'v2'") == 0


async def test_the_memory_store_keeps_secrets_sealed_too() -> None:
    store = InMemoryUserStore(EnvelopeCipher(V1))
    await store.add(user("s1", secret_of(1)))
    assert secret_of(1) not in repr(vars(store))
    found = await store.get("s1")
    assert found is not None
    assert found.totp_secret == secret_of(1)


async def test_redis_holds_the_challenge_sealed_and_refuses_a_tampered_one() -> None:
    clock = FakeClock()
    session = "provider-session-that-is-a-bearer-secret"
    async with open_test_redis() as (client, prefix):
        store = RedisChallengeStore(client, clock, key_prefix=prefix, cipher=EnvelopeCipher(V1))
        challenge = MfaChallenge.issue(
            ProviderChallenge(
                type=ChallengeType.SOFTWARE_TOKEN_MFA, session=session, username="maria"
            ),
            now=clock.now(),
            ttl_seconds=180,
        )
        await store.put(challenge)
        [key] = [k async for k in client.scan_iter(match=f"{prefix}*")]
        stored = await client.hget(key, "challenge")
        assert isinstance(stored, bytes)
        assert stored.startswith(b"fbx1.")
        assert session.encode() not in stored
        assert b"maria" not in stored
        assert await store.get(challenge.id) == challenge
        counted = await store.begin_attempt(challenge.id, 5)
        assert counted is not None
        assert counted.session == session
        await client.hset(key, "challenge", stored[:-3] + b"AAA")
        with pytest.raises(SecretUnreadable):
            await store.get(challenge.id)


async def test_kms_wraps_data_keys_that_open_only_with_their_key(aws_endpoint: str) -> None:
    import aioboto3

    from finbank_adapters.crypto.kms import KmsKeyEncryptionKey

    async with aioboto3.Session().client(
        "kms", region_name="sa-east-1", endpoint_url=aws_endpoint
    ) as kms:
        first = (await kms.create_key(Description="finbank test v1"))["KeyMetadata"]["KeyId"]
        second = (await kms.create_key(Description="finbank test v2"))["KeyMetadata"]["KeyId"]
        old = EnvelopeCipher(KmsKeyEncryptionKey(kms, first))
        sealed = await old.seal(secret_of(1), "ctx")
        assert secret_of(1) not in sealed
        assert await old.open(sealed, "ctx") == secret_of(1)

        rotated = EnvelopeCipher(
            KmsKeyEncryptionKey(kms, second), [KmsKeyEncryptionKey(kms, first)]
        )
        assert await rotated.open(sealed, "ctx") == secret_of(1)
        assert rotated.needs_rewrap(sealed)
        resealed = await rotated.seal(secret_of(1), "ctx")
        assert await EnvelopeCipher(KmsKeyEncryptionKey(kms, second)).open(resealed, "ctx") == (
            secret_of(1)
        )
        # The old value names the first key: a cipher without it refuses it.
        with pytest.raises(SecretUnreadable):
            await EnvelopeCipher(KmsKeyEncryptionKey(kms, second)).open(sealed, "ctx")
        # A cipher that claims the first key's id but is asked to unwrap with the second.
        # Real KMS answers IncorrectKeyException (SecretUnreadable); moto AccessDeniedException
        # (ServiceUnavailable). Either way it fails closed: nothing opens.
        impostor = KmsKeyEncryptionKey(kms, second)
        with pytest.raises(ServiceUnavailable):
            await impostor.unwrap(sealed_data_key(sealed))


def sealed_data_key(sealed: str) -> bytes:
    import base64

    part = sealed.split(".")[2]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def test_the_rewrap_command_reseals_a_local_deployment(pool: Any) -> None:
    """``finbank secrets rewrap`` as an operator runs it after a rotation."""
    import base64
    import os
    import subprocess
    import sys

    from tests.postgres_support import POSTGRES_DSN

    await PostgresUserStore(pool).add(user("legacy", secret_of(1)))  # before migration 0016
    await PostgresUserStore(pool, EnvelopeCipher(V1)).add(user("sealed-v1", secret_of(2)))
    schema = await pool.fetchval("SELECT current_schema()")
    keys = ",".join(
        f"{k.key_id}:{base64.b64encode(raw).decode()}"
        for k, raw in ((V2, bytes(range(32, 64))), (V1, bytes(range(32))))
    )
    env = {
        **os.environ,
        "FINBANK_PROFILE": "local",
        "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
        "FINBANK_JWT_SECRET": "j" * 40,
        "FINBANK_AUTH_SECRETS_KEYS": keys,
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "finbank_cli", "secrets", "rewrap"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "re-sealed 2 row(s) with key 'v2'" in done.stdout
    assert secret_of(1) not in done.stdout + done.stderr
    retired = PostgresUserStore(pool, EnvelopeCipher(V2))
    for subject, i in (("legacy", 1), ("sealed-v1", 2)):
        found = await retired.get(subject)
        assert found is not None
        assert found.totp_secret == secret_of(i)
