"""Refunds (devoluções) of received PIX payments and their state machine.

``EM_PROCESSAMENTO -> DEVOLVIDO | NAO_REALIZADO``; both ends are final. A
refund lives inside the payment it returns (``PixPayment.refunds``), so the
rule "refunds add up to at most the original" is checked and written with
the payment's optimistic version: two concurrent refunds cannot both pass.
"""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec

from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.errors import IllegalPixTransition
from finbank_core.shared.money import Money

#: A payment can be refunded within 90 days of its settlement
REFUND_WINDOW_DAYS = 90


class RefundNature(enum.StrEnum):
    """The natures of a return, as the central bank's API names them."""

    ORIGINAL = "ORIGINAL"
    RETIRADA = "RETIRADA"
    MED_OPERACIONAL = "MED_OPERACIONAL"
    MED_FRAUDE = "MED_FRAUDE"

    @property
    def reason(self) -> IsoReason:
        """The ISO reason code a return of this nature carries."""
        return _REASON_BY_NATURE[self]


_REASON_BY_NATURE = {
    RefundNature.ORIGINAL: IsoReason.MD06,
    RefundNature.RETIRADA: IsoReason.SL02,
    RefundNature.MED_OPERACIONAL: IsoReason.BE08,
    RefundNature.MED_FRAUDE: IsoReason.FR01,
}

#: natures a customer may ask for; MED returns are started by the bank (infraction reports)
CUSTOMER_NATURES = frozenset({RefundNature.ORIGINAL, RefundNature.RETIRADA})


class RefundStatus(enum.StrEnum):
    EM_PROCESSAMENTO = "EM_PROCESSAMENTO"
    DEVOLVIDO = "DEVOLVIDO"
    NAO_REALIZADO = "NAO_REALIZADO"


class PixRefund(msgspec.Struct, frozen=True, kw_only=True):
    """One return of (part of) a received payment.

    ``return_id`` is the network's rtrId (``D...``); ``client_refund_id`` is
    the idempotency key the receiver chose; ``request_fingerprint`` tells a
    replay from a reuse of that key with another body.
    """

    return_id: str
    client_refund_id: str
    amount: Money
    nature: RefundNature
    status: RefundStatus
    requested_at: datetime
    request_fingerprint: str
    description: str | None = None
    completed_at: datetime | None = None
    failure_reason: IsoReason | None = None

    @property
    def reason(self) -> IsoReason:
        return self.nature.reason

    @property
    def counts_against_original(self) -> bool:
        """In progress or done: a failed refund frees its amount again."""
        return self.status is not RefundStatus.NAO_REALIZADO

    def complete(self, now: datetime) -> PixRefund:
        """``EM_PROCESSAMENTO -> DEVOLVIDO``; raises ``IllegalPixTransition`` otherwise."""
        self._require_in_progress(RefundStatus.DEVOLVIDO)
        return msgspec.structs.replace(self, status=RefundStatus.DEVOLVIDO, completed_at=now)

    def fail(self, reason: IsoReason, now: datetime) -> PixRefund:
        """``EM_PROCESSAMENTO -> NAO_REALIZADO`` with the network's reason."""
        self._require_in_progress(RefundStatus.NAO_REALIZADO)
        return msgspec.structs.replace(
            self, status=RefundStatus.NAO_REALIZADO, completed_at=now, failure_reason=reason
        )

    def _require_in_progress(self, target: RefundStatus) -> None:
        if self.status is not RefundStatus.EM_PROCESSAMENTO:
            raise IllegalPixTransition(
                f"a refund cannot go from {self.status.value} to {target.value}",
                current=self.status.value,
                target=target.value,
            )
