"""MED (Mecanismo Especial de Devolução) and precautionary blocks of PIX.

``model`` (cases, blocks, returns, :class:`MedRules` with the deadlines),
``ports`` (:class:`MedRepository`, :class:`MedDirectory`), ``errors``,
``events`` (``pix.med.*``), ``ledger`` (the holds) and ``use_cases`` (one
module per flow). The rules and their sources: ``docs/pix-med.md``.
"""

from finbank_core.pix.med.errors import (
    MedAlreadyDecided,
    MedCaseAlreadyExists,
    MedCaseNotFound,
    MedDeadlinePassed,
    MedError,
    MedNotAllowed,
    MedRefundAlreadyRequested,
    MedVersionConflict,
    NothingToBlock,
    PrecautionaryBlockAlreadyExists,
)
from finbank_core.pix.med.model import (
    BlockStatus,
    CaseStatus,
    Decision,
    FraudSituation,
    HoldStatus,
    MedBlock,
    MedCase,
    MedReturn,
    MedRules,
    MedSide,
    MedView,
    PrecautionaryBlock,
)
from finbank_core.pix.med.ports import (
    InfractionReportMessage,
    MedDirectory,
    MedRepository,
    RefundRequestMessage,
)

__all__ = [
    "BlockStatus",
    "CaseStatus",
    "Decision",
    "FraudSituation",
    "HoldStatus",
    "InfractionReportMessage",
    "MedAlreadyDecided",
    "MedBlock",
    "MedCase",
    "MedCaseAlreadyExists",
    "MedCaseNotFound",
    "MedDeadlinePassed",
    "MedDirectory",
    "MedError",
    "MedNotAllowed",
    "MedRefundAlreadyRequested",
    "MedRepository",
    "MedReturn",
    "MedRules",
    "MedSide",
    "MedVersionConflict",
    "MedView",
    "NothingToBlock",
    "PrecautionaryBlock",
    "PrecautionaryBlockAlreadyExists",
    "RefundRequestMessage",
]
