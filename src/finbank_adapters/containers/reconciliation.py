"""Reconciliation: the file store, the pending-holds source and the daily reconciliation.

``FINBANK_FILES_BACKEND`` picks the file store (``local``, ``s3``, ``memory``);
the pending-holds source follows the ledger (the in-memory ledger is its own
source; the PostgreSQL one is read by ``PostgresPendingHolds``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from dependency_injector import containers, providers

from finbank_adapters.containers.infrastructure import settings_field
from finbank_adapters.files import InMemoryFileStore, LocalFileStore
from finbank_adapters.reconciliation.pix_sources import PixLedgerPostings, PixRecordsFromRepository
from finbank_adapters.reconciliation.report import FileStoreReportSink
from finbank_adapters.reconciliation.sources import FileStatementSource
from finbank_adapters.settings import Settings, SettingsError
from finbank_core.reconciliation import use_cases as reconciliation


def s3_file_store(client: Any, settings: Settings) -> Any:
    from finbank_adapters.files.s3 import S3FileStore

    if not settings.files.s3_bucket:
        raise SettingsError("FINBANK_FILES_S3_BUCKET is required with FINBANK_FILES_BACKEND=s3")
    return S3FileStore(client, settings.files.s3_bucket, settings.files.s3_prefix)


def postgres_pending_holds(pool: Any) -> Any:
    from finbank_adapters.postgres.holds import PostgresPendingHolds

    return PostgresPendingHolds(pool)


def statement_paths(settings: Settings) -> Callable[[date], str]:
    """Where the bank's statement of a day is (``FINBANK_STATEMENT_PATH``)."""

    def path_for_day(day: date) -> str:
        return settings.reconciliation.statement_path.format(date=day.isoformat())

    return path_for_day


def reconciliation_settings(settings: Settings) -> reconciliation.ReconciliationSettings:
    return reconciliation.ReconciliationSettings(
        day_boundary_tolerance_seconds=settings.reconciliation.tolerance_seconds,
        max_hold_age_seconds=settings.reconciliation.max_hold_age_seconds,
    )


class ReconciliationContainer(containers.DeclarativeContainer):
    """The file store, sources and sink of the daily reconciliation, and the use case."""

    infra = providers.DependenciesContainer()
    events = providers.DependenciesContainer()
    accounts = providers.DependenciesContainer()
    pix = providers.DependenciesContainer()

    file_store = providers.Selector(
        providers.Callable(settings_field("backends.files"), infra.settings),
        local=providers.Singleton(
            LocalFileStore, providers.Callable(settings_field("files.root"), infra.settings)
        ),
        memory=providers.Singleton(InMemoryFileStore),
        s3=providers.Singleton(s3_file_store, client=infra.s3_client, settings=infra.settings),
    )
    pending_holds = providers.Selector(
        providers.Callable(settings_field("backends.ledger"), infra.settings),
        memory=accounts.ledger,  # InMemoryLedger answers the holds query itself
        postgres=providers.Singleton(postgres_pending_holds, pool=infra.postgres_pool),
    )
    #: call with ``prefix=<the run's report prefix>``
    report_sink = providers.Factory(FileStoreReportSink, files=file_store)
    statement = providers.Factory(
        FileStatementSource,
        files=file_store,
        path_for_day=providers.Callable(statement_paths, infra.settings),
    )
    #: call with ``sink=<the run's report sink>``
    reconcile_day = providers.Factory(
        reconciliation.ReconcileDay,
        postings=providers.Factory(PixLedgerPostings, accounts.ledger),
        records=providers.Factory(PixRecordsFromRepository, pix.pix_payment_repository),
        statement=statement,
        holds=pending_holds,
        ledger=accounts.ledger,
        publisher=events.publisher,
        clock=infra.clock,
        ids=infra.ids,
        settings=providers.Callable(reconciliation_settings, infra.settings),
    )
