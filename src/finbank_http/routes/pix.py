"""PIX keys, payments, refunds, charges and BR Codes; every handler acts for its principal.

Another customer's key, payment or charge answers 404, as if it did not
exist. Keys never appear in URLs (access logs are not the place for personal
data): a key is deleted by its registration id.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, Router, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED

from finbank_core.auth.model import Principal
from finbank_core.pix.charges import ChargePayer
from finbank_core.pix.codes.brcode_reader import read_brcode
from finbank_core.pix.med.use_cases import MedViewQuery
from finbank_core.pix.refunds import RefundNature
from finbank_core.pix.use_cases import (
    AccountData,
    CreateChargeCommand,
    DeletePixKeyCommand,
    GetChargeQuery,
    GetPixPaymentQuery,
    ListPixKeysQuery,
    QrFormat,
    QrKind,
    RefundPixCommand,
    RegisterPixKeyCommand,
    RenderChargeQrQuery,
    SendPixCommand,
    SimulateIncomingPixCommand,
)
from finbank_core.shared.errors import NotFound
from finbank_core.shared.inputs import MAX_DEVICE_ID_LENGTH
from finbank_core.shared.money import Money
from finbank_http.deps import Bank
from finbank_http.med_schemas import MedOut
from finbank_http.pix_schemas import (
    BRCodeDecodeIn,
    BRCodeOut,
    ChargeIn,
    ChargeOut,
    IncomingAcceptedOut,
    KeyOut,
    PaymentIn,
    PaymentOut,
    RefundIn,
    RefundOut,
    RegisterKeyIn,
    SandboxIncomingIn,
)
from finbank_http.problems import in_progress_problem, problems
from finbank_http.responses import JSONResponse
from finbank_http.security import BEARER_SCHEME, bank_of, verified_principal

IdempotencyKey = Annotated[
    str,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="the same key and body replay the first answer; another body gets 422",
    ),
]
DeviceId = Annotated[
    str | None,
    HeaderParameter(
        name="X-Device-Id",
        min_length=1,
        max_length=MAX_DEVICE_ID_LENGTH,
        required=False,
        description=(
            "the app installation; a device new to PIX is capped (R$ 200 / R$ 1,000 a day), "
            "and so is a payment without the header when FINBANK_PIX_UNNAMED_DEVICE_IS_NEW is on"
        ),
    ),
]
COMMON = (400, 401, 503)


class PixKeyController(Controller):
    path = "/v1/pix/keys"
    tags = ["pix"]
    security = [{BEARER_SCHEME: []}]

    @post(
        "/",
        operation_id="registerPixKey",
        summary="Register a PIX key for one of the caller's accounts",
        description="EVP keys are issued by the directory: send `key_type: EVP` and no `key`. "
        "Accounts hold at most 5 keys (individuals) or 20 (companies).",
        responses=problems(*COMMON, 404, 409, 422),
        status_code=HTTP_201_CREATED,
    )
    async def register(
        self,
        data: JSONBody[RegisterKeyIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> KeyOut:
        registration = await bank.pix.register_key(
            RegisterPixKeyCommand(
                owner_id=principal.subject,
                account_id=data.account_id,
                key_type=data.key_type,
                key=data.key,
            )
        )
        return KeyOut.of(registration)

    @get(
        "/",
        operation_id="listPixKeys",
        summary="The caller's PIX keys (of one account, or of all)",
        responses=problems(*COMMON, 404),
    )
    async def list_keys(
        self,
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
        account_id: Annotated[uuid.UUID | None, QueryParameter()] = None,
    ) -> list[KeyOut]:
        return [
            KeyOut.of(k)
            for k in await bank.pix.list_keys(
                ListPixKeysQuery(owner_id=principal.subject, account_id=account_id)
            )
        ]

    @delete(
        "/{key_id:uuid}",
        operation_id="deletePixKey",
        summary="Delete one of the caller's PIX keys by its registration id",
        description="A key with an active claim (open, waiting or confirmed) is not deleted: "
        "`409 pix_key_under_claim` until the claim is completed, cancelled or ends.",
        responses=problems(401, 404, 409, 503),
        status_code=HTTP_200_OK,
    )
    async def remove(
        self,
        key_id: FromPath[uuid.UUID],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> KeyOut:
        return KeyOut.of(
            await bank.pix.delete_key(
                DeletePixKeyCommand(owner_id=principal.subject, key_id=key_id)
            )
        )


class PixPaymentController(Controller):
    path = "/v1/pix/payments"
    tags = ["pix"]
    security = [{BEARER_SCHEME: []}]

    @post(
        "/",
        operation_id="sendPixPayment",
        summary="Send a PIX payment by key, BR Code or account data",
        description=(
            "Idempotent by the `Idempotency-Key` header, like `/v1/transfers`; while the first "
            "request with a key is still being processed, the same key gets 409 "
            "`idempotency_request_in_progress` with `Retry-After`. Payments to "
            "accounts of this bank settle at once; others answer `PENDING` or, settled by the "
            "network, `SETTLED` / `REJECTED` with an ISO reason. Insufficient funds and limits "
            "refuse the payment with 422 and leave no record."
        ),
        responses={**problems(*COMMON, 404, 422), **in_progress_problem()},
        status_code=HTTP_201_CREATED,
    )
    async def send(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[PaymentIn],
        idempotency_key: IdempotencyKey,
        device_id: DeviceId = None,
    ) -> Response[PaymentOut]:
        # read from the request, not resolved as dependencies (as ``POST /v1/transfers``)
        principal = verified_principal(request)
        bank = bank_of(request)
        account_data = None
        if data.account_data is not None:
            d = data.account_data
            account_data = AccountData(
                ispb=d.ispb,
                branch=d.branch,
                account_number=d.account_number,
                document=d.document,
                name=d.name,
                account_kind=d.account_type,
            )
        result = await bank.pix.send(
            SendPixCommand(
                owner_id=principal.subject,
                account_id=data.account_id,
                idempotency_key=idempotency_key,
                amount=Money.from_bcb(data.amount) if data.amount is not None else None,
                key=data.key,
                key_type=data.key_type,
                br_code=data.br_code,
                account_data=account_data,
                description=data.description,
                device_id=device_id,
            )
        )
        headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
        return JSONResponse(
            PaymentOut.of(result.payment, principal.subject),
            status_code=HTTP_201_CREATED,
            headers=headers,
        )

    @get(
        "/{e2e_id:str}",
        operation_id="getPixPayment",
        summary="A payment the caller sent or received",
        responses=problems(401, 404, 503),
    )
    async def detail(
        self,
        e2e_id: FromPath[str],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> PaymentOut:
        payment = await bank.pix.get_payment(
            GetPixPaymentQuery(owner_id=principal.subject, end_to_end_id=e2e_id)
        )
        out = PaymentOut.of(payment, principal.subject)
        med = await bank.pix.med.view(
            MedViewQuery(end_to_end_id=e2e_id, owner_id=principal.subject)
        )
        out.med = MedOut.of(med, principal.subject) if med.case or med.block else None
        return out

    @post(
        "/{e2e_id:str}/refunds",
        operation_id="refundPixPayment",
        summary="Refund (part of) a payment the caller received",
        description=(
            "Within 90 days of the settlement (else `pix_refund_window_expired`, DT05); all "
            "refunds add up to at most the original (else `pix_refund_exceeds_original`, AM09). "
            "Idempotent by the `Idempotency-Key` header (409 `idempotency_request_in_progress` "
            "with `Retry-After` while the first request with the key is still being "
            "processed). Answers 201 with the refund: "
            "`DEVOLVIDO` or `NAO_REALIZADO` (with `failure_reason`) when it settled in the "
            "request (memory profile); `EM_PROCESSAMENTO` while the settlement worker has it "
            "(local and aws profiles) or the network could not be reached. The amount is "
            "reserved meanwhile; `GET /v1/pix/payments/{e2e_id}` lists the refund's progress."
        ),
        responses={**problems(*COMMON, 404, 422), **in_progress_problem()},
        status_code=HTTP_201_CREATED,
    )
    async def refund(
        self,
        e2e_id: FromPath[str],
        data: JSONBody[RefundIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
        idempotency_key: IdempotencyKey,
    ) -> Response[RefundOut]:
        result = await bank.pix.refund(
            RefundPixCommand(
                owner_id=principal.subject,
                end_to_end_id=e2e_id,
                amount=Money.from_bcb(data.amount),
                client_refund_id=idempotency_key,
                nature=RefundNature(data.nature),
                description=data.description,
            )
        )
        headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
        return Response(
            RefundOut.of(result.payment, result.refund),
            status_code=HTTP_201_CREATED,
            headers=headers,
        )


class PixChargeController(Controller):
    path = "/v1/pix/charges"
    tags = ["pix"]
    security = [{BEARER_SCHEME: []}]

    @post(
        "/",
        operation_id="createPixCharge",
        summary="Create an immediate charge (cob) with its dynamic and static BR Codes",
        responses=problems(*COMMON, 404, 409, 422),
        status_code=HTTP_201_CREATED,
    )
    async def create(
        self,
        data: JSONBody[ChargeIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> ChargeOut:
        view = await bank.pix.create_charge(
            CreateChargeCommand(
                owner_id=principal.subject,
                account_id=data.account_id,
                pix_key=data.key,
                amount=Money.from_bcb(data.amount),
                expires_in_seconds=data.expires_in_seconds,
                txid=data.txid,
                description=data.description,
                payer=ChargePayer(name=data.payer.name, document=data.payer.document)
                if data.payer
                else None,
            )
        )
        return ChargeOut.of(view)

    @get(
        "/{txid:str}",
        operation_id="getPixCharge",
        summary="One of the caller's charges",
        responses=problems(401, 404, 503),
    )
    async def detail(
        self,
        txid: FromPath[str],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> ChargeOut:
        return ChargeOut.of(
            await bank.pix.get_charge(GetChargeQuery(owner_id=principal.subject, txid=txid))
        )

    @get(
        "/{txid:str}/qr.png",
        operation_id="getPixChargeQrPng",
        summary="The charge's QR code as PNG (dynamic BR Code unless kind=static)",
        responses=problems(401, 404, 503),
        media_type="image/png",
    )
    async def qr_png(
        self,
        txid: FromPath[str],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
        kind: Annotated[QrKind, QueryParameter()] = QrKind.DYNAMIC,
    ) -> Response[bytes]:
        image = await bank.pix.render_charge_qr(
            RenderChargeQrQuery(
                owner_id=principal.subject, txid=txid, format=QrFormat.PNG, kind=kind
            )
        )
        return Response(image, media_type="image/png")

    @get(
        "/{txid:str}/qr.svg",
        operation_id="getPixChargeQrSvg",
        summary="The charge's QR code as SVG (dynamic BR Code unless kind=static)",
        responses=problems(401, 404, 503),
        media_type="image/svg+xml",
    )
    async def qr_svg(
        self,
        txid: FromPath[str],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
        kind: Annotated[QrKind, QueryParameter()] = QrKind.DYNAMIC,
    ) -> Response[bytes]:
        image = await bank.pix.render_charge_qr(
            RenderChargeQrQuery(
                owner_id=principal.subject, txid=txid, format=QrFormat.SVG, kind=kind
            )
        )
        return Response(image, media_type="image/svg+xml")


@post(
    "/v1/pix/brcodes/decode",
    operation_id="decodeBrCode",
    tags=["pix"],
    summary="Decode and validate a BR Code ('Pix Copia e Cola')",
    description=(
        "`mode: tolerant` (the default) reads codes other systems write and lists each "
        "deviation it accepted in `deviations` (stable `code`, EMV `field`); `mode: strict` "
        "accepts only what this bank issues. A code that cannot be read answers 400 "
        "`invalid_br_code` naming the EMV field."
    ),
    security=[{BEARER_SCHEME: []}],
    responses=problems(*COMMON),
    status_code=HTTP_200_OK,
)
async def decode_brcode(
    data: JSONBody[BRCodeDecodeIn], principal: NamedDependency[Principal]
) -> BRCodeOut:
    return BRCodeOut.of(read_brcode(data.br_code, data.mode))


@post(
    "/v1/sandbox/pix/incoming",
    operation_id="simulateIncomingPix",
    tags=["sandbox"],
    summary="Sandbox only: the simulated peer bank pays one of the caller's accounts",
    description=(
        "The order is accepted the way the network's would be (an unknown or inactive account "
        "answers 422 `pix_recipient_invalid`, AC03 / AC06). Where payments settle in the request "
        "(memory profile) the account is credited at once: 201 with the payment, `SETTLED`. "
        "Where the settlement worker credits incoming payments (local and aws profiles): 202 "
        "with `end_to_end_id`, `status: ACCEPTED` and a `Location` header naming "
        "`GET /v1/pix/payments/{e2e_id}`, which answers 404 until the worker has credited the "
        "account and then the payment, `SETTLED`."
    ),
    security=[{BEARER_SCHEME: []}],
    responses={
        HTTP_202_ACCEPTED: ResponseSpec(
            data_container=IncomingAcceptedOut,
            description="Accepted; the settlement worker credits the account",
            generate_examples=False,
        ),
        **problems(*COMMON, 404, 422),
    },
    status_code=HTTP_201_CREATED,
)
async def sandbox_incoming_pix(
    request: Request[Any, Any, Any],
    data: JSONBody[SandboxIncomingIn],
    principal: NamedDependency[Principal],
    bank: NamedDependency[Bank],
) -> Response[PaymentOut | IncomingAcceptedOut]:
    if not bank.settings.pix.sandbox:
        raise NotFound("the sandbox is disabled")
    acceptance = await bank.pix.simulate_incoming(
        SimulateIncomingPixCommand(
            owner_id=principal.subject,
            account_id=data.account_id,
            amount=Money.from_bcb(data.amount),
            txid=data.txid,
            description=data.description,
        )
    )
    if acceptance.payment is None:
        accepted = IncomingAcceptedOut.of(acceptance.end_to_end_id)
        return Response(
            accepted, status_code=HTTP_202_ACCEPTED, headers={"Location": accepted.location}
        )
    return Response(
        PaymentOut.of(acceptance.payment, principal.subject), status_code=HTTP_201_CREATED
    )


def pix_router() -> Router:
    """The PIX routes, to mount under a router that provides ``principal``."""
    return Router(
        path="/",
        route_handlers=[
            PixKeyController,
            PixPaymentController,
            PixChargeController,
            decode_brcode,
            sandbox_incoming_pix,
        ],
    )
