"""Key claims (portability, ownership) and protected key look-ups, for the principal.

A claim the caller is not a side of answers 404. Keys never appear in URLs:
a look-up sends the key in the body. A look-up over the caller's bucket
answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import uuid

from litestar import Controller, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from finbank_core.auth.model import Principal
from finbank_core.pix.claims.model import CancelReason
from finbank_core.pix.claims.use_cases import (
    CancelKeyClaimCommand,
    CompleteKeyClaimCommand,
    ConfirmKeyClaimCommand,
    GetKeyClaimQuery,
    ListKeyClaimsQuery,
    LookupPixKeyCommand,
    OpenKeyClaimCommand,
)
from finbank_http.deps import Bank
from finbank_http.pix_claim_schemas import CancelClaimIn, ClaimOut, LookupIn, LookupOut, OpenClaimIn
from finbank_http.problems import problems
from finbank_http.security import BEARER_SCHEME

COMMON = (400, 401, 503)
ClaimId = FromPath[uuid.UUID]


class PixClaimController(Controller):
    path = "/v1/pix/claims"
    tags = ["pix"]
    security = [{BEARER_SCHEME: []}]

    @post(
        "/",
        operation_id="openPixKeyClaim",
        summary="Claim a PIX key held by another account, here or at another institution",
        description="`PORTABILITY` moves the caller's own key from another institution; "
        "`OWNERSHIP` claims a phone or email key someone else holds. The holder has 7 days "
        "to confirm or cancel; the claimer then has 30 days to complete.",
        responses=problems(*COMMON, 404, 409, 422),
        status_code=HTTP_201_CREATED,
    )
    async def open_claim(
        self,
        data: JSONBody[OpenClaimIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> ClaimOut:
        claim = await bank.pix.claims.open(
            OpenKeyClaimCommand(
                owner_id=principal.subject,
                account_id=data.account_id,
                claim_type=data.claim_type,
                key_type=data.key_type,
                key=data.key,
            )
        )
        return ClaimOut.of(claim, principal.subject)

    @get(
        "/",
        operation_id="listPixKeyClaims",
        summary="The caller's key claims, as claimer or as the key's holder",
        responses=problems(*COMMON),
    )
    async def list_claims(
        self, principal: NamedDependency[Principal], bank: NamedDependency[Bank]
    ) -> list[ClaimOut]:
        found = await bank.pix.claims.list(ListKeyClaimsQuery(owner_id=principal.subject))
        return [ClaimOut.of(c, principal.subject) for c in found]

    @get(
        "/{claim_id:uuid}",
        operation_id="getPixKeyClaim",
        summary="One of the caller's key claims",
        responses=problems(*COMMON, 404),
    )
    async def get_claim(
        self, claim_id: ClaimId, principal: NamedDependency[Principal], bank: NamedDependency[Bank]
    ) -> ClaimOut:
        claim = await bank.pix.claims.get(
            GetKeyClaimQuery(owner_id=principal.subject, claim_id=claim_id)
        )
        return ClaimOut.of(claim, principal.subject)

    @post(
        "/{claim_id:uuid}/confirm",
        operation_id="confirmPixKeyClaim",
        summary="As the key's holder, give the key up (within the resolution period)",
        responses=problems(*COMMON, 404, 409, 422),
        status_code=HTTP_200_OK,
    )
    async def confirm(
        self, claim_id: ClaimId, principal: NamedDependency[Principal], bank: NamedDependency[Bank]
    ) -> ClaimOut:
        claim = await bank.pix.claims.confirm(
            ConfirmKeyClaimCommand(owner_id=principal.subject, claim_id=claim_id)
        )
        return ClaimOut.of(claim, principal.subject)

    @post(
        "/{claim_id:uuid}/cancel",
        operation_id="cancelPixKeyClaim",
        summary="As the holder refuse or contest a claim; as the claimer withdraw it",
        responses=problems(*COMMON, 404, 409, 422),
        status_code=HTTP_200_OK,
    )
    async def cancel(
        self,
        claim_id: ClaimId,
        data: JSONBody[CancelClaimIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> ClaimOut:
        claim = await bank.pix.claims.cancel(
            CancelKeyClaimCommand(
                owner_id=principal.subject, claim_id=claim_id, reason=CancelReason(data.reason)
            )
        )
        return ClaimOut.of(claim, principal.subject)

    @post(
        "/{claim_id:uuid}/complete",
        operation_id="completePixKeyClaim",
        summary="As the claimer, bind the confirmed key to your account (within 30 days)",
        responses=problems(*COMMON, 404, 409, 422),
        status_code=HTTP_200_OK,
    )
    async def complete(
        self, claim_id: ClaimId, principal: NamedDependency[Principal], bank: NamedDependency[Bank]
    ) -> ClaimOut:
        claim = await bank.pix.claims.complete(
            CompleteKeyClaimCommand(owner_id=principal.subject, claim_id=claim_id)
        )
        return ClaimOut.of(claim, principal.subject)


class PixKeyLookupController(Controller):
    path = "/v1/pix/key-lookups"
    tags = ["pix"]
    security = [{BEARER_SCHEME: []}]

    @post(
        "/",
        operation_id="lookupPixKey",
        summary="Who a PIX key pays, the holder's document masked",
        description="Each look-up spends the caller's look-up bucket (1 token, 20 for a key "
        "that does not exist; 100 tokens refilled at 2 a minute for individuals, 1,000 at "
        "20 a minute for companies). An empty bucket answers 429 with `Retry-After`.",
        responses=problems(*COMMON, 404, 422, 429),
        status_code=HTTP_200_OK,
    )
    async def lookup(
        self,
        data: JSONBody[LookupIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> LookupOut:
        entry = await bank.pix.claims.lookup_key(
            LookupPixKeyCommand(
                owner_id=principal.subject,
                account_id=data.account_id,
                key=data.key,
                key_type=data.key_type,
            )
        )
        return LookupOut.of(entry)


def pix_claims_router() -> Router:
    """The claim and look-up routes, to mount under a router that provides ``principal``."""
    return Router(path="/", route_handlers=[PixClaimController, PixKeyLookupController])
