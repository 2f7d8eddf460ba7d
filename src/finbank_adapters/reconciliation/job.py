"""The reconciliation job wired from settings and the container.

One function, :func:`reconcile_day`, used by ``finbank reconcile`` (also the
AWS Batch job's command) and by the Lambda entry point in
:mod:`finbank_adapters.reconciliation.lambda_handler`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from finbank_adapters.container import Container, open_container, resolve
from finbank_adapters.files import InMemoryFileStore, LocalFileStore
from finbank_adapters.memory.ledger import InMemoryLedger
from finbank_adapters.reconciliation.pix_sources import PixLedgerPostings, PixRecordsFromRepository
from finbank_adapters.reconciliation.report import FileStoreReportSink
from finbank_adapters.reconciliation.sources import FileStatementSource
from finbank_adapters.settings import Settings, SettingsError
from finbank_core.reconciliation.model import ReconciliationSummary, ReconLine
from finbank_core.reconciliation.ports import FileStore, PendingHoldsSource, ReportSink
from finbank_core.reconciliation.use_cases import (
    BUSINESS_TZ,
    ReconcileCommand,
    ReconcileDay,
    ReconciliationSettings,
)

Progress = Callable[[ReconLine], None]


def yesterday(now: datetime) -> date:
    """The business day a nightly run reconciles by default."""
    return (now.astimezone(ZoneInfo(BUSINESS_TZ)) - timedelta(days=1)).date()


@contextlib.asynccontextmanager
async def open_file_store(settings: Settings) -> AsyncIterator[FileStore]:
    if settings.backends.files == "local":
        yield LocalFileStore(settings.files.root)
    elif settings.backends.files == "memory":
        yield InMemoryFileStore()
    elif settings.backends.files == "s3":
        if not settings.files.s3_bucket:
            raise SettingsError("FINBANK_FILES_S3_BUCKET is required with FINBANK_FILES_BACKEND=s3")
        import aioboto3

        from finbank_adapters.files.s3 import S3FileStore

        session = aioboto3.Session()
        async with session.client(
            "s3",
            region_name=settings.aws.region,
            endpoint_url=settings.aws.endpoint_url or None,
        ) as client:
            yield S3FileStore(client, settings.files.s3_bucket, settings.files.s3_prefix)
    else:
        raise SettingsError("FINBANK_FILES_BACKEND must be local, s3 or memory")


class _ProgressSink:
    """Passes lines to the real sink and tells a progress callback."""

    def __init__(self, inner: ReportSink, progress: Progress) -> None:
        self._inner = inner
        self._progress = progress

    async def add(self, line: ReconLine) -> None:
        self._progress(line)
        await self._inner.add(line)

    async def finish(self, summary: ReconciliationSummary) -> list[str]:
        return await self._inner.finish(summary)


async def _holds_source(
    container: Container, settings: Settings, ledger: Any
) -> PendingHoldsSource:
    if isinstance(ledger, InMemoryLedger):
        return ledger
    if settings.backends.ledger == "postgres":
        from finbank_adapters.postgres.holds import PostgresPendingHolds

        return PostgresPendingHolds(await resolve(container.postgres_pool()))
    raise SettingsError(f"no pending-holds source for ledger backend {settings.backends.ledger}")


async def reconcile_day(
    container: Container,
    business_day: date,
    *,
    apply: bool,
    progress: Progress | None = None,
) -> ReconciliationSummary:
    """Reconcile ``business_day`` with the adapters the settings name (container opened here)."""
    settings: Settings = container.settings()
    await open_container(container)
    ledger = await resolve(container.ledger())
    async with open_file_store(settings) as files:
        day = business_day.isoformat()
        sink: ReportSink = FileStoreReportSink(
            files, settings.reconciliation.report_prefix.format(date=day)
        )
        if progress is not None:
            sink = _ProgressSink(sink, progress)
        use_case = ReconcileDay(
            postings=PixLedgerPostings(ledger),
            records=PixRecordsFromRepository(await resolve(container.pix_payment_repository())),
            statement=FileStatementSource(
                files,
                path_for_day=lambda d: settings.reconciliation.statement_path.format(
                    date=d.isoformat()
                ),
            ),
            holds=await _holds_source(container, settings, ledger),
            ledger=ledger,
            sink=sink,
            publisher=await resolve(container.events()),
            clock=container.clock(),
            ids=container.ids(),
            settings=ReconciliationSettings(
                day_boundary_tolerance_seconds=settings.reconciliation.tolerance_seconds,
                max_hold_age_seconds=settings.reconciliation.max_hold_age_seconds,
            ),
        )
        return await use_case(ReconcileCommand(business_day=business_day, apply=apply))
