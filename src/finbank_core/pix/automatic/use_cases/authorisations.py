"""Payer side: read a Pix Automático code, authorise or reject, list, and cancel (either side).

A code is read with the tolerant reader (``read_brcode``), as every code a
payer scans. A recurrence URL of this bank (``{base}/rec/{id}``) is read from
the store; any other is fetched from the institution that serves it through
the ``RecurrenceNetwork`` port (its signed payload), and the payer's answer
is stored as our copy of that recurrence (``receiver_party`` names the
receiving account there) and delivered back through the network. Without a
network, other institutions' recurrences are reported as not found. Which
journey the payer is on follows from what they answer: a journey-1 request
addressed to them (by ``recurrence_id``), a recurrence-only code (2), a
dynamic code with a recurrence (3), or a static code with one (4).

``RecordRecurrenceAnswer`` is the receiver side of the same message: a payer
at another institution approved, rejected or cancelled one of our
receivers' recurrences.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from finbank_core.accounts.access import owned_active_account
from finbank_core.accounts.model import CustomerAccount
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.automatic.errors import (
    InvalidRecurrence,
    RecurrenceNotFound,
    RecurrenceRequestExpired,
)
from finbank_core.pix.automatic.model import (
    ELSEWHERE,
    Authorisation,
    ChargeStatus,
    Journey,
    Party,
    Recurrence,
    RecurrenceStatus,
    check_charge_amount,
)
from finbank_core.pix.automatic.ports import (
    RecurrenceAnswer,
    RecurrenceCancellation,
    RecurrenceNetwork,
    RecurrenceStore,
    RemoteRecurrence,
)
from finbank_core.pix.automatic.use_cases.common import (
    payer_owner_of,
    publish_charge,
    publish_recurrence,
    retrying,
)
from finbank_core.pix.codes.brcode_reader import BRCodeReading, read_brcode
from finbank_core.pix.directory import safe_mask
from finbank_core.pix.ledger_steps import PixEvents
from finbank_core.pix.payments import PixParty
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import InvalidInput, SameAccount
from finbank_core.shared.inputs import check_lookup_id, check_text
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


class RecurrenceClerk(msgspec.Struct, frozen=True, kw_only=True):
    """What the payer side needs to read other institutions' recurrences (all optional)."""

    network: RecurrenceNetwork | None = None
    clock: Clock | None = None
    #: this institution's ISPB (the payer's side of an answer)
    ispb: str | None = None


class _Locator:
    def __init__(
        self,
        store: RecurrenceStore,
        location_base_url: str,
        network: RecurrenceNetwork | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._network = network
        self._clock = clock
        base = location_base_url.removeprefix("https://").removeprefix("http://").rstrip("/")
        self._prefix = f"{base}/rec/".lower()

    async def by_code(self, text: str) -> tuple[Recurrence, Journey, BRCodeReading]:
        """The recurrence of a code: ours from the store; another's fetched (unsaved if new)."""
        reading = read_brcode(text)
        url = reading.recurrence_url
        if url is None:
            raise InvalidRecurrence(
                "the code carries no Pix Automático recurrence", field="br_code"
            )
        url = url.removeprefix("https://")
        if not url.lower().startswith(self._prefix):
            return await self._elsewhere(url), _journey_of(reading), reading
        found = await self._store.get_recurrence(url[len(self._prefix) :])
        if found is None or found.location_url.lower() != url.lower():
            raise RecurrenceNotFound()
        return found, _journey_of(reading), reading

    async def _elsewhere(self, url: str) -> Recurrence:
        if self._network is None or self._clock is None:
            raise RecurrenceNotFound("the recurrence is not one of this institution's")
        remote = await self._network.fetch_recurrence(url)
        if remote.location_url.removeprefix("https://").lower() != url.lower():
            raise RecurrenceNotFound("the institution served another recurrence")
        known = await self._store.get_recurrence(remote.recurrence_id)
        if known is not None:
            if known.receiver_party is None or known.location_url.lower() != url.lower():
                raise RecurrenceNotFound()
            return known
        return _copy_of(remote, self._clock)

    async def stored(self, recurrence: Recurrence) -> Recurrence:
        """``recurrence`` as stored: another institution's copy is added on first answer.

        ``StaleAutomaticRecord`` if a concurrent first answer stored it: the
        caller's ``retrying`` runs again and then reads it from the store.
        """
        if recurrence.version:
            return recurrence
        return await self._store.add_recurrence(recurrence)

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
            return await self.stored(recurrence), journey
        assert recurrence_id is not None
        found = await self._store.get_recurrence(recurrence_id)
        if found is None or found.request is None or found.request.payer_owner_id != owner_id:
            raise RecurrenceNotFound()  # only a journey-1 request is answered by id
        return found, Journey.JORNADA_1


def _copy_of(remote: RemoteRecurrence, clock: Clock) -> Recurrence:
    """Our record of another institution's recurrence (``CRIADA``, not stored yet)."""
    return Recurrence(
        recurrence_id=remote.recurrence_id,
        receiver_owner_id="",
        receiver_account_id=ELSEWHERE,
        receiver_name=remote.receiver.name or "",
        receiver_ispb=remote.receiver.ispb,
        contract=remote.contract,
        purpose=remote.purpose,
        debtor_name=remote.debtor_name,
        debtor_document_masked=None,
        periodicity=remote.periodicity,
        start=remote.start,
        end=remote.end,
        retry_policy=remote.retry_policy,
        location_url=remote.location_url.removeprefix("https://"),
        created_at=clock.now(),
        fixed_amount=remote.fixed_amount,
        min_amount=remote.min_amount,
        receiver_party=msgspec.structs.replace(remote.receiver, account_id=None, owner_id=None),
    )


def payer_party(account: CustomerAccount, ispb: str) -> PixParty:
    """The payer's account as the receiver's institution is told it (document masked)."""
    return PixParty(
        ispb=ispb,
        branch=account.branch,
        account_number=account.number,
        account_kind=account.kind.value,
        name=account.holder_name,
        document_masked=safe_mask(account.holder_document),
    )


async def send_answer(
    network: RecurrenceNetwork | None, recurrence: Recurrence, payer: PixParty
) -> None:
    """Tell another institution's receiver what our payer did (nothing for ours)."""
    if network is None or recurrence.receiver_party is None:
        return
    at = recurrence.history[-1].at if recurrence.history else recurrence.created_at
    await network.send_answer(
        RecurrenceAnswer(
            recurrence_id=recurrence.recurrence_id,
            receiver_ispb=recurrence.receiver_ispb,
            status=recurrence.status,
            at=at,
            payer=payer,
            reason=recurrence.end_reason,
        )
    )


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

    def __init__(
        self,
        *,
        store: RecurrenceStore,
        location_base_url: str,
        elsewhere: RecurrenceClerk | None = None,
    ) -> None:
        clerk = elsewhere or RecurrenceClerk()
        self._locator = _Locator(store, location_base_url, clerk.network, clerk.clock)

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
        elsewhere: RecurrenceClerk | None = None,
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._events = events
        self._clock = clock
        clerk = elsewhere or RecurrenceClerk()
        self._network = clerk.network
        self._ispb = clerk.ispb or ""
        self._locator = _Locator(store, location_base_url, clerk.network, clock)

    async def __call__(self, cmd: AuthoriseRecurrenceCommand) -> Recurrence:
        check_lookup_id(cmd.recurrence_id, "recurrence_id")
        account = await owned_active_account(self._accounts, cmd.owner_id, cmd.account_id)
        expired: list[Recurrence] = []

        async def authorise() -> Recurrence:
            recurrence, journey = await self._locator.target(
                cmd.owner_id, cmd.br_code, cmd.recurrence_id
            )
            _require_payer(recurrence, cmd.owner_id)
            auth = recurrence.authorisation
            if (
                recurrence.receiver_elsewhere
                and auth is not None
                and recurrence.status is RecurrenceStatus.APROVADA
                and (auth.payer_owner_id, auth.payer_account_id) == (cmd.owner_id, account.id)
                and auth.max_amount == cmd.max_amount
            ):
                return recurrence  # a replay: the answer is delivered again below
            if account.id == recurrence.receiver_account_id:
                raise SameAccount()
            check_maximum(recurrence, cmd.max_amount)
            now = self._clock.now()
            await lapse_if_past_deadline(self._store, recurrence, now, expired)
            request = recurrence.request
            if (
                request is not None
                and recurrence.status is RecurrenceStatus.CRIADA
                and account.id != request.payer_account_id
            ):
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
        await send_answer(self._network, recurrence, payer_party(account, self._ispb))
        return recurrence


async def lapse_if_past_deadline(
    store: RecurrenceStore, recurrence: Recurrence, now: datetime, expired: list[Recurrence]
) -> None:
    """A journey-1 request answered at or after its deadline: record it ``EXPIRADA``
    (appended to ``expired``, for the caller to publish) and raise
    ``RecurrenceRequestExpired``."""
    request = recurrence.request
    if (
        request is not None
        and recurrence.status is RecurrenceStatus.CRIADA
        and now >= request.expires_at
    ):
        expired.append(await store.update_recurrence(recurrence.expired(now)))
        raise RecurrenceRequestExpired("the authorisation request has lapsed")


def check_maximum(recurrence: Recurrence, maximum: Money | None) -> None:
    """``InvalidRecurrence`` (``max_amount``) if the payer's maximum breaks the terms."""
    if maximum is None:
        return
    check_charge_amount(maximum, "max_amount")
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
        self,
        *,
        store: RecurrenceStore,
        events: PixEvents,
        clock: Clock,
        location_base_url: str,
        elsewhere: RecurrenceClerk | None = None,
    ) -> None:
        self._store = store
        self._events = events
        self._clock = clock
        clerk = elsewhere or RecurrenceClerk()
        self._network = clerk.network
        self._ispb = clerk.ispb or ""
        self._locator = _Locator(store, location_base_url, clerk.network, clock)

    async def __call__(self, cmd: RejectRecurrenceCommand) -> Recurrence:
        check_lookup_id(cmd.recurrence_id, "recurrence_id")
        expired: list[Recurrence] = []

        async def reject() -> Recurrence:
            recurrence, journey = await self._locator.target(
                cmd.owner_id, cmd.br_code, cmd.recurrence_id
            )
            _require_payer(recurrence, cmd.owner_id)
            now = self._clock.now()
            # answered at or after the deadline, as AuthoriseRecurrence: it lapsed
            await lapse_if_past_deadline(self._store, recurrence, now, expired)
            return await self._store.update_recurrence(
                recurrence.rejected(now, journey, "rejected_by_payer")
            )

        try:
            recurrence = await retrying(reject)
        except RecurrenceRequestExpired:
            for lapsed in expired:
                await publish_recurrence(self._events, lapsed)
            raise
        await publish_recurrence(self._events, recurrence)
        # the payer's account is not named in a rejection: only the institution
        await send_answer(self._network, recurrence, PixParty(ispb=self._ispb))
        return recurrence


class ListAuthorisations:
    """The payer's recurrences: authorised by them, or requested of them (journey 1)."""

    def __init__(self, *, store: RecurrenceStore) -> None:
        self._store = store

    async def __call__(self, query: ListAuthorisationsQuery) -> list[Recurrence]:
        check_text(query.owner_id, field="owner_id", name="owner id")  # the store is asked by it
        return await self._store.list_recurrences(payer_owner_id=query.owner_id)


class RecordRecurrenceAnswer:
    """Receiver side: a payer at another institution answered one of our recurrences.

    What the payer's institution sends through the network (the message
    :class:`AuthoriseRecurrence` sends the other way): ``APROVADA`` records
    an authorisation whose ``payer_party`` is the account there (its charges
    are then sent to that institution, which debits them), ``REJEITADA``
    and ``CANCELADA`` end the recurrence. An answer already recorded is
    answered with the recurrence as it is (a replay).
    """

    def __init__(
        self, *, store: RecurrenceStore, events: PixEvents, clock: Clock, ispb: str
    ) -> None:
        self._store = store
        self._events = events
        self._clock = clock
        self._ispb = ispb

    async def __call__(self, answer: RecurrenceAnswer) -> Recurrence:
        if answer.receiver_ispb != self._ispb or answer.payer.ispb == self._ispb:
            raise InvalidInput("not an answer from another institution to this one")

        async def record() -> Recurrence:
            recurrence = await self._store.get_recurrence(answer.recurrence_id)
            if recurrence is None or recurrence.receiver_elsewhere:
                raise RecurrenceNotFound()
            if recurrence.status is answer.status:
                return recurrence
            if recurrence.request is not None:
                raise RecurrenceNotFound()  # addressed to a payer here
            journey = (
                Journey.JORNADA_2
                if recurrence.journey is Journey.AGUARDANDO_DEFINICAO
                else recurrence.journey
            )
            if answer.status is RecurrenceStatus.APROVADA:
                authorisation = Authorisation(
                    payer_owner_id="",
                    payer_account_id=ELSEWHERE,
                    authorised_at=answer.at,
                    payer_party=msgspec.structs.replace(
                        answer.payer, account_id=None, owner_id=None
                    ),
                )
                changed = recurrence.approved(authorisation, journey)
            elif answer.status is RecurrenceStatus.REJEITADA:
                changed = recurrence.rejected(answer.at, journey, answer.reason or "rejected")
            elif answer.status is RecurrenceStatus.CANCELADA:
                changed = recurrence.cancelled(
                    answer.at, Party.PSP_PAGADOR, answer.reason or "cancelled"
                )
            else:
                raise InvalidInput("an answer approves, rejects or cancels", field="status")
            return await self._store.update_recurrence(changed)

        recurrence = await retrying(record)
        await publish_recurrence(self._events, recurrence)
        if recurrence.status is RecurrenceStatus.CANCELADA:
            await cancel_pending_charges(self._store, self._events, self._clock, recurrence)
        return recurrence


class CancelRecurrence:
    """Cancel as its receiver or its payer; its charges that have not run are cancelled too.

    A charge whose debit already started finishes that attempt (its money is
    reserved or being reserved); no new attempt starts on a cancelled
    recurrence (``ExecuteDueDebit`` checks).
    """

    def __init__(
        self,
        *,
        store: RecurrenceStore,
        events: PixEvents,
        clock: Clock,
        elsewhere: RecurrenceClerk | None = None,
    ) -> None:
        self._store = store
        self._events = events
        self._clock = clock
        clerk = elsewhere or RecurrenceClerk()
        self._network = clerk.network
        self._ispb = clerk.ispb or ""

    async def __call__(self, cmd: CancelRecurrenceCommand) -> Recurrence:
        check_lookup_id(cmd.recurrence_id, "recurrence_id")
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
        await send_answer(self._network, recurrence, PixParty(ispb=self._ispb))
        auth = recurrence.authorisation
        if (
            self._network is not None
            and recurrence.ended_by is Party.USUARIO_RECEBEDOR
            and auth is not None
            and auth.payer_party is not None
        ):
            await self._network.send_cancellation(
                RecurrenceCancellation(
                    recurrence_id=recurrence.recurrence_id,
                    payer_ispb=auth.payer_party.ispb,
                    at=recurrence.history[-1].at,
                    reason=recurrence.end_reason,
                )
            )
        return recurrence


class RecordReceiverCancellation:
    """Payer side: the receiver of a recurrence elsewhere cancelled it (``PSP_RECEBEDOR``).

    Our copy is ``CANCELADA`` and its charges that have not started are
    cancelled with it; a cancellation already recorded answers the
    recurrence as it is.
    """

    def __init__(self, *, store: RecurrenceStore, events: PixEvents, clock: Clock) -> None:
        self._store = store
        self._events = events
        self._clock = clock

    async def __call__(self, cancellation: RecurrenceCancellation) -> Recurrence:
        check_lookup_id(cancellation.recurrence_id, "recurrence_id")

        async def record() -> Recurrence:
            recurrence = await self._store.get_recurrence(cancellation.recurrence_id)
            if recurrence is None or not recurrence.receiver_elsewhere:
                raise RecurrenceNotFound()
            if recurrence.status is RecurrenceStatus.CANCELADA:
                return recurrence
            return await self._store.update_recurrence(
                recurrence.cancelled(
                    cancellation.at, Party.PSP_RECEBEDOR, cancellation.reason or "cancelled"
                )
            )

        recurrence = await retrying(record)
        await publish_recurrence(self._events, recurrence)
        await cancel_pending_charges(self._store, self._events, self._clock, recurrence)
        return recurrence


async def cancel_pending_charges(
    store: RecurrenceStore, events: PixEvents, clock: Clock, recurrence: Recurrence
) -> None:
    """Cancel the recurrence's ``ATIVA`` charges with no debit attempt in progress.

    A charge waiting for a retry (its earlier attempts failed) is cancelled at
    once too, not left ``ATIVA`` until its next attempt window.
    """
    for listed in await store.list_charges(recurrence.recurrence_id):
        txid = listed.txid

        async def cancel_one(txid: str = txid) -> None:
            charge = await store.get_charge(txid)
            if (
                charge is None
                or charge.status is not ChargeStatus.ATIVA
                or charge.current_attempt is not None
            ):
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
    "RecordReceiverCancellation",
    "RecordRecurrenceAnswer",
    "RecurrenceClerk",
    "RecurrenceOffer",
    "RejectRecurrence",
    "RejectRecurrenceCommand",
    "cancel_pending_charges",
]
