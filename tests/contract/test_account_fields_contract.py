"""Every account field comes back as stored, for every value of each enum, on every backend.

``PostgresAccountRepository`` reads rows by position and maps enum values through
lookup tables; a column out of order or a missing member would show here.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import msgspec

from finbank_core.accounts.model import (
    AccountKind,
    AccountStatus,
    CustomerAccount,
    HolderType,
    format_account_number,
)
from finbank_core.accounts.ports import AccountRepository

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


async def test_every_enum_value_and_field_round_trips(
    account_repository: AccountRepository,
) -> None:
    stored: list[CustomerAccount] = []
    combos = itertools.product(HolderType, AccountKind, AccountStatus)
    for n, (holder_type, kind, status) in enumerate(combos):
        account = CustomerAccount(
            id=uuid.uuid4(),
            owner_id=f"owner-{n % 3}",
            holder_name=f"Holder {n}",
            holder_type=holder_type,
            holder_document=None if n % 2 else f"{n:011d}",
            branch="0001",
            number=format_account_number(await account_repository.next_account_number()),
            kind=kind,
            status=status,
            created_at=T0 + timedelta(seconds=n),
        )
        await account_repository.add(account)
        stored.append(account)
    for account in stored:
        assert await account_repository.get(account.id) == account
    ids = [a.id for a in reversed(stored)]
    assert await account_repository.get_many(ids) == list(reversed(stored))
    first = stored[0]
    for status in AccountStatus:
        changed = await account_repository.set_status(first.id, status)
        assert changed == msgspec.structs.replace(first, status=status)


async def test_get_many_of_two_as_of_any_other_count(
    account_repository: AccountRepository,
) -> None:
    """Two ids (every transfer's read) go by a query of their own on PostgreSQL."""
    accounts = []
    for n in range(3):
        account = CustomerAccount(
            id=uuid.uuid4(),
            owner_id="owner-two",
            holder_name=f"Two {n}",
            holder_type=HolderType.INDIVIDUAL,
            branch="0001",
            number=format_account_number(await account_repository.next_account_number()),
            kind=AccountKind.PAYMENT,
            status=AccountStatus.ACTIVE,
            created_at=T0,
        )
        await account_repository.add(account)
        accounts.append(account)
    a, b, c = accounts
    unknown = uuid.uuid4()
    get_many = account_repository.get_many
    assert await get_many([a.id, b.id]) == [a, b]
    assert await get_many([b.id, a.id]) == [b, a]
    assert await get_many([a.id, unknown]) == [a]
    assert await get_many([unknown, b.id]) == [b]
    assert await get_many([unknown, uuid.uuid4()]) == []
    assert await get_many([c.id, c.id]) == [c, c]
    assert await get_many([c.id]) == [c]
    assert await get_many([c.id, a.id, b.id]) == [c, a, b]
    assert await get_many((a.id, c.id)) == [a, c]  # any sequence
