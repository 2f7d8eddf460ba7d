"""The PIX use cases, one module per flow, and their commands and results.

``send`` (pay by key, BR Code or account data), ``receive`` (payments from
other institutions), ``refund``, ``charge`` (cob), ``keys`` (the DICT),
``limits``, ``settle`` (what the settlement worker runs) and ``sandbox``.
Each use case takes its ports and services as keyword arguments (the ledger
steps and events are :mod:`finbank_core.pix.ledger_steps`) and does its work
in ``__call__``. Everything here is also exported by :mod:`finbank_core.pix`.
"""

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
