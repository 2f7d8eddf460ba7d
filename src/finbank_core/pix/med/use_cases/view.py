"""What a payment shows of MED: its case and its precautionary block, caught up to now."""

from __future__ import annotations

import msgspec

from finbank_core.pix.errors import PixPaymentNotFound
from finbank_core.pix.med.model import MedView
from finbank_core.pix.med.use_cases.common import MedDeps
from finbank_core.pix.med.use_cases.payer import finish_taken_returns
from finbank_core.shared.inputs import check_lookup_id


class MedViewQuery(msgspec.Struct, frozen=True, kw_only=True):
    end_to_end_id: str
    #: a customer sees only their own payments' (``PixPaymentNotFound``); ``None``: back office
    owner_id: str | None = None


class GetMedView:
    """The payment's MED case and block; a deadline that passed is applied first (once),
    and, as the payer's bank, a return the case took whose delivery stopped before the
    money or the record is finished first (credited once, ``DEVOLVIDO``)."""

    def __init__(self, deps: MedDeps) -> None:
        self._d = deps

    async def __call__(self, query: MedViewQuery) -> MedView:
        check_lookup_id(query.end_to_end_id, "end_to_end_id")
        d = self._d
        payment = await d.payments.get(query.end_to_end_id)  # PixPaymentNotFound if unknown
        if query.owner_id is not None and not payment.is_visible_to(query.owner_id):
            raise PixPaymentNotFound()
        return MedView(
            end_to_end_id=query.end_to_end_id,
            case=await finish_taken_returns(d, await d.current_case(query.end_to_end_id)),
            block=await d.current_block(query.end_to_end_id),
        )
