"""Paying reads BR Codes tolerantly: pasted codes pay; what cannot be sent is refused."""

from __future__ import annotations

import pytest
from tests.pix_support import PixWorld, build_world

from finbank_core.pix import BRCode, InvalidBRCode
from finbank_core.pix.codes.crc import crc16_hex
from finbank_core.pix.payments import Initiation, PaymentStatus
from finbank_core.pix.use_cases import SendPixCommand
from finbank_core.shared.money import Money


@pytest.fixture
async def world() -> PixWorld:
    return await build_world()


def as_pasted(code: str, city: str) -> str:
    """``code`` as another bank's app writes it and a person pastes it."""
    body = code[:-8].replace(f"60{len(city):02d}{city}", "6008BRASÍLIA") + "6304"
    return "  " + body + crc16_hex(body.encode()).lower() + "\n"


async def test_a_pasted_static_code_with_accents_and_a_lowercase_crc_pays(
    world: PixWorld,
) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    bia = await world.open("bia", "Bia")
    code = BRCode.static(
        key=await world.evp(bia),
        merchant_name="Bia",
        merchant_city="BRASILIA",
        amount=Money(12_34),
        txid="PEDIDO7",
    ).encode()
    with pytest.raises(InvalidBRCode):
        BRCode.parse(as_pasted(code, "BRASILIA"))  # what paying used to do
    done = await world.send(
        SendPixCommand(
            owner_id="ana",
            account_id=ana.id,
            idempotency_key="p",
            br_code=as_pasted(code, "BRASILIA"),
        )
    )
    assert done.payment.initiation is Initiation.STATIC_QR
    assert (done.payment.status, done.payment.amount, done.payment.txid) == (
        PaymentStatus.SETTLED,
        Money(12_34),
        "PEDIDO7",
    )
    assert await world.posted(bia.id) == 12_34
    await world.assert_ledger_balanced()


def with_crc(body: str) -> str:
    body += "6304"
    return body + crc16_hex(body.encode())


async def test_a_static_txid_that_cannot_be_sent_is_refused_not_rewritten(
    world: PixWorld,
) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    bia = await world.open("bia", "Bia")
    code = BRCode.static(
        key=await world.evp(bia), merchant_name="Bia", merchant_city="RIO", amount=Money(5_00)
    ).encode()
    hyphen = with_crc(code[:-8].replace("62070503***", "62110507PED-001"))
    with pytest.raises(InvalidBRCode) as caught:
        await world.send(
            SendPixCommand(owner_id="ana", account_id=ana.id, idempotency_key="h", br_code=hyphen)
        )
    assert caught.value.field == "62-05"
    assert await world.posted(ana.id) == 100_00
    assert await world.posted(bia.id) == 0


async def test_a_recurrence_only_code_is_not_a_payment(world: PixWorld) -> None:
    ana = await world.open("ana", "Ana", deposit=Money(100_00))
    recurrence_only = (
        "00020126180014br.gov.bcb.pix5204000053039865802BR5913Fulano de Tal6008BRASILIA"
        "62070503***80740014br.gov.bcb.pix2552pix.example.com/rec/2353c790eefb11eaadc10242ac120002"
        "6304F2DA"
    )
    with pytest.raises(InvalidBRCode) as caught:
        await world.send(
            SendPixCommand(
                owner_id="ana",
                account_id=ana.id,
                idempotency_key="r",
                br_code=recurrence_only,
                amount=Money(1_00),
            )
        )
    assert caught.value.field == "26"
    assert await world.posted(ana.id) == 100_00
