"""``PostgresAccountRepository``: customer accounts in the ``customer_accounts`` table."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from typing import TypeVar

import asyncpg

from finbank_adapters.postgres.coalesced_reads import CoalescedReads
from finbank_adapters.postgres.errors import translated
from finbank_core.accounts.model import AccountKind, AccountStatus, CustomerAccount, HolderType
from finbank_core.shared.errors import AccountNotFound, DuplicateAccount

_E = TypeVar("_E", bound=enum.Enum)

#: every query returns these columns in this order (``_account`` reads them by position)
_SELECT = (
    "SELECT id, owner_id, holder_name, holder_type, holder_document, branch, number, kind,"
    " status, created_at FROM customer_accounts"
)
_INSERT = (
    "INSERT INTO customer_accounts (id, owner_id, holder_name, holder_type, holder_document,"
    " branch, number, kind, status, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)
_BY_ID = _SELECT + " WHERE id = $1"
_BY_IDS = _SELECT + " WHERE id = ANY($1::uuid[])"
#: the two accounts of a transfer, as two parameters: asyncpg's array encoding alone (its
#: collections.abc checks of the list and of each element) took ~13k instructions a call
_BY_TWO_IDS = _SELECT + " WHERE id IN ($1, $2)"
#: up to 64 ids as parameters, padded to the next of these sizes with the last id
#: repeated: a few prepared statements, and no array to encode
_IN_SIZES = (4, 8, 16, 32, 64)
_BY_N_IDS = {
    size: _SELECT + " WHERE id IN ({})".format(", ".join(f"${n}" for n in range(1, size + 1)))
    for size in _IN_SIZES
}
_BY_NUMBER = _SELECT + " WHERE branch = $1 AND number = $2"
_BY_OWNER = _SELECT + ' WHERE owner_id = $1 ORDER BY created_at, number COLLATE "C"'
_SET_STATUS = (
    "UPDATE customer_accounts SET status = $2 WHERE id = $1"
    " RETURNING id, owner_id, holder_name, holder_type, holder_document, branch, number, kind,"
    " status, created_at"
)


def _duplicate() -> DuplicateAccount:
    return DuplicateAccount("an account with this id or number already exists")


_ON_UNIQUE = {
    "customer_accounts_pkey": _duplicate,
    "customer_accounts_branch_number_key": _duplicate,
}


class PostgresAccountRepository:
    """Customer accounts on PostgreSQL; ``pool`` is opened and closed by its owner.

    ``read_max_in_flight``: with that many ``get_many`` reads in flight, the
    callers that arrive wait and are read together in one statement
    (:mod:`finbank_adapters.postgres.coalesced_reads`); 0: every read at once.
    """

    def __init__(self, pool: asyncpg.Pool, *, read_max_in_flight: int = 0) -> None:
        self._pool = pool
        self._reads = CoalescedReads(self._fetch_rows, max_in_flight=read_max_in_flight)

    @property
    def reads(self) -> CoalescedReads:
        """The coalesced ``get_many`` reads (their counters, what is in flight and waits)."""
        return self._reads

    async def next_account_number(self) -> int:
        with translated():
            number: int = await self._pool.fetchval("SELECT nextval('customer_account_number_seq')")
        return number

    async def add(self, account: CustomerAccount) -> None:
        with translated(_ON_UNIQUE):
            await self._pool.execute(
                _INSERT,
                account.id,
                account.owner_id,
                account.holder_name,
                account.holder_type.value,
                account.holder_document,
                account.branch,
                account.number,
                account.kind.value,
                account.status.value,
                account.created_at,
            )

    async def get(self, account_id: uuid.UUID) -> CustomerAccount:
        with translated():
            row = await self._pool.fetchrow(_BY_ID, account_id)
        if row is None:
            raise AccountNotFound()
        return _account(row)

    async def get_many(self, account_ids: Sequence[uuid.UUID]) -> list[CustomerAccount]:
        if not account_ids:
            return []
        by_id = await self._reads.rows(account_ids)
        return [_account(by_id[i]) for i in account_ids if i in by_id]

    async def _fetch_rows(self, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
        """One statement for ``ids``; driver errors untranslated (``CoalescedReads``'s)."""
        count = len(ids)
        if count == 2:
            return await self._pool.fetch(_BY_TWO_IDS, ids[0], ids[1])
        if count > _IN_SIZES[-1]:
            return await self._pool.fetch(_BY_IDS, ids)
        if count == 1:
            return await self._pool.fetch(_BY_ID, ids[0])
        for size in _IN_SIZES:
            if size >= count:
                break
        return await self._pool.fetch(_BY_N_IDS[size], *ids, *[ids[-1]] * (size - count))

    async def get_by_number(self, branch: str, number: str) -> CustomerAccount:
        with translated():
            row = await self._pool.fetchrow(
                _BY_NUMBER,
                branch,
                number,
            )
        if row is None:
            raise AccountNotFound()
        return _account(row)

    async def list_by_owner(self, owner_id: str) -> list[CustomerAccount]:
        with translated():
            rows = await self._pool.fetch(
                _BY_OWNER,
                owner_id,
            )
        return [_account(row) for row in rows]

    async def set_status(self, account_id: uuid.UUID, status: AccountStatus) -> CustomerAccount:
        with translated():
            row = await self._pool.fetchrow(
                _SET_STATUS,
                account_id,
                status.value,
            )
        if row is None:
            raise AccountNotFound()
        return _account(row)


#: value -> member, looked up instead of calling the enum (its ``__new__`` costs ~0.5 us)
_HOLDER_TYPES = {member.value: member for member in HolderType}
_KINDS = {member.value: member for member in AccountKind}
_STATUSES = {member.value: member for member in AccountStatus}


def _member(members: dict[str, _E], value: str, kind: type[_E]) -> _E:
    member = members.get(value)
    if member is None:
        return kind(value)  # raises ValueError, as the enum call did
    return member


def _account(row: asyncpg.Record) -> CustomerAccount:
    # by position, in the order every query here returns them
    (
        account_id,
        owner_id,
        holder_name,
        holder_type,
        holder_document,
        branch,
        number,
        kind,
        status,
        created_at,
    ) = row
    return CustomerAccount(
        id=account_id,
        owner_id=owner_id,
        holder_name=holder_name,
        holder_type=_member(_HOLDER_TYPES, holder_type, HolderType),
        holder_document=holder_document,
        branch=branch,
        number=number,
        kind=_member(_KINDS, kind, AccountKind),
        status=_member(_STATUSES, status, AccountStatus),
        created_at=created_at,
    )
