"""Messages exchanged with the PIX network (SPI), as domain values.

``PaymentOrder`` stands for a pacs.008, ``ReturnOrder`` for a pacs.004,
``NetworkResult`` for the pacs.002 that answers them, ``IncomingPixOrder`` for
a pacs.008 another institution sends to us.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.payments import Initiation, PixParty
from finbank_core.pix.refunds import RefundNature
from finbank_core.shared.money import Money
from finbank_core.shared.privacy import masked_repr


class PaymentOrder(msgspec.Struct, frozen=True, kw_only=True):
    end_to_end_id: str
    amount: Money
    payer: PixParty
    payee: PixParty
    initiation: Initiation
    #: personal data: never logged
    payee_key: str | None = None
    txid: str | None = None
    description: str | None = None

    __repr__ = masked_repr("payee_key")


class ReturnOrder(msgspec.Struct, frozen=True, kw_only=True):
    return_id: str
    original_end_to_end_id: str
    amount: Money
    nature: RefundNature
    #: the institution that receives the money back (the original payer's)
    to_ispb: str
    description: str | None = None

    @property
    def reason(self) -> IsoReason:
        return self.nature.reason


class NetworkResult(msgspec.Struct, frozen=True, kw_only=True):
    """The network's answer: accepted (``ACSC``) or rejected (``RJCT``) with a reason."""

    accepted: bool
    reason: IsoReason | None = None
    settled_at: datetime | None = None

    @classmethod
    def accept(cls, settled_at: datetime | None = None) -> NetworkResult:
        return cls(accepted=True, settled_at=settled_at)

    @classmethod
    def reject(cls, reason: IsoReason) -> NetworkResult:
        return cls(accepted=False, reason=reason)


class IncomingPixOrder(msgspec.Struct, frozen=True, kw_only=True):
    """A payment another institution settled to one of our accounts.

    The payee is named by a key (looked up in our part of the directory) or
    by branch and account number.
    """

    end_to_end_id: str
    amount: Money
    payer: PixParty
    payee_key: str | None = None
    payee_branch: str | None = None
    payee_account_number: str | None = None
    txid: str | None = None
    description: str | None = None
    initiation: Initiation = Initiation.KEY

    __repr__ = masked_repr("payee_key")
