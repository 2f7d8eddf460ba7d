"""The PIX use cases, one module per flow, and their commands and results.

``send`` (pay by key, BR Code or account data), ``receive`` (payments from
other institutions), ``refund``, ``charge`` (cob), ``keys`` (the DICT),
``limits``, ``settle`` (what the settlement worker runs) and ``sandbox``.
Each use case takes its ports and services as keyword arguments (the ledger
steps and events are :mod:`finbank_core.pix.ledger_steps`) and does its work
in ``__call__``. Everything here is also exported by :mod:`finbank_core.pix`.
"""

from finbank_core.pix.use_cases.charge import (
    ChargeResult,
    CreateCharge,
    CreateChargeCommand,
    GetCharge,
    GetChargeQuery,
    QrFormat,
    QrKind,
    RemoveCharge,
    RemoveChargeCommand,
    RenderChargeQr,
    RenderChargeQrQuery,
)
from finbank_core.pix.use_cases.devices import ListPixDevices, ListPixDevicesQuery, PixDevice
from finbank_core.pix.use_cases.keys import (
    DeletePixKey,
    DeletePixKeyCommand,
    ListPixKeys,
    ListPixKeysQuery,
    RegisterPixKey,
    RegisterPixKeyCommand,
)
from finbank_core.pix.use_cases.limit_changes import (
    CancelPixLimitRaise,
    CancelPixLimitRaiseCommand,
    GetPixLimits,
    GetPixLimitsQuery,
)
from finbank_core.pix.use_cases.limits import (
    PixLimiter,
    PixLimitsResult,
    SetPixLimits,
    SetPixLimitsCommand,
)
from finbank_core.pix.use_cases.list_payments import ListPixPayments, ListPixPaymentsQuery
from finbank_core.pix.use_cases.receive import (
    AcceptIncomingPix,
    AcceptIncomingPixResult,
    IncomingAccepted,
    ReceivePix,
    ReceivePixResult,
)
from finbank_core.pix.use_cases.refund import (
    RefundPix,
    RefundPixCommand,
    RefundPixResult,
    SettlePixRefund,
    SettlePixRefundCommand,
)
from finbank_core.pix.use_cases.sandbox import SimulateIncomingPix, SimulateIncomingPixCommand
from finbank_core.pix.use_cases.send import AccountData, SendPix, SendPixCommand, SendPixResult
from finbank_core.pix.use_cases.settle import (
    GetPixPayment,
    GetPixPaymentQuery,
    SettlePixPayment,
    SettlePixPaymentCommand,
)

__all__ = [
    "AcceptIncomingPix",
    "AcceptIncomingPixResult",
    "AccountData",
    "CancelPixLimitRaise",
    "CancelPixLimitRaiseCommand",
    "ChargeResult",
    "CreateCharge",
    "CreateChargeCommand",
    "DeletePixKey",
    "DeletePixKeyCommand",
    "GetCharge",
    "GetChargeQuery",
    "GetPixLimits",
    "GetPixLimitsQuery",
    "GetPixPayment",
    "GetPixPaymentQuery",
    "IncomingAccepted",
    "ListPixDevices",
    "ListPixDevicesQuery",
    "ListPixKeys",
    "ListPixKeysQuery",
    "ListPixPayments",
    "ListPixPaymentsQuery",
    "PixDevice",
    "PixLimiter",
    "PixLimitsResult",
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
    "RemoveChargeCommand",
    "RenderChargeQr",
    "RenderChargeQrQuery",
    "SendPix",
    "SendPixCommand",
    "SendPixResult",
    "SetPixLimits",
    "SetPixLimitsCommand",
    "SettlePixPayment",
    "SettlePixPaymentCommand",
    "SettlePixRefund",
    "SettlePixRefundCommand",
    "SimulateIncomingPix",
    "SimulateIncomingPixCommand",
]
