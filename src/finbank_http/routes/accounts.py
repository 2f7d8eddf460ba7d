"""Accounts and transfers. Every handler acts for the bearer token's principal only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import (
    FromPath,
    HeaderParameter,
    JSONBody,
    QueryParameter,
)
from litestar.status_codes import HTTP_201_CREATED

from finbank_core.accounts.use_cases import (
    GetBalanceQuery,
    GetStatementQuery,
    InternalTransferCommand,
    ListAccountsQuery,
    OpenAccountCommand,
)
from finbank_core.auth.model import Principal
from finbank_core.shared.money import Money
from finbank_http.deps import Bank
from finbank_http.problems import problems
from finbank_http.responses import JSONResponse
from finbank_http.schemas import (
    AccountDetailOut,
    AccountOut,
    OpenAccountIn,
    StatementOut,
    TransferIn,
    TransferOut,
)
from finbank_http.security import BEARER_SCHEME, bank_of, verified_principal

AUTH_PROBLEMS = (400, 401, 503)


class AccountController(Controller):
    path = "/v1/accounts"
    tags = ["accounts"]
    security = [{BEARER_SCHEME: []}]

    @post(
        "/",
        operation_id="openAccount",
        summary="Open an account for the caller",
        responses=problems(*AUTH_PROBLEMS, 409),
    )
    async def open(
        self,
        data: JSONBody[OpenAccountIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> AccountOut:
        account = await bank.accounts.open(
            OpenAccountCommand(
                owner_id=principal.subject,
                holder_name=data.holder_name,
                holder_type=data.holder_type,
                holder_document=data.holder_document,
                kind=data.kind,
            )
        )
        return AccountOut.of(account)

    @get(
        "/",
        operation_id="listAccounts",
        summary="List the caller's accounts",
        responses=problems(401, 503),
    )
    async def list_owned(
        self, principal: NamedDependency[Principal], bank: NamedDependency[Bank]
    ) -> list[AccountOut]:
        return [
            AccountOut.of(a)
            for a in await bank.accounts.list(ListAccountsQuery(owner_id=principal.subject))
        ]

    @get(
        "/{account_id:uuid}",
        operation_id="getAccount",
        summary="One of the caller's accounts with its balance",
        responses=problems(401, 404, 503),
    )
    async def detail(
        self,
        account_id: FromPath[uuid.UUID],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> AccountDetailOut:
        balance = await bank.accounts.balance(
            GetBalanceQuery(owner_id=principal.subject, account_id=account_id)
        )
        return AccountDetailOut.of(balance)

    @get(
        "/{account_id:uuid}/statement",
        operation_id="getStatement",
        summary="Posted entries with the balance after each, oldest first",
        responses=problems(*AUTH_PROBLEMS, 404),
    )
    async def statement(
        self,
        account_id: FromPath[uuid.UUID],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
        since: Annotated[
            datetime | None,
            QueryParameter(description="inclusive lower bound (ISO 8601 with zone)"),
        ] = None,
        until: Annotated[
            datetime | None,
            QueryParameter(description="exclusive upper bound (ISO 8601 with zone)"),
        ] = None,
        cursor: Annotated[
            int | None,
            QueryParameter(
                description="next_cursor of the previous page",
                ge=0,
                le=2**63 - 1,
                schema_extra={"minimum": 0},  # Litestar drops a bound of 0 from the document
            ),
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> StatementOut:
        statement = await bank.accounts.statement(
            GetStatementQuery(
                owner_id=principal.subject,
                account_id=account_id,
                since=since,
                until=until,
                after_sequence=cursor,
                limit=limit,
            )
        )
        return StatementOut.of(statement)


class TransferController(Controller):
    path = "/v1/transfers"
    tags = ["transfers"]
    security = [{BEARER_SCHEME: []}]

    @post(
        "/",
        operation_id="createTransfer",
        summary="Move money from one of the caller's accounts to another account of this bank",
        description=(
            "Idempotent by the `Idempotency-Key` header (IETF httpapi idempotency-key draft): "
            "the same key and body return the first response and move money once, also when "
            "sent many times at once (every copy gets the first response); the same key with "
            "another body is refused with 422."
        ),
        responses=problems(*AUTH_PROBLEMS, 404, 422),
        status_code=HTTP_201_CREATED,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[TransferIn],
        idempotency_key: Annotated[
            str, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=255)
        ],
    ) -> Response[TransferOut]:
        # the principal and the bank read from the request, not resolved as dependencies:
        # what ``principal`` and ``bank`` give (finbank_http.deps), without Litestar's
        # resolver and its cleanup stack on the busiest route
        principal = verified_principal(request)
        receipt = await bank_of(request).accounts.transfer(
            InternalTransferCommand(
                owner_id=principal.subject,
                from_account_id=data.from_account_id,
                to_account_id=data.to_account_id,
                amount=Money.from_bcb(data.amount),
                idempotency_key=idempotency_key,
                description=data.description,
            )
        )
        headers = {"Idempotent-Replayed": "true"} if receipt.replayed else {}
        return JSONResponse(TransferOut.of(receipt), status_code=HTTP_201_CREATED, headers=headers)
