"""Key registration rules and charges (cob) paid by static and dynamic BR Codes."""

from __future__ import annotations

import pytest
from tests.pix_support import BASE_URL, PEER_ISPB, PixWorld, build_world

from finbank_core.accounts.model import CustomerAccount, HolderType
from finbank_core.pix.charges import ChargeStatus
from finbank_core.pix.codes.brcode import BRCode
from finbank_core.pix.codes.keys import PixKeyType
from finbank_core.pix.errors import (
    ChargeNotFound,
    ChargeNotPayable,
    InvalidPixKey,
    PixKeyAlreadyRegistered,
    PixKeyLimitReached,
    PixKeyNotFound,
    PixKeyNotOwned,
)
from finbank_core.pix.events import CHARGE_CONCLUDED
from finbank_core.pix.payments import Initiation, PaymentStatus
from finbank_core.pix.use_cases import (
    CreateChargeCommand,
    DeletePixKeyCommand,
    GetChargeQuery,
    ListPixKeysQuery,
    RegisterPixKeyCommand,
    SendPixCommand,
)
from finbank_core.shared.errors import AccountNotFound, InvalidInput
from finbank_core.shared.money import Money


@pytest.fixture
async def world() -> PixWorld:
    return await build_world()


def key_cmd(
    owner: str, account: object, key_type: PixKeyType, key: str | None = None
) -> RegisterPixKeyCommand:
    return RegisterPixKeyCommand(owner_id=owner, account_id=account, key_type=key_type, key=key)  # type: ignore[arg-type]


async def test_individual_accounts_hold_five_keys_and_companies_twenty(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana")
    for _ in range(5):
        await world.evp(ana)
    with pytest.raises(PixKeyLimitReached):
        await world.evp(ana)
    shop = await world.open("shop", "Loja", holder_type=HolderType.COMPANY)
    for _ in range(20):
        await world.evp(shop)
    with pytest.raises(PixKeyLimitReached):
        await world.evp(shop)


async def test_cpf_key_must_be_the_holders_document(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", document="529.982.247-25")
    bia = await world.open("bia", "Bia", document="11144477735")
    registered = await world.register_key(key_cmd("ana", ana.id, PixKeyType.CPF, "529.982.247-25"))
    assert registered.key.value == "52998224725"
    with pytest.raises(PixKeyNotOwned):
        await world.register_key(key_cmd("bia", bia.id, PixKeyType.CPF, "52998224725"))
    with pytest.raises(PixKeyAlreadyRegistered):
        await world.register_key(key_cmd("ana", ana.id, PixKeyType.CPF, "52998224725"))


async def test_evp_is_issued_not_chosen_and_keys_are_validated(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana")
    with pytest.raises(InvalidPixKey):
        await world.register_key(
            key_cmd("ana", ana.id, PixKeyType.EVP, "123e4567-e12b-12d1-a456-426655440000")
        )
    with pytest.raises(InvalidPixKey):
        await world.register_key(key_cmd("ana", ana.id, PixKeyType.PHONE, "11987654321"))
    phone = await world.register_key(key_cmd("ana", ana.id, PixKeyType.PHONE, "+55 11 98765-4321"))
    assert phone.key.value == "+5511987654321"


async def test_keys_of_the_peer_bank_cannot_be_taken(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana")
    with pytest.raises(PixKeyAlreadyRegistered):
        await world.register_key(
            key_cmd("ana", ana.id, PixKeyType.EMAIL, "carla@bancosimulado.example")
        )


async def test_keys_are_registered_listed_and_deleted_by_their_owner_only(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana")
    other = await world.open("ana", "Ana 2")
    bia = await world.open("bia", "Bia")
    first = await world.register_key(key_cmd("ana", ana.id, PixKeyType.EMAIL, "Ana@Example.com"))
    await world.evp(other)
    with pytest.raises(AccountNotFound):
        await world.register_key(key_cmd("bia", ana.id, PixKeyType.EVP))
    assert len(await world.list_keys(ListPixKeysQuery(owner_id="ana"))) == 2
    assert [
        k.id for k in await world.list_keys(ListPixKeysQuery(owner_id="ana", account_id=ana.id))
    ] == [first.id]
    with pytest.raises(AccountNotFound):
        await world.list_keys(ListPixKeysQuery(owner_id="bia", account_id=ana.id))
    assert await world.list_keys(ListPixKeysQuery(owner_id="bia", account_id=bia.id)) == []
    with pytest.raises(PixKeyNotFound):
        await world.delete_key(DeletePixKeyCommand(owner_id="bia", key_id=first.id))
    await world.delete_key(DeletePixKeyCommand(owner_id="ana", key_id=first.id))
    with pytest.raises(PixKeyNotFound):
        await world.directory.lookup(first.key)


async def charge_of(world: PixWorld, cents: int = 25_00, **extra: object) -> tuple[str, str, str]:
    bia = await world.open("bia", "Bia Comércio", deposit=None)
    key = await world.evp(bia)
    view = await world.create_charge(
        CreateChargeCommand(
            owner_id="bia",
            account_id=bia.id,
            pix_key=key,
            amount=Money(cents),
            **extra,  # type: ignore[arg-type]
        )
    )
    return view.charge.txid, view.dynamic_brcode, view.static_brcode


async def test_charge_codes_parse_back_to_what_they_promise(world: PixWorld) -> None:
    txid, dynamic, static = await charge_of(world)
    dyn = BRCode.parse(dynamic)
    assert dyn.is_dynamic
    assert dyn.point_of_initiation == "12"
    assert dyn.location_url is not None
    assert dyn.location_url.startswith(f"{BASE_URL}/cob/")
    assert dyn.merchant_name == "Bia Comercio"  # folded to ASCII
    stat = BRCode.parse(static)
    assert (stat.amount, stat.txid) == (Money(25_00), txid[:25])
    assert 26 <= len(txid) <= 35


async def test_charge_paid_by_dynamic_code_is_concluded(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    txid, dynamic, _ = await charge_of(world)
    result = await world.send(
        SendPixCommand(owner_id="ana", account_id=ana.id, idempotency_key="c", br_code=dynamic)
    )
    assert result.payment.initiation is Initiation.DYNAMIC_QR
    assert (result.payment.txid, result.payment.amount) == (txid, Money(25_00))
    charge = (await world.get_charge(GetChargeQuery(owner_id="bia", txid=txid))).charge
    assert (charge.status, charge.end_to_end_id) == (
        ChargeStatus.CONCLUIDA,
        result.payment.end_to_end_id,
    )
    assert len(world.publisher.of_type(CHARGE_CONCLUDED)) == 1
    with pytest.raises(ChargeNotPayable):  # single use
        await world.send(
            SendPixCommand(owner_id="ana", account_id=ana.id, idempotency_key="c2", br_code=dynamic)
        )
    await world.assert_ledger_balanced()


async def test_charge_paid_by_static_code_is_concluded_through_its_short_txid(
    world: PixWorld,
) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    txid, _, static = await charge_of(world)
    with pytest.raises(InvalidInput):  # the code fixes the amount
        await world.send(
            SendPixCommand(
                owner_id="ana",
                account_id=ana.id,
                idempotency_key="s0",
                br_code=static,
                amount=Money(1),
            )
        )
    result = await world.send(
        SendPixCommand(owner_id="ana", account_id=ana.id, idempotency_key="s", br_code=static)
    )
    assert result.payment.initiation is Initiation.STATIC_QR
    assert (
        await world.get_charge(GetChargeQuery(owner_id="bia", txid=txid))
    ).charge.status is ChargeStatus.CONCLUIDA


async def test_incoming_payment_from_another_bank_concludes_the_charge(world: PixWorld) -> None:
    txid, _, _ = await charge_of(world, 30_00)
    [bia] = await world.accounts.list_by_owner("bia")
    wrong_amount = world.spi.originate_payment(
        from_ispb=PEER_ISPB,
        from_account_number="123456-7",
        amount=Money(29_99),
        to_branch=bia.branch,
        to_account_number=bia.number,
        txid=txid,
    )
    await world.receive(wrong_amount)
    assert (
        await world.get_charge(GetChargeQuery(owner_id="bia", txid=txid))
    ).charge.status is ChargeStatus.ATIVA
    right = world.spi.originate_payment(
        from_ispb=PEER_ISPB,
        from_account_number="123456-7",
        amount=Money(30_00),
        to_branch=bia.branch,
        to_account_number=bia.number,
        txid=txid,
    )
    received = await world.receive(right)
    charge = (await world.get_charge(GetChargeQuery(owner_id="bia", txid=txid))).charge
    assert (charge.status, charge.end_to_end_id) == (
        ChargeStatus.CONCLUIDA,
        received.payment.end_to_end_id,
    )


async def test_every_incoming_payment_is_credited_and_only_the_first_match_concludes(
    world: PixWorld,
) -> None:
    """The network settled them before they arrive: a second payment of a concluded
    charge, one of another amount and one after the expiry are credited all the same,
    and leave the charge as the first matching payment left it (docs/pix.md)."""

    async def incoming(account: CustomerAccount, txid: str, cents: int) -> str:
        order = world.spi.originate_payment(
            from_ispb=PEER_ISPB,
            from_account_number="123456-7",
            amount=Money(cents),
            to_branch=account.branch,
            to_account_number=account.number,
            txid=txid,
        )
        return (await world.receive(order)).payment.end_to_end_id

    async def charge(txid: str) -> tuple[ChargeStatus, str | None]:
        found = (await world.get_charge(GetChargeQuery(owner_id="bia", txid=txid))).charge
        return found.status, found.end_to_end_id

    txid, _, _ = await charge_of(world, 30_00, expires_in_seconds=600)
    [bia] = await world.accounts.list_by_owner("bia")
    await incoming(bia, txid, 29_99)
    assert await charge(txid) == (ChargeStatus.ATIVA, None)
    first = await incoming(bia, txid, 30_00)
    await incoming(bia, txid, 30_00)
    assert await charge(txid) == (ChargeStatus.CONCLUIDA, first)
    assert await world.posted(bia.id) == 29_99 + 30_00 + 30_00

    late_txid, _, _ = await charge_of(world, 30_00, expires_in_seconds=60)  # another account
    [late] = [a for a in await world.accounts.list_by_owner("bia") if a.id != bia.id]
    world.clock.advance(60)
    await incoming(late, late_txid, 30_00)
    assert await charge(late_txid) == (ChargeStatus.ATIVA, None)  # expired: not concluded
    assert await world.posted(late.id) == 30_00
    await world.assert_ledger_balanced()


async def test_expired_charge_cannot_be_paid(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    _, dynamic, _ = await charge_of(world, expires_in_seconds=60)
    world.clock.advance(60)
    with pytest.raises(ChargeNotPayable):
        await world.send(
            SendPixCommand(owner_id="ana", account_id=ana.id, idempotency_key="e", br_code=dynamic)
        )
    assert await world.posted(ana.id) == 100_00


async def test_charges_are_private_and_need_a_key_of_the_account(world: PixWorld) -> None:
    txid, _, _ = await charge_of(world)
    with pytest.raises(ChargeNotFound):
        await world.get_charge(GetChargeQuery(owner_id="ana", txid=txid))
    ana = await world.open("ana", "Ana")
    bia_key = (await world.list_keys(ListPixKeysQuery(owner_id="bia")))[0].key.value
    with pytest.raises(PixKeyNotFound):
        await world.create_charge(
            CreateChargeCommand(owner_id="ana", account_id=ana.id, pix_key=bia_key, amount=Money(1))
        )


async def test_payment_by_static_code_without_amount_takes_the_payers_amount(
    world: PixWorld,
) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    bia = await world.open("bia", "Bia")
    code = BRCode.static(
        key=await world.evp(bia), merchant_name="Bia", merchant_city="RIO"
    ).encode()
    with pytest.raises(InvalidInput):
        await world.send(
            SendPixCommand(owner_id="ana", account_id=ana.id, idempotency_key="a", br_code=code)
        )
    done = await world.send(
        SendPixCommand(
            owner_id="ana", account_id=ana.id, idempotency_key="b", br_code=code, amount=Money(7_00)
        )
    )
    assert done.payment.status is PaymentStatus.SETTLED
    assert done.payment.txid is None
