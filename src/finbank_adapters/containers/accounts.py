"""Accounts: the ledger, the account repository and the account use cases."""

from __future__ import annotations

from dependency_injector import containers, providers

from finbank_adapters import postgres_wiring
from finbank_adapters.containers.infrastructure import settings_field
from finbank_adapters.memory import InMemoryAccountRepository, InMemoryLedger
from finbank_core.accounts import use_cases as accounts
from finbank_core.accounts.ports import AccountRepository, CheckedTransfers, Ledger


class AccountsContainer(containers.DeclarativeContainer):
    """The ledger and account ports (memory or PostgreSQL) and the account use cases."""

    infra = providers.DependenciesContainer()
    events = providers.DependenciesContainer()

    ledger: providers.Provider[Ledger] = providers.Selector(
        providers.Callable(settings_field("backends.ledger"), infra.settings),
        memory=providers.Singleton(InMemoryLedger, clock=infra.clock, publisher=events.publisher),
        postgres=providers.Singleton(
            postgres_wiring.postgres_ledger,
            pool=infra.postgres_pool,
            clock=infra.clock,
            settings=infra.settings,
        ),
    )
    account_repository: providers.Provider[AccountRepository] = providers.Selector(
        providers.Callable(settings_field("backends.accounts"), infra.settings),
        memory=providers.Singleton(InMemoryAccountRepository),
        postgres=providers.Singleton(
            postgres_wiring.postgres_account_repository,
            pool=infra.postgres_pool,
            settings=infra.settings,
        ),
    )

    #: InternalTransfer's checks and submission: one PostgreSQL call when both are there
    checked_transfers: providers.Provider[CheckedTransfers] = providers.Singleton(
        postgres_wiring.checked_transfers,
        ledger=ledger,
        accounts=account_repository,
        settings=infra.settings,
    )

    ensure_bank_accounts = providers.Factory(accounts.EnsureBankAccounts, ledger=ledger)
    open_account = providers.Factory(
        accounts.OpenAccount,
        ledger=ledger,
        accounts=account_repository,
        publisher=events.publisher,
        clock=infra.clock,
        ids=infra.ids,
    )
    deposit = providers.Factory(
        accounts.Deposit,
        ledger=ledger,
        accounts=account_repository,
        clock=infra.clock,
        ids=infra.ids,
    )
    withdraw = providers.Factory(
        accounts.Withdraw,
        ledger=ledger,
        accounts=account_repository,
        clock=infra.clock,
        ids=infra.ids,
    )
    internal_transfer = providers.Factory(
        accounts.InternalTransfer,
        ledger=ledger,
        accounts=account_repository,
        clock=infra.clock,
        ids=infra.ids,
        transfers=checked_transfers,
    )
    get_account = providers.Factory(accounts.GetAccount, ledger=ledger, accounts=account_repository)
    list_accounts = providers.Factory(accounts.ListAccounts, accounts=account_repository)
    get_balance = providers.Factory(accounts.GetBalance, ledger=ledger, accounts=account_repository)
    get_statement = providers.Factory(
        accounts.GetStatement, ledger=ledger, accounts=account_repository
    )
