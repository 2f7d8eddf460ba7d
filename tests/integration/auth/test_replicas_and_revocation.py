"""Two replicas of the self-hosted provider on shared stores: TOTP single use, revocation.

Each replica has its own ``LocalIdentityProvider`` and use cases (as two
processes would) over the same stores: in memory, and as the local profile
wires them (users and revocations in PostgreSQL, the rest in Redis, the
denylist cached in Redis in front of PostgreSQL). Time is a FakeClock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pyotp
import pytest

from finbank_adapters.local_auth import LocalIdentityProvider, LocalTokenIssuer, LocalTokenVerifier
from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.auth import (
    InMemoryChallengeStore,
    InMemoryLoginThrottle,
    InMemoryRefreshTokenStore,
    InMemoryTokenDenylist,
)
from finbank_adapters.memory.step_up import InMemoryStepUpStore
from finbank_adapters.memory.users import InMemoryUserStore
from finbank_adapters.postgres import PostgresTokenDenylist, PostgresUserStore
from finbank_adapters.redis import (
    RedisCachedTokenDenylist,
    RedisChallengeStore,
    RedisLoginThrottle,
    RedisRefreshTokenStore,
)
from finbank_core.auth import (
    AnswerChallengeCommand,
    AuthenticateQuery,
    LoginCommand,
    LogoutCommand,
    RefreshCommand,
    SetUpTotpCommand,
    VerifyTotpCommand,
)
from finbank_core.auth.errors import IncorrectCode, InvalidToken
from finbank_core.auth.lockout import LockoutPolicy
from finbank_core.auth.model import SignUpCommand, TokenSet
from finbank_core.auth.ports import ChallengeStore, LoginThrottle, TokenDenylist
from finbank_core.auth.refresh_tokens import RefreshTokenStore
from finbank_core.auth.step_up import RequireStepUp, StepUp, StepUpCommand, StepUpPurpose
from finbank_core.auth.use_cases import (
    AnswerChallenge,
    Authenticate,
    LoginResult,
    Logout,
    PasswordLogin,
    Refresh,
    SetUpTotp,
    VerifyTotp,
)
from finbank_core.auth.users import UserRecord, UserStore
from tests.integration.auth.harness import FAST_ARGON2, PASSWORD, SECRET
from tests.postgres_support import isolated_schema, require_postgres
from tests.support_redis import open_test_redis

CALLERS = 24
#: losers of a race count as failed logins; keep the lock out of the way of the replay
POLICY = LockoutPolicy(max_failures=100)


@dataclass
class Replica:
    provider: LocalIdentityProvider
    login: PasswordLogin
    answer: AnswerChallenge
    authenticate: Authenticate
    refresh: Refresh
    logout: Logout


@dataclass
class Shared:
    clock: FakeClock
    users: UserStore
    challenges: ChallengeStore
    throttle: LoginThrottle
    denylist: TokenDenylist
    refresh_tokens: RefreshTokenStore
    #: forget everything Redis holds (None when nothing is in Redis)
    flush_redis: Callable[[], Awaitable[None]] | None = None
    replicas: list[Replica] = field(default_factory=list)

    def replica(self) -> Replica:
        issuer = LocalTokenIssuer(
            secret=SECRET, issuer="finbank-test", audience="finbank", clock=self.clock
        )
        provider = LocalIdentityProvider(
            self.users,
            issuer,
            refresh_tokens=self.refresh_tokens,
            denylist=self.denylist,
            hasher=FAST_ARGON2,
        )
        authenticate = Authenticate(LocalTokenVerifier(issuer), self.denylist)
        return Replica(
            provider=provider,
            login=PasswordLogin(provider, self.challenges, self.throttle, self.clock),
            answer=AnswerChallenge(provider, self.challenges, self.throttle, self.clock),
            authenticate=authenticate,
            refresh=Refresh(provider),
            logout=Logout(provider, authenticate, self.denylist, self.clock),
        )


@pytest.fixture(params=["memory", "local"])
async def shared(request: pytest.FixtureRequest) -> AsyncIterator[Shared]:
    clock = FakeClock()
    if request.param == "memory":
        yield Shared(
            clock,
            InMemoryUserStore(),
            InMemoryChallengeStore(clock),
            InMemoryLoginThrottle(clock, POLICY),
            InMemoryTokenDenylist(clock),
            InMemoryRefreshTokenStore(clock),
        )
        return
    async with (
        isolated_schema(require_postgres(), min_size=10, max_size=10) as (pool, _),
        open_test_redis() as (client, prefix),
    ):

        async def flush() -> None:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
            if keys:
                await client.delete(*keys)

        yield Shared(
            clock,
            PostgresUserStore(pool),
            RedisChallengeStore(client, clock, key_prefix=prefix),
            RedisLoginThrottle(client, clock, POLICY, key_prefix=prefix),
            RedisCachedTokenDenylist(
                client, clock, PostgresTokenDenylist(pool, clock), key_prefix=prefix
            ),
            RedisRefreshTokenStore(client, clock, key_prefix=prefix),
            flush,
        )


async def sign_up_and_log_in(replica: Replica, username: str = "maria") -> TokenSet:
    await replica.provider.sign_up(SignUpCommand(username=username, password=PASSWORD))
    result = await replica.login(LoginCommand(username=username, password=PASSWORD))
    assert result.tokens is not None
    return result.tokens


async def enrol_totp(shared: Shared, replica: Replica) -> pyotp.TOTP:
    tokens = await sign_up_and_log_in(replica)
    step_ups = InMemoryStepUpStore(shared.clock)
    granted = await StepUp(
        replica.authenticate, replica.provider, step_ups, shared.throttle, shared.clock
    )(
        StepUpCommand(
            access_token=tokens.access_token, purpose=StepUpPurpose.MFA_CHANGE, password=PASSWORD
        )
    )
    setup = await SetUpTotp(
        replica.provider, replica.authenticate, RequireStepUp(step_ups, shared.clock)
    )(SetUpTotpCommand(access_token=tokens.access_token, step_up_token=granted.token))
    totp = pyotp.TOTP(setup.secret)
    await VerifyTotp(replica.provider, replica.authenticate)(
        VerifyTotpCommand(access_token=tokens.access_token, code=totp.at(shared.clock.now()))
    )
    shared.clock.advance(30)  # a fresh step: the enrolment code is spent
    return totp


async def outcome(call: Awaitable[LoginResult]) -> str:
    try:
        result = await call
    except IncorrectCode:
        return "incorrect_code"
    assert result.tokens is not None
    return "tokens"


async def test_many_answers_with_one_totp_code_on_two_replicas_get_tokens_once(
    shared: Shared,
) -> None:
    one, two = shared.replica(), shared.replica()
    totp = await enrol_totp(shared, one)
    challenges = []
    for i in range(CALLERS):
        result = await (one, two)[i % 2].login(LoginCommand(username="maria", password=PASSWORD))
        assert result.challenge_id is not None
        challenges.append(result.challenge_id)
    code = totp.at(shared.clock.now())
    outcomes = await asyncio.gather(
        *(
            outcome((one, two)[i % 2].answer(AnswerChallengeCommand(challenge_id=c, answer=code)))
            for i, c in enumerate(challenges)
        )
    )
    assert outcomes.count("tokens") == 1
    assert outcomes.count("incorrect_code") == CALLERS - 1
    # a replay later, on either replica, is answered like every loser
    replay = await two.login(LoginCommand(username="maria", password=PASSWORD))
    assert replay.challenge_id is not None
    assert (
        await outcome(
            two.answer(AnswerChallengeCommand(challenge_id=replay.challenge_id, answer=code))
        )
        == "incorrect_code"
    )


class ReadTogether:
    """A user store whose next ``parties`` reads of a user wait for each other.

    Makes the race deterministic: both replicas have read the user (and its
    last accepted step) before either of them spends the step.
    """

    def __init__(self, inner: UserStore) -> None:
        self._inner = inner
        self._barrier: asyncio.Barrier | None = None
        self._waiting = 0

    def arm(self, parties: int) -> None:
        self._barrier = asyncio.Barrier(parties)
        self._waiting = parties

    async def get(self, subject: str) -> UserRecord | None:
        user = await self._inner.get(subject)
        if self._barrier is not None and self._waiting > 0:
            self._waiting -= 1
            await self._barrier.wait()
        return user

    async def add(self, user: UserRecord) -> None:
        await self._inner.add(user)

    async def get_by_username(self, username: str) -> UserRecord | None:
        return await self._inner.get_by_username(username)

    async def update(self, user: UserRecord) -> None:
        await self._inner.update(user)

    async def replace(self, user: UserRecord) -> UserRecord | None:
        return await self._inner.replace(user)

    async def claim_totp_step(self, subject: str, step: int) -> bool:
        return await self._inner.claim_totp_step(subject, step)


async def test_two_replicas_that_read_the_user_at_once_accept_one_code_once(
    shared: Shared,
) -> None:
    users = ReadTogether(shared.users)
    shared.users = users
    one, two = shared.replica(), shared.replica()
    totp = await enrol_totp(shared, one)
    first, second = (
        (await one.login(LoginCommand(username="maria", password=PASSWORD))),
        (await two.login(LoginCommand(username="maria", password=PASSWORD))),
    )
    assert first.challenge_id is not None
    assert second.challenge_id is not None
    code = totp.at(shared.clock.now())
    users.arm(2)
    outcomes = await asyncio.gather(
        outcome(one.answer(AnswerChallengeCommand(challenge_id=first.challenge_id, answer=code))),
        outcome(two.answer(AnswerChallengeCommand(challenge_id=second.challenge_id, answer=code))),
    )
    assert sorted(outcomes) == ["incorrect_code", "tokens"]


async def test_reusing_a_refresh_token_refuses_the_family_access_tokens_at_once(
    shared: Shared,
) -> None:
    one, two = shared.replica(), shared.replica()
    tokens = await sign_up_and_log_in(one)
    assert tokens.refresh_token is not None
    renewed = await one.refresh(RefreshCommand(refresh_token=tokens.refresh_token))
    await two.authenticate(AuthenticateQuery(access_token=renewed.access_token))
    with pytest.raises(InvalidToken):
        await two.refresh(
            RefreshCommand(refresh_token=tokens.refresh_token)
        )  # the stolen copy, on the other replica
    for access in (tokens.access_token, renewed.access_token):
        for replica in (one, two):
            with pytest.raises(InvalidToken):
                await replica.authenticate(AuthenticateQuery(access_token=access))


async def test_concurrent_refreshes_of_one_token_yield_one_token_set_then_kill_the_family(
    shared: Shared,
) -> None:
    one, two = shared.replica(), shared.replica()
    tokens = await sign_up_and_log_in(one)
    refresh_token = tokens.refresh_token
    assert refresh_token is not None

    async def attempt(replica: Replica) -> TokenSet | None:
        try:
            return await replica.refresh(RefreshCommand(refresh_token=refresh_token))
        except InvalidToken:
            return None

    results = await asyncio.gather(*(attempt((one, two)[i % 2]) for i in range(CALLERS)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    # the losers were reuse: the whole login is gone, the winner's new tokens included
    for access in (tokens.access_token, winners[0].access_token):
        with pytest.raises(InvalidToken):
            await one.authenticate(AuthenticateQuery(access_token=access))
    assert winners[0].refresh_token is not None
    with pytest.raises(InvalidToken):
        await two.refresh(RefreshCommand(refresh_token=winners[0].refresh_token))


@pytest.mark.parametrize("shared", ["local"], indirect=True)
async def test_a_logged_out_session_stays_refused_after_redis_is_flushed(shared: Shared) -> None:
    assert shared.flush_redis is not None
    one, two = shared.replica(), shared.replica()
    tokens = await sign_up_and_log_in(one)
    assert tokens.refresh_token is not None
    sibling = await one.refresh(
        RefreshCommand(refresh_token=tokens.refresh_token)
    )  # same login, another access token
    await one.logout(LogoutCommand(access_token=tokens.access_token))
    await shared.flush_redis()
    for access in (tokens.access_token, sibling.access_token):
        with pytest.raises(InvalidToken):
            await two.authenticate(AuthenticateQuery(access_token=access))
    assert sibling.refresh_token is not None
    with pytest.raises(InvalidToken):
        await two.refresh(RefreshCommand(refresh_token=sibling.refresh_token))


async def test_logging_out_one_login_refuses_the_other_logins_of_the_user_at_once(
    shared: Shared,
) -> None:
    one, two = shared.replica(), shared.replica()
    phone = await sign_up_and_log_in(one)
    laptop = await two.login(LoginCommand(username="maria", password=PASSWORD))
    assert laptop.tokens is not None
    await one.logout(LogoutCommand(access_token=phone.access_token))
    for replica in (one, two):
        with pytest.raises(InvalidToken):
            await replica.authenticate(AuthenticateQuery(access_token=laptop.tokens.access_token))
    assert laptop.tokens.refresh_token is not None
    with pytest.raises(InvalidToken):
        await two.refresh(RefreshCommand(refresh_token=laptop.tokens.refresh_token))
    # a new login afterwards is not affected
    again = await one.login(LoginCommand(username="maria", password=PASSWORD))
    assert again.tokens is not None
    await two.authenticate(AuthenticateQuery(access_token=again.tokens.access_token))
