"""The AccountRepository contract."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import msgspec
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


# -- many concurrent callers on the same ids ----------------------------------------------

CALLERS = 30


def account_with(
    number: int, owner: str = "owner-1", account_id: uuid.UUID | None = None
) -> CustomerAccount:
    return CustomerAccount(
        id=account_id or uuid.uuid4(),
        owner_id=owner,
        holder_name="Maria da Silva",
        holder_type=HolderType.INDIVIDUAL,
        holder_document="52998224725",
        branch="0001",
        number=format_account_number(number),
        kind=AccountKind.PAYMENT,
        status=AccountStatus.ACTIVE,
        created_at=T0,
    )


async def outcomes(calls: list[Awaitable[object]]) -> list[object]:
    return list(await asyncio.gather(*calls, return_exceptions=True))


async def test_concurrent_number_requests_never_share_a_number(
    account_repository: AccountRepository,
) -> None:
    numbers = await asyncio.gather(
        *(account_repository.next_account_number() for _ in range(CALLERS * 2))
    )
    assert len(set(numbers)) == CALLERS * 2


async def test_the_same_account_added_concurrently_is_stored_once(
    account_repository: AccountRepository,
) -> None:
    account = account_with(await account_repository.next_account_number())

    results = await outcomes([account_repository.add(account) for _ in range(CALLERS)])

    assert results.count(None) == 1
    assert all(isinstance(r, DuplicateAccount) for r in results if r is not None)
    assert await account_repository.get(account.id) == account
    assert await account_repository.list_by_owner(account.owner_id) == [account]


async def test_one_number_claimed_by_many_new_accounts_at_once_goes_to_exactly_one(
    account_repository: AccountRepository,
) -> None:
    number = await account_repository.next_account_number()
    contenders = [account_with(number, owner=f"owner-{n}") for n in range(CALLERS)]

    results = await outcomes([account_repository.add(a) for a in contenders])

    assert results.count(None) == 1
    assert all(isinstance(r, DuplicateAccount) for r in results if r is not None)
    winner = contenders[results.index(None)]
    assert await account_repository.get_by_number("0001", winner.number) == winner
    for loser in contenders:
        if loser is not winner:
            with pytest.raises(AccountNotFound):
                await account_repository.get(loser.id)
            assert await account_repository.list_by_owner(loser.owner_id) == []


async def test_one_owner_opening_many_accounts_at_once_gets_all_of_them(
    account_repository: AccountRepository,
) -> None:
    async def open_one() -> CustomerAccount:
        account = account_with(await account_repository.next_account_number(), owner="alice")
        await account_repository.add(account)
        return account

    opened = await asyncio.gather(*(open_one() for _ in range(CALLERS)))

    listed = await account_repository.list_by_owner("alice")
    assert sorted(a.id for a in listed) == sorted(a.id for a in opened)
    assert len({a.number for a in listed}) == CALLERS


async def test_concurrent_status_changes_leave_one_of_them_and_nothing_else_changed(
    account_repository: AccountRepository,
) -> None:
    account = await make_account(account_repository)
    wanted = [
        (AccountStatus.BLOCKED, AccountStatus.ACTIVE, AccountStatus.CLOSED)[n % 3]
        for n in range(CALLERS)
    ]

    returned = await asyncio.gather(
        *(account_repository.set_status(account.id, status) for status in wanted)
    )

    assert [r.status for r in returned] == wanted  # each caller sees its own change
    final = await account_repository.get(account.id)
    assert final.status in set(wanted)
    assert msgspec.structs.replace(final, status=account.status) == account


async def test_concurrent_reads_each_get_exactly_their_own_accounts(
    account_repository: AccountRepository,
) -> None:
    # the PostgreSQL repository sends concurrent reads together as one statement: every
    # caller must still get its own ids' accounts, in its order, and nothing for unknown ids
    stored = [await make_account(account_repository, f"owner-{n % 3}") for n in range(7)]
    by_id = {a.id: a for a in stored}
    unknown = uuid.uuid4()
    pool = [a.id for a in stored] + [unknown]
    asked = [
        [pool[(n + step * k) % len(pool)] for k in range(1 + n % 5)]
        for n, step in ((n, 1 + n % 3) for n in range(CALLERS * 3))
    ]
    asked = [list(dict.fromkeys(ids)) for ids in asked]  # no id twice in one call

    answers = await asyncio.gather(*(account_repository.get_many(ids) for ids in asked))

    for ids, answer in zip(asked, answers, strict=True):
        assert answer == [by_id[i] for i in ids if i in by_id]


async def test_a_status_change_is_seen_by_every_read_that_starts_after_it(
    account_repository: AccountRepository,
) -> None:
    account = await make_account(account_repository)
    other = await make_account(account_repository)

    async def block_then_read() -> list[CustomerAccount]:
        await account_repository.set_status(account.id, AccountStatus.BLOCKED)
        return await account_repository.get_many([account.id, other.id])

    # plain readers keep reads in flight while the change commits and its reader starts
    readers = [account_repository.get_many([other.id, account.id]) for _ in range(CALLERS)]
    *before, after = await asyncio.gather(*readers, block_then_read())

    assert [a.status for a in after] == [AccountStatus.BLOCKED, AccountStatus.ACTIVE]
    for answer in before:  # each saw one state or the other, never a mixture of accounts
        assert [a.id for a in answer] == [other.id, account.id]
        assert answer[0] == other
    (final,) = await account_repository.get_many([account.id])
    assert final.status is AccountStatus.BLOCKED
