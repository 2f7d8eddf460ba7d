"""The UserStore contract (self-hosted identity provider)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from finbank_core.auth.errors import UsernameTaken
from finbank_core.auth.users import UserRecord, UserStore
from finbank_core.shared.errors import NotFound


def user(subject: str = "sub-1", username: str = "Maria") -> UserRecord:
    return UserRecord(
        subject=subject,
        username=username,
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        created_at=datetime(2026, 1, 5, tzinfo=UTC),
        email="maria@example.com",
        roles=("customer",),
    )


async def test_user_is_found_by_subject_and_by_username_in_any_case(
    user_store: UserStore,
) -> None:
    stored = user()
    await user_store.add(stored)
    assert await user_store.get("sub-1") == stored
    assert await user_store.get_by_username("maria") == stored
    assert await user_store.get_by_username("MARIA") == stored
    assert await user_store.get_by_username("joao") is None
    assert await user_store.get("sub-2") is None


async def test_username_is_unique_regardless_of_case(user_store: UserStore) -> None:
    await user_store.add(user())
    with pytest.raises(UsernameTaken):
        await user_store.add(user(subject="sub-2", username="MARIA"))


async def test_update_replaces_the_record(user_store: UserStore) -> None:
    await user_store.add(user())
    changed = msgspec.structs.replace(user(), mfa_enabled=True, totp_secret="JBSWY3DPEHPK3PXP")
    await user_store.update(changed)
    assert await user_store.get("sub-1") == changed


async def test_update_of_unknown_user_is_refused(user_store: UserStore) -> None:
    with pytest.raises(NotFound):
        await user_store.update(user(subject="nobody"))
