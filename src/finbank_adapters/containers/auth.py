"""Auth: users, MFA challenges, the login throttle, tokens and the auth use cases."""

from __future__ import annotations

from dependency_injector import containers, providers

from finbank_adapters import auth_wiring, postgres_wiring
from finbank_adapters.containers.infrastructure import settings_field
from finbank_adapters.local_auth import LocalIdentityProvider, LocalTokenVerifier
from finbank_adapters.memory.auth import (
    InMemoryChallengeStore,
    InMemoryLoginThrottle,
    InMemoryRefreshTokenStore,
    InMemoryTokenDenylist,
)
from finbank_adapters.memory.users import InMemoryUserStore
from finbank_adapters.metered import metered_login_throttle
from finbank_core.auth import use_cases as auth


class AuthContainer(containers.DeclarativeContainer):
    """The identity provider (local or Cognito), its stores, and the auth use cases."""

    infra = providers.DependenciesContainer()

    user_store = providers.Selector(
        providers.Callable(settings_field("backends.users"), infra.settings),
        memory=providers.Singleton(InMemoryUserStore),
        postgres=providers.Singleton(postgres_wiring.postgres_user_store, pool=infra.postgres_pool),
    )
    challenge_store = providers.Selector(
        providers.Callable(settings_field("backends.challenges"), infra.settings),
        memory=providers.Singleton(InMemoryChallengeStore, clock=infra.clock),
        redis=providers.Singleton(
            auth_wiring.redis_challenge_store,
            client=infra.redis_client,
            clock=infra.clock,
            settings=infra.settings,
        ),
    )
    login_throttle = providers.Selector(
        providers.Callable(settings_field("backends.throttle"), infra.settings),
        memory=providers.Singleton(
            InMemoryLoginThrottle,
            clock=infra.clock,
            policy=providers.Callable(auth_wiring.lockout_policy, infra.settings),
        ),
        redis=providers.Singleton(
            auth_wiring.redis_login_throttle,
            client=infra.redis_client,
            clock=infra.clock,
            settings=infra.settings,
        ),
    )
    token_denylist = providers.Selector(
        providers.Callable(settings_field("backends.denylist"), infra.settings),
        memory=providers.Singleton(InMemoryTokenDenylist, clock=infra.clock),
        redis=providers.Singleton(
            auth_wiring.redis_token_denylist,
            client=infra.redis_client,
            clock=infra.clock,
            settings=infra.settings,
        ),
        redis_postgres=providers.Singleton(
            auth_wiring.cached_token_denylist,
            pool=infra.postgres_pool,
            client=infra.redis_client,
            clock=infra.clock,
            settings=infra.settings,
        ),
    )
    refresh_token_store = providers.Selector(
        providers.Callable(settings_field("backends.refresh_tokens"), infra.settings),
        memory=providers.Singleton(InMemoryRefreshTokenStore, clock=infra.clock),
        redis=providers.Singleton(
            auth_wiring.redis_refresh_token_store,
            client=infra.redis_client,
            clock=infra.clock,
            settings=infra.settings,
        ),
    )
    #: the Litestar store behind the rate limiter on /v1/auth/*: Redis when Redis is in use
    rate_limit_store = providers.Selector(
        providers.Callable(settings_field("backends.rate_limit"), infra.settings),
        memory=providers.Singleton(auth_wiring.memory_rate_limit_store),
        redis=providers.Singleton(
            auth_wiring.redis_rate_limit_store, client=infra.redis_client, settings=infra.settings
        ),
    )
    token_issuer = providers.Singleton(
        auth_wiring.local_token_issuer, settings=infra.settings, clock=infra.clock
    )
    identity_provider = providers.Selector(
        providers.Callable(settings_field("backends.identity"), infra.settings),
        local=providers.Singleton(
            LocalIdentityProvider,
            users=user_store,
            tokens=token_issuer,
            refresh_tokens=refresh_token_store,
            denylist=token_denylist,
        ),
        cognito=providers.Singleton(
            auth_wiring.cognito_identity_provider,
            client=infra.cognito_client,
            settings=infra.settings,
        ),
    )
    token_verifier = providers.Selector(
        providers.Callable(settings_field("backends.identity"), infra.settings),
        local=providers.Singleton(LocalTokenVerifier, issuer=token_issuer),
        cognito=providers.Singleton(
            auth_wiring.cognito_token_verifier, settings=infra.settings, clock=infra.clock
        ),
    )
    challenge_ttl_seconds = providers.Callable(auth_wiring.challenge_ttl_seconds, infra.settings)
    #: the throttle as the login use cases see it: counting lockouts, and MFA failures for
    #: the MFA use case (finbank_adapters.metered)
    login_throttle_metered = providers.Singleton(metered_login_throttle, inner=login_throttle)
    mfa_throttle_metered = providers.Singleton(
        metered_login_throttle, inner=login_throttle, mfa=True
    )

    sign_up = providers.Factory(auth.SignUp, provider=identity_provider)
    confirm_sign_up = providers.Factory(auth.ConfirmSignUp, provider=identity_provider)
    password_login = providers.Factory(
        auth.PasswordLogin,
        provider=identity_provider,
        challenges=challenge_store,
        throttle=login_throttle_metered,
        clock=infra.clock,
        challenge_ttl_seconds=challenge_ttl_seconds,
    )
    answer_challenge = providers.Factory(
        auth.AnswerChallenge,
        provider=identity_provider,
        challenges=challenge_store,
        throttle=mfa_throttle_metered,
        clock=infra.clock,
        challenge_ttl_seconds=challenge_ttl_seconds,
        max_attempts=providers.Callable(settings_field("auth.mfa_max_attempts"), infra.settings),
    )
    select_mfa_type = providers.Factory(auth.SelectMfaType, answer_challenge=answer_challenge)
    authenticate = providers.Factory(
        auth.Authenticate, verifier=token_verifier, denylist=token_denylist
    )
    refresh_tokens = providers.Factory(auth.Refresh, provider=identity_provider)
    logout = providers.Factory(
        auth.Logout,
        provider=identity_provider,
        authenticate=authenticate,
        denylist=token_denylist,
        clock=infra.clock,
    )
    set_up_totp = providers.Factory(
        auth.SetUpTotp, provider=identity_provider, authenticate=authenticate
    )
    verify_totp = providers.Factory(
        auth.VerifyTotp, provider=identity_provider, authenticate=authenticate
    )
