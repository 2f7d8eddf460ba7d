"""The ChallengeStore contract, run against every adapter (memory, Redis).

Time is a FakeClock the store must obey; Redis's own TTL only cleans up.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from finbank_adapters.crypto import EnvelopeCipher, LocalKeyEncryptionKey
from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.auth import InMemoryChallengeStore
from finbank_adapters.redis import RedisChallengeStore
from finbank_core.auth.model import ChallengeType, MfaChallenge, ProviderChallenge
from finbank_core.auth.ports import ChallengeStore
from finbank_core.shared.errors import ServiceUnavailable
from tests.support_redis import open_test_redis

TTL_SECONDS = 180
MAX_ATTEMPTS = 5


@dataclass
class Harness:
    store: ChallengeStore
    clock: FakeClock
    #: every stored value, as the backend holds it (memory: the records, Redis: the hashes)
    raw: Callable[[], Awaitable[str]]
    #: copy the stored record of one challenge id over another's (an attacker with storage access)
    transplant: Callable[[str, str], Awaitable[None]]


#: the cipher the containers give every challenge store (docs/auth.md, "Secrets at rest")
CIPHER = EnvelopeCipher(LocalKeyEncryptionKey("contract-test", bytes(range(32))))


def memory_harness(clock: FakeClock, cipher: EnvelopeCipher = CIPHER) -> Harness:
    # sealed, as the container builds it
    store = InMemoryChallengeStore(clock, cipher)
    records: dict[str, Any] = store._challenges  # the store's own storage, read as an attacker

    async def raw() -> str:
        return repr(records) + repr(store)

    async def transplant(source: str, target: str) -> None:
        records[sha256(target)] = records[sha256(source)]

    return Harness(store, clock, raw, transplant)


@pytest.fixture(params=["memory", "redis"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    clock = FakeClock()
    if request.param == "memory":
        yield memory_harness(clock)
    else:
        async with open_test_redis() as (client, prefix):
            # Sealed, as the container builds it (docs/auth.md, "Secrets at rest").
            cipher = CIPHER

            async def raw() -> str:
                keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
                return repr(keys) + repr([await client.hgetall(key) for key in keys])

            async def transplant(source: str, target: str) -> None:
                fields: dict[Any, Any] = await client.hgetall(f"{prefix}mfa:{sha256(source)}")
                await client.hset(f"{prefix}mfa:{sha256(target)}", mapping=fields)

            yield Harness(
                RedisChallengeStore(client, clock, key_prefix=prefix, cipher=cipher),
                clock,
                raw,
                transplant,
            )


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_challenge(clock: FakeClock, username: str = "maria") -> MfaChallenge:
    return MfaChallenge.issue(
        ProviderChallenge(
            type=ChallengeType.SOFTWARE_TOKEN_MFA,
            session="provider-session-opaque",
            username=username,
            available_types=(ChallengeType.SOFTWARE_TOKEN_MFA,),
        ),
        now=clock.now(),
        ttl_seconds=TTL_SECONDS,
        account=username,
    )


async def test_a_stored_challenge_is_found_by_its_id_with_everything_it_carries(
    harness: Harness,
) -> None:
    challenge = new_challenge(harness.clock)
    await harness.store.put(challenge)
    assert await harness.store.get(challenge.id) == challenge


async def test_challenge_ids_are_random_and_at_least_128_bits() -> None:
    clock = FakeClock()
    ids = {new_challenge(clock).id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) * 6 >= 128 for i in ids)  # base64url: 6 bits per character


async def test_an_unknown_id_finds_nothing(harness: Harness) -> None:
    await harness.store.put(new_challenge(harness.clock))
    assert await harness.store.get("no-such-challenge") is None
    assert await harness.store.begin_attempt("no-such-challenge", MAX_ATTEMPTS) is None
    assert await harness.store.delete("no-such-challenge") is False


async def test_two_challenges_of_the_same_user_do_not_share_state(harness: Harness) -> None:
    first, second = new_challenge(harness.clock), new_challenge(harness.clock)
    await harness.store.put(first)
    await harness.store.put(second)
    await harness.store.begin_attempt(first.id, MAX_ATTEMPTS)
    await harness.store.delete(first.id)
    found = await harness.store.get(second.id)
    assert found is not None
    assert found.attempts == 0


async def test_each_attempt_is_counted(harness: Harness) -> None:
    challenge = new_challenge(harness.clock)
    await harness.store.put(challenge)
    counts = []
    for _ in range(3):
        counted = await harness.store.begin_attempt(challenge.id, MAX_ATTEMPTS)
        assert counted is not None
        counts.append(counted.attempts)
    assert counts == [1, 2, 3]
    found = await harness.store.get(challenge.id)
    assert found is not None
    assert found.attempts == 3


async def test_the_attempt_after_the_last_allowed_one_is_refused_and_the_challenge_is_gone(
    harness: Harness,
) -> None:
    challenge = new_challenge(harness.clock)
    await harness.store.put(challenge)
    for _ in range(MAX_ATTEMPTS):
        assert await harness.store.begin_attempt(challenge.id, MAX_ATTEMPTS) is not None
    assert await harness.store.begin_attempt(challenge.id, MAX_ATTEMPTS) is None
    assert await harness.store.get(challenge.id) is None


async def test_a_spent_challenge_can_still_be_won_once_by_an_attempt_begun_within_the_cap(
    harness: Harness,
) -> None:
    # The attempt past the cap spends the challenge but does not delete it: an answer
    # begun within the cap (right, and still at its provider) wins it with its delete.
    challenge = new_challenge(harness.clock)
    await harness.store.put(challenge)
    for _ in range(MAX_ATTEMPTS):
        assert await harness.store.begin_attempt(challenge.id, MAX_ATTEMPTS) is not None
    for _ in range(3):
        assert await harness.store.begin_attempt(challenge.id, MAX_ATTEMPTS) is None
    assert await harness.store.get(challenge.id) is None
    assert await harness.store.delete(challenge.id) is True
    assert await harness.store.delete(challenge.id) is False
    assert await harness.store.begin_attempt(challenge.id, MAX_ATTEMPTS) is None


async def test_concurrent_attempts_never_exceed_the_cap(harness: Harness) -> None:
    challenge = new_challenge(harness.clock)
    await harness.store.put(challenge)
    results = await asyncio.gather(
        *(harness.store.begin_attempt(challenge.id, MAX_ATTEMPTS) for _ in range(20))
    )
    granted = sorted(r.attempts for r in results if r is not None)
    assert granted == [1, 2, 3, 4, 5]


async def test_a_challenge_expires_on_the_injected_clock(harness: Harness) -> None:
    challenge = new_challenge(harness.clock)
    await harness.store.put(challenge)
    harness.clock.advance(TTL_SECONDS - 1)
    assert await harness.store.get(challenge.id) is not None
    harness.clock.advance(1)
    assert await harness.store.get(challenge.id) is None
    assert await harness.store.begin_attempt(challenge.id, MAX_ATTEMPTS) is None


async def test_deleting_an_expired_challenge_does_not_count_as_consuming_it(
    harness: Harness,
) -> None:
    challenge = new_challenge(harness.clock)
    await harness.store.put(challenge)
    harness.clock.advance(TTL_SECONDS)
    assert await harness.store.delete(challenge.id) is False


async def test_only_one_of_two_concurrent_deletes_consumes_the_challenge(
    harness: Harness,
) -> None:
    challenge = new_challenge(harness.clock)
    await harness.store.put(challenge)
    results = await asyncio.gather(
        harness.store.delete(challenge.id), harness.store.delete(challenge.id)
    )
    assert sorted(results) == [False, True]
    assert await harness.store.get(challenge.id) is None


# -- concurrency: many callers on the same challenge ---------------------------------------

CALLERS = 50


async def test_fifty_concurrent_attempts_get_distinct_counts_up_to_the_cap_then_nothing(
    harness: Harness,
) -> None:
    challenge = new_challenge(harness.clock)
    await harness.store.put(challenge)
    results = await asyncio.gather(
        *(harness.store.begin_attempt(challenge.id, MAX_ATTEMPTS) for _ in range(CALLERS))
    )
    granted = sorted(r.attempts for r in results if r is not None)
    assert granted == list(range(1, MAX_ATTEMPTS + 1))
    assert all(r.id == challenge.id for r in results if r is not None)
    # every later attempt answers like the losers did
    assert await harness.store.begin_attempt(challenge.id, MAX_ATTEMPTS) is None
    assert await harness.store.get(challenge.id) is None


async def test_fifty_concurrent_deletes_consume_the_challenge_exactly_once(
    harness: Harness,
) -> None:
    challenge = new_challenge(harness.clock)
    await harness.store.put(challenge)
    results = await asyncio.gather(*(harness.store.delete(challenge.id) for _ in range(CALLERS)))
    assert results.count(True) == 1
    assert await harness.store.delete(challenge.id) is False


async def test_concurrent_attempts_on_many_challenges_are_counted_per_challenge(
    harness: Harness,
) -> None:
    challenges = [new_challenge(harness.clock) for _ in range(10)]
    await asyncio.gather(*(harness.store.put(c) for c in challenges))
    results = await asyncio.gather(
        *(harness.store.begin_attempt(c.id, MAX_ATTEMPTS) for c in challenges for _ in range(3))
    )
    for i, challenge in enumerate(challenges):
        counts = sorted(r.attempts for r in results[3 * i : 3 * i + 3] if r is not None)
        assert counts == [1, 2, 3], challenge.id


# -- secrets at rest: the record holds the provider's session, sealed on every backend ------


async def test_the_stored_record_shows_neither_the_session_nor_the_username_nor_the_id(
    harness: Harness,
) -> None:
    challenge = new_challenge(harness.clock, username="maria-da-silva")
    await harness.store.put(challenge)
    stored = await harness.raw()
    assert "fbx1." in stored  # an envelope-sealed value (docs/auth.md, "Secrets at rest")
    for secret in ("provider-session-opaque", "maria-da-silva", challenge.id):
        assert secret not in stored
    found = await harness.store.get(challenge.id)
    assert found == challenge


async def test_a_record_copied_to_another_challenge_does_not_open(harness: Harness) -> None:
    victim = new_challenge(harness.clock, username="victim")
    attacker = new_challenge(harness.clock, username="attacker")
    await harness.store.put(victim)
    await harness.store.put(attacker)
    await harness.transplant(victim.id, attacker.id)
    with pytest.raises(ServiceUnavailable):  # SecretUnreadable: fail closed, never the session
        await harness.store.get(attacker.id)
    found = await harness.store.get(victim.id)
    assert found == victim


async def test_the_banks_memory_challenge_store_is_sealed_with_the_banks_cipher() -> None:
    """The containers choose the cipher: the memory profile's store seals like Redis's."""
    from finbank_adapters.containers import build_container, resolve
    from finbank_adapters.settings import Settings

    container = build_container(Settings())
    store = await resolve(container.auth.challenge_store())
    assert isinstance(store, InMemoryChallengeStore)
    clock = await resolve(container.infra.clock())
    challenge = new_challenge(clock, username="maria-da-silva")
    await store.put(challenge)
    stored = repr(store._challenges)
    assert "fbx1." in stored
    for secret in ("provider-session-opaque", "maria-da-silva", challenge.id):
        assert secret not in stored
    assert await store.get(challenge.id) == challenge


async def test_a_sealed_record_does_not_open_in_a_store_without_the_cipher() -> None:
    clock = FakeClock()
    sealed = memory_harness(clock)
    challenge = new_challenge(clock)
    await sealed.store.put(challenge)
    bare = InMemoryChallengeStore(clock)  # no cipher: a test's store, records as they are
    bare._challenges.update(sealed.store._challenges)  # type: ignore[attr-defined]
    with pytest.raises(ServiceUnavailable):
        await bare.get(challenge.id)
    await bare.put(new_challenge(clock, username="plain"))
    assert "plain" in repr(bare._challenges)  # nothing sealed without a cipher
