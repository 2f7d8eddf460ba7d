"""In-memory PIX adapters: key directory, payment and charge records, limits, devices.

Each operation runs without an ``await`` between its checks and its write,
so on one event loop the conditional writes are as atomic as DynamoDB's.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import uuid
from collections.abc import Callable, Collection
from datetime import date, datetime

import msgspec

from finbank_core.pix.charges import Charge
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.directory import DirectoryEntry, KeyRegistration, NewKeyRegistration
from finbank_core.pix.errors import (
    ChargeAlreadyExists,
    ChargeNotFound,
    IllegalPixTransition,
    PixKeyAlreadyRegistered,
    PixKeyLimitReached,
    PixKeyNotFound,
    PixPaymentAlreadyExists,
    PixPaymentNotFound,
    PixVersionConflict,
)
from finbank_core.pix.limits import AccountLimits, ReserveOutcome, UsageHold, UsageReservation
from finbank_core.pix.payments import (
    SAO_PAULO,
    PaymentDirection,
    PaymentPage,
    PaymentStatus,
    PixPayment,
)
from finbank_core.shared.errors import InvalidInput


def _page(items: list[PixPayment], limit: int, cursor: str | None, listing: str) -> PaymentPage:
    """A page of ``items`` (sorted); the cursor is the listing and the position after it."""
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000", field="limit")
    start = 0
    if cursor:
        prefix, _, position = cursor.rpartition("@")
        if prefix != listing or not position.isdigit() or len(position) > 9:
            raise InvalidInput("invalid cursor", field="cursor")
        start = int(position)
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    return PaymentPage(items=chunk, next_cursor=f"{listing}@{start + limit}" if more else None)


class InMemoryKeyDirectory:
    """The DICT in a dict. EVPs come from ``rng`` (tests) or ``secrets``."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng
        self._by_key: dict[tuple[PixKeyType, str], KeyRegistration] = {}

    def preload(self, registrations: list[KeyRegistration]) -> None:
        """Seed keys of other institutions (the sandbox's peer bank); replaces clashes."""
        for registration in registrations:
            self._by_key[(registration.key.type, registration.key.value)] = registration

    def _new_evp(self) -> PixKey:
        bits = self._rng.getrandbits(128) if self._rng is not None else secrets.randbits(128)
        return PixKey(PixKeyType.EVP, str(uuid.UUID(int=bits, version=4)))

    async def register(
        self, registration: NewKeyRegistration, *, max_keys_per_account: int
    ) -> KeyRegistration:
        key = registration.key
        if key is None:
            if registration.key_type is not PixKeyType.EVP:
                raise InvalidInput("only random keys (EVP) are issued by the directory")
            key = self._new_evp()
            while (key.type, key.value) in self._by_key:
                key = self._new_evp()
        if (key.type, key.value) in self._by_key:
            raise PixKeyAlreadyRegistered("this key is already registered")
        held = sum(1 for r in self._by_key.values() if _same_account(r, registration))
        if held >= max_keys_per_account:
            raise PixKeyLimitReached(
                f"an account of this kind holds at most {max_keys_per_account} keys",
                max_keys=max_keys_per_account,
            )
        stored = KeyRegistration.of(registration, key)
        self._by_key[(key.type, key.value)] = stored
        return stored

    async def delete(self, key_id: uuid.UUID, owner_id: str) -> KeyRegistration:
        for index, registration in self._by_key.items():
            if registration.id == key_id and registration.owner_id == owner_id:
                del self._by_key[index]
                return registration
        raise PixKeyNotFound()

    async def lookup(self, key: PixKey) -> DirectoryEntry:
        return (await self.get(key)).entry()

    async def get(self, key: PixKey) -> KeyRegistration:
        registration = self._by_key.get((key.type, key.value))
        if registration is None:
            raise PixKeyNotFound()
        return registration

    async def list_by_account(self, account_id: uuid.UUID) -> list[KeyRegistration]:
        found = [r for r in self._by_key.values() if r.account_id == account_id]
        return sorted(found, key=lambda r: (r.created_at, r.id))

    async def transfer(
        self, from_key_id: uuid.UUID, to: NewKeyRegistration, *, max_keys_per_account: int
    ) -> KeyRegistration:
        """A completed claim's key move (``ClaimableKeyDirectory``): one step, no await."""
        if to.key is None:
            raise InvalidInput("a transfer names its key")
        index = (to.key.type, to.key.value)
        held = self._by_key.get(index)
        if held is not None and held.id == to.id:
            return held
        if held is None or held.id != from_key_id:
            raise PixKeyNotFound()
        count = sum(1 for r in self._by_key.values() if _same_account(r, to))
        if count >= max_keys_per_account:
            raise PixKeyLimitReached(
                f"an account of this kind holds at most {max_keys_per_account} keys",
                max_keys=max_keys_per_account,
            )
        stored = KeyRegistration.of(to, to.key)
        self._by_key[index] = stored
        return stored


def _same_account(held: KeyRegistration, new: NewKeyRegistration) -> bool:
    if new.account_id is not None:
        return held.account_id == new.account_id
    return (held.ispb, held.branch, held.account_number) == (
        new.ispb,
        new.branch,
        new.account_number,
    )


class InMemoryPixPaymentRepository:
    """Payment records keyed by EndToEndId, with the indexes the DynamoDB table will have."""

    def __init__(self, timezone: str = SAO_PAULO) -> None:
        self._timezone = timezone
        self._records: dict[str, PixPayment] = {}
        self._by_idempotency: dict[tuple[str, str], str] = {}

    async def add(self, payment: PixPayment) -> PixPayment:
        idem = _idempotency_index(payment)
        if payment.end_to_end_id in self._records or (
            idem is not None and idem in self._by_idempotency
        ):
            raise PixPaymentAlreadyExists("a payment with this id or idempotency key exists")
        stored = msgspec.structs.replace(payment, version=1)
        self._records[payment.end_to_end_id] = stored
        if idem is not None:
            self._by_idempotency[idem] = payment.end_to_end_id
        return stored

    async def get(self, end_to_end_id: str) -> PixPayment:
        try:
            return self._records[end_to_end_id]
        except KeyError:
            raise PixPaymentNotFound() from None

    async def get_by_idempotency_key(self, owner_id: str, key: str) -> PixPayment | None:
        e2e = self._by_idempotency.get((owner_id, key))
        return None if e2e is None else self._records[e2e]

    async def update(self, payment: PixPayment, expected_version: int) -> PixPayment:
        current = await self.get(payment.end_to_end_id)
        if current.version != expected_version:
            raise PixVersionConflict()
        if current.status not in (PaymentStatus.PENDING, payment.status):  # final stays final
            raise IllegalPixTransition(
                f"a payment cannot go from {current.status} to {payment.status}",
                current=current.status.value,
                target=payment.status.value,
            )
        stored = msgspec.structs.replace(payment, version=expected_version + 1)
        self._records[payment.end_to_end_id] = stored
        return stored

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
        found = [
            p
            for p in self._records.values()
            if account_id in p.account_ids()
            and (since is None or p.created_at >= since)
            and (until is None or p.created_at < until)
            and (statuses is None or p.status in statuses)
            and (direction is None or direction in p.directions(account_id))
        ]
        found.sort(key=lambda p: (p.created_at, p.end_to_end_id), reverse=True)
        return _page(found, limit, cursor, f"account:{account_id}")

    async def list_by_settlement_day(
        self, day: date, *, limit: int = 100, cursor: str | None = None
    ) -> PaymentPage:
        found = [
            p
            for p in self._records.values()
            if p.status is PaymentStatus.SETTLED and day in p.settlement_days(self._timezone)
        ]
        found.sort(key=lambda p: (p.settled_at or p.created_at, p.end_to_end_id))
        return _page(found, limit, cursor, f"day:{day.isoformat()}")


def _idempotency_index(payment: PixPayment) -> tuple[str, str] | None:
    if payment.idempotency_key is None or payment.payer.owner_id is None:
        return None
    return (payment.payer.owner_id, payment.idempotency_key)


class InMemoryChargeRepository:
    def __init__(self) -> None:
        self._charges: dict[str, Charge] = {}
        self._by_static: dict[str, str] = {}
        self._by_location: dict[str, str] = {}

    async def add(self, charge: Charge) -> Charge:
        if (
            charge.txid in self._charges
            or charge.static_txid in self._by_static
            or charge.location_id in self._by_location
        ):
            raise ChargeAlreadyExists("a charge with this txid already exists")
        stored = msgspec.structs.replace(charge, version=1)
        self._charges[charge.txid] = stored
        self._by_static[charge.static_txid] = charge.txid
        self._by_location[charge.location_id] = charge.txid
        return stored

    async def get(self, txid: str) -> Charge:
        try:
            return self._charges[txid]
        except KeyError:
            raise ChargeNotFound() from None

    async def find(self, account_id: uuid.UUID, reference: str) -> Charge | None:
        txid = reference if reference in self._charges else self._by_static.get(reference)
        charge = self._charges.get(txid) if txid else None
        return charge if charge is not None and charge.account_id == account_id else None

    async def get_by_location(self, location_id: str) -> Charge:
        txid = self._by_location.get(location_id)
        if txid is None:
            raise ChargeNotFound()
        return self._charges[txid]

    async def update(self, charge: Charge, expected_version: int) -> Charge:
        current = await self.get(charge.txid)
        if current.version != expected_version:
            raise PixVersionConflict()
        stored = msgspec.structs.replace(charge, version=expected_version + 1)
        self._charges[charge.txid] = stored
        return stored


class InMemoryAccountLimitsStore:
    """Limit choices and usage counters; a reservation checks and adds without an ``await``."""

    def __init__(self) -> None:
        self._limits: dict[uuid.UUID, AccountLimits] = {}
        self._used: dict[tuple[uuid.UUID, str], int] = {}
        self._holds: dict[tuple[uuid.UUID, str], UsageHold] = {}

    async def get(self, account_id: uuid.UUID) -> AccountLimits | None:
        return self._limits.get(account_id)

    async def put(self, limits: AccountLimits) -> None:
        self._limits[limits.account_id] = limits

    async def update(
        self,
        account_id: uuid.UUID,
        change: Callable[[AccountLimits | None], AccountLimits | None],
    ) -> AccountLimits | None:
        await asyncio.sleep(0)  # interleave as against a server; then read, change, write
        current = self._limits.get(account_id)
        changed = change(current)  # no await from the read to the write: atomic on one loop
        if changed is None:
            return current
        self._limits[account_id] = changed
        return changed

    async def reserve_usage(self, hold: UsageHold) -> UsageReservation:
        # counters kept under (scope or account, period): a scoped one is shared by accounts
        if (hold.account_id, hold.hold_id) in self._holds:
            return UsageReservation(outcome=ReserveOutcome.ALREADY_HELD)
        for counter in hold.counters:
            index = (hold.kept_under(counter), counter.period)
            if self._used.get(index, 0) + hold.amount > counter.cap:
                return UsageReservation(outcome=ReserveOutcome.EXCEEDED, limit=counter.limit)
        for index in hold.counter_keys():
            self._used[index] = self._used.get(index, 0) + hold.amount
        self._holds[(hold.account_id, hold.hold_id)] = hold
        return UsageReservation(outcome=ReserveOutcome.RESERVED)

    async def release_usage(self, account_id: uuid.UUID, hold_id: str) -> bool:
        hold = self._holds.pop((account_id, hold_id), None)
        if hold is None:
            return False
        for index in hold.counter_keys():
            self._used[index] -= hold.amount
        return True

    async def usage_holds(self, account_id: uuid.UUID, period: str) -> list[UsageHold]:
        return [
            hold for hold in self._holds.values() if (account_id, period) in hold.counter_keys()
        ]

    async def used(self, account_id: uuid.UUID, period: str) -> int:
        return self._used.get((account_id, period), 0)


class InMemoryDeviceRegistry:
    def __init__(self) -> None:
        self._first_seen: dict[tuple[str, str], datetime] = {}

    async def first_seen(self, owner_id: str, device_id: str) -> datetime | None:
        return self._first_seen.get((owner_id, device_id))

    async def record_use(self, owner_id: str, device_id: str, at: datetime) -> None:
        self._first_seen.setdefault((owner_id, device_id), at)

    async def list_by_owner(self, owner_id: str) -> list[tuple[str, datetime]]:
        return [(d, at) for (o, d), at in self._first_seen.items() if o == owner_id]
