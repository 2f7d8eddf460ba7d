"""``SendPix``: a customer pays by key, by BR Code or by account data.

Decisions:

* Insufficient funds are refused at once with ``InsufficientFunds`` and
  leave **no record**: nothing was reserved, nothing reached the network,
  and the idempotency key stays free so the client may retry once funded.
  The same goes for every other refusal before the reservation (limits,
  unknown key, invalid recipient here, inactive account).
* Before the money, a payment that names one of this bank's charges claims
  it (``claim_charge``: one payer of many wins, across processes) and every
  payment reserves its share of the period limits (``PixLimiter.reserve``:
  a conditional update in the limits store). Both are given back if the
  payment fails before it is recorded, and the limits if it is rejected in
  the request.
* The request is identified by ``(owner_id, idempotency_key)``: the same key
  and body return the first payment (``replayed=True``); the same key with
  another body raises ``IdempotencyKeyReused``. While the first request
  with a key is in flight (a durable claim, see
  :mod:`finbank_core.shared.idempotency`), the same key gets
  ``RequestInProgress`` (409 + ``Retry-After``), never a refusal caused by
  the first request's own reservation; a ``PENDING`` record is replayed
  only once its request has answered, so a replay shows what the first
  answer showed (or a later state). A claims store that can also read the
  record (:class:`ClaimingLookup`, PostgreSQL) takes the lookup, the claim
  and the lookup under the claim in one round trip, with the same outcomes.
* On-us payments (the recipient account is here) settle in the call: the
  pending transfer is posted and the recipient credited in one linked batch.
  Other payments stay ``PENDING`` for :class:`SettlePixPayment`, which a
  worker runs; with ``settle_inline`` (memory profile, sandbox) it runs
  right away, and a network that cannot be reached leaves the payment
  ``PENDING`` for a later retry.
"""

from __future__ import annotations

import contextlib
import random
import re
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Protocol, runtime_checkable

import msgspec

from finbank_core.accounts.access import owned_active_account
from finbank_core.accounts.ledger import TransferCode
from finbank_core.accounts.model import AccountKind, AccountStatus, CustomerAccount
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.codes.brcode_reader import BRCodeReading, read_brcode
from finbank_core.pix.codes.documents import is_valid_cnpj, is_valid_cpf, normalize_cnpj
from finbank_core.pix.codes.identifiers import EndToEndId, parse_ispb
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.directory import DirectoryEntry, safe_mask
from finbank_core.pix.errors import InvalidDocument, PixPaymentAlreadyExists, PixRecipientInvalid
from finbank_core.pix.events import (
    PAYMENT_REQUESTED,
    payment_payload,
)
from finbank_core.pix.ledger_steps import PixEvents, PixLedgerSteps, memo
from finbank_core.pix.payments import (
    Initiation,
    PaymentStatus,
    PixFlow,
    PixParty,
    PixPayment,
)
from finbank_core.pix.ports import (
    AnnouncedPaymentRecorder,
    ChargeRepository,
    ChargeResolver,
    KeyDirectory,
    PixPaymentRepository,
)
from finbank_core.pix.use_cases.charge import ChargeClaim, claim_charge, release_charge
from finbank_core.pix.use_cases.limits import PixLimiter
from finbank_core.pix.use_cases.settle import (
    SettlePixPayment,
    SettlePixPaymentCommand,
    settle_on_us,
)
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import (
    AccountNotFound,
    IdempotencyKeyReused,
    InvalidInput,
    SameAccount,
    ServiceUnavailable,
)
from finbank_core.shared.events import EventEnvelope
from finbank_core.shared.idempotency import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_RETRY_AFTER_SECONDS,
    InFlightGuard,
    RequestClaims,
    RequestInProgress,
    claim_id_for,
    fingerprint,
)
from finbank_core.shared.ids import IdGenerator
from finbank_core.shared.inputs import (
    DeviceId,
    IdempotencyKey,
    Memo,
    check_device_id,
    check_idempotency_key,
    check_memo,
    check_text,
    checked_enums,
)
from finbank_core.shared.money import Money
from finbank_core.shared.privacy import masked_repr

#: the scope of a payment request's in-flight claim (``claim_id_for``)
_SEND_SCOPE = "pix-send"


#: the limits of a manually given account (DICT's: a branch of up to 4 digits, an
#: account number of up to 20 characters, a name of up to 140)
MAX_BRANCH_DIGITS = 4
MAX_ACCOUNT_NUMBER_LENGTH = 20
MAX_PARTY_NAME_LENGTH = 140
_BRANCH = re.compile(rf"[0-9]{{1,{MAX_BRANCH_DIGITS}}}")


class AccountData(msgspec.Struct, frozen=True, kw_only=True):
    """A recipient named by its account (the manual way): institution, branch, number.

    ``SendPix`` checks the limits below (``InvalidInput`` naming the field,
    e.g. ``account_data.branch``) before anything is reserved or stored.
    """

    ispb: str
    branch: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,4}$")]
    account_number: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ACCOUNT_NUMBER_LENGTH)]
    document: str
    name: Annotated[str, msgspec.Meta(max_length=MAX_PARTY_NAME_LENGTH)] | None = None
    account_kind: AccountKind = AccountKind.CHECKING

    __repr__ = masked_repr("document", "name")


def _check_account_data(data: AccountData) -> None:
    """The limits of :class:`AccountData`'s free-text fields; ``InvalidInput`` naming one."""
    if not _BRANCH.fullmatch(data.branch):
        raise InvalidInput(
            f"account_data.branch must be 1 to {MAX_BRANCH_DIGITS} digits",
            field="account_data.branch",
        )
    number = data.account_number
    if not 1 <= len(number) <= MAX_ACCOUNT_NUMBER_LENGTH:
        raise InvalidInput(
            f"account_data.account_number must be 1 to {MAX_ACCOUNT_NUMBER_LENGTH} characters",
            field="account_data.account_number",
        )
    check_text(number, field="account_data.account_number", name="account_data.account_number")
    if data.name is not None:
        if len(data.name) > MAX_PARTY_NAME_LENGTH:
            raise InvalidInput(
                f"account_data.name must be at most {MAX_PARTY_NAME_LENGTH} characters",
                field="account_data.name",
            )
        check_text(data.name, field="account_data.name", name="account_data.name")


@runtime_checkable
class ClaimingLookup(Protocol):
    """Request claims that also read the payment records (one store, one round trip).

    ``claim_unless_recorded`` returns the payment recorded under ``(owner_id,
    idempotency_key)`` without claiming (``(payment, False)``); else takes
    the claim ``claim_id`` for ``token`` as ``RequestClaims.acquire`` would
    (``(None, False)`` if another holder has it) and, once taken, reads the
    record again (``(None, True)``, or ``(payment, True)`` if it was recorded
    meanwhile). The holder releases the claim with ``RequestClaims.release``.
    """

    async def claim_unless_recorded(
        self,
        owner_id: str,
        idempotency_key: str,
        claim_id: str,
        token: str,
        *,
        now: datetime,
        until: datetime,
    ) -> tuple[PixPayment | None, bool]: ...


@runtime_checkable
class ClaimReleasingRecorder(Protocol):
    """A recorder that can also drop a request's claim in the write (one database).

    ``add_announced_releasing`` is ``add_announced`` that, when the record
    goes in, also releases the claim ``claim_id`` if ``token`` holds it.
    """

    async def add_announced_releasing(
        self, payment: PixPayment, event: EventEnvelope, claim_id: str, token: str
    ) -> PixPayment: ...


class _Claim(msgspec.Struct, kw_only=True):
    """The request claim ``_claim_and_send`` holds, and whether the record released it."""

    claim_id: str
    token: str
    released: bool = False


class SendPixCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Exactly one of ``key``, ``br_code`` and ``account_data`` names the recipient."""

    owner_id: str
    account_id: uuid.UUID
    idempotency_key: IdempotencyKey
    amount: Money | None = None
    key: str | None = None
    key_type: PixKeyType | None = None
    br_code: str | None = None
    account_data: AccountData | None = None
    description: Memo | None = None
    device_id: DeviceId | None = None

    __repr__ = masked_repr("br_code", "key")


class SendPixResult(msgspec.Struct, frozen=True, kw_only=True):
    payment: PixPayment
    replayed: bool = False


class _Recipient(msgspec.Struct, frozen=True, kw_only=True):
    party: PixParty
    initiation: Initiation
    amount: Money | None = None
    txid: str | None = None
    key: str | None = None


class _Holds(msgspec.Struct, frozen=True, kw_only=True):
    """What ``SendPix._hold`` took for a payment, to give back if it fails."""

    account_id: uuid.UUID
    hold_id: str
    #: the limit reservation was made by this request
    limited: bool
    claim: ChargeClaim | None


class SendPix:
    """Validate, reserve, record, and (on-us) settle a customer's PIX payment."""

    def __init__(
        self,
        *,
        ispb: str,
        accounts: AccountRepository,
        payments: PixPaymentRepository,
        steps: PixLedgerSteps,
        events: PixEvents,
        clock: Clock,
        ids: IdGenerator,
        directory: KeyDirectory,
        resolver: ChargeResolver,
        charges: ChargeRepository,
        limiter: PixLimiter,
        settle_inline: SettlePixPayment | None = None,
        claims: RequestClaims | None = None,
        rng: random.Random | None = None,
        recorder: AnnouncedPaymentRecorder | None = None,
    ) -> None:
        """``settle_inline`` settles other banks' payments in the call (memory profile,
        sandbox); ``rng``: seeded in tests, ``None`` draws the random part of
        EndToEndIds from the OS generator (``os.urandom``); ``recorder``: stores the record and its
        ``pix.payment_requested`` event in one write (else ``payments.add``, then
        ``events.publish``)."""
        self._ispb = ispb
        self._accounts = accounts
        self._payments = payments
        self._steps = steps
        self._events = events
        self._clock = clock
        self._rng = rng
        #: None (a single caller, some unit tests): concurrent replays are not held back
        self._in_flight = None if claims is None else InFlightGuard(claims, clock, ids)
        self._claims = claims
        self._ids = ids
        #: the claims store reads the records too: lookup and claim in one round trip
        self._claiming = claims if isinstance(claims, ClaimingLookup) else None
        self._directory = directory
        self._resolver = resolver
        self._charges = charges
        self._limiter = limiter
        self._settle_inline = settle_inline
        self._recorder = recorder

    async def __call__(self, cmd: SendPixCommand) -> SendPixResult:
        cmd = checked_enums(cmd)  # enum fields given as their values
        check_idempotency_key(cmd.idempotency_key)
        check_memo(cmd.description)  # these two before the fingerprint encodes them
        check_text(cmd.owner_id, field="owner_id", name="owner id")
        check_device_id(cmd.device_id)
        request_fingerprint = fingerprint(cmd)  # refuses unpaired surrogates in any field
        if self._claiming is not None:
            return await self._claim_and_send(self._claiming, cmd, request_fingerprint)
        existing = await self._payments.get_by_idempotency_key(cmd.owner_id, cmd.idempotency_key)
        if existing is not None and (
            self._in_flight is None
            or existing.status is not PaymentStatus.PENDING
            or existing.request_fingerprint != request_fingerprint
        ):
            return _replay(existing, request_fingerprint)
        if self._in_flight is None:
            return await self._send(cmd, request_fingerprint)
        # Until the first request with this key has answered, the others get
        # RequestInProgress (409) rather than running the flow again.
        async with self._in_flight.hold(_SEND_SCOPE, cmd.owner_id, cmd.idempotency_key):
            return await self._send(cmd, request_fingerprint)

    async def _claim_and_send(
        self, claiming: ClaimingLookup, cmd: SendPixCommand, request_fingerprint: str
    ) -> SendPixResult:
        """``__call__`` with the lookup, the claim and the lookup under it in one call."""
        assert self._claims is not None
        assert self._in_flight is not None
        claim_id = claim_id_for(_SEND_SCOPE, cmd.owner_id, cmd.idempotency_key)
        token = str(self._ids.new_id())
        now = self._clock.now()
        existing, taken = await claiming.claim_unless_recorded(
            cmd.owner_id,
            cmd.idempotency_key,
            claim_id,
            token,
            now=now,
            until=now + timedelta(seconds=DEFAULT_LEASE_SECONDS),
        )
        if not taken:
            if existing is None:
                raise RequestInProgress(
                    "a request with this idempotency key is still being processed; "
                    f"retry in {DEFAULT_RETRY_AFTER_SECONDS} s",
                    retry_after_seconds=DEFAULT_RETRY_AFTER_SECONDS,
                )
            if (
                existing.status is not PaymentStatus.PENDING
                or existing.request_fingerprint != request_fingerprint
            ):
                return _replay(existing, request_fingerprint)
            # PENDING: replayed only once its request has answered (the claim tells)
            async with self._in_flight.hold(_SEND_SCOPE, cmd.owner_id, cmd.idempotency_key):
                return await self._send(cmd, request_fingerprint)
        claim = _Claim(claim_id=claim_id, token=token)
        try:
            if existing is not None:  # recorded between the lookup and the claim
                return _replay(existing, request_fingerprint)
            return await self._send_new(cmd, request_fingerprint, claim)
        finally:
            # A claim left behind (store down, cancelled) frees itself when its lease ends.
            if not claim.released:
                with contextlib.suppress(ServiceUnavailable):
                    await self._claims.release(claim_id, token)

    async def _send(self, cmd: SendPixCommand, request_fingerprint: str) -> SendPixResult:
        existing = await self._payments.get_by_idempotency_key(cmd.owner_id, cmd.idempotency_key)
        if existing is not None:  # the first request with this key has answered
            return _replay(existing, request_fingerprint)
        return await self._send_new(cmd, request_fingerprint)

    async def _send_new(
        self, cmd: SendPixCommand, request_fingerprint: str, claim: _Claim | None = None
    ) -> SendPixResult:
        """The flow of a request whose key has no record (under its claim, if any).

        When nothing after the record can change the answer (another bank's
        payment, settled by the worker), a ``ClaimReleasingRecorder`` drops
        ``claim`` in the record's own write: a replay from then on is answered
        from the record, which is what this request answers.
        """
        if sum(t is not None for t in (cmd.key, cmd.br_code, cmd.account_data)) != 1:
            raise InvalidInput("name the recipient by exactly one of key, br_code, account_data")
        description = check_memo(cmd.description)
        payer_account = await owned_active_account(self._accounts, cmd.owner_id, cmd.account_id)
        now = self._clock.now()
        recipient = await self._recipient(cmd)
        amount = _amount(cmd.amount, recipient.amount)
        if recipient.party.account_id == payer_account.id:
            raise SameAccount()
        on_us = recipient.party.ispb == self._ispb
        payment = PixPayment(
            end_to_end_id=EndToEndId.generate(self._ispb, now, self._rng).value,
            flow=PixFlow.ON_US if on_us else PixFlow.OUTGOING,
            status=PaymentStatus.PENDING,
            amount=amount,
            payer=_party_of(payer_account, self._ispb),
            payee=recipient.party,
            initiation=recipient.initiation,
            created_at=now,
            txid=recipient.txid,
            description=description,
            idempotency_key=cmd.idempotency_key,
            request_fingerprint=request_fingerprint,
            device_id=cmd.device_id,
        )
        e2e = payment.end_to_end_id
        holds = await self._hold(payment, payer_account, cmd.device_id, now)
        try:
            await self._steps.reserve(
                e2e, payer_account.id, amount, TransferCode.PIX_OUT, memo("PIX enviado", payment)
            )
        except BaseException:
            await self._release(holds)
            raise
        try:
            answered = not on_us and self._settle_inline is None
            payment = await self._record(payment, claim if answered else None)
        except PixPaymentAlreadyExists:
            # A concurrent request with the same idempotency key won: release ours.
            await self._steps.void(e2e, TransferCode.PIX_OUT)
            await self._release(holds)
            winner = await self._payments.get_by_idempotency_key(cmd.owner_id, cmd.idempotency_key)
            if winner is None:
                raise
            return _replay(winner, request_fingerprint)
        except BaseException:
            # The store failed (unreachable, timed out, cancelled): no event will ever
            # name this payment, so unless the record did land, give the money and the
            # holds back rather than leave a reservation that nothing settles.
            await self._undo_unrecorded(cmd, e2e, holds)
            raise
        await self._limiter.record_device(cmd.owner_id, cmd.device_id, now)
        if self._recorder is None:
            await self._events.publish(PAYMENT_REQUESTED, e2e, payment_payload(payment))
        if on_us:
            payment = await settle_on_us(
                payment,
                steps=self._steps,
                payments=self._payments,
                events=self._events,
                charges=self._charges,
                clock=self._clock,
            )
        elif self._settle_inline is not None:
            # A network that cannot be reached leaves it PENDING for the worker.
            with contextlib.suppress(ServiceUnavailable):
                payment = await self._settle_inline(SettlePixPaymentCommand(end_to_end_id=e2e))
        if payment.status is PaymentStatus.REJECTED:  # it used none of the limits
            await self._limiter.release(payer_account.id, e2e)
        return SendPixResult(payment=payment)

    async def _record(self, payment: PixPayment, claim: _Claim | None = None) -> PixPayment:
        """Store the new record; with a recorder, its announcing event in the same write
        (and ``claim`` released in it, when the recorder can)."""
        if self._recorder is None:
            return await self._payments.add(payment)
        event = self._events.envelope(
            PAYMENT_REQUESTED, payment.end_to_end_id, payment_payload(payment)
        )
        if claim is not None and isinstance(self._recorder, ClaimReleasingRecorder):
            recorded = await self._recorder.add_announced_releasing(
                payment, event, claim.claim_id, claim.token
            )
            claim.released = True
            return recorded
        return await self._recorder.add_announced(payment, event)

    async def _hold(
        self, payment: PixPayment, payer: CustomerAccount, device_id: str | None, now: datetime
    ) -> _Holds:
        """Claim the charge the payment names (here), then reserve its share of the limits.

        Both are conditional writes in shared stores, so they hold across
        processes: one payer gets a charge, and the limits are never passed.
        """
        claim = None
        if payment.payee.account_id is not None and payment.txid:
            claim = await claim_charge(
                self._payments,
                self._charges,
                payment.payee.account_id,
                payment.txid,
                payment.amount,
                payment.end_to_end_id,
                now,
            )
        try:
            limited = await self._limiter.reserve(
                payer, payment.amount, now, device_id, payment.end_to_end_id
            )
        except BaseException:
            with contextlib.suppress(ServiceUnavailable):
                await release_charge(self._charges, claim)
            raise
        return _Holds(
            account_id=payer.id, hold_id=payment.end_to_end_id, limited=limited, claim=claim
        )

    async def _undo_unrecorded(self, cmd: SendPixCommand, e2e: str, holds: _Holds) -> None:
        """Void the reservation of ``e2e`` and release its holds if its record is absent.

        When the store cannot even answer the lookup, nothing is undone: the
        record may have landed; if it did not, the daily reconciliation voids
        the reservation as an orphan hold.
        """
        try:
            recorded = await self._payments.get_by_idempotency_key(
                cmd.owner_id, cmd.idempotency_key
            )
        except Exception:  # the caller sees the original failure, not this one
            return
        if recorded is not None and recorded.end_to_end_id == e2e:
            return
        with contextlib.suppress(Exception):
            await self._steps.void(e2e, TransferCode.PIX_OUT)
        with contextlib.suppress(Exception):
            await self._release(holds)

    async def _release(self, holds: _Holds) -> None:
        """Undo ``_hold`` after a failure before the payment was recorded.

        A store that cannot be reached leaves them; the holds of a payment
        never recorded are taken over once stale (``STALE_*_SECONDS``).
        """
        with contextlib.suppress(ServiceUnavailable):
            if holds.limited:
                await self._limiter.release(holds.account_id, holds.hold_id)
            await release_charge(self._charges, holds.claim)

    async def _recipient(self, cmd: SendPixCommand) -> _Recipient:
        if cmd.key is not None:
            key = PixKey.parse(cmd.key, cmd.key_type)
            return await self._by_key(key, Initiation.KEY)
        if cmd.br_code is not None:
            # Tolerant: a payer reads codes other banks write (see brcode_reader).
            return await self._by_brcode(read_brcode(cmd.br_code))
        assert cmd.account_data is not None
        return await self._by_account_data(cmd.account_data)

    async def _by_key(
        self,
        key: PixKey,
        initiation: Initiation,
        amount: Money | None = None,
        txid: str | None = None,
    ) -> _Recipient:
        entry = await self._directory.lookup(key)
        party = await self._party_of_entry(entry)
        return _Recipient(
            party=party, initiation=initiation, amount=amount, txid=txid, key=key.value
        )

    async def _by_brcode(self, code: BRCodeReading) -> _Recipient:
        if code.location_url is not None:
            payload = await self._resolver.resolve(code.location_url)
            payload.require_payable(self._clock.now())
            return await self._by_key(
                payload.pix_key, Initiation.DYNAMIC_QR, payload.amount, payload.txid
            )
        key, txid = code.static_payment()
        return await self._by_key(key, Initiation.STATIC_QR, code.amount, txid)

    async def _by_account_data(self, data: AccountData) -> _Recipient:
        _check_account_data(data)
        ispb = parse_ispb(data.ispb)
        document = normalize_cnpj(data.document)
        if not (is_valid_cpf(document) or is_valid_cnpj(document)):
            raise InvalidDocument("the recipient's document is not a valid CPF or CNPJ")
        if ispb != self._ispb:
            party = PixParty(
                ispb=ispb,
                branch=data.branch,
                account_number=data.account_number,
                account_kind=data.account_kind.value,
                name=data.name,
                document_masked=safe_mask(document),
            )
            return _Recipient(party=party, initiation=Initiation.MANUAL)
        try:
            account = await self._accounts.get_by_number(data.branch, data.account_number)
        except AccountNotFound:
            raise PixRecipientInvalid("no such account here (AC03)", reason="AC03") from None
        if account.holder_document is None or normalize_cnpj(account.holder_document) != document:
            raise PixRecipientInvalid(
                "the document does not match the account (BE01)", reason="BE01"
            )
        return _Recipient(party=_checked_party(account, self._ispb), initiation=Initiation.MANUAL)

    async def _party_of_entry(self, entry: DirectoryEntry) -> PixParty:
        if entry.ispb != self._ispb:
            return PixParty(
                ispb=entry.ispb,
                branch=entry.branch,
                account_number=entry.account_number,
                account_kind=entry.account_kind.value,
                name=entry.owner_name,
                document_masked=entry.owner_document_masked,
            )
        try:
            account = await self._accounts.get_by_number(entry.branch, entry.account_number)
        except AccountNotFound:
            raise PixRecipientInvalid(
                "the key's account no longer exists (AC03)", reason="AC03"
            ) from None
        return _checked_party(account, self._ispb)


def _checked_party(account: CustomerAccount, ispb: str) -> PixParty:
    if account.status is not AccountStatus.ACTIVE:
        raise PixRecipientInvalid("the recipient account is not active (AC06)", reason="AC06")
    return _party_of(account, ispb)


def _party_of(account: CustomerAccount, ispb: str) -> PixParty:
    return PixParty(
        ispb=ispb,
        branch=account.branch,
        account_number=account.number,
        account_kind=account.kind.value,
        name=account.holder_name,
        document_masked=safe_mask(account.holder_document),
        account_id=account.id,
        owner_id=account.owner_id,
    )


def _amount(asked: Money | None, fixed: Money | None) -> Money:
    if fixed is not None and asked is not None and asked != fixed:
        raise InvalidInput("the BR Code fixes the amount; send none or the same", field="amount")
    amount = fixed if fixed is not None else asked
    if amount is None:
        raise InvalidInput("an amount is required", field="amount")
    return amount.require_positive()


def _replay(existing: PixPayment, request_fingerprint: str) -> SendPixResult:
    if existing.request_fingerprint != request_fingerprint:
        raise IdempotencyKeyReused("this idempotency key was already used for a different request")
    return SendPixResult(payment=existing, replayed=True)
