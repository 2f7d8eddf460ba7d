"""List my PIX payments: one account's payments, sent and received, newest first, in pages.

Filters: a creation-time range (``since <= created_at < until``), statuses
and the direction (``SENT``: the account paid; ``RECEIVED``: it was paid).
Paging is by an opaque cursor: the store's own cursor, sealed with an HMAC
under the bank's key together with what it lists (owner, account, filters).
A cursor that was altered, forged, or comes from another listing (another
customer, account or filter) is refused with ``InvalidInput`` naming
``cursor``, before the store sees it; so is a ``limit`` outside 1..100 or a
range whose end is not after its start. The account must be the caller's
(``AccountNotFound`` otherwise, as everywhere); a closed account's history
stays listable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from datetime import datetime

import msgspec

from finbank_core.accounts.access import owned_account
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.payments import PaymentDirection, PaymentPage, PaymentStatus
from finbank_core.pix.ports import PixPaymentRepository
from finbank_core.shared.clock import utc_bound
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.inputs import check_text, checked_enums

#: the most payments one page returns
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
_TAG_BYTES = 16


class ListPixPaymentsQuery(msgspec.Struct, frozen=True, kw_only=True):
    """One page of ``account_id``'s payments; pass the last page's ``next_cursor`` as ``cursor``."""

    owner_id: str
    account_id: uuid.UUID
    since: datetime | None = None
    until: datetime | None = None
    #: keep only these statuses (``None``: all)
    statuses: frozenset[PaymentStatus] | None = None
    direction: PaymentDirection | None = None
    limit: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None


class CursorSeal:
    """Seals a store's cursor to the listing it continues, with HMAC-SHA256 under ``key``.

    A sealed cursor is ``base64url(JSON [store cursor, listing digest])`` ``.``
    ``base64url(tag)``: opaque to clients, and any change to it, or its use
    for another listing, fails the check.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a cursor key needs at least 16 bytes")
        self._key = key

    def seal(self, cursor: str, listing: bytes) -> str:
        body = msgspec.json.encode([cursor, hashlib.sha256(listing).hexdigest()])
        return f"{_b64(body)}.{_b64(self._tag(body))}"

    def open(self, sealed: str, listing: bytes) -> str:
        """The store's cursor; ``InvalidInput`` naming ``cursor`` unless sealed for ``listing``."""
        body_text, _, tag_text = sealed.partition(".")
        try:
            body, tag = _unb64(body_text), _unb64(tag_text)
        except (binascii.Error, ValueError):
            raise InvalidInput("invalid cursor", field="cursor") from None
        if not hmac.compare_digest(tag, self._tag(body)):
            raise InvalidInput("invalid cursor", field="cursor")
        try:
            cursor, digest = msgspec.json.decode(body, type=tuple[str, str])
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise InvalidInput("invalid cursor", field="cursor") from None
        if not hmac.compare_digest(digest, hashlib.sha256(listing).hexdigest()):
            raise InvalidInput("the cursor belongs to another listing", field="cursor")
        return cursor

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._key, b"pix-payments-cursor\x1f" + body, hashlib.sha256).digest()[
            :_TAG_BYTES
        ]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    """The bytes of canonical unpadded base64url ``text``; any other spelling is refused.

    Base64 ignores the low bits of a last character, so several strings decode
    to the same bytes: only the one :func:`_b64` writes is accepted, and any
    change to a cursor is noticed.
    """
    if not text or not text.isascii():
        raise ValueError("empty or not ASCII")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


def _listing(query: ListPixPaymentsQuery) -> bytes:
    """What a cursor may continue: everything in the query but the page size and cursor."""
    return msgspec.json.encode(
        [
            query.owner_id,
            str(query.account_id),
            query.since.isoformat() if query.since else None,
            query.until.isoformat() if query.until else None,
            None if query.statuses is None else sorted(s.value for s in query.statuses),
            query.direction.value if query.direction else None,
        ]
    )


class ListPixPayments:
    """One page of the caller's payments on one of their accounts (see the module docstring)."""

    def __init__(
        self, *, accounts: AccountRepository, payments: PixPaymentRepository, cursor_key: bytes
    ) -> None:
        self._accounts = accounts
        self._payments = payments
        self._seal = CursorSeal(cursor_key)

    async def __call__(self, query: ListPixPaymentsQuery) -> PaymentPage:
        query = checked_enums(query)  # statuses, direction
        limit = query.limit
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
        for name, moment in (("since", query.since), ("until", query.until)):
            if moment is not None and moment.utcoffset() is None:
                raise InvalidInput(f"{name} needs a UTC offset", field=name)
        if query.since is not None and query.until is not None and query.since >= query.until:
            raise InvalidInput("until must be after since", field="until")
        if query.statuses is not None and not query.statuses:
            raise InvalidInput("name at least one status, or none to list all", field="status")
        check_text(query.owner_id, field="owner_id", name="owner id")  # encoded just below
        # the cursor is sealed to the query as sent: cursors of earlier pages still open
        listing = _listing(query)
        # in UTC, clamped to what it can hold: every store answers alike (utc_bound)
        query = msgspec.structs.replace(
            query,
            since=None if query.since is None else utc_bound(query.since),
            until=None if query.until is None else utc_bound(query.until),
        )
        inner = self._seal.open(query.cursor, listing) if query.cursor else None
        await owned_account(self._accounts, query.owner_id, query.account_id)
        page = await self._payments.list_by_account(
            query.account_id,
            since=query.since,
            until=query.until,
            limit=query.limit,
            cursor=inner,
            statuses=query.statuses,
            direction=query.direction,
        )
        sealed = None if page.next_cursor is None else self._seal.seal(page.next_cursor, listing)
        return PaymentPage(items=page.items, next_cursor=sealed)
