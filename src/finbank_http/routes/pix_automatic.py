"""Pix Automático over HTTP: the receiver's recurrences and charges, the payer's authorisations.

Every handler acts for its principal and calls ``bank.pix.automatic``.
A recurrence or charge of someone else answers 404, as if it did not exist.
Amounts are strings like ``"50.00"``; the debtor's document travels masked.
The rules (periodicities, the 2-10 day window, retries) are on the Pix
Automático page of the docs.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, Router, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from finbank_core.auth.model import Principal
from finbank_core.pix.automatic.model import (
    AttemptStatus,
    ChargeStatus,
    Journey,
    Party,
    Periodicity,
    Recurrence,
    RecurrenceStatus,
    RecurringCharge,
    RetryPolicy,
)
from finbank_core.pix.automatic.use_cases import (
    AuthoriseRecurrenceCommand,
    AutomaticLimit,
    AutomaticLimitQuery,
    CancelRecurrenceCommand,
    CancelRecurringChargeCommand,
    CreateRecurrenceCommand,
    GetRecurrenceQuery,
    GetRecurringChargeQuery,
    ListAuthorisationsQuery,
    ListRecurrencesQuery,
    ListRecurringChargesQuery,
    PayAndAuthoriseCommand,
    ReadRecurrenceCodeQuery,
    RecurrenceCodeQuery,
    RecurrenceRole,
    RejectRecurrenceCommand,
    RequestAuthorisationCommand,
    RunDueDebitsCommand,
    ScheduleChargeCommand,
    SetAutomaticLimitCommand,
)
from finbank_core.shared.errors import NotFound
from finbank_core.shared.money import Money
from finbank_http.deps import Bank
from finbank_http.pix_schemas import BRCodeOut, PaymentOut, TxIdText
from finbank_http.problems import in_progress_problem, problems
from finbank_http.routes.auth import StepUpToken
from finbank_http.routes.pix import DeviceId, IdempotencyKey
from finbank_http.routes.pix_limits import limit_raise_step_up
from finbank_http.schemas import AmountOut, AmountText, PositiveAmountText, signed_amount
from finbank_http.security import BEARER_SCHEME

COMMON = (400, 401, 503)
RecurrenceIdText = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{29}$(?!\n)", description="idRec: 29 letters or digits")
]
BrCodeText = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
AccountQuery = Annotated[uuid.UUID, QueryParameter(description="one of the caller's accounts")]


def _amount(money: Money | None) -> str | None:
    return None if money is None else signed_amount(money)


# -- bodies -------------------------------------------------------------------------------


class RecurrenceIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    account_id: uuid.UUID
    contract: Annotated[str, msgspec.Meta(min_length=1, max_length=35)]
    debtor_name: Annotated[str, msgspec.Meta(min_length=1, max_length=140)]
    debtor_document: Annotated[str, msgspec.Meta(min_length=11, max_length=18)]
    periodicity: Periodicity
    start: date
    retry_policy: RetryPolicy
    end: date | None = None
    purpose: Annotated[str, msgspec.Meta(max_length=35)] | None = None
    #: every charge is exactly this amount; excludes ``min_amount``
    fixed_amount: PositiveAmountText | None = None
    #: variable amounts: the least a charge may be (a payer's maximum cannot be lower)
    min_amount: PositiveAmountText | None = None


class RequestIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    payer_branch: Annotated[str, msgspec.Meta(min_length=1, max_length=10)]
    payer_account_number: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    expires_at: datetime | None = None


class CodeIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    journey: Journey = Journey.JORNADA_2
    charge_txid: TxIdText | None = None


class ScheduleIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    amount: PositiveAmountText
    due_date: date
    txid: TxIdText | None = None


class ReadCodeIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    br_code: BrCodeText


class AuthoriseIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    account_id: uuid.UUID
    #: the code read (journeys 2-4), or ``recurrence_id`` for a journey-1 request
    br_code: BrCodeText | None = None
    recurrence_id: RecurrenceIdText | None = None
    max_amount: AmountText | None = None


class PayAndAuthoriseIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Journey 3: the code (an immediate charge plus the recurrence) and the paying account."""

    account_id: uuid.UUID
    br_code: BrCodeText
    max_amount: AmountText | None = None


class RejectIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    br_code: BrCodeText | None = None
    recurrence_id: RecurrenceIdText | None = None


class CancelIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=105)] | None = None


class AutomaticLimitIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The payer's daily limit for Pix Automático on one of their accounts."""

    account_id: uuid.UUID
    #: the most Pix Automático may debit from the account in one Brasília day;
    #: ``null`` removes the limit (a removal, like a raise, needs a step-up)
    daily_limit: PositiveAmountText | None


class AutomaticLimitOut(msgspec.Struct, kw_only=True):
    account_id: uuid.UUID
    #: ``null``: no limit of its own (the balance is the limit)
    daily_limit: AmountOut | None

    @classmethod
    def of(cls, limit: AutomaticLimit) -> AutomaticLimitOut:
        return cls(account_id=limit.account_id, daily_limit=_amount(limit.daily_limit))


class StatusChangeOut(msgspec.Struct, kw_only=True):
    """One entry of a recurrence's history."""

    status: RecurrenceStatus
    at: datetime


class ChargeStatusChangeOut(msgspec.Struct, kw_only=True):
    """One entry of a recurring charge's history."""

    status: ChargeStatus
    at: datetime


class AuthorisationOut(msgspec.Struct, kw_only=True):
    authorised_at: datetime
    max_amount: AmountOut | None
    #: shown to the payer only
    account_id: uuid.UUID | None


class RequestOut(msgspec.Struct, kw_only=True):
    request_id: str
    expires_at: datetime


class RecurrenceOut(msgspec.Struct, kw_only=True):
    recurrence_id: str
    status: RecurrenceStatus
    journey: Journey
    periodicity: Periodicity
    start: date
    end: date | None
    retry_policy: RetryPolicy
    fixed_amount: AmountOut | None
    min_amount: AmountOut | None
    contract: str
    purpose: str | None
    debtor_name: str
    debtor_document: str | None
    receiver_name: str
    #: the recurrence's location (field 80-25 of its codes), without scheme
    location: str
    created_at: datetime
    authorisation: AuthorisationOut | None
    request: RequestOut | None
    ended_by: Party | None
    end_reason: str | None
    history: list[StatusChangeOut]

    @classmethod
    def of(cls, r: Recurrence, viewer: str) -> RecurrenceOut:
        auth = r.authorisation
        return cls(
            recurrence_id=r.recurrence_id,
            status=r.status,
            journey=r.journey,
            periodicity=r.periodicity,
            start=r.start,
            end=r.end,
            retry_policy=r.retry_policy,
            fixed_amount=_amount(r.fixed_amount),
            min_amount=_amount(r.min_amount),
            contract=r.contract,
            purpose=r.purpose,
            debtor_name=r.debtor_name,
            debtor_document=r.debtor_document_masked,
            receiver_name=r.receiver_name,
            location=r.location_url,
            created_at=r.created_at,
            authorisation=None
            if auth is None
            else AuthorisationOut(
                authorised_at=auth.authorised_at,
                max_amount=_amount(auth.max_amount),
                account_id=auth.payer_account_id if auth.payer_owner_id == viewer else None,
            ),
            request=None
            if r.request is None
            else RequestOut(request_id=r.request.request_id, expires_at=r.request.expires_at),
            ended_by=r.ended_by,
            end_reason=r.end_reason,
            history=[
                StatusChangeOut(status=RecurrenceStatus(h.status), at=h.at) for h in r.history
            ],
        )


class AttemptOut(msgspec.Struct, kw_only=True):
    number: int
    on: date
    status: AttemptStatus
    end_to_end_id: str
    reason: str | None


class RecurringChargeOut(msgspec.Struct, kw_only=True):
    txid: str
    recurrence_id: str
    status: ChargeStatus
    amount: AmountOut
    due_date: date
    next_attempt_on: date | None
    reason: str | None
    created_at: datetime
    attempts: list[AttemptOut]
    history: list[ChargeStatusChangeOut]

    @classmethod
    def of(cls, c: RecurringCharge) -> RecurringChargeOut:
        return cls(
            txid=c.txid,
            recurrence_id=c.recurrence_id,
            status=c.status,
            amount=signed_amount(c.amount),
            due_date=c.due_date,
            next_attempt_on=c.next_attempt_on,
            reason=c.reason,
            created_at=c.created_at,
            attempts=[
                AttemptOut(
                    number=a.number,
                    on=a.on,
                    status=a.status,
                    end_to_end_id=a.end_to_end_id,
                    reason=a.reason,
                )
                for a in c.attempts
            ],
            history=[
                ChargeStatusChangeOut(status=ChargeStatus(h.status), at=h.at) for h in c.history
            ],
        )


class CodeOut(msgspec.Struct, kw_only=True):
    journey: Journey
    #: the composite BR Code ("Pix Copia e Cola")
    brcode: str
    location: str


class OfferOut(msgspec.Struct, kw_only=True):
    journey: Journey
    recurrence: RecurrenceOut
    #: the code as read (tolerant), with the deviations it tolerated
    code: BRCodeOut


class PayAndAuthoriseOut(msgspec.Struct, kw_only=True):
    """Journey 3's outcome: the payment, the recurrence, and whether both happened."""

    payment: PaymentOut
    recurrence: RecurrenceOut
    authorised: bool
    #: why not authorised: ``payment_pending``, ``payment_rejected_<ISO>`` or an error code
    reason: str | None = None


# -- routes ---------------------------------------------------------------------------------


class PixRecurrenceController(Controller):
    """The receiver's recurrences (and, for either side, reading and cancelling one)."""

    path = "/v1/pix/automatic/recurrences"
    tags = ["pix-automatic"]
    security = [{BEARER_SCHEME: []}]

    @post(
        "/",
        operation_id="createPixRecurrence",
        summary="Create a recurrence (receiver): periodicity, amount terms, retry policy",
        responses=problems(*COMMON, 404, 409, 422),
        status_code=HTTP_201_CREATED,
    )
    async def create(
        self,
        data: JSONBody[RecurrenceIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> RecurrenceOut:
        recurrence = await bank.pix.automatic.create(
            CreateRecurrenceCommand(
                owner_id=principal.subject,
                account_id=data.account_id,
                contract=data.contract,
                debtor_name=data.debtor_name,
                debtor_document=data.debtor_document,
                periodicity=data.periodicity,
                start=data.start,
                end=data.end,
                retry_policy=data.retry_policy,
                purpose=data.purpose,
                fixed_amount=Money.from_bcb(data.fixed_amount) if data.fixed_amount else None,
                min_amount=Money.from_bcb(data.min_amount) if data.min_amount else None,
            )
        )
        return RecurrenceOut.of(recurrence, principal.subject)

    @get(
        "/",
        operation_id="listPixRecurrences",
        summary="The caller's recurrences as receiver (or, role=payer, as payer)",
        responses=problems(401, 503),
    )
    async def list_recurrences(
        self,
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
        role: Annotated[RecurrenceRole, QueryParameter()] = RecurrenceRole.RECEIVER,
    ) -> list[RecurrenceOut]:
        found = await bank.pix.automatic.recurrences(
            ListRecurrencesQuery(owner_id=principal.subject, role=role)
        )
        return [RecurrenceOut.of(r, principal.subject) for r in found]

    @get(
        "/{recurrence_id:str}",
        operation_id="getPixRecurrence",
        summary="One recurrence, for its receiver or its payer",
        responses=problems(401, 404, 503),
    )
    async def detail(
        self,
        recurrence_id: FromPath[str],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> RecurrenceOut:
        found = await bank.pix.automatic.get(
            GetRecurrenceQuery(owner_id=principal.subject, recurrence_id=recurrence_id)
        )
        return RecurrenceOut.of(found, principal.subject)

    @post(
        "/{recurrence_id:str}/request",
        operation_id="requestPixRecurrenceAuthorisation",
        summary="Journey 1: send the recurrence to a payer's account here (receiver)",
        responses=problems(*COMMON, 404, 409, 422),
        status_code=HTTP_200_OK,
    )
    async def request_authorisation(
        self,
        recurrence_id: FromPath[str],
        data: JSONBody[RequestIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> RecurrenceOut:
        recurrence = await bank.pix.automatic.request(
            RequestAuthorisationCommand(
                owner_id=principal.subject,
                recurrence_id=recurrence_id,
                payer_branch=data.payer_branch,
                payer_account_number=data.payer_account_number,
                expires_at=data.expires_at,
            )
        )
        return RecurrenceOut.of(recurrence, principal.subject)

    @post(
        "/{recurrence_id:str}/codes",
        operation_id="issuePixRecurrenceCode",
        summary="The composite BR Code of journey 2, 3 or 4 (receiver)",
        responses=problems(*COMMON, 404, 422),
        status_code=HTTP_200_OK,
    )
    async def code(
        self,
        recurrence_id: FromPath[str],
        data: JSONBody[CodeIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> CodeOut:
        issued = await bank.pix.automatic.code(
            RecurrenceCodeQuery(
                owner_id=principal.subject,
                recurrence_id=recurrence_id,
                journey=data.journey,
                charge_txid=data.charge_txid,
            )
        )
        return CodeOut(
            journey=issued.journey, brcode=issued.br_code, location=issued.recurrence_url
        )

    @post(
        "/{recurrence_id:str}/charges",
        operation_id="schedulePixRecurringCharge",
        summary="Schedule a recurring charge 2 to 10 days before its due date (receiver)",
        description=(
            "201 with the charge, `ATIVA` (scheduled) or `REJEITADA` (over the payer's "
            "maximum); the same `txid` and terms again answer 200 with the first charge."
        ),
        responses=problems(*COMMON, 404, 409, 422),
        status_code=HTTP_201_CREATED,
    )
    async def schedule(
        self,
        recurrence_id: FromPath[str],
        data: JSONBody[ScheduleIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> Response[RecurringChargeOut]:
        result = await bank.pix.automatic.schedule(
            ScheduleChargeCommand(
                owner_id=principal.subject,
                recurrence_id=recurrence_id,
                amount=Money.from_bcb(data.amount),
                due_date=data.due_date,
                txid=data.txid,
            )
        )
        return Response(
            RecurringChargeOut.of(result.charge),
            status_code=HTTP_200_OK if result.replayed else HTTP_201_CREATED,
        )

    @get(
        "/{recurrence_id:str}/charges",
        operation_id="listPixRecurringCharges",
        summary="The charges of a recurrence (its receiver or its payer)",
        responses=problems(401, 404, 503),
    )
    async def charges(
        self,
        recurrence_id: FromPath[str],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> list[RecurringChargeOut]:
        found = await bank.pix.automatic.charges(
            ListRecurringChargesQuery(owner_id=principal.subject, recurrence_id=recurrence_id)
        )
        return [RecurringChargeOut.of(c) for c in found]

    @post(
        "/{recurrence_id:str}/cancel",
        operation_id="cancelPixRecurrence",
        summary="Cancel a recurrence (its receiver or its payer); charges not run are cancelled",
        responses=problems(*COMMON, 404, 409, 422),
        status_code=HTTP_200_OK,
    )
    async def cancel(
        self,
        recurrence_id: FromPath[str],
        data: JSONBody[CancelIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> RecurrenceOut:
        recurrence = await bank.pix.automatic.cancel(
            CancelRecurrenceCommand(
                owner_id=principal.subject, recurrence_id=recurrence_id, reason=data.reason
            )
        )
        return RecurrenceOut.of(recurrence, principal.subject)


class PixAuthorisationController(Controller):
    """The payer's side: read a code, authorise or reject, list."""

    path = "/v1/pix/automatic/authorisations"
    tags = ["pix-automatic"]
    security = [{BEARER_SCHEME: []}]

    @post(
        "/read",
        operation_id="readPixRecurrenceCode",
        summary="Read a Pix Automático code (payer) before answering it",
        responses=problems(*COMMON, 404),
        status_code=HTTP_200_OK,
    )
    async def read(
        self,
        data: JSONBody[ReadCodeIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> OfferOut:
        offer = await bank.pix.automatic.read(
            ReadRecurrenceCodeQuery(owner_id=principal.subject, br_code=data.br_code)
        )
        return OfferOut(
            journey=offer.journey,
            recurrence=RecurrenceOut.of(offer.recurrence, principal.subject),
            code=BRCodeOut.of(offer.reading),
        )

    @post(
        "/",
        operation_id="authorisePixRecurrence",
        summary="Authorise a recurrence from one of the caller's accounts (payer)",
        responses=problems(*COMMON, 404, 409, 422),
        status_code=HTTP_201_CREATED,
    )
    async def authorise(
        self,
        data: JSONBody[AuthoriseIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> RecurrenceOut:
        recurrence = await bank.pix.automatic.authorise(
            AuthoriseRecurrenceCommand(
                owner_id=principal.subject,
                account_id=data.account_id,
                br_code=data.br_code,
                recurrence_id=data.recurrence_id,
                max_amount=Money.from_bcb(data.max_amount) if data.max_amount else None,
            )
        )
        return RecurrenceOut.of(recurrence, principal.subject)

    @post(
        "/pay",
        operation_id="payAndAuthorisePixRecurrence",
        summary="Journey 3: pay the immediate charge and authorise its recurrence in one step",
        description=(
            "Idempotent by the `Idempotency-Key` header (the payment is made once). Everything "
            "the authorisation needs is checked before paying; a payment refused or rejected "
            "authorises nothing. `authorised` is false with a `reason` when the payment is "
            "still pending at the network (`payment_pending`: send the same request again) or "
            "the authorisation was lost to a concurrent change after the payment (the error "
            "code; the payment is reported, not reversed)."
        ),
        responses={**problems(*COMMON, 404, 409, 422), **in_progress_problem()},
        status_code=HTTP_201_CREATED,
    )
    async def pay_and_authorise(
        self,
        data: JSONBody[PayAndAuthoriseIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
        idempotency_key: IdempotencyKey,
        device_id: DeviceId = None,
    ) -> PayAndAuthoriseOut:
        result = await bank.pix.automatic.pay_and_authorise(
            PayAndAuthoriseCommand(
                owner_id=principal.subject,
                account_id=data.account_id,
                br_code=data.br_code,
                idempotency_key=idempotency_key,
                max_amount=Money.from_bcb(data.max_amount) if data.max_amount else None,
                # the first payment is a PIX payment like any other: the same device caps
                device_id=device_id,
            )
        )
        return PayAndAuthoriseOut(
            payment=PaymentOut.of(result.payment, principal.subject),
            recurrence=RecurrenceOut.of(result.recurrence, principal.subject),
            authorised=result.authorised,
            reason=result.reason,
        )

    @post(
        "/reject",
        operation_id="rejectPixRecurrence",
        summary="Decline a recurrence (payer)",
        responses=problems(*COMMON, 404, 409, 422),
        status_code=HTTP_200_OK,
    )
    async def reject(
        self,
        data: JSONBody[RejectIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> RecurrenceOut:
        recurrence = await bank.pix.automatic.reject(
            RejectRecurrenceCommand(
                owner_id=principal.subject, br_code=data.br_code, recurrence_id=data.recurrence_id
            )
        )
        return RecurrenceOut.of(recurrence, principal.subject)

    @get(
        "/",
        operation_id="listPixAuthorisations",
        summary="The recurrences the caller authorised or was asked to (payer)",
        responses=problems(401, 503),
    )
    async def list_authorisations(
        self, principal: NamedDependency[Principal], bank: NamedDependency[Bank]
    ) -> list[RecurrenceOut]:
        found = await bank.pix.automatic.authorisations(
            ListAuthorisationsQuery(owner_id=principal.subject)
        )
        return [RecurrenceOut.of(r, principal.subject) for r in found]


class PixAutomaticLimitController(Controller):
    """The payer's own daily limit for everything Pix Automático debits from an account."""

    path = "/v1/pix/automatic/limit"
    tags = ["pix-automatic"]
    security = [{BEARER_SCHEME: []}]

    @get(
        "/",
        operation_id="getPixAutomaticLimit",
        summary="The daily Pix Automático limit of one of the caller's accounts (payer)",
        responses=problems(*COMMON, 404, 422),
    )
    async def get_limit(
        self,
        account_id: AccountQuery,
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> AutomaticLimitOut:
        limit = await bank.pix.automatic.limit(
            AutomaticLimitQuery(owner_id=principal.subject, account_id=account_id)
        )
        return AutomaticLimitOut.of(limit)

    @put(
        "/",
        operation_id="setPixAutomaticLimit",
        summary="Set, lower, raise or remove an account's daily Pix Automático limit (payer)",
        description="Lowering the limit, or setting one where there was none, applies at once. "
        "Raising it or removing it (`daily_limit: null`) lets automatic debits take more, so "
        "it needs a step-up token for `pix_limit_raise` (`POST /v1/auth/step-up`) in "
        "`X-Step-Up-Token`; without it the change is refused with 403 `step_up_required` "
        "and nothing changes. A token sent is spent only after the account and the figure "
        "are checked (a refused request leaves it usable), once. A debit attempt that would "
        "pass the limit fails "
        "`automatic_limit_exceeded` and is retried as its charge's policy allows.",
        responses=problems(*COMMON, 403, 404, 422),
        status_code=HTTP_200_OK,
    )
    async def set_limit(
        self,
        data: JSONBody[AutomaticLimitIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
        step_up_token: StepUpToken = None,
    ) -> AutomaticLimitOut:
        daily = None if data.daily_limit is None else Money.from_bcb(data.daily_limit)
        limit = await bank.pix.automatic.set_limit(
            SetAutomaticLimitCommand(
                owner_id=principal.subject,
                account_id=data.account_id,
                daily_limit=daily,
                step_up=limit_raise_step_up(bank, principal, step_up_token),
            )
        )
        return AutomaticLimitOut.of(limit)


@get(
    "/v1/pix/automatic/charges/{txid:str}",
    operation_id="getPixRecurringCharge",
    tags=["pix-automatic"],
    summary="One recurring charge, for its receiver or its payer",
    security=[{BEARER_SCHEME: []}],
    responses=problems(401, 404, 503),
)
async def get_recurring_charge(
    txid: FromPath[str], principal: NamedDependency[Principal], bank: NamedDependency[Bank]
) -> RecurringChargeOut:
    charge = await bank.pix.automatic.charge(
        GetRecurringChargeQuery(owner_id=principal.subject, txid=txid)
    )
    return RecurringChargeOut.of(charge)


@post(
    "/v1/pix/automatic/charges/{txid:str}/cancel",
    operation_id="cancelPixRecurringCharge",
    tags=["pix-automatic"],
    summary="Cancel one scheduled charge (its payer or receiver), until the day before it is due",
    security=[{BEARER_SCHEME: []}],
    responses=problems(401, 404, 422, 503),
    status_code=HTTP_200_OK,
)
async def cancel_recurring_charge(
    txid: FromPath[str], principal: NamedDependency[Principal], bank: NamedDependency[Bank]
) -> RecurringChargeOut:
    charge = await bank.pix.automatic.cancel_charge(
        CancelRecurringChargeCommand(owner_id=principal.subject, txid=txid)
    )
    return RecurringChargeOut.of(charge)


class RunDueOut(msgspec.Struct, kw_only=True):
    charges: list[RecurringChargeOut]


@post(
    "/v1/sandbox/pix/automatic/run-due",
    operation_id="runPixAutomaticDueDebits",
    tags=["sandbox"],
    summary="Sandbox only: one scheduler round now (what `finbank worker pix-automatic` does)",
    description=(
        "Leases the charges due today (Brasília) and runs each debit; answers the charges it "
        "ran. 404 when the sandbox is disabled."
    ),
    security=[{BEARER_SCHEME: []}],
    responses=problems(401, 404, 503),
    status_code=HTTP_200_OK,
)
async def sandbox_run_due_debits(
    principal: NamedDependency[Principal], bank: NamedDependency[Bank]
) -> RunDueOut:
    if not bank.settings.pix.sandbox:
        raise NotFound("the sandbox is disabled")
    result = await bank.pix.automatic.run_due(
        RunDueDebitsCommand(holder=f"sandbox:{principal.subject}")
    )
    return RunDueOut(charges=[RecurringChargeOut.of(c) for c in result.charges])


def pix_automatic_router() -> Router:
    """The Pix Automático routes, to mount under a router that provides ``principal``."""
    return Router(
        path="/",
        route_handlers=[
            PixRecurrenceController,
            PixAuthorisationController,
            PixAutomaticLimitController,
            get_recurring_charge,
            cancel_recurring_charge,
            sandbox_run_due_debits,
        ],
    )
