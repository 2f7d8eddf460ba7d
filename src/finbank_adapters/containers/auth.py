"""Auth: users, MFA challenges, the login throttle, tokens and the auth use cases."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

from dependency_injector import containers, providers

from finbank_adapters import auth_wiring
from finbank_adapters._extras import require_extra
from finbank_adapters.containers.infrastructure import OnDemand, settings_field
from finbank_adapters.crypto.envelope import EnvelopeCipher, LocalKeyEncryptionKey, parse_keyring
from finbank_adapters.local_auth import LocalIdentityProvider, LocalTokenVerifier
from finbank_adapters.memory.auth import (
    InMemoryChallengeStore,
    InMemoryLoginThrottle,
    InMemoryRefreshTokenStore,
    InMemoryTokenDenylist,
)
from finbank_adapters.memory.step_up import InMemoryStepUpStore
from finbank_adapters.memory.users import InMemoryUserStore
from finbank_adapters.metered import metered_login_throttle
from finbank_adapters.settings import Settings
from finbank_core.auth import credentials
from finbank_core.auth import step_up as step_ups
from finbank_core.auth import use_cases as auth
from finbank_core.shared.clock import Clock


async def _secrets_cipher(settings: Settings) -> AsyncIterator[EnvelopeCipher]:
    """The envelope cipher of TOTP secrets and MFA sessions at rest (docs/auth.md).

    A KMS key when ``FINBANK_AUTH_SECRETS_KMS_KEY_ID`` is set; else the keys of
    ``FINBANK_AUTH_SECRETS_KEYS``; else a key derived from the JWT signing secret
    (HKDF-SHA256, its own id) so that an existing deployment keeps working;
    on the memory profile with none of these, a random key of the process.
    On the aws profile a KMS key (or explicit keys) is required: ``SettingsError``.

    Opened on demand, by the first store that seals or opens a secret: the
    relay, the workers and the jobs never touch auth secrets and need none of
    these settings (nor ``FINBANK_JWT_SECRET``).
    """
    settings.require_auth_secrets_key()
    options = settings.auth
    local = parse_keyring(options.secrets_keys)
    if options.secrets_kms_key_id:
        require_extra("FINBANK_AUTH_SECRETS_KMS_KEY_ID", "aws", ["aioboto3", "botocore"])
        import aioboto3

        from finbank_adapters.crypto.kms import KmsKeyEncryptionKey

        session = aioboto3.Session()
        async with session.client(
            "kms", region_name=settings.aws.region, endpoint_url=settings.aws.endpoint_url or None
        ) as client:
            previous = [
                KmsKeyEncryptionKey(client, key_id.strip())
                for key_id in options.secrets_previous_kms_key_ids.split(",")
                if key_id.strip()
            ]
            current = KmsKeyEncryptionKey(client, options.secrets_kms_key_id)
            yield EnvelopeCipher(current, [*previous, *local])
        return
    if local:
        yield EnvelopeCipher(local[0], local[1:])
        return
    yield EnvelopeCipher(derived_key_encryption_key(settings))


def derived_key_encryption_key(settings: Settings) -> LocalKeyEncryptionKey:
    """A KEK derived from the JWT secret (random per process on the memory profile)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"finbank secrets at rest v1"
    ).derive(settings.jwt_secret_bytes())
    fingerprint = hashlib.sha256(b"finbank key id\x00" + key).hexdigest()[:16]
    return LocalKeyEncryptionKey(f"derived-{fingerprint}", key)


def _postgres_user_store(pool: Any, cipher: EnvelopeCipher) -> Any:
    from finbank_adapters.postgres import PostgresUserStore

    return PostgresUserStore(pool, cipher)


def _redis_challenge_store(
    client: Any, clock: Clock, settings: Settings, cipher: EnvelopeCipher
) -> Any:
    from finbank_adapters.redis import RedisChallengeStore

    return RedisChallengeStore(client, clock, key_prefix=settings.redis.key_prefix, cipher=cipher)


def _redis_step_up_store(client: Any, clock: Clock, settings: Settings) -> Any:
    from finbank_adapters.redis.step_up import RedisStepUpStore

    return RedisStepUpStore(client, clock, key_prefix=settings.redis.key_prefix)


class AuthContainer(containers.DeclarativeContainer):
    """The identity provider (local or Cognito), its stores, and the auth use cases."""

    infra = providers.DependenciesContainer()

    #: seals TOTP secrets and MFA sessions at rest (a KMS client is opened with it if needed);
    #: on demand: only a process that reads or writes them (serve, the re-wrap) opens it
    secrets_cipher = OnDemand(_secrets_cipher, settings=infra.settings)
    user_store = providers.Selector(
        providers.Callable(settings_field("backends.users"), infra.settings),
        memory=providers.Singleton(InMemoryUserStore, cipher=secrets_cipher),
        postgres=providers.Singleton(
            _postgres_user_store, pool=infra.postgres_pool, cipher=secrets_cipher
        ),
    )
    challenge_store = providers.Selector(
        providers.Callable(settings_field("backends.challenges"), infra.settings),
        memory=providers.Singleton(
            InMemoryChallengeStore, clock=infra.clock, cipher=secrets_cipher
        ),
        redis=providers.Singleton(
            _redis_challenge_store,
            client=infra.redis_client,
            clock=infra.clock,
            settings=infra.settings,
            cipher=secrets_cipher,
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
    #: outstanding step-up tokens: in Redis wherever MFA challenges are
    step_up_store = providers.Selector(
        providers.Callable(settings_field("backends.challenges"), infra.settings),
        memory=providers.Singleton(InMemoryStepUpStore, clock=infra.clock),
        redis=providers.Singleton(
            _redis_step_up_store,
            client=infra.redis_client,
            clock=infra.clock,
            settings=infra.settings,
        ),
    )
    step_up = providers.Factory(
        step_ups.StepUp,
        authenticate=authenticate,
        provider=identity_provider,
        store=step_up_store,
        throttle=login_throttle,
        clock=infra.clock,
        ttl_seconds=providers.Callable(settings_field("auth.step_up_ttl_seconds"), infra.settings),
    )
    require_step_up = providers.Factory(
        step_ups.RequireStepUp, store=step_up_store, clock=infra.clock
    )
    change_password = providers.Factory(
        credentials.ChangePassword,
        authenticate=authenticate,
        provider=identity_provider,
        throttle=login_throttle,
    )
    disable_totp = providers.Factory(
        credentials.DisableTotp,
        authenticate=authenticate,
        provider=identity_provider,
        require_step_up=require_step_up,
    )
    set_up_totp = providers.Factory(
        auth.SetUpTotp,
        provider=identity_provider,
        authenticate=authenticate,
        require_step_up=require_step_up,
    )
    verify_totp = providers.Factory(
        auth.VerifyTotp, provider=identity_provider, authenticate=authenticate
    )
