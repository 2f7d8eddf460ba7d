"""An auth world for tests: the local provider, the use cases and their stores on a FakeClock.

``AuthWorld.build`` takes the four state stores, so the same scenarios run
with the in-memory adapters and with Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

import argon2
import pyotp

from finbank_adapters.local_auth import LocalIdentityProvider, LocalTokenIssuer, LocalTokenVerifier
from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.step_up import InMemoryStepUpStore
from finbank_adapters.memory.users import InMemoryUserStore
from finbank_core.auth import LoginCommand, SetUpTotpCommand, VerifyTotpCommand
from finbank_core.auth.lockout import LockoutPolicy
from finbank_core.auth.model import SignUpCommand, TokenSet
from finbank_core.auth.ports import ChallengeStore, LoginThrottle, TokenDenylist
from finbank_core.auth.refresh_tokens import RefreshTokenStore
from finbank_core.auth.step_up import (
    RequireStepUp,
    StepUp,
    StepUpCommand,
    StepUpPurpose,
    StepUpStore,
)
from finbank_core.auth.use_cases import (
    AnswerChallenge,
    Authenticate,
    LoginResult,
    Logout,
    PasswordLogin,
    Refresh,
    SetUpTotp,
    SignUp,
    VerifyTotp,
)

PASSWORD = "correct horse battery staple"
SECRET = b"0123456789abcdef0123456789abcdef-test-only"
#: argon2id at test cost: the tests are about the flow, not the hash's strength
FAST_ARGON2 = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
POLICY = LockoutPolicy(max_failures=10, failure_window_seconds=900, lock_seconds=1800)


@dataclass
class AuthWorld:
    clock: FakeClock
    issuer: LocalTokenIssuer
    provider: LocalIdentityProvider
    challenges: ChallengeStore
    throttle: LoginThrottle
    denylist: TokenDenylist
    sign_up: SignUp
    login: PasswordLogin
    answer: AnswerChallenge
    authenticate: Authenticate
    refresh: Refresh
    logout: Logout
    set_up_totp: SetUpTotp
    verify_totp: VerifyTotp
    step_up: StepUp
    require_step_up: RequireStepUp

    @classmethod
    def build(
        cls,
        clock: FakeClock,
        challenges: ChallengeStore,
        throttle: LoginThrottle,
        denylist: TokenDenylist,
        refresh_tokens: RefreshTokenStore,
        step_ups: StepUpStore | None = None,
    ) -> AuthWorld:
        issuer = LocalTokenIssuer(
            secret=SECRET, issuer="finbank-test", audience="finbank", clock=clock
        )
        provider = LocalIdentityProvider(
            InMemoryUserStore(), issuer, refresh_tokens=refresh_tokens, denylist=denylist
        )
        authenticate = Authenticate(LocalTokenVerifier(issuer), denylist)
        step_ups = step_ups or InMemoryStepUpStore(clock)
        require_step_up = RequireStepUp(step_ups, clock)
        return cls(
            clock=clock,
            issuer=issuer,
            provider=provider,
            challenges=challenges,
            throttle=throttle,
            denylist=denylist,
            sign_up=SignUp(provider),
            login=PasswordLogin(provider, challenges, throttle, clock),
            answer=AnswerChallenge(provider, challenges, throttle, clock),
            authenticate=authenticate,
            refresh=Refresh(provider),
            logout=Logout(provider, authenticate, denylist, clock),
            set_up_totp=SetUpTotp(provider, authenticate, require_step_up),
            verify_totp=VerifyTotp(provider, authenticate),
            step_up=StepUp(authenticate, provider, step_ups, throttle, clock),
            require_step_up=require_step_up,
        )

    async def user_without_mfa(self, username: str = "maria") -> TokenSet:
        await self.sign_up(SignUpCommand(username=username, password=PASSWORD))
        result = await self.login(LoginCommand(username=username, password=PASSWORD))
        assert result.tokens is not None
        return result.tokens

    async def user_with_totp(self, username: str = "maria") -> pyotp.TOTP:
        """Sign up and enrol an authenticator; the clock then moves to a fresh TOTP step."""
        tokens = await self.user_without_mfa(username)
        setup = await self.set_up_totp(
            SetUpTotpCommand(
                access_token=tokens.access_token,
                step_up_token=await self.stepped_up(tokens.access_token),
            )
        )
        totp = pyotp.TOTP(setup.secret)
        await self.verify_totp(
            VerifyTotpCommand(access_token=tokens.access_token, code=self.code(totp))
        )
        self.clock.advance(30)
        return totp

    async def stepped_up(
        self, access_token: str, purpose: StepUpPurpose = StepUpPurpose.MFA_CHANGE
    ) -> str:
        """A step-up token for ``purpose``, got with the password."""
        result = await self.step_up(
            StepUpCommand(access_token=access_token, purpose=purpose, password=PASSWORD)
        )
        return result.token

    def code(self, totp: pyotp.TOTP) -> str:
        return totp.at(self.clock.now())

    async def challenge(self, username: str = "maria") -> LoginResult:
        result = await self.login(LoginCommand(username=username, password=PASSWORD))
        assert result.mfa_required
        assert result.challenge_id is not None
        return result


def wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 1_000_000:06d}"
