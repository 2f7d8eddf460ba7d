"""Tolerant reading of codes whose lengths count UTF-8 bytes, inside templates too.

A generator that counts bytes (PHP's ``strlen``) counts them in the PIX
template (26) and the additional data (62) as well as at the top level, so an
accent in 26-02 or 62-50 must be read the same way as one in 59: noted once
as ``lengths_in_utf8_bytes`` (field ``payload``), the text as
``text_not_ascii``. Strict reading keeps refusing those codes.
"""

from __future__ import annotations

import pytest

from finbank_core.pix import InvalidBRCode
from finbank_core.pix.codes.brcode_reader import read_brcode
from finbank_core.pix.codes.crc import crc16_hex

KEY = "12345678909"


def tlv_bytes(field_id: str, value: str) -> str:
    return f"{field_id}{len(value.encode('utf-8')):02d}{value}"


def php_code(*, name: str = "Fulano", description: str = "", info: str = "") -> str:
    account = tlv_bytes("00", "br.gov.bcb.pix") + tlv_bytes("01", KEY)
    if description:
        account += tlv_bytes("02", description)
    additional = tlv_bytes("05", "***") + (tlv_bytes("50", info) if info else "")
    body = (
        "000201"
        + tlv_bytes("26", account)
        + "5204000053039865802BR"
        + tlv_bytes("59", name)
        + tlv_bytes("60", "SAO PAULO")
        + tlv_bytes("62", additional)
        + "6304"
    )
    return body + crc16_hex(body.encode("utf-8"))


def deviations(text: str) -> list[tuple[str, str]]:
    return [(d.code, d.field) for d in read_brcode(text).deviations]


def test_an_accent_in_26_02_with_byte_lengths_is_read_and_noted() -> None:
    text = php_code(description="Descrição")
    reading = read_brcode(text)
    assert (reading.pix_key, reading.description) == (KEY, "Descrição")
    assert deviations(text) == [
        ("lengths_in_utf8_bytes", "payload"),
        ("text_not_ascii", "26-02"),
    ]


def test_an_accent_in_62_50_with_byte_lengths_is_read_and_noted() -> None:
    text = php_code(info="ção")
    reading = read_brcode(text)
    assert (reading.pix_key, reading.txid) == (KEY, "***")
    assert deviations(text) == [
        ("lengths_in_utf8_bytes", "payload"),
        ("text_not_ascii", "62-50"),
    ]


def test_byte_lengths_everywhere_are_noted_once() -> None:
    text = php_code(name="José", description="Descrição", info="ção")
    reading = read_brcode(text)
    assert (reading.merchant_name, reading.description) == ("José", "Descrição")
    assert [d for d in deviations(text) if d[0] == "lengths_in_utf8_bytes"] == [
        ("lengths_in_utf8_bytes", "payload")
    ]


@pytest.mark.parametrize(
    "text", [php_code(description="Descrição"), php_code(info="ção")], ids=["26-02", "62-50"]
)
def test_strict_reading_still_refuses_them(text: str) -> None:
    with pytest.raises(InvalidBRCode):
        read_brcode(text, "strict")


def test_character_lengths_in_the_template_are_still_read_without_the_deviation() -> None:
    account = "0014br.gov.bcb.pix" + f"01{len(KEY):02d}{KEY}" + "0209Descrição"
    body = (
        f"00020126{len(account):02d}{account}5204000053039865802BR5906Fulano"
        "6009SAO PAULO62070503***6304"
    )
    text = body + crc16_hex(body.encode("utf-8"))
    assert deviations(text) == [("text_not_ascii", "26-02")]


def test_a_sub_field_that_walks_neither_way_is_refused_naming_it() -> None:
    account = "0014br.gov.bcb.pix" + f"01{len(KEY):02d}{KEY}" + "0220Descrição"
    body = (
        f"00020126{len(account):02d}{account}5204000053039865802BR5906Fulano"
        "6009SAO PAULO62070503***6304"
    )
    with pytest.raises(InvalidBRCode) as caught:
        read_brcode(body + crc16_hex(body.encode("utf-8")))
    assert caught.value.field == "26-02"
