"""Daily reconciliation: ledger postings, PIX records and the settlement statement.

The public API of the context: its ports, model, command, use case and
errors. Everything listed in ``__all__`` is importable from here; see
``docs/reconciliation.md``.
"""

from finbank_core.reconciliation.matching import SourceOutOfOrder, match_sources
from finbank_core.reconciliation.model import (
    ClassTotals,
    Direction,
    DiscrepancyClass,
    PendingHold,
    ReconciliationSummary,
    ReconItem,
    ReconLine,
    Source,
)
from finbank_core.reconciliation.ports import (
    FileStore,
    PendingHoldsSource,
    PixRecordsSource,
    ReportSink,
    SettlementPostings,
    SettlementStatementSource,
)
from finbank_core.reconciliation.statement import InvalidStatement, StatementEntry
from finbank_core.reconciliation.use_cases import (
    ReconcileCommand,
    ReconcileDay,
    ReconciliationSettings,
)

__all__ = [
    "ClassTotals",
    "Direction",
    "DiscrepancyClass",
    "FileStore",
    "InvalidStatement",
    "PendingHold",
    "PendingHoldsSource",
    "PixRecordsSource",
    "ReconItem",
    "ReconLine",
    "ReconcileCommand",
    "ReconcileDay",
    "ReconciliationSettings",
    "ReconciliationSummary",
    "ReportSink",
    "SettlementPostings",
    "SettlementStatementSource",
    "Source",
    "SourceOutOfOrder",
    "StatementEntry",
    "match_sources",
]
