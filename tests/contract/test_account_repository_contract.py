"""The AccountRepository contract."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from finbank_core.accounts.model import (
    AccountKind,
    AccountStatus,
    CustomerAccount,
    HolderType,
    format_account_number,
)
from finbank_core.accounts.ports import AccountRepository
from finbank_core.shared.errors import AccountNotFound, DuplicateAccount

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


async def make_account(
    repo: AccountRepository, owner: str = "owner-1", *, minutes: int = 0
) -> CustomerAccount:
    account = CustomerAccount(
        id=uuid.uuid4(),
        owner_id=owner,
        holder_name="Maria da Silva",
        holder_type=HolderType.INDIVIDUAL,
        holder_document="52998224725",
        branch="0001",
        number=format_account_number(await repo.next_account_number()),
        kind=AccountKind.PAYMENT,
        status=AccountStatus.ACTIVE,
        created_at=T0 + timedelta(minutes=minutes),
    )
    await repo.add(account)
    return account


async def test_added_account_can_be_read_back(account_repository: AccountRepository) -> None:
    account = await make_account(account_repository)
    assert await account_repository.get(account.id) == account
    assert await account_repository.get_by_number("0001", account.number) == account


async def test_unknown_account_is_not_found(account_repository: AccountRepository) -> None:
    with pytest.raises(AccountNotFound):
        await account_repository.get(uuid.uuid4())
    with pytest.raises(AccountNotFound):
        await account_repository.get_by_number("0001", "999-9")


async def test_account_numbers_are_never_reused(account_repository: AccountRepository) -> None:
    numbers = {await account_repository.next_account_number() for _ in range(50)}
    assert len(numbers) == 50


async def test_duplicate_id_or_number_is_refused(account_repository: AccountRepository) -> None:
    account = await make_account(account_repository)
    with pytest.raises(DuplicateAccount):
        await account_repository.add(account)
    same_number = CustomerAccount(
        **{f: getattr(account, f) for f in account.__struct_fields__ if f != "id"},
        id=uuid.uuid4(),
    )
    with pytest.raises(DuplicateAccount):
        await account_repository.add(same_number)


async def test_list_by_owner_returns_only_theirs_oldest_first(
    account_repository: AccountRepository,
) -> None:
    second = await make_account(account_repository, "alice", minutes=5)
    first = await make_account(account_repository, "alice", minutes=1)
    await make_account(account_repository, "bob")
    assert [a.id for a in await account_repository.list_by_owner("alice")] == [
        first.id,
        second.id,
    ]
    assert await account_repository.list_by_owner("carol") == []


async def test_status_changes_are_stored(account_repository: AccountRepository) -> None:
    account = await make_account(account_repository)
    blocked = await account_repository.set_status(account.id, AccountStatus.BLOCKED)
    assert blocked.status is AccountStatus.BLOCKED
    assert (await account_repository.get(account.id)).status is AccountStatus.BLOCKED
    with pytest.raises(AccountNotFound):
        await account_repository.set_status(uuid.uuid4(), AccountStatus.CLOSED)
