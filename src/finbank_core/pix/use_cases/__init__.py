"""The PIX use cases and their commands, in one place (what the container wires)."""

from finbank_core.pix.context import PixDeps
from finbank_core.pix.use_cases.charge import (
    ChargeView,
    CreateCharge,
    CreateChargeCommand,
    GetCharge,
    QrFormat,
    QrKind,
    RemoveCharge,
    RenderChargeQr,
)
from finbank_core.pix.use_cases.keys import (
    DeletePixKey,
    ListPixKeys,
    RegisterPixKey,
    RegisterPixKeyCommand,
)
from finbank_core.pix.use_cases.limits import LimitsView, PixLimiter, SetPixLimits
from finbank_core.pix.use_cases.receive import (
    AcceptIncomingPix,
    IncomingAccepted,
    IncomingPixAcceptance,
    ReceivePix,
    ReceivePixResult,
)
from finbank_core.pix.use_cases.refund import (
    RefundPix,
    RefundPixCommand,
    RefundPixResult,
    SettlePixRefund,
)
from finbank_core.pix.use_cases.sandbox import SimulateIncomingPix
from finbank_core.pix.use_cases.send import AccountData, SendPix, SendPixCommand, SendPixResult
from finbank_core.pix.use_cases.settle import GetPixPayment, SettlePixPayment

__all__ = [
    "AcceptIncomingPix",
    "AccountData",
    "ChargeView",
    "CreateCharge",
    "CreateChargeCommand",
    "DeletePixKey",
    "GetCharge",
    "GetPixPayment",
    "IncomingAccepted",
    "IncomingPixAcceptance",
    "LimitsView",
    "ListPixKeys",
    "PixDeps",
    "PixLimiter",
    "QrFormat",
    "QrKind",
    "ReceivePix",
    "ReceivePixResult",
    "RefundPix",
    "RefundPixCommand",
    "RefundPixResult",
    "RegisterPixKey",
    "RegisterPixKeyCommand",
    "RemoveCharge",
    "RenderChargeQr",
    "SendPix",
    "SendPixCommand",
    "SendPixResult",
    "SetPixLimits",
    "SettlePixPayment",
    "SettlePixRefund",
    "SimulateIncomingPix",
]
