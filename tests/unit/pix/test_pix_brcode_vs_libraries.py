"""Differential: BR Codes written by other Python libraries.

For each library (test-only dependencies; skipped when absent) we build the
code we would write for the same inputs and assert: where the library follows
the manual, its output is byte-identical to ours and parses to our value;
where it has a known bug, we refuse its output naming the field, or (when
the bug yields a well-formed code that means something else) we document
that no parser can tell.

* starkbank-brcode 1.1.0: correct, and the only one with a parser; we also
  feed ours to its parser.
* pix-utils 1.0.1: CRC not zero-padded (``hex(crc)[2:]``), so about one code
  in 16 ends with a 3-digit CRC and is refused (field 63).
* pybrcode 1.1: correct for the keys it recognises.
* pypix 0.2.0: drops field 62 without a txid (refused, field 62), prefixes
  the txid with "Identificador" (a valid txid, so accepted: it just is not
  the caller's txid) and does not pad the CRC.
* pixqrcode 1.1.0: hard-codes field 26's length per key type, writes
  ``54040.00`` for "no amount", does not pad the CRC, reads an 11-digit CPF
  as a phone and crashes on CNPJ keys.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finbank_core.pix import BRCode, InvalidBRCode, PixKey, PixKeyType, generate_cnpj, generate_cpf
from finbank_core.shared.money import Money

UPPER_GUI = "BR.GOV.BCB.PIX"
NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 "
names = st.text(NAME_CHARS, min_size=1, max_size=25).filter(lambda s: s.strip() == s and s)
cities = st.text(NAME_CHARS, min_size=1, max_size=15).filter(lambda s: s.strip() == s and s)
txids = st.text(NAME_CHARS.strip(), min_size=1, max_size=25)
amounts = st.none() | st.integers(1, 10**9).map(Money)
keys = st.one_of(
    st.integers(0, 2**32).map(lambda seed: generate_cpf(random.Random(seed))),
    st.integers(0, 2**32).map(lambda seed: generate_cnpj(random.Random(seed))),
    st.from_regex(r"\+55[1-9][0-9]9[0-9]{8}", fullmatch=True),
    st.uuids().map(str),
    st.from_regex(r"[a-z0-9.]{1,20}@[a-z0-9]{1,15}\.com\.br", fullmatch=True),
).map(lambda raw: PixKey.parse(raw).value)


def refused_field(text: str) -> str:
    with pytest.raises(InvalidBRCode) as caught:
        BRCode.parse(text)
    return caught.value.field


def crc_is_padded(our_encoding: str) -> bool:
    return not our_encoding[-4:].startswith("0")


# -- starkbank-brcode ---------------------------------------------------------------


@given(keys, names, cities, amounts, st.just("") | txids)
def test_starkbank_static_codes_are_ours_byte_for_byte(
    key: str, name: str, city: str, amount: Money | None, txid: str
) -> None:
    starkbank: Any = pytest.importorskip("brcode.static", reason="starkbank-brcode (dev extra)")
    spec: dict[str, str | int] = {"key": key, "name": name, "city": city, "txid": txid}
    if amount is not None:
        spec["amount"] = amount.cents
    theirs = starkbank.fromJson(spec)
    ours = BRCode.static(
        key=key, merchant_name=name, merchant_city=city, amount=amount, txid=txid or "***"
    )
    assert theirs == ours.encode()
    assert BRCode.parse(theirs) == ours


@given(st.from_regex(r"pix\.example\.com/qr/v2/[a-z0-9]{1,40}", fullmatch=True), names, cities)
def test_starkbank_dynamic_codes_are_ours_byte_for_byte(url: str, name: str, city: str) -> None:
    starkbank: Any = pytest.importorskip("brcode.dynamic", reason="starkbank-brcode (dev extra)")
    theirs = starkbank.fromJson({"url": url, "name": name, "city": city, "txid": ""})
    ours = BRCode.dynamic(location_url=url, merchant_name=name, merchant_city=city)
    assert theirs == ours.encode()
    assert BRCode.parse(theirs).is_dynamic


@given(keys, names, cities, amounts, txids)
def test_starkbank_parser_reads_our_codes(
    key: str, name: str, city: str, amount: Money | None, txid: str
) -> None:
    parser: Any = pytest.importorskip("brcode.utils.brcodeId", reason="starkbank-brcode")
    ours = BRCode.static(key=key, merchant_name=name, merchant_city=city, amount=amount, txid=txid)
    fields = parser.jsonFromBrcode(ours.encode())
    assert fields["26"]["01"] == key
    assert fields["59"] == name
    assert fields["62"]["05"] == txid
    assert fields.get("54") == (None if amount is None else amount.to_bcb())


# -- pix-utils ----------------------------------------------------------------------


@given(keys, names, cities, amounts, txids)
def test_pix_utils_codes_are_ours_unless_their_crc_lost_its_leading_zero(
    key: str, name: str, city: str, amount: Money | None, txid: str
) -> None:
    pix_utils: Any = pytest.importorskip("pix_utils", reason="pix-utils (dev extra)")
    value = None if amount is None else Decimal(amount.to_bcb())
    theirs = pix_utils.Code(key, name, city, value, txid)
    ours = BRCode(
        gui=UPPER_GUI, pix_key=key, merchant_name=name, merchant_city=city, amount=amount, txid=txid
    )
    if crc_is_padded(ours.encode()):
        assert theirs == ours.encode()
        assert BRCode.parse(theirs) == ours
    else:
        assert theirs == ours.encode()[:-4] + ours.encode()[-4:].lstrip("0")
        assert refused_field(theirs) == "63"


# -- pybrcode -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("their_key", "our_key"),
    [
        ("529.982.247-25", "52998224725"),
        ("11.222.333/0001-81", "11222333000181"),
        ("(11)98765-4321", "+5511987654321"),
        ("fulano@example.com", "fulano@example.com"),
        ("123e4567-e12b-12d1-a456-426655440000", "123e4567-e12b-12d1-a456-426655440000"),
    ],
)
@pytest.mark.parametrize("reusable", [False, True])
def test_pybrcode_codes_are_ours_byte_for_byte(
    their_key: str, our_key: str, reusable: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    pybrcode: Any = pytest.importorskip("pybrcode.pix", reason="pybrcode (dev extra)")
    pix = pybrcode.generate_simple_pix(
        "Fulano de Tal",
        their_key,
        "BRASILIA",
        10.5,
        "PEDIDO42",
        description="Pedido",
        mult_transaction=reusable,
    )
    theirs = str(pix)
    ours = BRCode(
        gui=UPPER_GUI,
        pix_key=our_key,
        description="Pedido",
        merchant_name="Fulano de Tal",
        merchant_city="BRASILIA",
        amount=Money(1050),
        txid="PEDIDO42",
        point_of_initiation="11" if reusable else "12",
    )
    assert theirs == ours.encode()
    assert BRCode.parse(theirs) == ours
    capsys.readouterr()  # pybrcode prints phone keys; keep the report clean


def test_pybrcode_zero_amount_is_refused() -> None:
    pybrcode: Any = pytest.importorskip("pybrcode.pix", reason="pybrcode (dev extra)")
    theirs = str(pybrcode.generate_simple_pix("Fulano", "fulano@example.com", "RECIFE", 0, "X1"))
    assert "54040.00" in theirs
    assert refused_field(theirs) == "54"


# -- pypix --------------------------------------------------------------------------


def _pypix(key: str, txid: str | None) -> str:
    module: Any = pytest.importorskip("pypix", reason="pypix (dev extra)")
    pix = module.Pix()
    pix.set_pixkey(key)
    pix.set_merchant_name("Fulano de Tal")
    pix.set_merchant_city("BRASILIA")
    pix.set_amount(10.5)
    if txid is not None:
        pix.set_txid(txid)
    return str(pix)


@given(keys, st.text(NAME_CHARS.strip(), min_size=1, max_size=12))
def test_pypix_codes_parse_with_its_prefixed_txid_unless_crc_is_unpadded(
    key: str, txid: str
) -> None:
    theirs = _pypix(key, txid)
    ours = BRCode(
        gui=UPPER_GUI,
        pix_key=key,
        merchant_name="Fulano de Tal",
        merchant_city="BRASILIA",
        amount=Money(1050),
        txid="Identificador" + txid,  # their bug, but a well-formed txid
    )
    if crc_is_padded(ours.encode()):
        assert theirs == ours.encode()
        assert BRCode.parse(theirs).txid != txid
    else:
        assert refused_field(theirs) == "63"


def test_pypix_without_txid_drops_field_62_and_is_refused() -> None:
    theirs = _pypix("+5511987654321", None)
    assert "6207" not in theirs
    assert refused_field(theirs) == "62"


def test_pypix_txid_over_12_characters_overflows_with_its_prefix() -> None:
    theirs = _pypix("+5511987654321", "ABCDEFGHIJKLM")
    assert refused_field(theirs) in ("62-05", "63")


# -- pixqrcode ----------------------------------------------------------------------


def _pixqrcode(key: str, amount: str | None = "10.50") -> str:
    module: Any = pytest.importorskip("pixqrcode", reason="pixqrcode (dev extra)")
    return str(module.PixQrCode("Loja", key, "RECIFE", amount, "ABC").generate_code())


def test_pixqrcode_phone_code_is_ours_when_its_crc_is_padded() -> None:
    theirs = _pixqrcode("11987654321")
    ours = BRCode(
        gui=UPPER_GUI,
        pix_key="+5511987654321",
        merchant_name="Loja",
        merchant_city="RECIFE",
        amount=Money(1050),
        txid="ABC",
    )
    assert crc_is_padded(ours.encode())
    assert theirs == ours.encode()


def test_pixqrcode_reads_a_cpf_as_a_phone_and_no_parser_can_tell() -> None:
    # Well-formed, right CRC, but it pays "+5552998224725", not the CPF.
    code = BRCode.parse(_pixqrcode("52998224725"))
    assert code.pix_key == "+5552998224725"
    parsed = code.parsed_pix_key()
    assert parsed is not None
    assert parsed.type is PixKeyType.PHONE


@pytest.mark.parametrize(
    "key",
    ["fulano.de.tal@example.com", "abc@example.com", "123e4567-e12b-12d1-a456-426655440000"],
)
def test_pixqrcode_hard_coded_template_length_is_refused(key: str) -> None:
    # Email and EVP keys rarely match the length it hard-codes for field 26
    # (and it strips the EVP's dashes); the CRC is right, the TLVs are not.
    with pytest.raises(InvalidBRCode):
        BRCode.parse(_pixqrcode(key))


def test_pixqrcode_zero_amount_for_no_amount_is_refused() -> None:
    theirs = _pixqrcode("11987654321", None)
    assert "54040.00" in theirs
    assert refused_field(theirs) == "54"


def test_pixqrcode_unpadded_crc_is_refused() -> None:
    theirs = _pixqrcode("529.982.247-25")
    assert theirs[-8:-4] != "6304"  # 3 hex digits: "6304D88"
    assert refused_field(theirs) == "63"
