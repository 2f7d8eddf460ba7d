"""MED use cases, one module per flow: ``block``, ``report``, ``analysis``, ``refund``,
``payer`` (the answers and returns when we are the payer's bank), ``view``,
``sweep`` (the reader of last resort: what is due when nobody reads it).

``common.MedDeps`` carries the ports they all take; ``tracing`` places a
case's holds, following the money inside this bank.
"""

from finbank_core.pix.med.use_cases.analysis import (
    AnalyseInfractionReport,
    AnalyseInfractionReportCommand,
    AnalysisResult,
)
from finbank_core.pix.med.use_cases.block import (
    PlacePrecautionaryBlock,
    PlacePrecautionaryBlockCommand,
    PrecautionaryBlockResult,
    ReleasePrecautionaryBlock,
    ReleasePrecautionaryBlockCommand,
)
from finbank_core.pix.med.use_cases.common import MedDeps
from finbank_core.pix.med.use_cases.payer import (
    ReceiveMedAnalysis,
    ReceiveMedAnalysisCommand,
    ReceiveMedReturn,
    ReceiveMedReturnCommand,
)
from finbank_core.pix.med.use_cases.refund import (
    ExecuteMedReturns,
    ExecuteMedReturnsCommand,
    MedRefundResult,
    RequestMedRefund,
    RequestMedRefundCommand,
)
from finbank_core.pix.med.use_cases.report import (
    ContestPixPayment,
    ContestPixPaymentCommand,
    InfractionReportResult,
    ReceiveInfractionReport,
    ReceiveInfractionReportCommand,
)
from finbank_core.pix.med.use_cases.sweep import SweepMed, SweepMedCommand, SweepMedResult
from finbank_core.pix.med.use_cases.tracing import BlockTracer, Hop, outgoing_hops
from finbank_core.pix.med.use_cases.view import GetMedView, MedViewQuery

__all__ = [
    "AnalyseInfractionReport",
    "AnalyseInfractionReportCommand",
    "AnalysisResult",
    "BlockTracer",
    "ContestPixPayment",
    "ContestPixPaymentCommand",
    "ExecuteMedReturns",
    "ExecuteMedReturnsCommand",
    "GetMedView",
    "Hop",
    "InfractionReportResult",
    "MedDeps",
    "MedRefundResult",
    "MedViewQuery",
    "PlacePrecautionaryBlock",
    "PlacePrecautionaryBlockCommand",
    "PrecautionaryBlockResult",
    "ReceiveInfractionReport",
    "ReceiveInfractionReportCommand",
    "ReceiveMedAnalysis",
    "ReceiveMedAnalysisCommand",
    "ReceiveMedReturn",
    "ReceiveMedReturnCommand",
    "ReleasePrecautionaryBlock",
    "ReleasePrecautionaryBlockCommand",
    "RequestMedRefund",
    "RequestMedRefundCommand",
    "SweepMed",
    "SweepMedCommand",
    "SweepMedResult",
    "outgoing_hops",
]
