"""Payer side: read a Pix Automático code, authorise or reject, list, and cancel (either side).

A code is read with the tolerant reader (``read_brcode``), as every code a
payer scans; its recurrence URL must be one of this bank's (``{base}/rec/{id}``):
recurrences of other institutions cannot be fetched from here and are
reported as not found. Which journey the payer is on follows from what they
answer: a journey-1 request addressed to them (by ``recurrence_id``), a
recurrence-only code (2), a dynamic code with a recurrence (3), or a static
code with one (4).
"""

from __future__ import annotations

import uuid

import msgspec

from finbank_core.accounts.access import owned_active_account
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.automatic.errors import (
    InvalidRecurrence,
    RecurrenceNotFound,
    RecurrenceRequestExpired,
)
from finbank_core.pix.automatic.model import (
    Authorisation,
    ChargeStatus,
    Journey,
    Party,
    Recurrence,
    RecurrenceStatus,
)
from finbank_core.pix.automatic.ports import RecurrenceStore
from finbank_core.pix.automatic.use_cases.common import (
    payer_owner_of,
    publish_charge,
    publish_recurrence,
    retrying,
)
from finbank_core.pix.codes.brcode_reader import BRCodeReading, read_brcode
from finbank_core.pix.ledger_steps import PixEvents
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import InvalidInput, SameAccount
from finbank_core.shared.money import Money
from finbank_core.shared.privacy import masked_repr

#: what a cancellation reason may say (the API's cancellation codes, by who asks)
MAX_REASON_LENGTH = 105


class ReadRecurrenceCodeQuery(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    br_code: str

    __repr__ = masked_repr("br_code")


class RecurrenceOffer(msgspec.Struct, frozen=True, kw_only=True):
    """What a payer is shown before answering: the recurrence, the journey, the code read."""

    recurrence: Recurrence
    journey: Journey
    reading: BRCodeReading


class AuthoriseRecurrenceCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Authorise a recurrence from ``account_id``: by its code, or by id for a journey-1 request.

    ``max_amount``: the most one charge may debit; only for recurrences
    without a fixed amount, and not under the receiver's minimum.
    """

    owner_id: str
    account_id: uuid.UUID
    br_code: str | None = None
    recurrence_id: str | None = None
    max_amount: Money | None = None

    __repr__ = masked_repr("br_code")


class RejectRecurrenceCommand(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    br_code: str | None = None
    recurrence_id: str | None = None

    __repr__ = masked_repr("br_code")


class CancelRecurrenceCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Cancel a recurrence: its receiver or its payer may; charges not yet run are cancelled."""

    owner_id: str
    recurrence_id: str
    reason: str | None = None


class ListAuthorisationsQuery(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str


class _Locator:
    def __init__(self, store: RecurrenceStore, location_base_url: str) -> None:
        self._store = store
        base = location_base_url.removeprefix("https://").removeprefix("http://").rstrip("/")
        self._prefix = f"{base}/rec/".lower()

    async def by_code(self, text: str) -> tuple[Recurrence, Journey, BRCodeReading]:
        reading = read_brcode(text)
        url = reading.recurrence_url
        if url is None:
            raise InvalidRecurrence(
                "the code carries no Pix Automático recurrence", field="br_code"
            )
        url = url.removeprefix("https://")
        if not url.lower().startswith(self._prefix):
            raise RecurrenceNotFound("the recurrence is not one of this institution's")
        found = await self._store.get_recurrence(url[len(self._prefix) :])
        if found is None or found.location_url.lower() != url.lower():
            raise RecurrenceNotFound()
        return found, _journey_of(reading), reading

    async def target(
        self, owner_id: str, br_code: str | None, recurrence_id: str | None
    ) -> tuple[Recurrence, Journey]:
        """The recurrence a payer answers, and the journey of that answer."""
        if (br_code is None) == (recurrence_id is None):
            raise InvalidInput("name the recurrence by exactly one of br_code, recurrence_id")
        if br_code is not None:
            recurrence, journey, _ = await self.by_code(br_code)
            if recurrence.request is not None:
                journey = Journey.JORNADA_1  # addressed to one payer: see _require_payer
            return recurrence, journey
        assert recurrence_id is not None
        found = await self._store.get_recurrence(recurrence_id)
        if found is None or found.request is None or found.request.payer_owner_id != owner_id:
            raise RecurrenceNotFound()  # only a journey-1 request is answered by id
        return found, Journey.JORNADA_1


def _journey_of(reading: BRCodeReading) -> Journey:
    if reading.kind == "recurrence":
        return Journey.JORNADA_2
    return Journey.JORNADA_3 if reading.kind == "dynamic" else Journey.JORNADA_4


def _require_payer(recurrence: Recurrence, owner_id: str) -> None:
    request = recurrence.request
    if request is not None and request.payer_owner_id != owner_id:
        raise RecurrenceNotFound()


class ReadRecurrenceCode:
    """Read a Pix Automático code without answering it."""

    def __init__(self, *, store: RecurrenceStore, location_base_url: str) -> None:
        self._locator = _Locator(store, location_base_url)

    async def __call__(self, query: ReadRecurrenceCodeQuery) -> RecurrenceOffer:
        recurrence, journey, reading = await self._locator.by_code(query.br_code)
        _require_payer(recurrence, query.owner_id)
        return RecurrenceOffer(recurrence=recurrence, journey=journey, reading=reading)


class AuthoriseRecurrence:
    """The payer authorises (``APROVADA``): the account that pays and an optional maximum."""

    def __init__(
        self,
        *,
        store: RecurrenceStore,
        accounts: AccountRepository,
        events: PixEvents,
        clock: Clock,
        location_base_url: str,
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._events = events
        self._clock = clock
        self._locator = _Locator(store, location_base_url)

    async def __call__(self, cmd: AuthoriseRecurrenceCommand) -> Recurrence:
        account = await owned_active_account(self._accounts, cmd.owner_id, cmd.account_id)
        expired: list[Recurrence] = []

        async def authorise() -> Recurrence:
            recurrence, journey = await self._locator.target(
                cmd.owner_id, cmd.br_code, cmd.recurrence_id
            )
            _require_payer(recurrence, cmd.owner_id)
            if account.id == recurrence.receiver_account_id:
                raise SameAccount()
            _check_maximum(recurrence, cmd.max_amount)
            now = self._clock.now()
            request = recurrence.request
            if request is not None and recurrence.status is RecurrenceStatus.CRIADA:
                if now >= request.expires_at:
                    expired.append(await self._store.update_recurrence(recurrence.expired(now)))
                    raise RecurrenceRequestExpired("the authorisation request has lapsed")
                if account.id != request.payer_account_id:
                    raise InvalidRecurrence(
                        "the request names another account of yours", field="account_id"
                    )
            authorisation = Authorisation(
                payer_owner_id=cmd.owner_id,
                payer_account_id=account.id,
                authorised_at=now,
                max_amount=cmd.max_amount,
            )
            return await self._store.update_recurrence(recurrence.approved(authorisation, journey))

        try:
            recurrence = await retrying(authorise)
        except RecurrenceRequestExpired:
            for lapsed in expired:
                await publish_recurrence(self._events, lapsed)
            raise
        await publish_recurrence(self._events, recurrence)
        return recurrence


def _check_maximum(recurrence: Recurrence, maximum: Money | None) -> None:
    if maximum is None:
        return
    if maximum.cents <= 0:
        raise InvalidRecurrence("the maximum must be positive", field="max_amount")
    if recurrence.fixed_amount is not None:
        raise InvalidRecurrence(
            "the recurrence has a fixed amount; a maximum applies to variable ones",
            field="max_amount",
        )
    if recurrence.min_amount is not None and maximum < recurrence.min_amount:
        raise InvalidRecurrence("under the receiver's minimum amount", field="max_amount")


class RejectRecurrence:
    """The payer declines (``REJEITADA``)."""

    def __init__(
        self, *, store: RecurrenceStore, events: PixEvents, clock: Clock, location_base_url: str
    ) -> None:
        self._store = store
        self._events = events
        self._clock = clock
        self._locator = _Locator(store, location_base_url)

    async def __call__(self, cmd: RejectRecurrenceCommand) -> Recurrence:
        async def reject() -> Recurrence:
            recurrence, journey = await self._locator.target(
                cmd.owner_id, cmd.br_code, cmd.recurrence_id
            )
            _require_payer(recurrence, cmd.owner_id)
            now = self._clock.now()
            return await self._store.update_recurrence(
                recurrence.rejected(now, journey, "rejected_by_payer")
            )

        recurrence = await retrying(reject)
        await publish_recurrence(self._events, recurrence)
        return recurrence


class ListAuthorisations:
    """The payer's recurrences: authorised by them, or requested of them (journey 1)."""

    def __init__(self, *, store: RecurrenceStore) -> None:
        self._store = store

    async def __call__(self, query: ListAuthorisationsQuery) -> list[Recurrence]:
        return await self._store.list_recurrences(payer_owner_id=query.owner_id)


class CancelRecurrence:
    """Cancel as its receiver or its payer; its charges that have not run are cancelled too.

    A charge whose debit already started finishes that attempt (its money is
    reserved or being reserved); no new attempt starts on a cancelled
    recurrence (``ExecuteDueDebit`` checks).
    """

    def __init__(self, *, store: RecurrenceStore, events: PixEvents, clock: Clock) -> None:
        self._store = store
        self._events = events
        self._clock = clock

    async def __call__(self, cmd: CancelRecurrenceCommand) -> Recurrence:
        reason = cmd.reason or "cancelled"
        if len(reason) > MAX_REASON_LENGTH or not reason.isprintable():
            raise InvalidRecurrence(
                f"at most {MAX_REASON_LENGTH} printable characters", field="reason"
            )

        async def cancel() -> Recurrence:
            recurrence = await self._store.get_recurrence(cmd.recurrence_id)
            if recurrence is None:
                raise RecurrenceNotFound()
            if cmd.owner_id == recurrence.receiver_owner_id:
                by = Party.USUARIO_RECEBEDOR
            elif cmd.owner_id == payer_owner_of(recurrence):
                by = Party.USUARIO_PAGADOR
            else:
                raise RecurrenceNotFound()
            return await self._store.update_recurrence(
                recurrence.cancelled(self._clock.now(), by, reason)
            )

        recurrence = await retrying(cancel)
        await publish_recurrence(self._events, recurrence)
        await cancel_pending_charges(self._store, self._events, self._clock, recurrence)
        return recurrence


async def cancel_pending_charges(
    store: RecurrenceStore, events: PixEvents, clock: Clock, recurrence: Recurrence
) -> None:
    """Cancel the recurrence's ``ATIVA`` charges whose debit has not started."""
    for listed in await store.list_charges(recurrence.recurrence_id):
        txid = listed.txid

        async def cancel_one(txid: str = txid) -> None:
            charge = await store.get_charge(txid)
            if charge is None or charge.status is not ChargeStatus.ATIVA or charge.attempts:
                return
            done = await store.update_charge(
                charge.moved(
                    ChargeStatus.CANCELADA,
                    clock.now(),
                    next_attempt_on=None,
                    reason=f"recurrence_{recurrence.status.value.lower()}",
                )
            )
            await publish_charge(events, done)

        await retrying(cancel_one)


__all__ = [
    "AuthoriseRecurrence",
    "AuthoriseRecurrenceCommand",
    "CancelRecurrence",
    "CancelRecurrenceCommand",
    "ListAuthorisations",
    "ListAuthorisationsQuery",
    "ReadRecurrenceCode",
    "ReadRecurrenceCodeQuery",
    "RecurrenceOffer",
    "RejectRecurrence",
    "RejectRecurrenceCommand",
    "cancel_pending_charges",
]
