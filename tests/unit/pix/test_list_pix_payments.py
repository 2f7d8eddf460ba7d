"""``ListPixPayments``: one account's payments, filtered, paged by sealed cursors."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from finbank_adapters.memory import InMemoryAccountRepository
from finbank_adapters.memory.pix import InMemoryPixPaymentRepository
from finbank_core.accounts.model import AccountKind, AccountStatus, CustomerAccount, HolderType
from finbank_core.pix.payments import (
    Initiation,
    PaymentDirection,
    PaymentStatus,
    PixFlow,
    PixParty,
    PixPayment,
)
from finbank_core.pix.use_cases.list_payments import (
    CursorSeal,
    ListPixPayments,
    ListPixPaymentsQuery,
)
from finbank_core.shared.errors import AccountNotFound, InvalidInput
from finbank_core.shared.money import Money

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)
KEY = b"k" * 32


def account(
    owner: str, number: str, status: AccountStatus = AccountStatus.ACTIVE
) -> CustomerAccount:
    return CustomerAccount(
        id=uuid.uuid4(),
        owner_id=owner,
        holder_name=owner.title(),
        holder_type=HolderType.INDIVIDUAL,
        branch="0001",
        number=number,
        kind=AccountKind.PAYMENT,
        status=status,
        created_at=T0,
    )


def payment(n: int, payer: CustomerAccount, payee: CustomerAccount | None = None) -> PixPayment:
    return PixPayment(
        end_to_end_id=f"E99999999202601051200{n:011d}",
        flow=PixFlow.ON_US if payee else PixFlow.OUTGOING,
        status=PaymentStatus.PENDING,
        amount=Money(1_00 + n),
        payer=PixParty(ispb="99999999", account_id=payer.id, owner_id=payer.owner_id),
        payee=PixParty(
            ispb="99999999" if payee else "88888888",
            account_id=payee.id if payee else None,
            owner_id=payee.owner_id if payee else None,
        ),
        initiation=Initiation.KEY,
        created_at=T0 + timedelta(minutes=n),
    )


class World:
    def __init__(self) -> None:
        self.accounts = InMemoryAccountRepository()
        self.payments = InMemoryPixPaymentRepository()
        self.list = ListPixPayments(accounts=self.accounts, payments=self.payments, cursor_key=KEY)
        self.ana = account("ana", "1234567-8")
        self.bia = account("bia", "7654321-0", AccountStatus.CLOSED)

    async def setup(self) -> None:
        await self.accounts.add(self.ana)
        await self.accounts.add(self.bia)
        for n in range(5):
            stored = await self.payments.add(payment(n, self.ana))
            if n % 2 == 0:
                await self.payments.update(stored.settle(T0 + timedelta(hours=1)), stored.version)
        await self.payments.add(payment(7, self.bia, self.ana))

    def query(self, **fields: object) -> ListPixPaymentsQuery:
        return msgspec.convert(
            {"owner_id": "ana", "account_id": self.ana.id, **fields},
            ListPixPaymentsQuery,
            from_attributes=True,
        )


@pytest.fixture
async def world() -> World:
    w = World()
    await w.setup()
    return w


async def all_pages(world: World, **fields: object) -> list[int]:
    amounts: list[int] = []
    cursor = None
    while True:
        page = await world.list(world.query(cursor=cursor, **fields))
        amounts.extend(p.amount.cents - 1_00 for p in page.items)
        if page.next_cursor is None:
            return amounts
        cursor = page.next_cursor


async def test_pages_newest_first_with_filters(world: World) -> None:
    assert await all_pages(world, limit=2) == [7, 4, 3, 2, 1, 0]
    assert await all_pages(world, limit=2, statuses=frozenset({PaymentStatus.SETTLED})) == [
        4,
        2,
        0,
    ]
    assert await all_pages(world, limit=1, direction=PaymentDirection.RECEIVED) == [7]
    sent_pending = await all_pages(
        world, limit=1, direction=PaymentDirection.SENT, statuses=frozenset({PaymentStatus.PENDING})
    )
    assert sent_pending == [3, 1]
    window = await all_pages(
        world, since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=4)
    )
    assert window == [3, 2, 1]  # since inclusive, until exclusive


async def test_someone_elses_account_is_not_found(world: World) -> None:
    with pytest.raises(AccountNotFound):
        await world.list(ListPixPaymentsQuery(owner_id="mallory", account_id=world.ana.id))
    with pytest.raises(AccountNotFound):
        await world.list(ListPixPaymentsQuery(owner_id="ana", account_id=uuid.uuid4()))
    closed = await world.list(ListPixPaymentsQuery(owner_id="bia", account_id=world.bia.id))
    assert [p.amount.cents for p in closed.items] == [1_07]  # a closed account's history


def tampered(cursor: str) -> list[str]:
    body, _, tag = cursor.partition(".")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    forged = base64.urlsafe_b64encode(raw.replace(b"@", b"@9")).decode().rstrip("=")
    return [
        f"{forged}.{tag}",  # the store's cursor changed, the tag kept
        f"{body}.{tag[:-1]}{'A' if tag[-1] != 'A' else 'B'}",  # the tag's last character
        f"{body}.{'A' if tag[0] != 'A' else 'B'}{tag[1:]}",  # the tag's first character
        f"{body[:-1]}{'A' if body[-1] != 'A' else 'B'}.{tag}",  # the body's last character
        body,  # no tag
        f"{body}.",
        ".",
        "not base64!.x",
        "é.é",
        "0",
    ]


async def test_a_tampered_or_foreign_cursor_is_invalid_input_naming_the_cursor(
    world: World,
) -> None:
    cursor = (await world.list(world.query(limit=1))).next_cursor
    assert cursor is not None
    for bad in tampered(cursor):
        with pytest.raises(InvalidInput) as raised:
            await world.list(world.query(limit=1, cursor=bad))
        assert raised.value.details == {"field": "cursor"}, bad
    # the same cursor with other filters, or for another customer, is another listing
    for other in (
        world.query(limit=1, cursor=cursor, direction=PaymentDirection.SENT),
        world.query(limit=1, cursor=cursor, since=T0),
        world.query(limit=1, cursor=cursor, owner_id="bia", account_id=world.bia.id),
    ):
        with pytest.raises(InvalidInput) as raised:
            await world.list(other)
        assert raised.value.details == {"field": "cursor"}
    # a cursor sealed under another key is refused too
    other_bank = ListPixPayments(
        accounts=world.accounts, payments=world.payments, cursor_key=b"x" * 32
    )
    with pytest.raises(InvalidInput):
        await other_bank(world.query(limit=1, cursor=cursor))
    # while the genuine one goes on, page size may change
    page = await world.list(world.query(limit=5, cursor=cursor))
    assert [p.amount.cents - 1_00 for p in page.items] == [4, 3, 2, 1, 0]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"since": T0, "until": T0}, "until"),
        ({"since": T0 + timedelta(seconds=1), "until": T0}, "until"),
        ({"since": T0.replace(tzinfo=None)}, "since"),  # no offset
        ({"statuses": frozenset()}, "status"),
    ],
)
async def test_bad_queries_name_their_field(
    world: World, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await world.list(world.query(**fields))
    assert raised.value.details == {"field": field}


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        ListPixPayments(
            accounts=InMemoryAccountRepository(),
            payments=InMemoryPixPaymentRepository(),
            cursor_key=b"short",
        )


def test_every_other_spelling_of_a_sealed_cursor_is_refused() -> None:
    """Base64 ignores a last character's low bits: only the canonical spelling is accepted."""
    seal = CursorSeal(KEY)
    for listing in (b"a", b"listing-2", b"x" * 40):
        sealed = seal.seal("account:1@20", listing)
        assert seal.open(sealed, listing) == "account:1@20"
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        for position in (0, len(sealed) - 1, sealed.index(".") - 1, sealed.index(".") + 1):
            for char in alphabet:
                if char == sealed[position]:
                    continue
                altered = sealed[:position] + char + sealed[position + 1 :]
                with pytest.raises(InvalidInput):
                    seal.open(altered, listing)
