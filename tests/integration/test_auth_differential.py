"""Differential test: login and MFA on the local profile's stores against memory.

``test_bank_differential`` walks the money; this walks who may move it. The
same seeded walk of ``bank.auth`` calls runs on the in-memory bank and on the
local profile (users on PostgreSQL; MFA challenges, step-up tokens, the login
throttle and revoked tokens on Redis), each on a :class:`FakeClock` of its own
moved together: sign-ups, logins with right and wrong passwords (the lockout),
TOTP enrolment behind a step-up token, MFA challenges answered with right,
wrong and replayed codes, refresh-token rotation (an old refresh token used
again), logout, password changes, TOTP removal, and the clock running past
challenge, step-up and access-token lifetimes. After every call both banks must
answer alike, in value and in Python types; one call in five is made twice at
once on each bank: a challenge, an enrolment code or a refresh token must be
spent at most once, as often on both sides, and whether any other call is
granted must not depend on the store (which of the two racing calls is refused,
and with which error, is the interleaving's choice).

Tokens, challenge ids, TOTP secrets and subjects are random on each side; they
are compared by their order of first appearance (``<access_token 3>``), and each
side's own value is what the walk uses next. TOTP codes are computed with
``pyotp`` from each side's secret at the fake clock's time, as an authenticator
app would.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
import pyotp
import pytest
from dependency_injector import providers

from finbank import Bank
from finbank.bank import configure, opened
from finbank_adapters.containers import build_container
from finbank_adapters.memory.clock import FakeClock
from finbank_adapters.settings import Settings
from finbank_core.auth.credentials import ChangePasswordCommand, DisableTotpCommand
from finbank_core.auth.model import AuthenticateQuery, SignUpCommand
from finbank_core.auth.step_up import StepUpCommand, StepUpPurpose
from finbank_core.auth.use_cases import (
    AnswerChallengeCommand,
    LoginCommand,
    LogoutCommand,
    RefreshCommand,
    SetUpTotpCommand,
    VerifyTotpCommand,
)
from tests.differential_support import types_of
from tests.integration.auth.harness import FAST_ARGON2
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

pytestmark = pytest.mark.services

#: a call made on one bank: ``side`` is 0 for memory, 1 for the local profile
Call = Callable[[Bank, int], Awaitable[object]]
Pair = tuple[Any, Any]

USERS = ("carla", "davi", "eva")
#: calls whose success spends what they are given
SINGLE_USE = frozenset({"answer", "verify_totp", "refresh"})
START = datetime(2026, 3, 2, 12, 0, 7, tzinfo=UTC)
#: fields whose values are random on each side: compared by order of appearance
RANDOM_FIELDS = frozenset(
    {"access_token", "refresh_token", "id_token", "token", "challenge_id", "secret"}
    | {"otpauth_uri", "subject", "token_id", "session_id"}
)


class User:
    """What the walk knows of one user, each side's own value where they differ."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.password = f"Pass-{name}-0!x"
        self.sessions: list[list[Pair]] = []  # each: access tokens, then refresh tokens
        self.old_refresh: list[Pair] = []  # rotated away: a reuse must be refused
        self.challenge: Pair | None = None
        self.secret: Pair | None = None  # the TOTP secret, once set up (verified or not)
        self.step_up: Pair | None = None


class AuthWalk:
    def __init__(self, banks: tuple[Bank, Bank], clocks: tuple[FakeClock, FakeClock], seed: int):
        self.banks = banks
        self.clocks = clocks
        self.rnd = random.Random(seed)
        self.users = {name: User(name) for name in USERS}
        self.seen: tuple[dict[str, str], dict[str, str]] = ({}, {})
        self.differences: list[str] = []
        self.done: Counter[str] = Counter()
        self.session: list[Pair] | None = None  # the session the picked call is about
        self.new_password = ""  # what the picked change_password sets

    def comparable(self, value: object, side: int) -> object:
        seen = self.seen[side]

        def walk(item: Any, field: str | None = None) -> Any:
            if isinstance(item, dict):
                return {k: walk(v, k) for k, v in item.items()}
            if isinstance(item, list | tuple):
                return [walk(v) for v in item]
            if field in RANDOM_FIELDS and isinstance(item, str):
                return seen.setdefault(item, f"<{field} {len(seen)}>")
            return item

        return walk(msgspec.to_builtins(value, str_keys=True, enc_hook=repr))

    async def answer(self, call: Call, side: int) -> tuple[str, object, object]:
        try:
            result = await call(self.banks[side], side)
        except Exception as exc:  # every error a facade raises is compared
            details = {"message": str(exc), "details": getattr(exc, "details", None)}
            return type(exc).__name__, self.comparable(details, side), None
        return "ok", self.comparable(result, side), result

    def code(self, user: User, side: int, right: bool = True) -> str:
        """The TOTP code an authenticator app shows now (or a wrong one)."""
        assert user.secret is not None
        code = pyotp.TOTP(user.secret[side]).at(self.clocks[side].now())
        return code if right else f"{(int(code) + 1) % 1_000_000:06d}"

    def pick(self) -> tuple[str, User, Call | None]:
        rnd = self.rnd
        kinds = {
            "sign_up": 1, "login": 4, "answer": 6, "refresh": 5, "authenticate": 5, "logout": 1,
            "step_up": 4, "set_up_totp": 4, "verify_totp": 5, "change_password": 1,
            "disable_totp": 1,
        }  # fmt: skip
        kind = rnd.choices(list(kinds), weights=list(kinds.values()))[0]
        user = self.users[rnd.choice(USERS)]
        # mostly the newest session: older ones have mostly expired or been logged out
        sessions = user.sessions[-1:] if rnd.random() < 0.7 else user.sessions
        session = self.session = rnd.choice(sessions) if sessions else None
        if kind == "sign_up":
            password = user.password
            return (
                kind,
                user,
                lambda b, _: b.auth.sign_up(
                    SignUpCommand(
                        username=user.name, password=password, email=f"{user.name}@ex.com"
                    )
                ),
            )
        if kind == "login":
            password = user.password if rnd.random() < 0.7 else "Wrong-Passw0rd!"
            return (
                kind,
                user,
                lambda b, _: b.auth.login(LoginCommand(username=user.name, password=password)),
            )
        if kind == "answer" and user.challenge is not None:
            challenge, right = user.challenge, rnd.random() < 0.75
            return (
                kind,
                user,
                lambda b, s: b.auth.answer_challenge(
                    AnswerChallengeCommand(
                        challenge_id=challenge[s],
                        answer=self.code(user, s, right) if user.secret else "000000",
                    )
                ),
            )
        if kind == "refresh" and session is not None:
            stale = user.old_refresh and rnd.random() < 0.2
            token = rnd.choice(user.old_refresh) if stale else session[1]
            return kind, user, lambda b, s: b.auth.refresh(RefreshCommand(refresh_token=token[s]))
        if session is None:
            return kind, user, None
        access = session[0]
        if kind == "authenticate":
            return (
                kind,
                user,
                lambda b, s: b.auth.authenticate(AuthenticateQuery(access_token=access[s])),
            )
        if kind == "logout":
            return kind, user, lambda b, s: b.auth.logout(LogoutCommand(access_token=access[s]))
        if kind == "step_up":
            by_code = user.secret is not None and rnd.random() < 0.5
            right = rnd.random() < 0.8
            password = user.password if right else "Wrong-Passw0rd!"
            return (
                kind,
                user,
                lambda b, s: b.auth.step_up(
                    StepUpCommand(
                        access_token=access[s],
                        purpose=StepUpPurpose.MFA_CHANGE,
                        password=None if by_code else password,
                        code=self.code(user, s, right) if by_code else None,
                    )
                ),
            )
        step_up = user.step_up
        if kind == "set_up_totp":
            return (
                kind,
                user,
                lambda b, s: b.auth.set_up_totp(
                    SetUpTotpCommand(
                        access_token=access[s], step_up_token=step_up[s] if step_up else None
                    )
                ),
            )
        if kind == "verify_totp" and user.secret is not None:
            right = rnd.random() < 0.8
            return (
                kind,
                user,
                lambda b, s: b.auth.verify_totp(
                    VerifyTotpCommand(access_token=access[s], code=self.code(user, s, right))
                ),
            )
        if kind == "change_password":
            current = user.password if rnd.random() < 0.8 else "Wrong-Passw0rd!"
            new = self.new_password = f"Pass-{user.name}-{rnd.getrandbits(16):x}!x"
            return (
                kind,
                user,
                lambda b, s: b.auth.change_password(
                    ChangePasswordCommand(
                        access_token=access[s], current_password=current, new_password=new
                    )
                ),
            )
        if kind == "disable_totp":
            return (
                kind,
                user,
                lambda b, s: b.auth.disable_totp(
                    DisableTotpCommand(
                        access_token=access[s], step_up_token=step_up[s] if step_up else None
                    )
                ),
            )
        return kind, user, None

    def remember(self, kind: str, user: User, results: Pair) -> None:
        first, second = results
        if kind in ("login", "answer"):
            if first.tokens is not None:
                user.sessions.append(
                    [
                        (first.tokens.access_token, second.tokens.access_token),
                        (first.tokens.refresh_token, second.tokens.refresh_token),
                    ]
                )
                user.challenge = None
            elif first.challenge_id is not None:
                user.challenge = (first.challenge_id, second.challenge_id)
        elif kind == "refresh" and self.session is not None:
            session = self.session
            session[0] = (first.access_token, second.access_token)
            if first.refresh_token is not None:  # rotated: the one used is spent
                user.old_refresh.append(session[1])
                session[1] = (first.refresh_token, second.refresh_token)
        elif kind == "step_up":
            user.step_up = (first.token, second.token)
        elif kind == "set_up_totp":
            user.secret = (first.secret, second.secret)
        elif kind == "change_password":
            user.password = self.new_password

    async def step(self, number: int) -> None:
        if self.rnd.random() < 0.05:
            # a TOTP step, a challenge's and a step-up token's lifetimes, an access token's
            seconds = self.rnd.choices([1, 30, 181, 301, 901], weights=[4, 4, 3, 3, 1])[0]
            for clock in self.clocks:
                clock.advance(seconds)
            self.done["clock moved"] += 1
            return
        kind, user, call = self.pick()
        if call is None:
            return
        if kind not in ("sign_up", "change_password") and self.rnd.random() < 0.2:
            kinds = []
            for side, bank in enumerate(self.banks):
                answers = await asyncio.gather(
                    call(bank, side), call(bank, side), return_exceptions=True
                )
                kinds.append(
                    sorted(
                        "ok" if not isinstance(a, BaseException) else type(a).__name__
                        for a in answers
                    )
                )
            oks = [k.count("ok") for k in kinds]
            if kind in SINGLE_USE:
                # a challenge, an enrolment's code or a refresh token is spent once: never
                # twice on either side, and the same number of times on both
                alike = oks[0] == oks[1] <= 1
                self.done[f"{kind} spent once at once"] += oks[0] == 1
            else:
                # which of two racing calls is refused, and how, is the interleaving's
                # choice (a second logout of the same token is harmless): whether the
                # call is granted at all must not depend on the store
                alike = (oks[0] > 0) == (oks[1] > 0)
            if not alike:
                self.differences.append(f"step {number}, {kind} twice: {kinds[0]} != {kinds[1]}")
            self.done["twice at once"] += 1
            return
        reference, other = await self.answer(call, 0), await self.answer(call, 1)
        if reference[:2] != other[:2]:
            self.differences.append(
                f"step {number}, {kind}:\n  memory: {reference[:2]}\n  local:  {other[:2]}"
            )
            return
        if types_of(reference[2]) != types_of(other[2]):
            self.differences.append(f"step {number}, {kind}: types differ")
        self.done[f"{kind} {reference[0]}"] += 1
        if reference[0] == "ok":
            self.remember(kind, user, (reference[2], other[2]))


@asynccontextmanager
async def with_cheap_hashing(settings: Settings, clock: FakeClock) -> AsyncIterator[Bank]:
    """The bank on ``settings`` and ``clock``, its passwords hashed with argon2id at its
    lowest cost (as ``tests/integration/auth`` does): the walk logs in hundreds of
    times, and what it compares does not depend on the hash's cost."""
    container = build_container(settings)
    identity = container.auth.identity_provider
    assert isinstance(identity, providers.Selector)
    local = identity.providers["local"]
    assert isinstance(local, providers.Singleton)
    local.add_kwargs(hasher=FAST_ARGON2)
    configure(container, clock=clock)
    async with opened(container) as bank:
        yield bank


@pytest.fixture
async def local_settings() -> AsyncIterator[Settings]:
    """The local profile: PostgreSQL for users, Redis for MFA state, tokens and throttle."""
    require_postgres()
    async with AsyncExitStack() as stack:
        _, schema = await stack.enter_async_context(isolated_schema())
        _redis, prefix = await stack.enter_async_context(open_test_redis())
        yield Settings.from_env(
            {
                "FINBANK_PROFILE": "local",
                "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
                "FINBANK_REDIS_KEY_PREFIX": prefix,
                "FINBANK_PIX_BACKEND": "postgres",
                "FINBANK_JWT_SECRET": secrets.token_hex(32),
                "FINBANK_SANDBOX": "true",
            }
        )


#: seeds whose walk reaches every kind of success, the lockout in 31 and 40 too
@pytest.mark.parametrize("seed", [31, 32, 40])
async def test_login_and_mfa_answer_alike_on_memory_and_on_the_local_profile(
    local_settings: Settings, seed: int
) -> None:
    clocks = (FakeClock(START), FakeClock(START))
    async with (
        with_cheap_hashing(Settings.from_env({"FINBANK_PROFILE": "memory"}), clocks[0]) as memory,
        with_cheap_hashing(local_settings, clocks[1]) as local,
    ):
        run = AuthWalk((memory, local), clocks, seed)
        for number in range(800):
            await run.step(number)
            assert len(run.differences) < 5, "\n".join(run.differences)
        assert run.differences == []
    for what in (
        "sign_up ok", "login ok", "login InvalidCredentials", "answer ok", "refresh ok",
        "authenticate ok", "step_up ok", "set_up_totp ok", "verify_totp ok",
        "change_password ok", "logout ok", "refresh spent once at once",
    ):  # fmt: skip
        assert run.done[what] >= 1, (what, run.done)
    assert run.done["twice at once"] >= 50, run.done
