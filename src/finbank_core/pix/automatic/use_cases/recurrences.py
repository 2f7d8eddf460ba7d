"""Receiver side: create a recurrence, send a journey-1 request, issue its QR codes, read it.

Only the receiver (the owner of the receiving account) creates, requests and
issues codes; the receiver and the payer may read a recurrence; anyone else
gets ``RecurrenceNotFound``.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, timedelta

import msgspec

from finbank_core.accounts.access import owned_active_account
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.automatic.errors import (
    InvalidRecurrence,
    RecurrenceNotFound,
)
from finbank_core.pix.automatic.events import RECURRENCE_CREATED, RECURRENCE_REQUESTED, event_id
from finbank_core.pix.automatic.events import recurrence_payload as _payload
from finbank_core.pix.automatic.model import (
    MAX_CONTRACT_LENGTH,
    MAX_NAME_LENGTH,
    MAX_OBJECT_LENGTH,
    MAX_REQUEST_DAYS,
    AuthorisationRequest,
    Journey,
    Periodicity,
    Recurrence,
    RecurrenceStatus,
    RetryPolicy,
    business_date,
    check_charge_amount,
    new_recurrence_id,
    new_request_id,
)
from finbank_core.pix.automatic.ports import RecurrenceStore
from finbank_core.pix.automatic.use_cases.common import retrying, visible_recurrence
from finbank_core.pix.codes.brcode import BRCode, ascii_fold
from finbank_core.pix.codes.documents import is_valid_cnpj, is_valid_cpf, normalize_cnpj
from finbank_core.pix.directory import safe_mask
from finbank_core.pix.errors import InvalidDocument
from finbank_core.pix.ledger_steps import PixEvents
from finbank_core.pix.ports import ChargeRepository
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import AccountNotFound, SameAccount
from finbank_core.shared.ids import IdGenerator
from finbank_core.shared.inputs import check_lookup_id, check_text, checked_enums
from finbank_core.shared.money import Money
from finbank_core.shared.privacy import masked_repr


class CreateRecurrenceCommand(msgspec.Struct, frozen=True, kw_only=True):
    """The receiver's terms. ``fixed_amount`` and ``min_amount`` exclude each other.

    ``debtor_document`` (CPF or CNPJ) is checked and kept masked only.
    """

    owner_id: str
    account_id: uuid.UUID
    contract: str
    debtor_name: str
    debtor_document: str
    periodicity: Periodicity
    start: date
    retry_policy: RetryPolicy
    end: date | None = None
    purpose: str | None = None
    fixed_amount: Money | None = None
    min_amount: Money | None = None

    def __repr__(self) -> str:  # the document is personal data
        return f"CreateRecurrenceCommand(owner_id={self.owner_id!r}, contract=...)"


class GetRecurrenceQuery(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    recurrence_id: str


class RecurrenceRole(enum.StrEnum):
    RECEIVER = "receiver"
    PAYER = "payer"


class ListRecurrencesQuery(msgspec.Struct, frozen=True, kw_only=True):
    """The caller's recurrences as receiver, or (``PAYER``) their authorisations and requests."""

    owner_id: str
    role: RecurrenceRole = RecurrenceRole.RECEIVER


class RequestAuthorisationCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Journey 1: send the recurrence to the payer's account (branch and number) here.

    ``expires_at``: when the request lapses; at most 30 days on, 30 days by default.
    """

    owner_id: str
    recurrence_id: str
    payer_branch: str
    payer_account_number: str
    expires_at: datetime | None = None


class RecurrenceCodeQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A QR code for journey 2 (recurrence only), 3 or 4 (with ``charge_txid``).

    Journeys 3 and 4 compose the receiver's immediate charge ``charge_txid``
    (``bank.pix.create_charge``): 3 its dynamic code (pay it and authorise),
    4 its static code (pay it; authorising is optional).
    """

    owner_id: str
    recurrence_id: str
    journey: Journey = Journey.JORNADA_2
    charge_txid: str | None = None


class RecurrenceCode(msgspec.Struct, frozen=True, kw_only=True):
    journey: Journey
    br_code: str
    recurrence_url: str

    __repr__ = masked_repr("br_code")


def _text(value: str | None, field: str, max_length: int, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise InvalidRecurrence(f"1 to {max_length} characters", field=field)
    if not value.isprintable():
        raise InvalidRecurrence("printable characters only", field=field)


def _positive(amount: Money | None, field: str) -> None:
    if amount is not None:
        check_charge_amount(amount, field)


def check_terms(cmd: CreateRecurrenceCommand, today: date) -> str | None:
    """Validate the command; return the debtor document masked."""
    _text(cmd.contract, "contract", MAX_CONTRACT_LENGTH)
    _text(cmd.purpose, "purpose", MAX_OBJECT_LENGTH, required=False)
    _text(cmd.debtor_name, "debtor_name", MAX_NAME_LENGTH)
    if not any(c.isalpha() for c in cmd.debtor_name):  # "12", "-": not a person's name
        raise InvalidRecurrence("the debtor's name must contain a letter", field="debtor_name")
    document = normalize_cnpj(cmd.debtor_document)
    if not (is_valid_cpf(document) or is_valid_cnpj(document)):
        raise InvalidDocument("debtor_document is not a valid CPF or CNPJ", field="debtor_document")
    if cmd.start < today:
        raise InvalidRecurrence("the start cannot be in the past", field="start")
    if cmd.end is not None and cmd.end < cmd.start:
        raise InvalidRecurrence("the end cannot be before the start", field="end")
    if cmd.fixed_amount is not None and cmd.min_amount is not None:
        raise InvalidRecurrence(
            "a fixed amount has no minimum; give one of them", field="min_amount"
        )
    _positive(cmd.fixed_amount, "fixed_amount")
    _positive(cmd.min_amount, "min_amount")
    return safe_mask(document)


class CreateRecurrence:
    """The receiver creates a recurrence (``CRIADA``), to be authorised by a payer."""

    def __init__(
        self,
        *,
        store: RecurrenceStore,
        accounts: AccountRepository,
        events: PixEvents,
        clock: Clock,
        ids: IdGenerator,
        ispb: str,
        location_base_url: str,
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._events = events
        self._clock = clock
        self._ids = ids
        self._ispb = ispb
        self._base = location_base_url.removeprefix("https://").rstrip("/")

    async def __call__(self, cmd: CreateRecurrenceCommand) -> Recurrence:
        cmd = checked_enums(cmd)  # periodicity, retry policy: stored, and in its events
        now = self._clock.now()
        masked = check_terms(cmd, business_date(now))
        account = await owned_active_account(self._accounts, cmd.owner_id, cmd.account_id)
        recurrence_id = new_recurrence_id(
            self._ispb, cmd.retry_policy, business_date(now), self._ids.new_id()
        )
        recurrence = await self._store.add_recurrence(
            Recurrence(
                recurrence_id=recurrence_id,
                receiver_owner_id=cmd.owner_id,
                receiver_account_id=account.id,
                receiver_name=account.holder_name,
                receiver_ispb=self._ispb,
                contract=cmd.contract,
                purpose=cmd.purpose,
                debtor_name=cmd.debtor_name,
                debtor_document_masked=masked,
                periodicity=cmd.periodicity,
                start=cmd.start,
                end=cmd.end,
                retry_policy=cmd.retry_policy,
                location_url=f"{self._base}/rec/{recurrence_id}",
                created_at=now,
                fixed_amount=cmd.fixed_amount,
                min_amount=cmd.min_amount,
            )
        )
        await self._events.publish(
            RECURRENCE_CREATED,
            recurrence_id,
            _payload(recurrence),
            event_id=event_id(RECURRENCE_CREATED, recurrence_id),
        )
        return recurrence


class GetRecurrence:
    """A recurrence, for its receiver or its payer."""

    def __init__(self, *, store: RecurrenceStore) -> None:
        self._store = store

    async def __call__(self, query: GetRecurrenceQuery) -> Recurrence:
        check_lookup_id(query.recurrence_id, "recurrence_id")
        return await visible_recurrence(self._store, query.owner_id, query.recurrence_id)


class ListRecurrences:
    """The caller's recurrences as receiver, or as payer (authorised or requested)."""

    def __init__(self, *, store: RecurrenceStore) -> None:
        self._store = store

    async def __call__(self, query: ListRecurrencesQuery) -> list[Recurrence]:
        check_text(query.owner_id, field="owner_id", name="owner id")  # the store is asked by it
        query = checked_enums(query)
        if query.role is RecurrenceRole.PAYER:
            return await self._store.list_recurrences(payer_owner_id=query.owner_id)
        return await self._store.list_recurrences(receiver_owner_id=query.owner_id)


class RequestAuthorisation:
    """Journey 1: address the recurrence to a payer account here (the ``solicrec`` message)."""

    def __init__(
        self,
        *,
        store: RecurrenceStore,
        accounts: AccountRepository,
        events: PixEvents,
        clock: Clock,
        ids: IdGenerator,
        ispb: str,
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._events = events
        self._clock = clock
        self._ids = ids
        self._ispb = ispb

    async def __call__(self, cmd: RequestAuthorisationCommand) -> Recurrence:
        now = self._clock.now()
        latest = now + timedelta(days=MAX_REQUEST_DAYS)
        expires_at = cmd.expires_at or latest
        if expires_at.tzinfo is None or not now < expires_at <= latest:
            raise InvalidRecurrence(
                f"the request must lapse after now and within {MAX_REQUEST_DAYS} days",
                field="expires_at",
            )
        check_text(cmd.payer_branch, field="payer_branch", name="payer_branch")
        check_text(
            cmd.payer_account_number, field="payer_account_number", name="payer_account_number"
        )
        try:
            payer = await self._accounts.get_by_number(cmd.payer_branch, cmd.payer_account_number)
        except AccountNotFound:
            raise InvalidRecurrence(
                "no such payer account here", field="payer_account_number"
            ) from None
        request_id = new_request_id(self._ispb, business_date(now), self._ids.new_id())

        async def send() -> Recurrence:
            recurrence = await self._store.get_recurrence(cmd.recurrence_id)
            if recurrence is None or recurrence.receiver_owner_id != cmd.owner_id:
                raise RecurrenceNotFound()
            if payer.id == recurrence.receiver_account_id:
                raise SameAccount()
            return await self._store.update_recurrence(
                recurrence.with_request(
                    AuthorisationRequest(
                        request_id=request_id,
                        payer_account_id=payer.id,
                        payer_owner_id=payer.owner_id,
                        created_at=now,
                        expires_at=expires_at,
                    )
                )
            )

        recurrence = await retrying(send)
        await self._events.publish(
            RECURRENCE_REQUESTED,
            recurrence.recurrence_id,
            _payload(recurrence),
            event_id=event_id(RECURRENCE_REQUESTED, recurrence.recurrence_id),
        )
        return recurrence


class IssueRecurrenceCode:
    """The composite BR Code of journey 2, 3 or 4 for one of the receiver's recurrences."""

    def __init__(
        self,
        *,
        store: RecurrenceStore,
        charges: ChargeRepository,
        location_base_url: str,
        merchant_city: str = "SAO PAULO",
    ) -> None:
        self._store = store
        self._charges = charges
        self._base = location_base_url
        self._city = merchant_city

    async def __call__(self, query: RecurrenceCodeQuery) -> RecurrenceCode:
        query = checked_enums(query)  # enum fields given as their values
        check_lookup_id(query.recurrence_id, "recurrence_id")
        recurrence = await self._store.get_recurrence(query.recurrence_id)
        if recurrence is None or recurrence.receiver_owner_id != query.owner_id:
            raise RecurrenceNotFound()
        recurrence.require(RecurrenceStatus.CRIADA)
        if query.journey is Journey.JORNADA_2:
            if query.charge_txid is not None:
                raise InvalidRecurrence("journey 2 carries no charge", field="charge_txid")
            code = BRCode.recurrence_only(
                recurrence_url=recurrence.location_url,
                merchant_name=ascii_fold(recurrence.receiver_name)[:25] or "RECEBEDOR",
                merchant_city=self._city,
            )
        elif query.journey in (Journey.JORNADA_3, Journey.JORNADA_4):
            if query.charge_txid is None:
                raise InvalidRecurrence(
                    "journeys 3 and 4 compose an immediate charge", field="charge_txid"
                )
            charge = await self._charges.get(query.charge_txid)
            if charge.account_id != recurrence.receiver_account_id:
                raise InvalidRecurrence(
                    "the charge must pay the recurrence's account", field="charge_txid"
                )
            base = (
                charge.dynamic_brcode(self._base)
                if query.journey is Journey.JORNADA_3
                else charge.static_brcode()
            )
            code = base.with_recurrence(recurrence.location_url)
        else:
            raise InvalidRecurrence(
                "a QR code is issued for journeys 2, 3 and 4 (journey 1 is a request)",
                field="journey",
            )
        return RecurrenceCode(
            journey=query.journey, br_code=code.encode(), recurrence_url=recurrence.location_url
        )
