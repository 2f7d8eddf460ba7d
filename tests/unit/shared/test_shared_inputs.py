"""The rules every context's commands share live in one place and answer alike everywhere.

``IdempotencyKey`` (1 to 255 characters) and ``Memo`` (at most 140) are
checked by ``finbank_core.shared.inputs`` for accounts and PIX alike, and by
msgspec when a command is decoded; "the caller's active account" is
``finbank_core.accounts.access.owned_active_account`` for every use case that
acts on a customer's account. A refusal is ``InvalidInput`` naming the field,
never echoing the value.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
from tests.pix_support import PixWorld, build_world

from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_core.accounts import (
    AccountStatus,
    Deposit,
    GetBalance,
    GetBalanceQuery,
    InternalTransfer,
    InternalTransferCommand,
    MoveCashCommand,
)
from finbank_core.pix import (
    CreateChargeCommand,
    PixKeyType,
    RefundPixCommand,
    RegisterPixKeyCommand,
    SendPixCommand,
)
from finbank_core.pix.use_cases.send import (
    MAX_ACCOUNT_NUMBER_LENGTH,
    MAX_PARTY_NAME_LENGTH,
    AccountData,
)
from finbank_core.shared import (
    MAX_DEVICE_ID_LENGTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_MEMO_LENGTH,
    check_device_id,
    check_idempotency_key,
    check_memo,
    find_unstorable,
    fingerprint,
)
from finbank_core.shared.errors import AccountNotActive, AccountNotFound, InvalidInput
from finbank_core.shared.money import Money

LONG_KEY = "k" * (MAX_IDEMPOTENCY_KEY_LENGTH + 1)
LONG_MEMO = "m" * (MAX_MEMO_LENGTH + 1)
#: text no backend stores: PostgreSQL's text refuses a NUL; an unpaired surrogate has no
#: UTF-8 encoding (a JSON "\ud800" escape or surrogateescape decoding makes one)
UNSTORABLE = {"nul": "k\x00ey", "surrogate": "k\ud800ey", "low surrogate": "\udfffkey"}


@pytest.fixture
async def world() -> PixWorld:
    return await build_world()


def test_the_limits_are_the_documented_ones() -> None:
    assert (MAX_IDEMPOTENCY_KEY_LENGTH, MAX_MEMO_LENGTH) == (255, 140)
    assert check_idempotency_key("k" * 255) == "k" * 255
    assert check_memo("m" * 140) == "m" * 140
    assert check_memo(None) is None
    for bad in ("", LONG_KEY):
        with pytest.raises(InvalidInput) as refused:
            check_idempotency_key(bad)
        assert refused.value.details == {"field": "idempotency_key"}
        assert bad not in refused.value.message or not bad
    with pytest.raises(InvalidInput) as refused:
        check_memo(LONG_MEMO)
    assert refused.value.details == {"field": "description"}
    assert LONG_MEMO not in refused.value.message


@pytest.mark.parametrize(
    ("command", "fields"),
    [
        (
            MoveCashCommand,
            {"account_id": str(uuid.uuid4()), "amount": {"cents": 1}, "operator_id": "op"},
        ),
        (
            InternalTransferCommand,
            {
                "owner_id": "ana",
                "from_account_id": str(uuid.uuid4()),
                "to_account_id": str(uuid.uuid4()),
                "amount": {"cents": 1},
            },
        ),
        (SendPixCommand, {"owner_id": "ana", "account_id": str(uuid.uuid4())}),
    ],
)
def test_decoding_a_command_checks_the_shared_fields(
    command: type[msgspec.Struct], fields: dict[str, object]
) -> None:
    ok = {**fields, "idempotency_key": "k" * 255, "description": "m" * 140}
    msgspec.convert(ok, command)
    for bad in ({"idempotency_key": ""}, {"idempotency_key": LONG_KEY}, {"description": LONG_MEMO}):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert({**ok, **bad}, command)


def test_a_refund_id_and_a_charge_description_follow_the_same_rules() -> None:
    base = {"owner_id": "ana", "end_to_end_id": "E1", "amount": {"cents": 1}}
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**base, "client_refund_id": LONG_KEY}, RefundPixCommand)
    charge = {
        "owner_id": "ana",
        "account_id": str(uuid.uuid4()),
        "pix_key": "k",
        "amount": {"cents": 1},
    }
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**charge, "description": LONG_MEMO}, CreateChargeCommand)


@pytest.mark.parametrize(
    ("bad_key", "bad_memo"),
    [(LONG_KEY, LONG_MEMO), *((bad, bad) for bad in UNSTORABLE.values())],
    ids=["too long", *UNSTORABLE],
)
async def test_accounts_and_pix_refuse_a_bad_key_and_memo_alike(
    world: PixWorld, bad_key: str, bad_memo: str
) -> None:
    """Too long, or holding what no backend stores as text (refused by the use case before
    any adapter: the in-memory ones would keep what PostgreSQL refuses, and a key's
    transfer id is derived from its UTF-8 bytes)."""
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    bruno = await world.open("bruno", "Bruno")
    key = await world.evp(bruno)
    deposit = Deposit(world.ledger, world.accounts, world.clock, world.ids)
    transfer = InternalTransfer(world.ledger, world.accounts, world.clock, world.ids)

    def internal(idempotency_key: str, description: str | None = None) -> Any:
        return transfer(
            InternalTransferCommand(
                owner_id="ana",
                from_account_id=ana.id,
                to_account_id=bruno.id,
                amount=Money(1),
                idempotency_key=idempotency_key,
                description=description,
            )
        )

    def pix(idempotency_key: str, description: str | None = None) -> Any:
        return world.send(
            SendPixCommand(
                owner_id="ana",
                account_id=ana.id,
                idempotency_key=idempotency_key,
                amount=Money(1),
                key=key,
                description=description,
            )
        )

    refusals = []
    for call in (
        deposit(
            MoveCashCommand(
                account_id=ana.id, amount=Money(1), idempotency_key=bad_key, operator_id="op"
            )
        ),
        pix(bad_key),
        internal(bad_key),
        internal("t1", bad_memo),
        pix("p1", bad_memo),
    ):
        with pytest.raises(InvalidInput) as refused:
            await call
        refusals.append((refused.value.code, refused.value.details, refused.value.message))
    assert [r[1] for r in refusals] == [{"field": "idempotency_key"}] * 3 + [
        {"field": "description"}
    ] * 2
    assert refusals[0] == refusals[1] == refusals[2]  # the same answer from both contexts
    assert refusals[3] == refusals[4]
    assert all(bad_key not in m and bad_memo not in m for _, _, m in refusals)
    # nothing moved
    assert await world.posted(ana.id) == 100_00
    assert await world.posted(bruno.id) == 0
    # a refund by the receiver of a settled payment: its refund id and its memo
    paid = await world.send(
        SendPixCommand(
            owner_id="ana", account_id=ana.id, idempotency_key="ok", amount=Money(10_00), key=key
        )
    )
    refund = world.refund_with(world.spi)
    for fields_given, field in (
        ({"client_refund_id": bad_key}, "client_refund_id"),
        ({"client_refund_id": "r1", "description": bad_memo}, "description"),
    ):
        with pytest.raises(InvalidInput) as refused:
            await refund(
                RefundPixCommand(
                    owner_id="bruno",
                    end_to_end_id=paid.payment.end_to_end_id,
                    amount=Money(1_00),
                    **fields_given,  # type: ignore[arg-type]
                )
            )
        assert refused.value.details == {"field": field}
    assert (await world.payments.get(paid.payment.end_to_end_id)).refunds == ()
    assert await world.posted(bruno.id) == 10_00


async def test_someone_elses_or_an_inactive_account_is_refused_alike(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    register = RegisterPixKeyCommand(owner_id="bruno", account_id=ana.id, key_type=PixKeyType.EVP)
    with pytest.raises(AccountNotFound):
        await world.register_key(register)
    with pytest.raises(AccountNotFound):
        await GetBalance(world.ledger, world.accounts)(
            GetBalanceQuery(owner_id="bruno", account_id=ana.id)
        )
    with pytest.raises(AccountNotFound):
        await world.send(
            SendPixCommand(
                owner_id="bruno",
                account_id=ana.id,
                idempotency_key="x",
                amount=Money(1),
                key="carla@bancosimulado.example",
            )
        )

    await world.accounts.set_status(ana.id, AccountStatus.BLOCKED)
    with pytest.raises(AccountNotActive):
        await world.register_key(
            RegisterPixKeyCommand(owner_id="ana", account_id=ana.id, key_type=PixKeyType.EVP)
        )
    with pytest.raises(AccountNotActive):
        await world.send(
            SendPixCommand(
                owner_id="ana",
                account_id=ana.id,
                idempotency_key="y",
                amount=Money(1),
                key="carla@bancosimulado.example",
            )
        )
    # the balance of one's own blocked account stays readable
    balance = await GetBalance(world.ledger, world.accounts)(
        GetBalanceQuery(owner_id="ana", account_id=ana.id)
    )
    assert balance.posted == Money(100_00)


@pytest.mark.parametrize("bad", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
def test_a_key_or_memo_no_backend_can_store_is_refused_naming_the_field(bad: str) -> None:
    for check, field in ((check_idempotency_key, "idempotency_key"), (check_memo, "description")):
        with pytest.raises(InvalidInput) as refused:
            check(bad)
        assert refused.value.details == {"field": field}
        assert bad not in refused.value.message
    with pytest.raises(InvalidInput) as refused:
        check_idempotency_key(bad, field="client_refund_id", name="refund id")
    assert refused.value.details == {"field": "client_refund_id"}
    # characters outside the BMP are one code point each, not a pair: they stay
    assert check_idempotency_key("chave-😀") == "chave-😀"
    assert check_memo("almoço 😀") == "almoço 😀"


@pytest.mark.parametrize("bad", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
async def test_an_unstorable_owner_or_operator_is_refused_before_anything_is_written(
    world: PixWorld, bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An owner's or an operator's id goes into derived ids (UTF-8) and stored rows: a
    core refusal naming the field, and an account is not opened halfway (its ledger
    account created, then its record refused by PostgreSQL)."""
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    bruno = await world.open("bruno", "Bruno")
    key = await world.evp(bruno)
    ledger_accounts: list[object] = []
    create_accounts = world.ledger.create_accounts

    async def counting(accounts: Any) -> Any:
        ledger_accounts.extend(accounts)
        return await create_accounts(accounts)

    monkeypatch.setattr(world.ledger, "create_accounts", counting)
    with pytest.raises(InvalidInput) as refused:
        await world.open(bad, "Bia")
    assert refused.value.details == {"field": "owner_id"}
    assert ledger_accounts == []
    deposit = Deposit(world.ledger, world.accounts, world.clock, world.ids)
    with pytest.raises(InvalidInput) as refused:
        await deposit(
            MoveCashCommand(
                account_id=ana.id, amount=Money(1), idempotency_key="d", operator_id=bad
            )
        )
    assert refused.value.details == {"field": "operator_id"}
    transfer = InternalTransfer(world.ledger, world.accounts, world.clock, world.ids)
    for call in (
        transfer(
            InternalTransferCommand(
                owner_id=bad,
                from_account_id=ana.id,
                to_account_id=bruno.id,
                amount=Money(1),
                idempotency_key="t",
            )
        ),
        world.send(
            SendPixCommand(
                owner_id=bad, account_id=ana.id, idempotency_key="p", amount=Money(1), key=key
            )
        ),
        world.refund_with(world.spi)(
            RefundPixCommand(
                owner_id=bad, end_to_end_id="E1", amount=Money(1), client_refund_id="r"
            )
        ),
    ):
        with pytest.raises(InvalidInput) as refused:
            await call
        assert refused.value.details == {"field": "owner_id"}
    assert await world.posted(ana.id) == 100_00


# -- the other free text of a PIX payment ------------------------------------------------------

PEER_ISPB = "88888888"  # tests.pix_support's peer bank
PEER_ACCOUNT = {"ispb": PEER_ISPB, "branch": "0001", "account_number": "123456-7"}
PEER_DOCUMENT = "52998224725"


async def _nothing_was_written(world: PixWorld, account_id: uuid.UUID, key: str) -> None:
    """No money moved or reserved, no record under ``key``, no device remembered."""
    assert await world.posted(account_id) == 100_00
    assert await world.available(account_id) == 100_00
    assert await world.payments.get_by_idempotency_key("ana", key) is None
    assert await world.devices.list_by_owner("ana") == []


@pytest.mark.parametrize(
    "bad",
    [*UNSTORABLE.values(), "", "d" * (MAX_DEVICE_ID_LENGTH + 1)],
    ids=[*UNSTORABLE, "empty", "too long"],
)
async def test_a_bad_device_id_is_refused_before_anything_is_reserved(
    world: PixWorld, bad: str
) -> None:
    """The device id is stored (the payment's record, the device registry, the new-device
    usage counters' period): checked by the use case as the HTTP header is (1 to 128
    characters), and storable on every backend. A surrogate used to escape as a raw
    ``UnicodeEncodeError`` from the request's fingerprint, and memory kept a NUL that
    PostgreSQL refused with no field named."""
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    command = SendPixCommand(
        owner_id="ana",
        account_id=ana.id,
        idempotency_key="p",
        amount=Money(1),
        key=PEER_KEY_EMAIL,
        device_id=bad,
    )
    with pytest.raises(InvalidInput) as refused:
        await world.send(command)
    assert refused.value.details == {"field": "device_id"}
    assert not bad or bad not in refused.value.message
    await _nothing_was_written(world, ana.id, "p")
    # the longest one is a device like any other
    longest = "d" * MAX_DEVICE_ID_LENGTH
    sent = await world.send(msgspec.structs.replace(command, device_id=longest))
    assert sent.payment.device_id == longest
    assert [d for d, _ in await world.devices.list_by_owner("ana")] == [longest]
    assert check_device_id(None) is None


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"key": "\ud800@example.com"}, "key"),
        ({"br_code": "0002\ud80001"}, "br_code"),
        ({"account_data": {"name": "Ana \udfff"}}, "account_data.name"),
        ({"account_data": {"ispb": "8888888\ud800"}}, "account_data.ispb"),
        ({"account_data": {"document": "5299822472\ud800"}}, "account_data.document"),
        ({"account_data": {"branch": "00\ud800"}}, "account_data.branch"),
        ({"account_data": {"account_number": "1\ud800"}}, "account_data.account_number"),
        ({"account_data": {"name": "Ana\x00"}}, "account_data.name"),
        ({"account_data": {"name": "n" * (MAX_PARTY_NAME_LENGTH + 1)}}, "account_data.name"),
        ({"account_data": {"account_number": ""}}, "account_data.account_number"),
        ({"account_data": {"account_number": "1\x002"}}, "account_data.account_number"),
        (
            {"account_data": {"account_number": "1" * (MAX_ACCOUNT_NUMBER_LENGTH + 1)}},
            "account_data.account_number",
        ),
        ({"account_data": {"branch": "12345"}}, "account_data.branch"),
        ({"account_data": {"branch": "1a"}}, "account_data.branch"),
        ({"account_data": {"branch": ""}}, "account_data.branch"),
        ({"account_data": {"branch": "\u0661"}}, "account_data.branch"),  # an Arabic-Indic 1
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_the_recipients_text_is_refused_naming_its_field_before_anything_is_reserved(
    world: PixWorld, given: dict[str, Any], field: str
) -> None:
    """A surrogate anywhere in the command is named by the fingerprint's check (it was a
    raw ``UnicodeEncodeError``); a manual recipient's branch, account number and name
    follow the HTTP schema's limits in the core too (they were unchecked: memory kept a
    10,000-character name or a NUL that PostgreSQL refused with no field named)."""
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    fields: dict[str, Any] = dict(given)
    if "account_data" in fields:
        fields["account_data"] = AccountData(
            **{**PEER_ACCOUNT, "document": PEER_DOCUMENT, **fields["account_data"]}
        )
    with pytest.raises(InvalidInput) as refused:
        await world.send(
            SendPixCommand(
                owner_id="ana", account_id=ana.id, idempotency_key="p", amount=Money(1), **fields
            )
        )
    assert refused.value.details == {"field": field}
    await _nothing_was_written(world, ana.id, "p")


async def test_a_manual_recipient_at_every_limit_is_paid(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    longest = AccountData(
        ispb=PEER_ISPB,
        branch="9",
        account_number="1" * MAX_ACCOUNT_NUMBER_LENGTH,
        document=PEER_DOCUMENT,
        name="n" * MAX_PARTY_NAME_LENGTH,
    )
    for key, data in (
        ("a", longest),
        ("b", msgspec.structs.replace(longest, branch="1234", account_number="7", name=None)),
    ):
        sent = await world.send(
            SendPixCommand(
                owner_id="ana",
                account_id=ana.id,
                idempotency_key=key,
                amount=Money(1),
                account_data=data,
            )
        )
        payee = sent.payment.payee
        assert (payee.branch, payee.account_number, payee.name) == (
            data.branch,
            data.account_number,
            data.name,
        )


def test_find_unstorable_names_the_first_bad_text_by_its_path() -> None:
    class Inner(msgspec.Struct):
        name: str
        tags: list[str]

    class Outer(msgspec.Struct):
        ok: str
        inner: Inner
        many: tuple[Inner, ...] = ()

    good = Inner(name="n", tags=["a", "b"])
    assert find_unstorable(Outer(ok="x", inner=good)) is None
    assert find_unstorable(Outer(ok="\x00", inner=good)) == ("ok", "NUL characters")
    bad = Inner(name="n", tags=["a", "\udc80"])
    assert find_unstorable(Outer(ok="x", inner=bad)) == (
        "inner.tags[1]",
        "unpaired surrogate characters",
    )
    assert find_unstorable(Outer(ok="x", inner=good, many=(good, bad))) == (
        "many[1].tags[1]",
        "unpaired surrogate characters",
    )
    with pytest.raises(InvalidInput) as refused:
        fingerprint(Outer(ok="x", inner=good, many=(good, bad)))
    assert refused.value.details == {"field": "many[1].tags[1]"}
    assert fingerprint(Outer(ok="x", inner=good)) == fingerprint(Outer(ok="x", inner=good))
