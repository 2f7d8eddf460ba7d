"""The composition root: the only place that chooses and builds adapters.

One provider per port, each a ``Selector`` over the backends the settings
name; use cases are factories over the ports. Async resources (pools,
clients) are ``Resource`` providers opened by :func:`open_container` and
closed by :func:`close_container` (the HTTP lifespan and CLI commands call
them). Tests override any provider with ``container.<name>.override(...)``.

Once an async resource is part of the graph, calling a provider that depends
on it returns an awaitable; :func:`resolve` hides that difference.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar, cast

from dependency_injector import containers, providers

from finbank_adapters import auth_wiring, aws_wiring, pix_wiring, postgres_wiring
from finbank_adapters.local_auth import LocalIdentityProvider, LocalTokenVerifier
from finbank_adapters.memory import (
    InMemoryAccountRepository,
    InMemoryEventPublisher,
    InMemoryLedger,
    SystemClock,
    UUIDv7Generator,
)
from finbank_adapters.memory.auth import (
    InMemoryChallengeStore,
    InMemoryLoginThrottle,
    InMemoryRefreshTokenStore,
    InMemoryTokenDenylist,
)
from finbank_adapters.memory.claims import InMemoryRequestClaims
from finbank_adapters.memory.users import InMemoryUserStore
from finbank_adapters.settings import Settings
from finbank_core.accounts import use_cases as accounts
from finbank_core.auth import use_cases as auth
from finbank_core.pix import use_cases as pix
from finbank_core.pix.ledger_steps import PixEvents

T = TypeVar("T")


def _settings_field(path: str) -> Any:
    """A callable reading ``settings.<area>.<field>`` (``path`` is "area.field")."""
    area, field = path.split(".")

    def pick(settings: Settings) -> Any:
        return getattr(getattr(settings, area), field)

    return pick


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(Settings.from_env)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(UUIDv7Generator, clock=clock)

    # -- ports -----------------------------------------------------------------
    postgres_pool = providers.Resource(postgres_wiring.postgres_pool, settings=settings)
    events = providers.Selector(
        providers.Callable(_settings_field("backends.events"), settings),
        memory=providers.Singleton(InMemoryEventPublisher),
        postgres=providers.Singleton(postgres_wiring.postgres_event_publisher, pool=postgres_pool),
    )
    ledger = providers.Selector(
        providers.Callable(_settings_field("backends.ledger"), settings),
        memory=providers.Singleton(InMemoryLedger, clock=clock, publisher=events),
        postgres=providers.Singleton(
            postgres_wiring.postgres_ledger, pool=postgres_pool, clock=clock
        ),
    )
    account_repository = providers.Selector(
        providers.Callable(_settings_field("backends.accounts"), settings),
        memory=providers.Singleton(InMemoryAccountRepository),
        postgres=providers.Singleton(
            postgres_wiring.postgres_account_repository, pool=postgres_pool
        ),
    )
    user_store = providers.Selector(
        providers.Callable(_settings_field("backends.users"), settings),
        memory=providers.Singleton(InMemoryUserStore),
        postgres=providers.Singleton(postgres_wiring.postgres_user_store, pool=postgres_pool),
    )
    # -- auth (docs/auth.md) ------------------------------------------------------
    redis_client = providers.Resource(auth_wiring.redis_client, settings=settings)
    cognito_client = providers.Resource(auth_wiring.cognito_client, settings=settings)
    challenge_store = providers.Selector(
        providers.Callable(_settings_field("backends.challenges"), settings),
        memory=providers.Singleton(InMemoryChallengeStore, clock=clock),
        redis=providers.Singleton(
            auth_wiring.redis_challenge_store, client=redis_client, clock=clock, settings=settings
        ),
    )
    login_throttle = providers.Selector(
        providers.Callable(_settings_field("backends.throttle"), settings),
        memory=providers.Singleton(
            InMemoryLoginThrottle,
            clock=clock,
            policy=providers.Callable(auth_wiring.lockout_policy, settings),
        ),
        redis=providers.Singleton(
            auth_wiring.redis_login_throttle, client=redis_client, clock=clock, settings=settings
        ),
    )
    token_denylist = providers.Selector(
        providers.Callable(_settings_field("backends.denylist"), settings),
        memory=providers.Singleton(InMemoryTokenDenylist, clock=clock),
        redis=providers.Singleton(
            auth_wiring.redis_token_denylist, client=redis_client, clock=clock, settings=settings
        ),
        redis_postgres=providers.Singleton(
            auth_wiring.cached_token_denylist,
            pool=postgres_pool,
            client=redis_client,
            clock=clock,
            settings=settings,
        ),
    )
    refresh_token_store = providers.Selector(
        providers.Callable(_settings_field("backends.refresh_tokens"), settings),
        memory=providers.Singleton(InMemoryRefreshTokenStore, clock=clock),
        redis=providers.Singleton(
            auth_wiring.redis_refresh_token_store,
            client=redis_client,
            clock=clock,
            settings=settings,
        ),
    )
    rate_limit_store = providers.Singleton(
        auth_wiring.rate_limit_store, client=redis_client, settings=settings
    )
    token_issuer = providers.Singleton(
        auth_wiring.local_token_issuer, settings=settings, clock=clock
    )
    identity_provider = providers.Selector(
        providers.Callable(_settings_field("backends.identity"), settings),
        local=providers.Singleton(
            LocalIdentityProvider,
            users=user_store,
            tokens=token_issuer,
            refresh_tokens=refresh_token_store,
            denylist=token_denylist,
        ),
        cognito=providers.Singleton(
            auth_wiring.cognito_identity_provider, client=cognito_client, settings=settings
        ),
    )
    token_verifier = providers.Selector(
        providers.Callable(_settings_field("backends.identity"), settings),
        local=providers.Singleton(LocalTokenVerifier, issuer=token_issuer),
        cognito=providers.Singleton(
            auth_wiring.cognito_token_verifier, settings=settings, clock=clock
        ),
    )
    challenge_ttl_seconds = providers.Callable(auth_wiring.challenge_ttl_seconds, settings)

    # -- use cases ---------------------------------------------------------------
    ensure_bank_accounts = providers.Factory(accounts.EnsureBankAccounts, ledger=ledger)
    open_account = providers.Factory(
        accounts.OpenAccount,
        ledger=ledger,
        accounts=account_repository,
        publisher=events,
        clock=clock,
        ids=ids,
    )
    deposit = providers.Factory(
        accounts.Deposit, ledger=ledger, accounts=account_repository, clock=clock, ids=ids
    )
    withdraw = providers.Factory(
        accounts.Withdraw, ledger=ledger, accounts=account_repository, clock=clock, ids=ids
    )
    internal_transfer = providers.Factory(
        accounts.InternalTransfer, ledger=ledger, accounts=account_repository, clock=clock, ids=ids
    )
    get_account = providers.Factory(accounts.GetAccount, ledger=ledger, accounts=account_repository)
    list_accounts = providers.Factory(accounts.ListAccounts, accounts=account_repository)
    get_balance = providers.Factory(accounts.GetBalance, ledger=ledger, accounts=account_repository)
    get_statement = providers.Factory(
        accounts.GetStatement, ledger=ledger, accounts=account_repository
    )
    sign_up = providers.Factory(auth.SignUp, provider=identity_provider)
    confirm_sign_up = providers.Factory(auth.ConfirmSignUp, provider=identity_provider)
    password_login = providers.Factory(
        auth.PasswordLogin,
        provider=identity_provider,
        challenges=challenge_store,
        throttle=login_throttle,
        clock=clock,
        challenge_ttl_seconds=challenge_ttl_seconds,
    )
    answer_challenge = providers.Factory(
        auth.AnswerChallenge,
        provider=identity_provider,
        challenges=challenge_store,
        throttle=login_throttle,
        clock=clock,
        challenge_ttl_seconds=challenge_ttl_seconds,
        max_attempts=providers.Callable(_settings_field("auth.mfa_max_attempts"), settings),
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
        clock=clock,
    )
    set_up_totp = providers.Factory(
        auth.SetUpTotp, provider=identity_provider, authenticate=authenticate
    )
    verify_totp = providers.Factory(
        auth.VerifyTotp, provider=identity_provider, authenticate=authenticate
    )

    # -- PIX (ARCHITECTURE.md "PIX flows"; builders in pix_wiring) -------------------
    # pix_backend=dynamodb puts every PIX store in one DynamoDB table (docs/pix-aws.md):
    # payment records, the key directory, charges, account limits and devices.
    dynamodb_client = providers.Resource(aws_wiring.dynamodb_client, settings=settings)
    pix_payment_repository = providers.Selector(
        providers.Callable(_settings_field("backends.pix"), settings),
        memory=providers.Singleton(pix_wiring.InMemoryPixPaymentRepository),
        dynamodb=providers.Singleton(
            aws_wiring.dynamo_pix_payment_repository, client=dynamodb_client, settings=settings
        ),
    )
    charge_repository = providers.Selector(
        providers.Callable(_settings_field("backends.pix"), settings),
        memory=providers.Singleton(pix_wiring.InMemoryChargeRepository),
        dynamodb=providers.Singleton(
            aws_wiring.dynamo_charge_repository, client=dynamodb_client, settings=settings
        ),
    )
    account_limits_store = providers.Selector(
        providers.Callable(_settings_field("backends.pix"), settings),
        memory=providers.Singleton(pix_wiring.InMemoryAccountLimitsStore),
        dynamodb=providers.Singleton(
            aws_wiring.dynamo_account_limits_store, client=dynamodb_client, settings=settings
        ),
    )
    device_registry = providers.Selector(
        providers.Callable(_settings_field("backends.pix"), settings),
        memory=providers.Singleton(pix_wiring.InMemoryDeviceRegistry),
        dynamodb=providers.Singleton(
            aws_wiring.dynamo_device_registry, client=dynamodb_client, settings=settings
        ),
    )
    # in-flight claims of idempotent PIX requests (a replay meanwhile gets 409 + Retry-After)
    request_claims = providers.Selector(
        providers.Callable(_settings_field("backends.pix"), settings),
        memory=providers.Singleton(InMemoryRequestClaims),
        dynamodb=providers.Singleton(
            aws_wiring.dynamo_request_claims, client=dynamodb_client, settings=settings
        ),
    )
    payment_network = providers.Selector(
        providers.Callable(_settings_field("backends.pix_network"), settings),
        sandbox=providers.Singleton(pix_wiring.simulated_spi, settings=settings, clock=clock),
    )
    key_directory = providers.Selector(
        providers.Callable(_settings_field("backends.pix"), settings),
        memory=providers.Singleton(
            pix_wiring.memory_key_directory, settings=settings, network=payment_network
        ),
        dynamodb=providers.Singleton(
            aws_wiring.dynamo_key_directory,
            client=dynamodb_client,
            settings=settings,
            network=payment_network,
        ),
    )
    pix_location_base_url = providers.Callable(_settings_field("pix.location_base_url"), settings)
    charge_resolver = providers.Singleton(
        pix_wiring.LocalChargeResolver,
        charges=charge_repository,
        location_base_url=pix_location_base_url,
    )
    qr_renderer = providers.Singleton(pix_wiring.qr_renderer)
    limit_policy = providers.Singleton(pix_wiring.limit_policy, settings=settings)
    ispb = providers.Callable(_settings_field("pix.ispb"), settings)
    #: reserve / post / void / credit in the ledger, each safe to repeat
    pix_ledger_steps = providers.Factory(
        pix_wiring.pix_ledger_steps, settings=settings, ledger=ledger
    )
    pix_events = providers.Factory(PixEvents, publisher=events, clock=clock, ids=ids)
    pix_limiter = providers.Factory(
        pix.PixLimiter,
        policy=limit_policy,
        payments=pix_payment_repository,
        limits=account_limits_store,
        devices=device_registry,
    )
    register_pix_key = providers.Factory(
        pix.RegisterPixKey,
        ispb=ispb,
        accounts=account_repository,
        directory=key_directory,
        events=pix_events,
        clock=clock,
        ids=ids,
        max_keys_individual=providers.Callable(
            _settings_field("pix.max_keys_individual"), settings
        ),
        max_keys_company=providers.Callable(_settings_field("pix.max_keys_company"), settings),
    )
    delete_pix_key = providers.Factory(pix.DeletePixKey, directory=key_directory, events=pix_events)
    list_pix_keys = providers.Factory(
        pix.ListPixKeys, accounts=account_repository, directory=key_directory
    )
    settle_pix_payment = providers.Factory(
        pix.SettlePixPayment,
        payments=pix_payment_repository,
        steps=pix_ledger_steps,
        events=pix_events,
        clock=clock,
        network=payment_network,
        charges=charge_repository,
    )
    send_pix = providers.Factory(
        pix.SendPix,
        ispb=ispb,
        accounts=account_repository,
        payments=pix_payment_repository,
        steps=pix_ledger_steps,
        events=pix_events,
        clock=clock,
        ids=ids,
        directory=key_directory,
        resolver=charge_resolver,
        charges=charge_repository,
        limiter=pix_limiter,
        settle_inline=providers.Callable(
            pix_wiring.settle_inline, settings=settings, settle=settle_pix_payment
        ),
        claims=request_claims,
    )
    # pix_inline_settlement (memory profile): refunds settle and incoming payments are
    # credited in the request; otherwise `finbank worker pix-settlement` does it from events.
    pix_inline_settlement = providers.Callable(_settings_field("pix.inline_settlement"), settings)
    receive_pix = providers.Factory(
        pix.ReceivePix,
        ispb=ispb,
        accounts=account_repository,
        payments=pix_payment_repository,
        steps=pix_ledger_steps,
        events=pix_events,
        clock=clock,
        directory=key_directory,
        charges=charge_repository,
    )
    accept_incoming_pix = providers.Factory(
        pix.AcceptIncomingPix,
        ispb=ispb,
        accounts=account_repository,
        payments=pix_payment_repository,
        events=pix_events,
        directory=key_directory,
        receive=receive_pix,
        credit_inline=pix_inline_settlement,
    )
    get_pix_payment = providers.Factory(pix.GetPixPayment, payments=pix_payment_repository)
    settle_pix_refund = providers.Factory(
        pix.SettlePixRefund,
        payments=pix_payment_repository,
        steps=pix_ledger_steps,
        events=pix_events,
        clock=clock,
        network=payment_network,
    )
    refund_pix = providers.Factory(
        pix.RefundPix,
        ispb=ispb,
        accounts=account_repository,
        payments=pix_payment_repository,
        steps=pix_ledger_steps,
        events=pix_events,
        clock=clock,
        ids=ids,
        network=payment_network,
        window_days=providers.Callable(_settings_field("pix.refund_window_days"), settings),
        settle_inline=pix_inline_settlement,
        claims=request_claims,
    )
    set_pix_limits = providers.Factory(
        pix.SetPixLimits,
        accounts=account_repository,
        clock=clock,
        policy=limit_policy,
        store=account_limits_store,
    )
    create_charge = providers.Factory(
        pix.CreateCharge,
        accounts=account_repository,
        charges=charge_repository,
        directory=key_directory,
        events=pix_events,
        clock=clock,
        ids=ids,
        location_base_url=pix_location_base_url,
        merchant_city=providers.Callable(_settings_field("pix.merchant_city"), settings),
        default_expiry_seconds=providers.Callable(
            _settings_field("pix.charge_expiry_seconds"), settings
        ),
    )
    get_charge = providers.Factory(
        pix.GetCharge,
        charges=charge_repository,
        location_base_url=pix_location_base_url,
    )
    render_charge_qr = providers.Factory(
        pix.RenderChargeQr,
        charges=charge_repository,
        renderer=qr_renderer,
        location_base_url=pix_location_base_url,
    )
    simulate_incoming_pix = providers.Factory(
        pix.SimulateIncomingPix,
        accounts=account_repository,
        originator=payment_network,
        accept=accept_incoming_pix,
        peer_ispb=providers.Callable(_settings_field("pix.sandbox_peer_ispb"), settings),
        peer_account_number=pix_wiring.PEER_ACCOUNT_NUMBER,
    )


async def resolve(provided: T | Any) -> T:
    """Await a provider's result when an async resource made it awaitable."""
    if inspect.isawaitable(provided):
        return cast(T, await provided)
    return cast(T, provided)


def build_container(settings: Settings | None = None) -> Container:
    container = Container()
    if settings is not None:
        container.settings.override(providers.Object(settings))
    return container


async def open_container(container: Container) -> None:
    """Open async resources and make sure the bank's own ledger accounts exist."""
    result = container.init_resources()
    if result is not None:
        await result
    ensure: accounts.EnsureBankAccounts = await resolve(container.ensure_bank_accounts())
    await ensure()


async def close_container(container: Container) -> None:
    result = container.shutdown_resources()
    if result is not None:
        await result
