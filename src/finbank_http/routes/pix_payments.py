"""``GET /v1/pix/payments``: list my PIX payments, sent and received, newest first, in pages.

The caller names one of their accounts (another customer's answers 404, as
if it did not exist) and may filter by creation time, status and direction.
``next_cursor`` is opaque and sealed to the listing: sent back altered, or
with other filters, it answers 400 ``invalid_input`` naming ``cursor``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from finbank_core.auth.model import Principal
from finbank_core.pix.payments import PaymentDirection, PaymentStatus
from finbank_core.pix.use_cases.list_payments import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ListPixPaymentsQuery,
)
from finbank_core.shared.errors import InvalidInput
from finbank_http.deps import Bank
from finbank_http.pix_schemas import PaymentOut
from finbank_http.problems import problems
from finbank_http.security import BEARER_SCHEME

_STATUSES = ", ".join(s.value for s in PaymentStatus)


class PaymentPageOut(msgspec.Struct, kw_only=True):
    """One page of payments, newest first."""

    items: list[PaymentOut]
    #: pass back as ``cursor`` (with the same filters) for the next page; null on the last
    next_cursor: str | None


def parse_statuses(text: str | None) -> frozenset[PaymentStatus] | None:
    """``SETTLED,PENDING`` -> the statuses; ``InvalidInput`` naming ``status`` otherwise."""
    if text is None:
        return None
    try:
        return frozenset(PaymentStatus(part.strip().upper()) for part in text.split(","))
    except ValueError:
        raise InvalidInput(f"status takes one or more of {_STATUSES}", field="status") from None


class PixPaymentListController(Controller):
    path = "/v1/pix/payments"
    tags = ["pix"]
    security = [{BEARER_SCHEME: []}]

    @get(
        "/",
        operation_id="listPixPayments",
        summary="The caller's PIX payments on one account, sent and received, newest first",
        description=(
            "Filters: `since` (inclusive) and `until` (exclusive) on the creation time, "
            f"`status` (one or more of {_STATUSES}, comma-separated), `direction` (`SENT`: "
            "the account paid; `RECEIVED`: it was paid). Pages of `limit` payments "
            f"(1 to {MAX_PAGE_SIZE}); send `next_cursor` back as `cursor` with the same "
            "filters for the next page. A cursor that was altered or belongs to another "
            "listing answers 400 naming `cursor`."
        ),
        responses=problems(400, 401, 404, 503),
    )
    async def list_payments(
        self,
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
        account_id: Annotated[
            uuid.UUID, QueryParameter(description="one of the caller's accounts")
        ],
        since: Annotated[
            datetime | None, QueryParameter(description="created at or after (ISO 8601, offset)")
        ] = None,
        until: Annotated[
            datetime | None, QueryParameter(description="created before (ISO 8601, offset)")
        ] = None,
        status: Annotated[
            str | None,
            QueryParameter(
                max_length=64,
                pattern=r"^[A-Za-z]+(,[A-Za-z]+)*$(?!\n)",
                description=f"comma-separated: {_STATUSES}",
            ),
        ] = None,
        direction: Annotated[
            PaymentDirection | None, QueryParameter(description="SENT or RECEIVED")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
        cursor: Annotated[
            str | None,
            QueryParameter(max_length=1024, description="the `next_cursor` of the page before"),
        ] = None,
    ) -> PaymentPageOut:
        page = await bank.pix.list_payments(
            ListPixPaymentsQuery(
                owner_id=principal.subject,
                account_id=account_id,
                since=since,
                until=until,
                statuses=parse_statuses(status),
                direction=direction,
                limit=limit,
                cursor=cursor,
            )
        )
        return PaymentPageOut(
            items=[PaymentOut.of(p, principal.subject) for p in page.items],
            next_cursor=page.next_cursor,
        )
