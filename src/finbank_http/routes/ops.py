"""Operational routes: liveness, readiness and the sandbox helpers."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from finbank_adapters.containers import resolve
from finbank_core.accounts.ports import Ledger
from finbank_core.accounts.use_cases import (
    BankAccounts,
    GetAccountQuery,
    MoveCashCommand,
)
from finbank_core.auth.model import Principal
from finbank_core.shared.errors import DomainError, NotFound, ServiceUnavailable
from finbank_core.shared.money import Money
from finbank_http.deps import Bank, bank_of
from finbank_http.problems import problems
from finbank_http.schemas import SandboxDepositIn, TransferOut
from finbank_http.security import BEARER_SCHEME


class Health(msgspec.Struct):
    status: str


@get(
    "/health",
    operation_id="getHealth",
    tags=["ops"],
    summary="Liveness: the process answers",
    exclude_from_auth=True,
)
async def health() -> Health:
    return Health(status="ok")


@get(
    "/ready",
    operation_id="getReadiness",
    tags=["ops"],
    summary="Readiness: the ledger answers",
    responses=problems(503),
)
async def ready(request: Request[Any, Any, Any]) -> Response[Health]:
    try:
        ledger: Ledger = await resolve(bank_of(request).container.accounts.ledger())
        found = await ledger.lookup_accounts([BankAccounts.CASH])
    except (DomainError, OSError):
        found = []
    if not found:  # a 503 problem, with Retry-After, like every other 503
        raise ServiceUnavailable("the ledger does not answer")
    return Response(Health(status="ready"), status_code=HTTP_200_OK)


@post(
    "/v1/sandbox/deposits",
    operation_id="createSandboxDeposit",
    tags=["sandbox"],
    summary="Sandbox only: credit cash to one of the caller's accounts",
    security=[{BEARER_SCHEME: []}],
    responses=problems(400, 401, 404),
    status_code=HTTP_201_CREATED,
)
async def sandbox_deposit(
    data: JSONBody[SandboxDepositIn],
    principal: NamedDependency[Principal],
    bank: NamedDependency[Bank],
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(
            name="Idempotency-Key",
            min_length=1,
            max_length=255,
            required=False,
            description="the same key and body replay the first deposit; without one, "
            "every request is a deposit of its own",
        ),
    ] = None,
) -> Response[TransferOut]:
    if not bank.settings.pix.sandbox:
        raise NotFound("the sandbox is disabled")
    # ownership: 404 otherwise
    await bank.accounts.get(GetAccountQuery(owner_id=principal.subject, account_id=data.account_id))
    receipt = await bank.accounts.deposit(
        MoveCashCommand(
            account_id=data.account_id,
            amount=Money.from_bcb(data.amount),
            idempotency_key=idempotency_key or str(bank.ids.new_id()),
            operator_id=f"sandbox:{principal.subject}",
            description="sandbox deposit",
        )
    )
    # a replay is answered like the first, and says so, as ``POST /v1/transfers`` does
    headers = {"Idempotent-Replayed": "true"} if receipt.replayed else {}
    return Response(TransferOut.of(receipt), status_code=HTTP_201_CREATED, headers=headers)
