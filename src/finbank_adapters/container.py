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

from finbank_adapters.local_auth import LocalIdentityProvider, LocalTokenIssuer, LocalTokenVerifier
from finbank_adapters.memory import (
    InMemoryAccountRepository,
    InMemoryEventPublisher,
    InMemoryLedger,
    SystemClock,
    UUIDv7Generator,
)
from finbank_adapters.memory.users import InMemoryUserStore
from finbank_adapters.settings import Settings
from finbank_core.accounts import use_cases as accounts
from finbank_core.auth import use_cases as auth

T = TypeVar("T")


def _settings_field(name: str) -> Any:
    def pick(settings: Settings) -> Any:
        return getattr(settings, name)

    return pick


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(Settings.from_env)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(UUIDv7Generator, clock=clock)

    # -- ports -----------------------------------------------------------------
    events = providers.Selector(
        providers.Callable(_settings_field("events_backend"), settings),
        memory=providers.Singleton(InMemoryEventPublisher),
    )
    ledger = providers.Selector(
        providers.Callable(_settings_field("ledger_backend"), settings),
        memory=providers.Singleton(InMemoryLedger, clock=clock, publisher=events),
    )
    account_repository = providers.Selector(
        providers.Callable(_settings_field("accounts_backend"), settings),
        memory=providers.Singleton(InMemoryAccountRepository),
    )
    user_store = providers.Selector(
        providers.Callable(_settings_field("users_backend"), settings),
        memory=providers.Singleton(InMemoryUserStore),
    )
    token_issuer = providers.Singleton(
        lambda settings, clock: LocalTokenIssuer(
            secret=settings.jwt_secret_bytes(),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            clock=clock,
            access_ttl_seconds=settings.access_token_ttl_seconds,
        ),
        settings=settings,
        clock=clock,
    )
    identity_provider = providers.Selector(
        providers.Callable(_settings_field("identity_backend"), settings),
        local=providers.Singleton(LocalIdentityProvider, users=user_store, tokens=token_issuer),
    )
    token_verifier = providers.Selector(
        providers.Callable(_settings_field("identity_backend"), settings),
        local=providers.Singleton(LocalTokenVerifier, issuer=token_issuer),
    )

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
    password_login = providers.Factory(auth.PasswordLogin, provider=identity_provider)


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
