"""Charges (cob): create, read, draw their QR codes, remove, claim and conclude on payment."""

from __future__ import annotations

import enum
import random
import uuid
from datetime import datetime

import msgspec

from finbank_core.accounts.access import owned_active_account
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.charges import Charge, ChargePayer, ChargeStatus
from finbank_core.pix.codes.brcode import ascii_fold
from finbank_core.pix.codes.documents import is_valid_cnpj, is_valid_cpf
from finbank_core.pix.codes.identifiers import TxId
from finbank_core.pix.codes.keys import PixKey
from finbank_core.pix.errors import (
    ChargeNotFound,
    InvalidDocument,
    PixKeyNotFound,
    PixPaymentNotFound,
    PixVersionConflict,
)
from finbank_core.pix.events import CHARGE_CONCLUDED, CHARGE_CREATED
from finbank_core.pix.ledger_steps import PixEvents
from finbank_core.pix.payments import PaymentStatus, PixPayment
from finbank_core.pix.ports import (
    ChargeRepository,
    KeyDirectory,
    PixPaymentRepository,
    QrRenderer,
)
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import InvalidInput, ServiceUnavailable
from finbank_core.shared.ids import IdGenerator
from finbank_core.shared.inputs import Memo, check_lookup_id, check_memo, checked_enums
from finbank_core.shared.money import Money
from finbank_core.shared.privacy import masked_repr

DEFAULT_EXPIRY_SECONDS = 24 * 3600
MAX_EXPIRY_SECONDS = 365 * 24 * 3600


class CreateChargeCommand(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    account_id: uuid.UUID
    pix_key: str
    amount: Money
    expires_in_seconds: int | None = None
    txid: str | None = None
    description: Memo | None = None
    payer: ChargePayer | None = None

    __repr__ = masked_repr("pix_key")


class ChargeResult(msgspec.Struct, frozen=True, kw_only=True):
    """A charge with its location and both BR Codes ("copia e cola" texts)."""

    charge: Charge
    location_url: str
    dynamic_brcode: str
    static_brcode: str

    __repr__ = masked_repr("dynamic_brcode", "static_brcode")


class QrKind(enum.StrEnum):
    DYNAMIC = "dynamic"
    STATIC = "static"


class QrFormat(enum.StrEnum):
    PNG = "png"
    SVG = "svg"


class GetChargeQuery(msgspec.Struct, frozen=True, kw_only=True):
    """One of the caller's charges, by txid."""

    owner_id: str
    txid: str


class RemoveChargeCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Withdraw one of the caller's active charges, by txid."""

    owner_id: str
    txid: str


class RenderChargeQrQuery(msgspec.Struct, frozen=True, kw_only=True):
    """The QR code of one of the caller's charges, as ``format``, of its ``kind`` of BR Code."""

    owner_id: str
    txid: str
    format: QrFormat
    kind: QrKind = QrKind.DYNAMIC


class _ChargeUseCase:
    def __init__(self, *, charges: ChargeRepository, location_base_url: str) -> None:
        self._charges = charges
        self._base_url = location_base_url

    async def _owned(self, owner_id: str, txid: str) -> Charge:
        charge = await self._charges.get(txid)
        if charge.owner_id != owner_id:
            raise ChargeNotFound()
        return charge

    def _view(self, charge: Charge) -> ChargeResult:
        return ChargeResult(
            charge=charge,
            location_url=charge.location_url(self._base_url),
            dynamic_brcode=charge.dynamic_brcode(self._base_url).encode(),
            static_brcode=charge.static_brcode().encode(),
        )


class CreateCharge(_ChargeUseCase):
    """An immediate charge into one of the caller's accounts, paid to one of its keys."""

    def __init__(
        self,
        *,
        accounts: AccountRepository,
        charges: ChargeRepository,
        directory: KeyDirectory,
        events: PixEvents,
        clock: Clock,
        ids: IdGenerator,
        location_base_url: str,
        merchant_city: str = "SAO PAULO",
        default_expiry_seconds: int = DEFAULT_EXPIRY_SECONDS,
        rng: random.Random | None = None,
    ) -> None:
        """``rng``: seeded in tests; ``None`` draws the random part of txids from the OS
        generator (``os.urandom``)."""
        super().__init__(charges=charges, location_base_url=location_base_url)
        self._accounts = accounts
        self._directory = directory
        self._events = events
        self._clock = clock
        self._ids = ids
        self._rng = rng
        self._city = ascii_fold(merchant_city).upper()[:15].strip() or "SAO PAULO"
        self._default_expiry = default_expiry_seconds

    async def __call__(self, cmd: CreateChargeCommand) -> ChargeResult:
        cmd.amount.require_positive()
        account = await owned_active_account(self._accounts, cmd.owner_id, cmd.account_id)
        expiry = self._default_expiry if cmd.expires_in_seconds is None else cmd.expires_in_seconds
        # a whole number of seconds (a float would be stored and then refused by the reader);
        # 0 is refused, not taken as "the default"
        if (
            isinstance(expiry, bool)
            or not isinstance(expiry, int)
            or not 0 < expiry <= MAX_EXPIRY_SECONDS
        ):
            raise InvalidInput("expiry must be 1 second to 365 days", field="expires_in_seconds")
        registration = await self._directory.get(PixKey.parse(cmd.pix_key))
        if registration.account_id != account.id:
            raise PixKeyNotFound("the key is not registered to this account")
        if cmd.payer is not None and not (
            is_valid_cpf(cmd.payer.document) or is_valid_cnpj(cmd.payer.document)
        ):
            raise InvalidDocument("the payer's document is not a valid CPF or CNPJ")
        txid = TxId.parse(cmd.txid) if cmd.txid else TxId.generate(self._rng)
        name = ascii_fold(account.holder_name)[:25].strip() or "FINBANK"
        charge = Charge(
            txid=txid.value,
            location_id=self._ids.new_id().hex,
            account_id=account.id,
            owner_id=account.owner_id,
            pix_key=registration.key,
            amount=cmd.amount,
            merchant_name=name,
            merchant_city=self._city,
            created_at=self._clock.now(),
            expires_in_seconds=expiry,
            description=check_memo(cmd.description),
            payer=cmd.payer,
        )
        self._view(charge)  # builds both codes: refuses a charge that cannot be encoded
        stored = await self._charges.add(charge)
        await self._events.publish(
            CHARGE_CREATED,
            stored.txid,
            {"txid": stored.txid, "account_id": str(account.id), "amount_cents": cmd.amount.cents},
        )
        return self._view(stored)


class GetCharge(_ChargeUseCase):
    """One of the caller's charges (``ChargeNotFound`` for anyone else's)."""

    async def __call__(self, query: GetChargeQuery) -> ChargeResult:
        check_lookup_id(query.txid, "txid")
        return self._view(await self._owned(query.owner_id, query.txid))


class RemoveCharge(_ChargeUseCase):
    """The receiver withdraws an active charge (``REMOVIDA_PELO_USUARIO_RECEBEDOR``)."""

    async def __call__(self, cmd: RemoveChargeCommand) -> ChargeResult:
        check_lookup_id(cmd.txid, "txid")
        charge = await self._owned(cmd.owner_id, cmd.txid)
        stored = await self._charges.update(charge.remove(), charge.version)
        return self._view(stored)


class RenderChargeQr(_ChargeUseCase):
    """The QR code of a charge's dynamic (default) or static BR Code."""

    def __init__(
        self,
        *,
        charges: ChargeRepository,
        renderer: QrRenderer,
        location_base_url: str,
    ) -> None:
        super().__init__(charges=charges, location_base_url=location_base_url)
        self._renderer = renderer

    async def __call__(self, query: RenderChargeQrQuery) -> bytes:
        query = checked_enums(query)  # enum fields given as their values
        check_lookup_id(query.txid, "txid")
        view = self._view(await self._owned(query.owner_id, query.txid))
        payload = view.dynamic_brcode if query.kind is QrKind.DYNAMIC else view.static_brcode
        if query.format is QrFormat.PNG:
            return self._renderer.render_png(payload)
        return self._renderer.render_svg(payload)


class ChargeClaim(msgspec.Struct, frozen=True, kw_only=True):
    """A charge held for one payment; ``new`` when this call made the claim."""

    txid: str
    end_to_end_id: str
    #: made by this call, so this call releases it if the payment fails
    new: bool


_CLAIM_ATTEMPTS = 5


async def claim_charge(
    payments: PixPaymentRepository,
    charges: ChargeRepository,
    account_id: uuid.UUID,
    reference: str,
    amount: Money,
    end_to_end_id: str,
    now: datetime,
) -> ChargeClaim | None:
    """Claim the payee's charge named by ``reference`` for payment ``end_to_end_id``.

    ``None`` if the account has no such charge. Raises ``ChargeNotPayable``
    if it is closed, expired, of another amount, or claimed by a payment
    that is still alive. The claim is a conditional write on the version
    read: of many payers at once exactly one wins, in any process. A claim
    already held by ``end_to_end_id`` is returned with ``new=False``.
    """
    for _ in range(_CLAIM_ATTEMPTS):
        charge = await charges.find(account_id, reference)
        if charge is None:
            return None
        if charge.claimed_by == end_to_end_id and charge.status is ChargeStatus.ATIVA:
            return ChargeClaim(txid=charge.txid, end_to_end_id=end_to_end_id, new=False)
        free = charge
        if charge.claimed_by is not None and await _claim_is_dead(payments, charge, now):
            free = charge.release()
        free.require_payable(now, amount)
        try:
            await charges.update(free.claim(end_to_end_id, now), charge.version)
        except PixVersionConflict:
            continue  # someone wrote first: read again (most likely now claimed)
        return ChargeClaim(txid=charge.txid, end_to_end_id=end_to_end_id, new=True)
    raise ServiceUnavailable("the charge is busy; retry later")


async def release_charge(charges: ChargeRepository, claim: ChargeClaim | None) -> None:
    """Give a claim made by this call back (the payment failed before it was recorded)."""
    if claim is None or not claim.new:
        return
    for _ in range(_CLAIM_ATTEMPTS):
        charge = await charges.get(claim.txid)
        if charge.claimed_by != claim.end_to_end_id or charge.status is not ChargeStatus.ATIVA:
            return
        try:
            await charges.update(charge.release(), charge.version)
            return
        except PixVersionConflict:
            continue
    # still held: it goes stale after STALE_CLAIM_SECONDS and can be taken over then


async def _claim_is_dead(payments: PixPaymentRepository, charge: Charge, now: datetime) -> bool:
    """The claimant was rejected, or was never recorded and its claim is stale."""
    assert charge.claimed_by is not None
    try:
        claimant = await payments.get(charge.claimed_by)
    except PixPaymentNotFound:
        return charge.claim_is_stale(now)
    return claimant.status is PaymentStatus.REJECTED


async def conclude_matching_charge(
    events: PixEvents, charges: ChargeRepository, payment: PixPayment, now: datetime
) -> Charge | None:
    """Mark the payee's charge named by the payment's txid ``CONCLUIDA``, if it is payable.

    The payment that claimed the charge concludes it even if it expired
    meanwhile. A payment of a different amount, for an expired or closed
    charge, or for one another payment claimed, leaves the charge as it is
    (the money is still credited).
    """
    account_id = payment.payee.account_id
    if account_id is None or not payment.txid:
        return None
    for _ in range(3):  # optimistic retries
        charge = await charges.find(account_id, payment.txid)
        if charge is None or charge.status is not ChargeStatus.ATIVA:
            return None
        mine = charge.claimed_by == payment.end_to_end_id
        if not mine and (charge.claimed_by is not None or charge.is_expired(now)):
            return None
        if charge.amount != payment.amount:
            return None
        try:
            stored = await charges.update(
                charge.conclude(payment.end_to_end_id, now), charge.version
            )
        except PixVersionConflict:
            continue
        await events.publish(
            CHARGE_CONCLUDED,
            stored.txid,
            {"txid": stored.txid, "end_to_end_id": payment.end_to_end_id},
        )
        return stored
    return None
