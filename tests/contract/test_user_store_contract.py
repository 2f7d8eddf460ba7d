"""The UserStore contract (self-hosted identity provider), memory and PostgreSQL.

Includes the TOTP single-use compare-and-set under many concurrent callers:
the PostgreSQL pool has several connections, so claims really race.
"""

from __future__ import annotations

import asyncio
import random
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
    assert await user_store.get("sub-1") == msgspec.structs.replace(changed, version=1)


async def test_update_of_unknown_user_is_refused(user_store: UserStore) -> None:
    with pytest.raises(NotFound):
        await user_store.update(user(subject="nobody"))


# -- TOTP single use: the compare-and-set every replica relies on -----------------------

CALLERS = 32


async def test_concurrent_claims_of_one_step_let_exactly_one_through(
    user_store: UserStore,
) -> None:
    await user_store.add(user())
    claims = await asyncio.gather(
        *(user_store.claim_totp_step("sub-1", 100) for _ in range(CALLERS))
    )
    assert claims.count(True) == 1
    stored = await user_store.get("sub-1")
    assert stored is not None
    assert stored.totp_last_step == 100
    # a replay answers like every loser did; an older step too
    assert await user_store.claim_totp_step("sub-1", 100) is False
    assert await user_store.claim_totp_step("sub-1", 99) is False
    assert await user_store.claim_totp_step("sub-1", 101) is True


async def test_concurrent_claims_of_many_steps_spend_each_at_most_once_and_keep_the_latest(
    user_store: UserStore,
) -> None:
    await user_store.add(user())
    steps = [step for step in range(1, 17) for _ in range(3)]
    random.Random(7).shuffle(steps)
    claims = await asyncio.gather(*(user_store.claim_totp_step("sub-1", s) for s in steps))
    won = [step for step, claimed in zip(steps, claims, strict=True) if claimed]
    assert len(won) == len(set(won))  # no step accepted twice
    assert 16 in won  # nothing is later than the latest step, so it always wins once
    stored = await user_store.get("sub-1")
    assert stored is not None
    assert stored.totp_last_step == 16
    assert not any([await user_store.claim_totp_step("sub-1", s) for s in range(1, 17)])


async def test_claims_of_two_users_do_not_interfere(user_store: UserStore) -> None:
    await user_store.add(user())
    await user_store.add(user(subject="sub-2", username="Joao"))
    claims = await asyncio.gather(
        *(user_store.claim_totp_step(s, 5) for s in ("sub-1", "sub-2") for _ in range(CALLERS))
    )
    assert claims[:CALLERS].count(True) == 1
    assert claims[CALLERS:].count(True) == 1


async def test_a_claim_for_an_unknown_user_is_refused(user_store: UserStore) -> None:
    assert await user_store.claim_totp_step("nobody", 1) is False


async def test_an_update_from_a_stale_read_never_moves_the_step_back(
    user_store: UserStore,
) -> None:
    await user_store.add(user())
    stale = await user_store.get("sub-1")
    assert stale is not None
    assert stale.totp_last_step is None
    assert await user_store.claim_totp_step("sub-1", 42) is True
    # e.g. a password rehash on another replica, written from the record it read before
    await user_store.update(msgspec.structs.replace(stale, mfa_enabled=True))
    stored = await user_store.get("sub-1")
    assert stored is not None
    assert stored.mfa_enabled
    assert stored.totp_last_step == 42
    assert await user_store.claim_totp_step("sub-1", 42) is False


# -- whole-record compare-and-set (replace) -----------------------------------------------


async def test_a_user_is_added_at_version_0_whatever_version_it_carries(
    user_store: UserStore,
) -> None:
    await user_store.add(msgspec.structs.replace(user(), version=7))
    stored = await user_store.get("sub-1")
    assert stored is not None
    assert stored.version == 0


async def test_replace_writes_over_the_version_it_names_and_answers_the_stored_record(
    user_store: UserStore,
) -> None:
    await user_store.add(user())
    read = await user_store.get("sub-1")
    assert read is not None
    written = await user_store.replace(msgspec.structs.replace(read, mfa_enabled=True))
    assert written == msgspec.structs.replace(read, mfa_enabled=True, version=1)
    assert await user_store.get("sub-1") == written
    # the same read again is stale now: nothing is written
    assert await user_store.replace(msgspec.structs.replace(read, name="Stale")) is None
    assert await user_store.get("sub-1") == written
    # from the record written, the next one goes through
    again = await user_store.replace(msgspec.structs.replace(written, name="Maria S."))
    assert again is not None
    assert again.version == 2
    assert again.name == "Maria S."
    assert again.mfa_enabled


async def test_an_update_counts_as_a_write_for_replace(user_store: UserStore) -> None:
    await user_store.add(user())
    read = await user_store.get("sub-1")
    assert read is not None
    await user_store.update(msgspec.structs.replace(read, password_hash="$argon2id$new"))
    assert await user_store.replace(msgspec.structs.replace(read, mfa_enabled=True)) is None
    stored = await user_store.get("sub-1")
    assert stored is not None
    assert stored.password_hash == "$argon2id$new"
    assert not stored.mfa_enabled
    assert stored.version == 1


async def test_a_totp_claim_is_not_a_write_and_replace_keeps_the_later_step(
    user_store: UserStore,
) -> None:
    await user_store.add(user())
    read = await user_store.get("sub-1")
    assert read is not None
    assert await user_store.claim_totp_step("sub-1", 42) is True
    written = await user_store.replace(msgspec.structs.replace(read, mfa_enabled=True))
    assert written is not None
    assert written.totp_last_step == 42  # answered as stored, not as given
    assert await user_store.get("sub-1") == written
    assert await user_store.claim_totp_step("sub-1", 42) is False


async def test_replace_of_an_unknown_user_or_a_new_username_is_refused(
    user_store: UserStore,
) -> None:
    with pytest.raises(NotFound):
        await user_store.replace(user(subject="nobody"))
    await user_store.add(user())
    with pytest.raises(UsernameTaken):
        await user_store.replace(user(username="Outra"))
    with pytest.raises(UsernameTaken):
        await user_store.update(user(username="Outra"))
    # the case of the username may change (the key is case-folded)
    assert await user_store.replace(user(username="MARIA")) is not None


async def test_concurrent_replaces_of_one_version_let_exactly_one_through(
    user_store: UserStore,
) -> None:
    await user_store.add(user())
    read = await user_store.get("sub-1")
    assert read is not None
    names = [f"writer {n}" for n in range(CALLERS)]
    written = await asyncio.gather(
        *(user_store.replace(msgspec.structs.replace(read, name=name)) for name in names)
    )
    winners = [w for w in written if w is not None]
    assert len(winners) == 1
    stored = await user_store.get("sub-1")
    assert stored == winners[0]
    assert stored is not None
    assert stored.version == 1
    assert stored.name in names


async def test_concurrent_read_modify_write_loops_lose_no_change(user_store: UserStore) -> None:
    """Each caller adds its own role by read, change, replace, again on a lost race:
    every role is there at the end and the version counts every write."""
    await user_store.add(msgspec.structs.replace(user(), roles=()))

    async def add_role(role: str) -> None:
        while True:
            read = await user_store.get("sub-1")
            assert read is not None
            roles = (*read.roles, role)
            if await user_store.replace(msgspec.structs.replace(read, roles=roles)) is not None:
                return

    roles = [f"role-{n}" for n in range(16)]
    await asyncio.gather(*(add_role(role) for role in roles))
    stored = await user_store.get("sub-1")
    assert stored is not None
    assert sorted(stored.roles) == sorted(roles)
    assert stored.version == len(roles)
