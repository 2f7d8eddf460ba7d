"""The self-hosted provider's writes of a user never undo one another, on every user store.

Every write (password change, login rehash, TOTP enrolment and removal) reads
the user, applies its change and writes with the store's compare-and-set
(``UserStore.replace``), reading again when another write came in between.
Before, each wrote back the whole record it had read: a write landing in that
window (another request, another replica) was undone, e.g. removing the
authenticator brought back the password the user had just changed.

``Interloper`` puts another process's write exactly in that window: just
before the provider's own write reaches the store. The last test races real
requests on one user, on every store (PostgreSQL: on a pool of several
connections).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import argon2
import msgspec
import pyotp
import pytest

from finbank_adapters.local_auth import LocalIdentityProvider, LocalTokenIssuer
from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.auth import InMemoryRefreshTokenStore, InMemoryTokenDenylist
from finbank_core.auth.errors import InvalidCredentials, InvalidToken
from finbank_core.auth.model import ProviderChallenge, SignUpCommand, TokenSet, TotpSetup
from finbank_core.auth.refresh_tokens import RotationOutcome
from finbank_core.auth.users import UserRecord, UserStore
from finbank_core.shared.errors import Conflict, InvalidInput, ServiceUnavailable

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase 42"
FAST_ARGON2 = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Interloper:
    """A user store that runs ``write`` (another writer's change, straight on the
    store) once, just before the first write it is asked for goes through."""

    def __init__(self, inner: UserStore) -> None:
        self._inner = inner
        self.write: Callable[[UserStore], Awaitable[None]] | None = None
        self.replaces_lost = 0

    async def _interlope(self) -> None:
        write, self.write = self.write, None
        if write is not None:
            await write(self._inner)

    async def add(self, user: UserRecord) -> None:
        await self._inner.add(user)

    async def get_by_username(self, username: str) -> UserRecord | None:
        return await self._inner.get_by_username(username)

    async def get(self, subject: str) -> UserRecord | None:
        return await self._inner.get(subject)

    async def update(self, user: UserRecord) -> None:
        await self._interlope()
        await self._inner.update(user)

    async def replace(self, user: UserRecord) -> UserRecord | None:
        await self._interlope()
        stored = await self._inner.replace(user)
        self.replaces_lost += stored is None
        return stored

    async def claim_totp_step(self, subject: str, step: int) -> bool:
        return await self._inner.claim_totp_step(subject, step)


class HeldFamilies(InMemoryRefreshTokenStore):
    """Refresh families whose next start first lets ``before_start`` run (another
    request landing between a login's password check and its new session)."""

    before_start: Callable[[], Awaitable[None]] | None = None
    #: revoke_subject raises (the store went away between a password write and its
    #: revocations)
    revocations_fail = False

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        #: every family started: its id and its first refresh token's id
        self.started: list[tuple[str, str]] = []

    async def start_family(
        self, family_id: str, subject: str, jti: str, expires_at: datetime
    ) -> None:
        before, self.before_start = self.before_start, None
        if before is not None:
            await before()
        await super().start_family(family_id, subject, jti, expires_at)
        self.started.append((family_id, jti))

    async def revoke_subject(self, subject: str) -> tuple[str, ...]:
        if self.revocations_fail:
            raise ServiceUnavailable("the refresh-token store does not answer")
        return await super().revoke_subject(subject)

    async def none_alive(self) -> bool:
        """No family started so far can be refreshed."""
        outcomes = [await self.rotate(f, jti, "next") for f, jti in self.started]
        return all(outcome is RotationOutcome.REVOKED for outcome in outcomes)


class World:
    def __init__(self, store: UserStore) -> None:
        self.clock = FakeClock(datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC))
        self.store = Interloper(store)
        self.families = HeldFamilies(self.clock)
        self.denylist = InMemoryTokenDenylist(self.clock)
        self.issuer = LocalTokenIssuer(
            secret=b"0123456789abcdef0123456789abcdef-test-only",
            issuer="finbank-test",
            audience="finbank",
            clock=self.clock,
        )
        self.provider = LocalIdentityProvider(
            self.store,
            self.issuer,
            refresh_tokens=self.families,
            denylist=self.denylist,
            hasher=FAST_ARGON2,
        )

    async def user(self) -> tuple[str, TokenSet]:
        signed = await self.provider.sign_up(SignUpCommand(username="maria", password=PASSWORD))
        tokens = await self.provider.login("maria", PASSWORD)
        assert isinstance(tokens, TokenSet)
        return signed.subject, tokens

    async def stored(self, subject: str) -> UserRecord:
        user = await self.store.get(subject)
        assert user is not None
        return user

    async def enrol(self, tokens: TokenSet) -> pyotp.TOTP:
        setup = await self.provider.begin_totp_setup(tokens.access_token)
        totp = pyotp.TOTP(setup.secret)
        await self.provider.verify_totp_setup(tokens.access_token, totp.at(self.clock.now()))
        self.clock.advance(30)
        return totp


@pytest.fixture
def world(user_store: UserStore) -> World:
    return World(user_store)


def password_changed_to(new_hash: str) -> Callable[[UserStore], Awaitable[None]]:
    async def write(store: UserStore) -> None:
        user = await store.get_by_username("maria")
        assert user is not None
        await store.update(msgspec.structs.replace(user, password_hash=new_hash))

    return write


async def test_removing_the_authenticator_keeps_a_password_changed_meanwhile(
    world: World,
) -> None:
    subject, tokens = await world.user()
    await world.enrol(tokens)
    new_hash = FAST_ARGON2.hash(NEW_PASSWORD)
    world.store.write = password_changed_to(new_hash)
    await world.provider.disable_totp(tokens.access_token)

    user = await world.stored(subject)
    assert user.password_hash == new_hash  # the old password did not come back
    assert not user.mfa_enabled
    assert user.totp_secret is None
    assert world.store.replaces_lost == 1
    with pytest.raises(InvalidCredentials):
        await world.provider.login("maria", PASSWORD)
    assert isinstance(await world.provider.login("maria", NEW_PASSWORD), TokenSet)


async def test_starting_an_enrolment_keeps_a_password_changed_meanwhile(world: World) -> None:
    subject, tokens = await world.user()
    new_hash = FAST_ARGON2.hash(NEW_PASSWORD)
    world.store.write = password_changed_to(new_hash)
    setup = await world.provider.begin_totp_setup(tokens.access_token)

    user = await world.stored(subject)
    assert user.password_hash == new_hash
    assert user.pending_totp_secret == setup.secret


async def test_finishing_an_enrolment_keeps_a_password_changed_meanwhile(world: World) -> None:
    subject, tokens = await world.user()
    setup = await world.provider.begin_totp_setup(tokens.access_token)
    new_hash = FAST_ARGON2.hash(NEW_PASSWORD)
    world.store.write = password_changed_to(new_hash)
    totp = pyotp.TOTP(setup.secret)
    await world.provider.verify_totp_setup(tokens.access_token, totp.at(world.clock.now()))

    user = await world.stored(subject)
    assert user.password_hash == new_hash
    assert user.mfa_enabled
    assert user.totp_secret == setup.secret
    assert user.pending_totp_secret is None


async def test_a_new_enrolment_begun_meanwhile_is_not_enabled_by_the_old_code(
    world: World,
) -> None:
    subject, tokens = await world.user()
    first = await world.provider.begin_totp_setup(tokens.access_token)

    async def begun_again(store: UserStore) -> None:
        user = await store.get(subject)
        assert user is not None
        await store.update(msgspec.structs.replace(user, pending_totp_secret="JBSWY3DPEHPK3PXP"))

    world.store.write = begun_again
    with pytest.raises(InvalidInput, match="enrolment changed"):
        await world.provider.verify_totp_setup(
            tokens.access_token, pyotp.TOTP(first.secret).at(world.clock.now())
        )
    user = await world.stored(subject)
    assert not user.mfa_enabled
    assert user.totp_secret is None
    assert user.pending_totp_secret == "JBSWY3DPEHPK3PXP"


async def test_a_password_change_keeps_an_authenticator_enrolled_meanwhile(
    world: World,
) -> None:
    subject, tokens = await world.user()

    async def enrolled(store: UserStore) -> None:
        user = await store.get(subject)
        assert user is not None
        await store.update(
            msgspec.structs.replace(user, totp_secret="JBSWY3DPEHPK3PXP", mfa_enabled=True)
        )

    world.store.write = enrolled
    await world.provider.change_password(tokens.access_token, PASSWORD, NEW_PASSWORD)

    user = await world.stored(subject)
    assert user.mfa_enabled
    assert user.totp_secret == "JBSWY3DPEHPK3PXP"
    assert FAST_ARGON2.verify(user.password_hash, NEW_PASSWORD)


async def test_a_write_that_keeps_losing_gives_up_with_a_conflict_and_writes_nothing(
    world: World,
) -> None:
    subject, tokens = await world.user()
    before = await world.stored(subject)
    n = 0

    async def another_write(store: UserStore) -> None:
        nonlocal n
        n += 1
        user = await store.get(subject)
        assert user is not None
        await store.update(msgspec.structs.replace(user, name=f"write {n}"))
        world.store.write = another_write  # and again before the next try

    world.store.write = another_write
    with pytest.raises(Conflict):
        await world.provider.disable_totp(tokens.access_token)
    world.store.write = None
    user = await world.stored(subject)
    assert user.password_hash == before.password_hash
    assert user.name == f"write {n}"
    assert world.store.replaces_lost == n


async def test_concurrent_password_changes_and_enrolments_on_one_user(world: World) -> None:
    """Eight password changes from the same current password and eight enrolment
    starts at once: exactly one change wins, its password is the one that works,
    and the pending secret is one that a start answered."""
    subject, tokens = await world.user()
    passwords = [f"{NEW_PASSWORD} #{n}" for n in range(8)]
    changes = [
        world.provider.change_password(tokens.access_token, PASSWORD, new) for new in passwords
    ]
    starts = [world.provider.begin_totp_setup(tokens.access_token) for _ in range(8)]
    results = await asyncio.gather(*changes, *starts, return_exceptions=True)

    changed = [p for p, r in zip(passwords, results[:8], strict=True) if r is None]
    assert len(changed) == 1
    assert all(isinstance(r, InvalidCredentials) for r in results[:8] if r is not None)
    secrets = {r.secret for r in results[8:] if isinstance(r, TotpSetup)}
    assert len(secrets) == 8
    user = await world.stored(subject)
    assert FAST_ARGON2.verify(user.password_hash, changed[0])
    assert user.pending_totp_secret in secrets
    assert user.version == 1 + 8  # every write counted, none lost


# -- a login racing a password change ---------------------------------------------------


async def test_a_login_that_checked_the_old_password_gets_no_session_after_the_change(
    world: World,
) -> None:
    """The change wrote the new password and revoked the user's sessions between the
    login's password check and its new session: that session must not survive."""
    _, tokens = await world.user()

    async def changed() -> None:
        await world.provider.change_password(tokens.access_token, PASSWORD, NEW_PASSWORD)

    world.families.before_start = changed
    with pytest.raises(InvalidCredentials):
        await world.provider.login("maria", PASSWORD)
    assert world.families.before_start is None  # the change did run in that window
    assert len(world.families.started) == 2
    assert await world.families.none_alive()  # neither login can refresh
    # the refused login's access tokens would be refused at once too
    assert await world.denylist.is_revoked(world.families.started[1][0])
    assert isinstance(await world.provider.login("maria", NEW_PASSWORD), TokenSet)


async def test_an_mfa_answer_after_a_password_change_gets_no_session(world: World) -> None:
    _, tokens = await world.user()
    totp = await world.enrol(tokens)
    challenge = await world.provider.login("maria", PASSWORD)
    assert isinstance(challenge, ProviderChallenge)
    await world.provider.change_password(tokens.access_token, PASSWORD, NEW_PASSWORD)
    code = totp.at(world.clock.now())
    with pytest.raises(InvalidToken):
        await world.provider.answer_challenge(challenge, code)
    # refused before the code was spent: the owner's own login can still use it
    fresh = await world.provider.login("maria", NEW_PASSWORD)
    assert isinstance(fresh, ProviderChallenge)
    assert isinstance(await world.provider.answer_challenge(fresh, code), TokenSet)


async def test_an_mfa_answer_racing_a_password_change_gets_no_session(world: World) -> None:
    _, tokens = await world.user()
    totp = await world.enrol(tokens)
    challenge = await world.provider.login("maria", PASSWORD)
    assert isinstance(challenge, ProviderChallenge)

    async def changed() -> None:
        await world.provider.change_password(tokens.access_token, PASSWORD, NEW_PASSWORD)

    world.families.before_start = changed
    with pytest.raises(InvalidToken):
        await world.provider.answer_challenge(challenge, totp.at(world.clock.now()))
    assert world.families.before_start is None
    assert len(world.families.started) == 2
    assert await world.families.none_alive()
    assert await world.denylist.is_revoked(world.families.started[1][0])


async def test_a_password_change_whose_revocations_failed_still_ends_the_other_logins(
    world: World,
) -> None:
    """The new password was written, then the refresh store failed (503): the change
    cannot be retried with the old password, so the logins it did not revoke must end by
    themselves. Each refresh token carries the password version its login checked."""
    _, mine = await world.user()
    other = await world.provider.login("maria", PASSWORD)  # the thief's login, say
    assert isinstance(other, TokenSet)

    world.families.revocations_fail = True
    with pytest.raises(ServiceUnavailable):
        await world.provider.change_password(mine.access_token, PASSWORD, NEW_PASSWORD)
    world.families.revocations_fail = False

    with pytest.raises(InvalidCredentials):
        await world.provider.login("maria", PASSWORD)  # the password did change
    for login in (other, mine):
        assert login.refresh_token is not None
        with pytest.raises(InvalidToken):
            await world.provider.refresh(login.refresh_token)
    assert await world.families.none_alive()  # each family ended at its refresh
    # the access tokens of the refused login are refused at once from now on
    assert await world.denylist.is_revoked(world.families.started[1][0])
    fresh = await world.provider.login("maria", NEW_PASSWORD)
    assert isinstance(fresh, TokenSet)
    assert fresh.refresh_token is not None
    assert isinstance(await world.provider.refresh(fresh.refresh_token), TokenSet)


async def test_a_refresh_token_from_before_the_version_claim_still_refreshes(
    world: World,
) -> None:
    """Refresh tokens issued before they carried ``pwv`` keep working until they expire
    (a password change still revokes their family in the refresh store)."""
    _, tokens = await world.user()
    assert tokens.refresh_token is not None
    claims = world.issuer.decode(tokens.refresh_token, "refresh")
    old = world.issuer.sign(
        "refresh",
        claims["sub"],
        int(claims["exp"]) - int(world.clock.now().timestamp()),
        **{k: v for k, v in claims.items() if k in ("username", "sid", "jti")},
    )
    assert "pwv" not in world.issuer.decode(old, "refresh")

    assert isinstance(await world.provider.refresh(old), TokenSet)


# -- rehashes are not password changes ------------------------------------------------------

#: other argon2 parameters than FAST_ARGON2: every hash it made needs a rehash
STRONGER = argon2.PasswordHasher(time_cost=2, memory_cost=1024, parallelism=1)


async def test_logins_at_once_that_rehash_the_password_all_get_sessions(world: World) -> None:
    """A login rehashes a password made under other argon2 parameters; another login
    doing the same at the same moment is not a password change and is not refused."""
    await world.user()
    world.provider._hasher = STRONGER
    results = await asyncio.gather(
        *(world.provider.login("maria", PASSWORD) for _ in range(6)), return_exceptions=True
    )
    assert all(isinstance(r, TokenSet) for r in results), results
    stored = await world.store.get_by_username("maria")
    assert stored is not None
    assert not STRONGER.check_needs_rehash(stored.password_hash)
    assert stored.password_version == 0


async def test_a_login_whose_rehash_meets_another_logins_rehash_gets_a_session(
    world: World,
) -> None:
    subject, _ = await world.user()
    world.provider._hasher = STRONGER

    async def rehashed_elsewhere(store: UserStore) -> None:
        user = await store.get(subject)
        assert user is not None
        await store.update(msgspec.structs.replace(user, password_hash=STRONGER.hash(PASSWORD)))

    world.store.write = rehashed_elsewhere
    assert isinstance(await world.provider.login("maria", PASSWORD), TokenSet)
    assert world.store.write is None


async def test_an_mfa_answer_after_another_logins_rehash_gets_a_session(world: World) -> None:
    _, tokens = await world.user()
    totp = await world.enrol(tokens)
    challenge = await world.provider.login("maria", PASSWORD)
    assert isinstance(challenge, ProviderChallenge)
    world.provider._hasher = STRONGER
    other = await world.provider.login("maria", PASSWORD)  # rehashes the password
    assert isinstance(other, ProviderChallenge)
    answered = await world.provider.answer_challenge(challenge, totp.at(world.clock.now()))
    assert isinstance(answered, TokenSet)


def test_a_user_store_without_replace_is_refused_when_the_provider_is_built() -> None:
    class OldStore:
        async def get(self, subject: str) -> UserRecord | None:
            return None

    clock = FakeClock(datetime(2026, 3, 2, tzinfo=UTC))
    issuer = LocalTokenIssuer(
        secret=b"0123456789abcdef0123456789abcdef-test-only",
        issuer="finbank-test",
        audience="finbank",
        clock=clock,
    )
    with pytest.raises(TypeError, match="replace"):
        LocalIdentityProvider(
            OldStore(),  # type: ignore[arg-type]
            issuer,
            refresh_tokens=InMemoryRefreshTokenStore(clock),
            hasher=FAST_ARGON2,
        )
