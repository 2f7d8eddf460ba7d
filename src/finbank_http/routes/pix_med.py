"""MED and precautionary blocks over HTTP: the customer's contestation, the back office's steps.

Customers (any authenticated caller, on their own payments):
``POST /v1/pix/payments/{e2e_id}/contestations`` opens an infraction report
on a PIX they paid (self-service), ``GET /v1/pix/payments/{e2e_id}/med``
shows its state. ``GET /v1/pix/payments/{e2e_id}`` carries the same state
in its ``med`` field.

Back office (``/v1/backoffice/pix``): the caller's token must carry the
``fraud_analyst`` role (:data:`ANALYST_ROLE`), checked by a guard after the
authentication guard and before anything is read: 403 otherwise. Analysts
place and release precautionary blocks and analyse reports; reports and
refund requests from other banks, which the directory delivers, are
injected here too (the sandbox has no directory feed). So is what comes back
when we are the payer's bank: the receiving bank's analysis of a report we
sent (``receiveMedAnalysis``) and its returns (``receiveMedReturn``, a
pacs.004: our customer is credited once per rtrId, the same return again is
answered as the first).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, post
from litestar import get as get_route
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from finbank_core.auth.model import Principal
from finbank_core.pix.med.use_cases import (
    AnalyseInfractionReportCommand,
    ContestPixPaymentCommand,
    ExecuteMedReturnsCommand,
    MedViewQuery,
    PlacePrecautionaryBlockCommand,
    ReceiveInfractionReportCommand,
    ReceiveMedAnalysisCommand,
    ReceiveMedReturnCommand,
    ReleasePrecautionaryBlockCommand,
    RequestMedRefundCommand,
)
from finbank_core.shared.errors import PermissionDenied
from finbank_core.shared.money import Money
from finbank_http.deps import Bank
from finbank_http.med_schemas import (
    BlockOut,
    CaseOut,
    ContestIn,
    DecisionIn,
    IncomingReturnIn,
    MedOut,
    PeerAnalysisIn,
    RefundRequestIn,
    ReportIn,
)
from finbank_http.problems import problems
from finbank_http.security import BEARER_SCHEME, authenticated

#: the role a token needs for the back-office routes
ANALYST_ROLE = "fraud_analyst"
COMMON = (400, 401, 503)
BACK_OFFICE = (*COMMON, 403, 404, 409, 422)


async def fraud_analysts_only(
    connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
) -> None:
    """Guard: the authenticated caller must have :data:`ANALYST_ROLE` (403 otherwise)."""
    if connection.scope.get("method") == "OPTIONS":  # answers the methods only (limits.py)
        return
    principal = connection.state.get("finbank_principal")
    if not isinstance(principal, Principal):  # mounted without the router's guard
        await authenticated(connection, route_handler)
        principal = connection.state["finbank_principal"]
    if ANALYST_ROLE not in principal.roles:
        raise PermissionDenied("this route is for fraud analysts")


class PixMedController(Controller):
    """The customer's side of MED."""

    path = "/v1/pix/payments"
    tags = ["pix-med"]
    security = [{BEARER_SCHEME: []}]

    @post(
        "/{e2e_id:str}/contestations",
        operation_id="contestPixPayment",
        summary="Contest a PIX the caller paid: opens an infraction report (MED)",
        description="Self-service, within 80 days of the payment. Contesting again answers "
        "the report opened first.",
        responses=problems(*COMMON, 404, 409, 422),
        status_code=HTTP_201_CREATED,
    )
    async def contest(
        self,
        e2e_id: FromPath[str],
        data: JSONBody[ContestIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> CaseOut:
        result = await bank.pix.med.contest(
            ContestPixPaymentCommand(
                owner_id=principal.subject, end_to_end_id=e2e_id, situation=data.situation
            )
        )
        return CaseOut.of(result.case)

    @get_route(
        "/{e2e_id:str}/med",
        operation_id="getPixPaymentMed",
        summary="The MED state of a payment the caller sent or received",
        responses=problems(*COMMON, 404),
    )
    async def med_state(
        self,
        e2e_id: FromPath[str],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> MedOut:
        view = await bank.pix.med.view(
            MedViewQuery(end_to_end_id=e2e_id, owner_id=principal.subject)
        )
        return MedOut.of(view, principal.subject)


class MedBackOfficeController(Controller):
    """The back office's side of MED (``fraud_analyst`` role)."""

    path = "/v1/backoffice/pix"
    tags = ["pix-med-backoffice"]
    security = [{BEARER_SCHEME: []}]
    guards = [fraud_analysts_only]

    @post(
        "/infraction-reports",
        operation_id="receiveInfractionReport",
        summary="An infraction report from the payer's bank about a PIX we received",
        responses=problems(*BACK_OFFICE),
        status_code=HTTP_201_CREATED,
    )
    async def receive_report(self, data: JSONBody[ReportIn], bank: NamedDependency[Bank]) -> MedOut:
        result = await bank.pix.med.receive_report(
            ReceiveInfractionReportCommand(
                end_to_end_id=data.end_to_end_id,
                report_id=data.report_id,
                situation=data.situation,
                reporter_ispb=data.reporter_ispb,
            )
        )
        return await _back_office_view(bank, result.case.end_to_end_id)

    @get_route(
        "/payments/{e2e_id:str}/med",
        operation_id="getMedCase",
        summary="A payment's MED case and block, with the accounts held and the returns",
        responses=problems(*BACK_OFFICE),
    )
    async def case(self, e2e_id: FromPath[str], bank: NamedDependency[Bank]) -> MedOut:
        return await _back_office_view(bank, e2e_id)

    @post(
        "/payments/{e2e_id:str}/precautionary-block",
        operation_id="placePrecautionaryBlock",
        summary="Hold an incoming PIX to a natural person's account, at most 72 h after it",
        responses=problems(*BACK_OFFICE),
        status_code=HTTP_201_CREATED,
    )
    async def place_block(
        self,
        e2e_id: FromPath[str],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> BlockOut:
        result = await bank.pix.med.place_block(
            PlacePrecautionaryBlockCommand(end_to_end_id=e2e_id, blocked_by=principal.subject)
        )
        return BlockOut.of(result.block)

    @post(
        "/payments/{e2e_id:str}/precautionary-block/release",
        operation_id="releasePrecautionaryBlock",
        summary="End a precautionary block before its deadline",
        responses=problems(*BACK_OFFICE),
        status_code=HTTP_200_OK,
    )
    async def release_block(
        self,
        e2e_id: FromPath[str],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> BlockOut:
        result = await bank.pix.med.release_block(
            ReleasePrecautionaryBlockCommand(end_to_end_id=e2e_id, released_by=principal.subject)
        )
        return BlockOut.of(result.block)

    @post(
        "/payments/{e2e_id:str}/med/analysis",
        operation_id="analyseInfractionReport",
        summary="Accept (block what is left, following the money) or reject a report",
        responses=problems(*BACK_OFFICE),
        status_code=HTTP_200_OK,
    )
    async def analyse(
        self,
        e2e_id: FromPath[str],
        data: JSONBody[DecisionIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> MedOut:
        await bank.pix.med.analyse(
            AnalyseInfractionReportCommand(
                end_to_end_id=e2e_id, decision=data.decision, analyst_id=principal.subject
            )
        )
        return await _back_office_view(bank, e2e_id)

    @post(
        "/payments/{e2e_id:str}/med/refund-request",
        operation_id="requestMedRefund",
        summary="The refund request of an accepted report; the returns are executed",
        responses=problems(*BACK_OFFICE),
        status_code=HTTP_200_OK,
    )
    async def request_refund(
        self, e2e_id: FromPath[str], data: JSONBody[RefundRequestIn], bank: NamedDependency[Bank]
    ) -> MedOut:
        await bank.pix.med.request_refund(
            RequestMedRefundCommand(
                end_to_end_id=e2e_id,
                amount=Money.from_bcb(data.amount) if data.amount is not None else None,
                requested_by=data.requested_by,
            )
        )
        return await _back_office_view(bank, e2e_id)

    @post(
        "/payments/{e2e_id:str}/med/returns",
        operation_id="executeMedReturns",
        summary="Execute the returns a case still has in progress",
        responses=problems(*BACK_OFFICE),
        status_code=HTTP_200_OK,
    )
    async def execute_returns(self, e2e_id: FromPath[str], bank: NamedDependency[Bank]) -> MedOut:
        await bank.pix.med.execute_returns(ExecuteMedReturnsCommand(end_to_end_id=e2e_id))
        return await _back_office_view(bank, e2e_id)

    # -- we are the payer's bank: what the bank we paid answers -------------------------

    @post(
        "/payments/{e2e_id:str}/med/peer-analysis",
        operation_id="receiveMedAnalysis",
        summary="The receiving bank's analysis of a report we sent; on acceptance we ask back",
        description="`AGREED` records the acceptance and at once sends our refund request for "
        "all the payment has unrefunded (`REFUND_REQUESTED`); `DISAGREED` closes the case. "
        "The same answer again is a replay (200, the request resent); the other answer is "
        "409 `med_already_decided`. Only the bank the payment went to answers: another "
        "`analysed_by` is 422 naming the field.",
        responses=problems(*BACK_OFFICE),
        status_code=HTTP_200_OK,
    )
    async def receive_analysis(
        self, e2e_id: FromPath[str], data: JSONBody[PeerAnalysisIn], bank: NamedDependency[Bank]
    ) -> MedOut:
        await bank.pix.med.receive_analysis(
            ReceiveMedAnalysisCommand(
                end_to_end_id=e2e_id,
                report_id=data.report_id,
                decision=data.decision,
                analysed_by=data.analysed_by,
            )
        )
        return await _back_office_view(bank, e2e_id)

    @post(
        "/payments/{e2e_id:str}/med/incoming-returns",
        operation_id="receiveMedReturn",
        summary="A return (pacs.004) of a reported payment we sent: our customer is credited",
        description="Credits the payer's account from settlement, then records the return on "
        "the case and the payment's refunds (`MED_FRAUDE`). The same `return_id` (rtrId) "
        "again, at once or later, credits nothing more and answers the case (200); with "
        "another amount it is 422 naming `amount`. A return from another bank than the one "
        "paid (422, field `from_ispb`), past what was asked back (422, `amount`) or on a "
        "case not waiting for returns (422) is refused and credits nothing.",
        responses=problems(*BACK_OFFICE),
        status_code=HTTP_200_OK,
    )
    async def receive_return(
        self,
        e2e_id: FromPath[str],
        data: JSONBody[IncomingReturnIn],
        bank: NamedDependency[Bank],
    ) -> MedOut:
        await bank.pix.med.receive_return(
            ReceiveMedReturnCommand(
                end_to_end_id=e2e_id,
                return_id=data.return_id,
                amount=Money.from_bcb(data.amount),
                from_ispb=data.from_ispb,
                final=data.final,
            )
        )
        return await _back_office_view(bank, e2e_id)


async def _back_office_view(bank: Bank, e2e_id: str) -> MedOut:
    return MedOut.of(await bank.pix.med.view(MedViewQuery(end_to_end_id=e2e_id)))


MED_ROUTES = [PixMedController, MedBackOfficeController]
