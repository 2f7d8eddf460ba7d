"""Ports of the PIX context. Domain types only, so a DynamoDB adapter can honour them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from datetime import date, datetime
from typing import Protocol

from finbank_core.pix.charges import Charge, ChargePayload
from finbank_core.pix.codes.keys import PixKey
from finbank_core.pix.directory import DirectoryEntry, KeyRegistration, NewKeyRegistration
from finbank_core.pix.limits import AccountLimits, UsageHold, UsageReservation
from finbank_core.pix.network import NetworkResult, PaymentOrder, ReturnOrder
from finbank_core.pix.payments import PaymentDirection, PaymentPage, PaymentStatus, PixPayment
from finbank_core.shared.events import EventEnvelope


class KeyDirectory(Protocol):
    """The key directory (DICT): which account a PIX key pays into.

    A key belongs to one account at a time, in any institution. Look-ups
    return the holder's document masked; the full registration (document
    included) is only for the owning side.
    """

    async def register(
        self, registration: NewKeyRegistration, *, max_keys_per_account: int
    ) -> KeyRegistration:
        """Bind a key to an account; for an EVP (``key=None``) the directory issues it.

        Raises ``PixKeyAlreadyRegistered`` if the key is bound anywhere
        (including to this account) and ``PixKeyLimitReached`` if the account
        already has ``max_keys_per_account`` keys. Both checks and the write
        are atomic.
        """
        ...

    async def delete(self, key_id: uuid.UUID, owner_id: str) -> KeyRegistration:
        """Remove a key of one of ``owner_id``'s accounts; returns what was removed.

        Raises ``PixKeyNotFound`` for an unknown id or someone else's key.
        """
        ...

    async def lookup(self, key: PixKey) -> DirectoryEntry:
        """The account a key pays into, holder masked; raises ``PixKeyNotFound``."""
        ...

    async def get(self, key: PixKey) -> KeyRegistration:
        """The full registration of a key; raises ``PixKeyNotFound``. Owning side only."""
        ...

    async def list_by_account(self, account_id: uuid.UUID) -> list[KeyRegistration]:
        """The keys of an account, oldest first."""
        ...


class AnnouncedPaymentRecorder(Protocol):
    """Stores a new payment record and its announcing event together (optional port).

    Where the record store and the event outbox share a database (PIX on
    PostgreSQL with the PostgreSQL outbox), both are one write: the event
    exists exactly when the record does, in one round trip. ``SendPix``
    falls back to ``PixPaymentRepository.add`` then ``EventPublisher.publish``
    without one.
    """

    async def add_announced(self, payment: PixPayment, event: EventEnvelope) -> PixPayment:
        """``PixPaymentRepository.add`` and, in the same transaction, ``event`` in the outbox.

        Raises ``PixPaymentAlreadyExists`` as ``add`` does, and then stores no event.
        """
        ...


class PixPaymentRepository(Protocol):
    """PIX payment records (refunds inside them), shaped for DynamoDB.

    Writes are conditional: ``add`` on the EndToEndId (and on the payer's
    idempotency key), ``update`` on the version read. Listing is by account
    and by settlement day, newest first, paged by an opaque cursor.
    """

    async def add(self, payment: PixPayment) -> PixPayment:
        """Store a new record with version 1 and return it.

        Raises ``PixPaymentAlreadyExists`` if the EndToEndId is taken or if
        ``(payer.owner_id, idempotency_key)`` is already used by another record.
        """
        ...

    async def get(self, end_to_end_id: str) -> PixPayment:
        """Raises ``PixPaymentNotFound``."""
        ...

    async def get_by_idempotency_key(self, owner_id: str, key: str) -> PixPayment | None:
        """The payment ``owner_id`` created with idempotency key ``key``, if any."""
        ...

    async def update(self, payment: PixPayment, expected_version: int) -> PixPayment:
        """Replace the record if its stored version is ``expected_version``.

        Returns the record as stored, with version ``expected_version + 1``.
        Raises ``PixVersionConflict`` on a mismatch and ``PixPaymentNotFound``
        if there is no such record.
        """
        ...

    async def list_by_account(
        self,
        account_id: uuid.UUID,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
        statuses: Collection[PaymentStatus] | None = None,
        direction: PaymentDirection | None = None,
    ) -> PaymentPage:
        """Records touching the account, ``since <= created_at < until``, newest first.

        ``statuses`` keeps records in one of those statuses, ``direction`` those
        the account sent (payer) or received (payee). ``cursor`` is the
        ``next_cursor`` of the page before, listing the same account; anything
        else raises ``InvalidInput`` naming ``cursor``, as a ``limit`` outside
        1..1000 does naming ``limit``.
        """
        ...

    async def list_by_settlement_day(
        self, day: date, *, limit: int = 100, cursor: str | None = None
    ) -> PaymentPage:
        """Settled records with money settled on ``day`` (São Paulo), oldest first.

        A record qualifies by its own settlement or by a refund completed that
        day (see ``PixPayment.settlement_days``): daily reconciliation needs
        both. Adapters index every such day (DynamoDB: one GSI item per day).
        """
        ...


class ChargeRepository(Protocol):
    """Immediate charges (cob)."""

    async def add(self, charge: Charge) -> Charge:
        """Store with version 1; ``ChargeAlreadyExists`` if the txid or its first 25 chars clash."""
        ...

    async def get(self, txid: str) -> Charge:
        """By full txid; raises ``ChargeNotFound``."""
        ...

    async def find(self, account_id: uuid.UUID, reference: str) -> Charge | None:
        """The account's charge whose txid or static txid is ``reference``."""
        ...

    async def get_by_location(self, location_id: str) -> Charge:
        """Raises ``ChargeNotFound``."""
        ...

    async def update(self, charge: Charge, expected_version: int) -> Charge:
        """Optimistic replace, like ``PixPaymentRepository.update`` (``PixVersionConflict``)."""
        ...


class ChargeResolver(Protocol):
    """Fetches what a dynamic BR Code's location URL serves (the receiver's PSP)."""

    async def resolve(self, location_url: str) -> ChargePayload:
        """Raises ``ChargeNotFound`` for an unknown location, ``ServiceUnavailable`` if down."""
        ...


class PaymentNetwork(Protocol):
    """The instant payment system (SPI): send orders, get their settlement."""

    async def send_payment(self, order: PaymentOrder) -> NetworkResult:
        """Send a payment; the same EndToEndId twice gets the first answer again.

        A rejection is a result (``RJCT`` + reason), not an error; raises
        ``ServiceUnavailable`` only when the outcome is unknown and the call
        may be repeated.
        """
        ...

    async def send_return(self, order: ReturnOrder) -> NetworkResult:
        """Send a return (pacs.004); same idempotency and errors as ``send_payment``."""
        ...


class QrRenderer(Protocol):
    """Draws a BR Code payload as a QR code image."""

    def render_png(self, payload: str, *, scale: int = 8) -> bytes: ...

    def render_svg(self, payload: str, *, scale: int = 8) -> bytes: ...


class AccountLimitsStore(Protocol):
    """Customers' limit choices per account, and what each account used per limit period.

    Usage is a counter per ``(id, period)`` and a hold per payment
    (``UsageHold``, keyed by its account and EndToEndId) that says what it
    added to which counters. A counter is kept under ``hold.kept_under(c)``:
    its ``scope`` if it has one (a new device's day, shared by all the
    owner's accounts), else the hold's account; the ``account_id`` of
    :meth:`usage_holds` and :meth:`used` is that id. Reserving and releasing
    are atomic across processes (DynamoDB: one conditional transaction each),
    whatever ids the counters are kept under.
    """

    async def get(self, account_id: uuid.UUID) -> AccountLimits | None: ...

    async def put(self, limits: AccountLimits) -> None:
        """Replace the account's choices whatever they are (setup and tests; changes use
        :meth:`update`)."""
        ...

    async def update(
        self,
        account_id: uuid.UUID,
        change: Callable[[AccountLimits | None], AccountLimits | None],
    ) -> AccountLimits | None:
        """Apply ``change`` to the account's current choices, atomically; what is stored after.

        ``change`` gets the choices as stored (None: none yet) and returns what to
        store, or None to store nothing; if it raises, nothing is stored and the
        error propagates. Atomic against every other ``update`` of the account:
        what ``change`` returns is written only over the value it was given (a
        compare-and-set, ``change`` called again with the newer value when another
        write came first; it must be a pure function of its argument), so
        concurrent changes never lose one another. Raises ``ServiceUnavailable``
        if it cannot apply after many tries (nothing stored).
        """
        ...

    async def reserve_usage(self, hold: UsageHold) -> UsageReservation:
        """Add ``hold.amount`` to every counter of the hold and record the hold, or nothing.

        Each counter is the one kept under ``hold.kept_under(counter)``, shared
        with the other holds that name it, of any account.
        ``RESERVED`` if every counter stays within its ``cap`` (inclusive);
        ``EXCEEDED`` with the first counter's ``limit`` that would not;
        ``ALREADY_HELD`` if a hold with this id is recorded (nothing added).
        """
        ...

    async def release_usage(self, account_id: uuid.UUID, hold_id: str) -> bool:
        """Take the account's hold's amount back from its counters and forget it, once.

        The counters are those the hold was reserved on (a scoped counter
        under its scope; a hold recorded before scopes existed, all under the
        account). False if there is no such hold (never made, or already
        released).
        """
        ...

    async def usage_holds(self, account_id: uuid.UUID, period: str) -> list[UsageHold]:
        """The holds still counted on the counter kept under ``account_id`` for ``period``.

        ``account_id`` is an account or a counter's scope: for a scope, the
        holds of every account that reserved on that counter.
        """
        ...

    async def used(self, account_id: uuid.UUID, period: str) -> int:
        """What the counter kept under ``account_id`` (an account or a scope) for
        ``period`` holds, centavos (0 if none)."""
        ...


class DeviceRegistry(Protocol):
    """When each customer device was first used for PIX."""

    async def first_seen(self, owner_id: str, device_id: str) -> datetime | None: ...

    async def record_use(self, owner_id: str, device_id: str, at: datetime) -> None:
        """Remember the first use; later calls keep the first date."""
        ...
