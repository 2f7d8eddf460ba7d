"""ISO 20022 reason codes the PIX network (SPI) uses in pacs.002 and pacs.004."""

from __future__ import annotations

import enum


class IsoReason(enum.StrEnum):
    """Why a payment was rejected or a return was made.

    The first group appears in rejections (pacs.002 ``RJCT``), the second as
    the reason of a return (pacs.004), one per refund nature.
    """

    AB03 = "AB03"  #: timeout: the receiving institution did not answer in time
    AB09 = "AB09"  #: error at the receiving institution
    AC03 = "AC03"  #: invalid creditor account (number, branch or holder)
    AC06 = "AC06"  #: creditor account blocked
    AC07 = "AC07"  #: creditor account closed
    AG03 = "AG03"  #: transaction type not supported for this account
    AM02 = "AM02"  #: amount over a limit
    AM04 = "AM04"  #: insufficient funds
    AM09 = "AM09"  #: wrong amount: a return over the original
    BE01 = "BE01"  #: the holder's document does not match the account
    DS04 = "DS04"  #: order rejected by the receiving institution
    DT05 = "DT05"  #: invalid date: a return after its deadline
    RR04 = "RR04"  #: regulatory reason
    # reasons of returns (devolução), by nature
    MD06 = "MD06"  #: ORIGINAL: refund requested by the receiver
    SL02 = "SL02"  #: RETIRADA: refund of a Pix Saque / Pix Troco
    BE08 = "BE08"  #: MED_OPERACIONAL: operational failure of the institution
    FR01 = "FR01"  #: MED_FRAUDE: founded fraud suspicion
