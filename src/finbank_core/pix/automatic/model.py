"""Pix Automático: recurrences (``rec``), their authorisation, recurring charges (``cobr``).

The rules implemented here, with their sources, are on docs/pix-automatic.md.
In short:

* A **recurrence** is created by the receiver (``CRIADA``) with a periodicity
  (``SEMANAL``, ``MENSAL``, ``TRIMESTRAL``, ``SEMESTRAL``, ``ANUAL``), a start
  and an optional end, a fixed amount or none (then an optional receiver
  minimum), and a retry policy (``NAO_PERMITE`` or ``PERMITE_3R_7D``). The
  payer authorises it (``APROVADA``, optionally with a maximum amount per
  charge when the amount is not fixed) or rejects it (``REJEITADA``); either
  side may cancel it (``CANCELADA``); a journey-1 request not answered by its
  deadline ends ``EXPIRADA``.
* A **recurring charge** is sent by the receiver 2 to 10 days before its due
  date, one per period of the recurrence. It is ``ATIVA`` when the payer's
  side scheduled it and ``REJEITADA`` when it could not (an amount over the
  payer's maximum); on the due date the debit runs (``CONCLUIDA``), and if
  the funds are short it is retried as the policy allows (none, or up to 3
  retries within the 7 days after the due date, at most one a day), after
  which it is ``EXPIRADA``. Cancelling the recurrence cancels its charges
  that have not run (``CANCELADA``).

Days are calendar days in Brasília (UTC-3, no daylight saving since 2019):
:func:`business_date` turns the injected clock's instant into one.
"""

from __future__ import annotations

import calendar
import enum
import hashlib
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Final

import msgspec

from finbank_core.pix.automatic.errors import InvalidRecurrence, RecurrenceNotActive
from finbank_core.pix.payments import PixParty
from finbank_core.shared.money import MAX_BCB_CENTS, Money
from finbank_core.shared.privacy import masked_repr

#: the local account id of a party at another institution (it has none here)
ELSEWHERE: Final = uuid.UUID(int=0)
#: Pix days are Brasília days
BRASILIA: Final = timezone(timedelta(hours=-3), "BRT")
#: a recurring charge is sent at least 2 and at most 10 days before its due date
CHARGE_MIN_DAYS_AHEAD: Final = 2
CHARGE_MAX_DAYS_AHEAD: Final = 10
#: a journey-1 request stays open at most 30 days
MAX_REQUEST_DAYS: Final = 30
MAX_CONTRACT_LENGTH: Final = 35
MAX_OBJECT_LENGTH: Final = 35
MAX_NAME_LENGTH: Final = 140
_ALNUM: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


#: the hours of a Brasília day in which a debit attempt may start, [start, end): the
#: day's order goes out between 00:00 and 08:00; after a failure there, the payer's
#: institution tries once more the same day between 18:00 and 21:00
ATTEMPT_WINDOWS: Final = ((time(0), time(8)), (time(18), time(21)))


def attempt_window(at: datetime) -> int | None:
    """Which of :data:`ATTEMPT_WINDOWS` the instant ``at`` falls in (0 or 1); None: neither."""
    clock = at.astimezone(BRASILIA).time()
    for index, (opens, closes) in enumerate(ATTEMPT_WINDOWS):
        if opens <= clock < closes:
            return index
    return None


def window_opens(day: date, window: int) -> datetime:
    """The instant window ``window`` of the Brasília day ``day`` opens (aware, UTC)."""
    opens = ATTEMPT_WINDOWS[window][0]
    return datetime.combine(day, opens, tzinfo=BRASILIA).astimezone(UTC)


def business_date(at: datetime) -> date:
    """The Brasília calendar day of the instant ``at`` (aware)."""
    return at.astimezone(BRASILIA).date()


def start_of_day(day: date) -> datetime:
    """00:00 of ``day`` in Brasília, as an aware UTC instant."""
    return datetime(day.year, day.month, day.day, tzinfo=BRASILIA).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


class Periodicity(enum.StrEnum):
    """How often the recurrence charges (the API's ``periodicidade``)."""

    SEMANAL = "SEMANAL"
    MENSAL = "MENSAL"
    TRIMESTRAL = "TRIMESTRAL"
    SEMESTRAL = "SEMESTRAL"
    ANUAL = "ANUAL"

    @property
    def months(self) -> int:
        """Months per period; 0 for weekly."""
        return _MONTHS[self]

    def period_start(self, start: date, k: int) -> date:
        """The first day of period ``k`` (0 = the one that begins on ``start``)."""
        if self is Periodicity.SEMANAL:
            return start + timedelta(days=7 * k)
        return _add_months(start, self.months * k)

    def cycle_of(self, start: date, day: date) -> int:
        """The period ``day`` falls in (``-1`` before ``start``)."""
        if day < start:
            return -1
        if self is Periodicity.SEMANAL:
            return (day - start).days // 7
        months = (day.year - start.year) * 12 + day.month - start.month
        k = months // self.months
        while k > 0 and self.period_start(start, k) > day:
            k -= 1
        while self.period_start(start, k + 1) <= day:
            k += 1
        return k


_MONTHS: Final = {
    Periodicity.SEMANAL: 0,
    Periodicity.MENSAL: 1,
    Periodicity.TRIMESTRAL: 3,
    Periodicity.SEMESTRAL: 6,
    Periodicity.ANUAL: 12,
}


class RetryPolicy(enum.StrEnum):
    """Retries after a failed debit (the API's ``politicaRetentativa``)."""

    #: one attempt, on the due date
    NAO_PERMITE = "NAO_PERMITE"
    #: up to 3 more days of attempts within the 7 days after the due date
    PERMITE_3R_7D = "PERMITE_3R_7D"

    @property
    def max_retries(self) -> int:
        return 3 if self is RetryPolicy.PERMITE_3R_7D else 0

    def last_day(self, due: date) -> date:
        """The last day an attempt may run."""
        return due + timedelta(days=7) if self is RetryPolicy.PERMITE_3R_7D else due


class Journey(enum.StrEnum):
    """How the payer was asked to authorise (the API's ``tipoJornada``)."""

    #: a request message sent to the payer's institution (``solicrec``)
    JORNADA_1 = "JORNADA_1"
    #: a QR code that carries only the recurrence
    JORNADA_2 = "JORNADA_2"
    #: a QR code of an immediate charge plus the recurrence (pay and authorise)
    JORNADA_3 = "JORNADA_3"
    #: a QR code of a payment plus the recurrence, authorising is optional
    JORNADA_4 = "JORNADA_4"
    AGUARDANDO_DEFINICAO = "AGUARDANDO_DEFINICAO"


class RecurrenceStatus(enum.StrEnum):
    CRIADA = "CRIADA"
    APROVADA = "APROVADA"
    REJEITADA = "REJEITADA"
    EXPIRADA = "EXPIRADA"
    CANCELADA = "CANCELADA"


class Party(enum.StrEnum):
    """Who ended a recurrence (the API's ``solicitante``)."""

    USUARIO_PAGADOR = "USUARIO_PAGADOR"
    USUARIO_RECEBEDOR = "USUARIO_RECEBEDOR"
    PSP_PAGADOR = "PSP_PAGADOR"
    PSP_RECEBEDOR = "PSP_RECEBEDOR"


class StatusChange(msgspec.Struct, frozen=True):
    """One entry of a recurrence's or charge's history (the API's ``atualizacao``)."""

    status: str
    at: datetime


class AuthorisationRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Journey 1: the receiver's request, addressed to one payer account here."""

    request_id: str
    payer_account_id: uuid.UUID
    payer_owner_id: str
    created_at: datetime
    #: answering at this instant or later is too late
    expires_at: datetime


class Authorisation(msgspec.Struct, frozen=True, kw_only=True):
    """The payer's consent: which account pays, and up to how much a charge."""

    payer_owner_id: str
    payer_account_id: uuid.UUID
    authorised_at: datetime
    #: None: any amount the recurrence allows
    max_amount: Money | None = None
    #: a payer at another institution (receiver side): its account there; then
    #: ``payer_owner_id`` is empty and ``payer_account_id`` is :data:`ELSEWHERE`
    payer_party: PixParty | None = None


def check_charge_amount(amount: Money, field: str) -> None:
    """``InvalidRecurrence`` naming ``field`` unless ``amount`` is positive and at most what
    a PIX charge carries (R$ 9,999,999,999.99: the BR Code's and the API's limit)."""
    if not 0 < amount.cents <= MAX_BCB_CENTS:
        raise InvalidRecurrence(
            "the amount must be positive and at most R$ 9,999,999,999.99", field=field
        )


class Recurrence(msgspec.Struct, frozen=True, kw_only=True):
    """A Pix Automático recurrence; change it with the methods, which check the transitions.

    ``debtor_document_masked`` only: the full CPF/CNPJ of the debtor is not
    kept, so it can reach no log or ``repr``.
    """

    recurrence_id: str
    receiver_owner_id: str
    receiver_account_id: uuid.UUID
    receiver_name: str
    receiver_ispb: str
    contract: str
    purpose: str | None
    debtor_name: str
    debtor_document_masked: str | None
    periodicity: Periodicity
    start: date
    end: date | None
    retry_policy: RetryPolicy
    location_url: str
    created_at: datetime
    fixed_amount: Money | None = None
    min_amount: Money | None = None
    status: RecurrenceStatus = RecurrenceStatus.CRIADA
    journey: Journey = Journey.AGUARDANDO_DEFINICAO
    history: tuple[StatusChange, ...] = ()
    request: AuthorisationRequest | None = None
    first_charge_txid: str | None = None
    authorisation: Authorisation | None = None
    ended_by: Party | None = None
    end_reason: str | None = None
    #: a receiver at another institution (payer side, our copy of its recurrence): its
    #: account there; then ``receiver_owner_id`` is empty and ``receiver_account_id``
    #: is :data:`ELSEWHERE`
    receiver_party: PixParty | None = None
    version: int = 0

    @property
    def receiver_elsewhere(self) -> bool:
        return self.receiver_party is not None

    @property
    def payer_elsewhere(self) -> bool:
        return self.authorisation is not None and self.authorisation.payer_party is not None

    def _moved(self, status: RecurrenceStatus, at: datetime, **changes: object) -> Recurrence:
        return msgspec.structs.replace(
            self,
            status=status,
            history=(*self.history, StatusChange(status.value, at)),
            **changes,
        )

    def require(self, *allowed: RecurrenceStatus) -> None:
        if self.status not in allowed:
            raise RecurrenceNotActive(
                f"the recurrence is {self.status.value}", status=self.status.value
            )

    def approved(self, authorisation: Authorisation, journey: Journey) -> Recurrence:
        self.require(RecurrenceStatus.CRIADA)
        return self._moved(
            RecurrenceStatus.APROVADA,
            authorisation.authorised_at,
            authorisation=authorisation,
            journey=journey,
        )

    def rejected(self, at: datetime, journey: Journey, reason: str) -> Recurrence:
        self.require(RecurrenceStatus.CRIADA)
        return self._moved(
            RecurrenceStatus.REJEITADA,
            at,
            journey=journey,
            ended_by=Party.USUARIO_PAGADOR,
            end_reason=reason,
        )

    def cancelled(self, at: datetime, by: Party, reason: str) -> Recurrence:
        self.require(RecurrenceStatus.CRIADA, RecurrenceStatus.APROVADA)
        return self._moved(RecurrenceStatus.CANCELADA, at, ended_by=by, end_reason=reason)

    def expired(self, at: datetime) -> Recurrence:
        self.require(RecurrenceStatus.CRIADA)
        return self._moved(RecurrenceStatus.EXPIRADA, at, end_reason="request_expired")

    def with_request(self, request: AuthorisationRequest) -> Recurrence:
        self.require(RecurrenceStatus.CRIADA)
        if self.request is not None:
            raise RecurrenceNotActive("the recurrence was already sent to a payer", status="CRIADA")
        return msgspec.structs.replace(self, request=request, journey=Journey.JORNADA_1)

    def check_amount(self, amount: Money) -> None:
        """``InvalidRecurrence`` if a charge of ``amount`` breaks the receiver's terms."""
        check_charge_amount(amount, "amount")
        if self.fixed_amount is not None and amount != self.fixed_amount:
            raise InvalidRecurrence(
                "the recurrence has a fixed amount; charge exactly it", field="amount"
            )
        if self.min_amount is not None and amount < self.min_amount:
            raise InvalidRecurrence("under the recurrence's minimum amount", field="amount")

    __repr__ = masked_repr("receiver_name", "debtor_name")


class ChargeStatus(enum.StrEnum):
    """A recurring charge's status (the API's ``cobr`` statuses)."""

    CRIADA = "CRIADA"
    ATIVA = "ATIVA"
    CONCLUIDA = "CONCLUIDA"
    EXPIRADA = "EXPIRADA"
    REJEITADA = "REJEITADA"
    CANCELADA = "CANCELADA"


class AttemptStatus(enum.StrEnum):
    #: claimed by a runner; its reservation may or may not exist yet
    RUNNING = "RUNNING"
    #: the money is reserved; the attempt can only end in a post
    RESERVED = "RESERVED"
    SETTLED = "SETTLED"
    FAILED = "FAILED"


class DebitAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """One try of a debit; its ledger steps are derived from ``end_to_end_id``."""

    number: int
    on: date
    end_to_end_id: str
    status: AttemptStatus
    started_at: datetime
    reason: str | None = None


class RecurringCharge(msgspec.Struct, frozen=True, kw_only=True):
    """A recurring charge (``cobr``): one period's debit of a recurrence."""

    txid: str
    recurrence_id: str
    cycle: int
    amount: Money
    due_date: date
    receiver_owner_id: str
    receiver_account_id: uuid.UUID
    payer_owner_id: str
    payer_account_id: uuid.UUID
    retry_policy: RetryPolicy
    created_at: datetime
    status: ChargeStatus = ChargeStatus.ATIVA
    #: the day the next attempt may run; None once final
    next_attempt_on: date | None = None
    #: not before this instant (the same-day retry's 18:00); None: from the day's 00:00
    next_attempt_at: datetime | None = None
    attempts: tuple[DebitAttempt, ...] = ()
    reason: str | None = None
    history: tuple[StatusChange, ...] = ()
    #: the receiver's account at another institution (the debit goes out as a PIX payment)
    receiver_party: PixParty | None = None
    #: the payer's account at another institution (its institution debits; we are paid)
    payer_party: PixParty | None = None
    #: receiver side, payer elsewhere: the EndToEndId of the payment that paid it
    paid_by: str | None = None
    version: int = 0

    @property
    def is_final(self) -> bool:
        return self.status not in (ChargeStatus.CRIADA, ChargeStatus.ATIVA)

    @property
    def current_attempt(self) -> DebitAttempt | None:
        """The last attempt if it has not ended (running or reserved)."""
        if self.attempts and self.attempts[-1].status in (
            AttemptStatus.RUNNING,
            AttemptStatus.RESERVED,
        ):
            return self.attempts[-1]
        return None

    @property
    def settled_attempt(self) -> DebitAttempt | None:
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and last.status is AttemptStatus.SETTLED else None

    def moved(self, status: ChargeStatus, at: datetime, **changes: object) -> RecurringCharge:
        return msgspec.structs.replace(
            self,
            status=status,
            history=(*self.history, StatusChange(status.value, at)),
            **changes,
        )

    def with_attempt(self, attempt: DebitAttempt, **changes: object) -> RecurringCharge:
        """This charge with its last attempt replaced by (or, if new, followed by) ``attempt``."""
        kept = self.attempts
        if kept and kept[-1].number == attempt.number:
            kept = kept[:-1]
        return msgspec.structs.replace(self, attempts=(*kept, attempt), **changes)

    def next_attempt_after(self, failed: DebitAttempt) -> datetime | None:
        """When the next attempt may start after ``failed``; None: no attempt is left.

        An attempt that started in the day's first window (00:00-08:00) is
        followed by one in the same day's second window (18:00-21:00), whatever
        the policy: that same-day try is not one of the policy's retries. After
        one in the second window, the next runs the following day if the
        policy has a retry day left (``PERMITE_3R_7D``: 3 days, within the 7
        after the due date).
        """
        if attempt_window(failed.started_at) == 0:
            return window_opens(failed.on, 1)
        retry_days = {a.on for a in self.attempts if a.on > self.due_date}
        if len(retry_days) >= self.retry_policy.max_retries:
            return None
        day = failed.on + timedelta(days=1)
        if day > self.retry_policy.last_day(self.due_date):
            return None
        return window_opens(day, 0)


def debit_end_to_end_id(ispb: str, txid: str, attempt: int, on: date) -> str:
    """The EndToEndId of attempt ``attempt`` of charge ``txid``: the same for every runner.

    ``E`` + ISPB + 00:00 Brasília of the attempt's day in UTC + 11 letters or
    digits drawn from a hash of the txid and the attempt number. Every
    runner of the same attempt derives the same id, so its ledger steps
    (keyed by it) apply once.
    """
    stamp = start_of_day(on).strftime("%Y%m%d%H%M")
    digest = hashlib.sha256(f"{txid}:{attempt}".encode()).digest()
    suffix = "".join(_ALNUM[b % len(_ALNUM)] for b in digest[:11])
    return f"E{ispb}{stamp}{suffix}"


def new_recurrence_id(ispb: str, retry_policy: RetryPolicy, today: date, seed: uuid.UUID) -> str:
    """``RR`` (retries allowed) or ``RN`` + ISPB + yyyyMMdd + 11 letters or digits (29)."""
    prefix = "RR" if retry_policy is RetryPolicy.PERMITE_3R_7D else "RN"
    return f"{prefix}{ispb}{today:%Y%m%d}{seed.hex[-11:]}"


def new_request_id(ispb: str, today: date, seed: uuid.UUID) -> str:
    """``SC`` + ISPB + yyyyMMdd + 11 letters or digits (29): a journey-1 request's id."""
    return f"SC{ispb}{today:%Y%m%d}{seed.hex[-11:]}"


def new_txid(seed: uuid.UUID) -> str:
    """A recurring charge's txid: 32 letters or digits (the API allows 26 to 35)."""
    return seed.hex


__all__ = [
    "ATTEMPT_WINDOWS",
    "BRASILIA",
    "CHARGE_MAX_DAYS_AHEAD",
    "CHARGE_MIN_DAYS_AHEAD",
    "ELSEWHERE",
    "MAX_REQUEST_DAYS",
    "AttemptStatus",
    "Authorisation",
    "AuthorisationRequest",
    "ChargeStatus",
    "DebitAttempt",
    "Journey",
    "Party",
    "Periodicity",
    "Recurrence",
    "RecurrenceStatus",
    "RecurringCharge",
    "RetryPolicy",
    "StatusChange",
    "attempt_window",
    "business_date",
    "debit_end_to_end_id",
    "new_recurrence_id",
    "new_request_id",
    "new_txid",
    "start_of_day",
    "window_opens",
]
