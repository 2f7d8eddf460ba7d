"""BR Code: the manual's example, each refusal, each documented decision."""

from __future__ import annotations

import pytest

from finbank_core.pix import PIX_GUI, BRCode, InvalidBRCode, PixKey, PixKeyType, ascii_fold
from finbank_core.pix.codes.crc import crc16_hex
from finbank_core.shared.money import Money

MANUAL_EXAMPLE = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)


def with_crc(body: str) -> str:
    """Close ``body`` with a correct CRC, to test rules other than the CRC's."""
    body += "6304"
    return body + crc16_hex(body.encode())


def tlv(field_id: str, value: str) -> str:
    return f"{field_id}{len(value):02d}{value}"


def refusal(text: str) -> InvalidBRCode:
    with pytest.raises(InvalidBRCode) as caught:
        BRCode.parse(text)
    return caught.value


# -- the manual's example ---------------------------------------------------------


def test_manual_example_parses() -> None:
    code = BRCode.parse(MANUAL_EXAMPLE)
    assert code.pix_key == "123e4567-e12b-12d1-a456-426655440000"
    assert code.merchant_name == "Fulano de Tal"
    assert code.merchant_city == "BRASILIA"
    assert code.txid == "***"
    assert code.amount is None
    assert not code.is_dynamic
    assert code.parsed_pix_key() == PixKey(PixKeyType.EVP, code.pix_key)


def test_manual_example_round_trips_byte_for_byte() -> None:
    assert BRCode.parse(MANUAL_EXAMPLE).encode() == MANUAL_EXAMPLE


def test_manual_example_is_rebuilt_from_its_values_with_crc_1d3d() -> None:
    code = BRCode.static(
        key=PixKey.parse("123e4567-e12b-12d1-a456-426655440000"),
        merchant_name="Fulano de Tal",
        merchant_city="BRASILIA",
    )
    encoded = code.encode()
    assert encoded == MANUAL_EXAMPLE
    assert encoded.endswith("63041D3D")


# -- building --------------------------------------------------------------------


def test_static_code_with_amount_description_and_txid() -> None:
    code = BRCode.static(
        key="+5511987654321",
        merchant_name="Loja",
        merchant_city="SAO PAULO",
        amount=Money(1050),
        txid="PEDIDO42",
        description="Pedido 42",
        postal_code="01310100",
    )
    encoded = code.encode()
    assert "540510.50" in encoded
    assert "0209Pedido 42" in encoded
    assert "62120508PEDIDO42" in encoded
    assert "610801310100" in encoded
    assert BRCode.parse(encoded) == code


def test_dynamic_code_carries_only_gui_and_url_and_drops_the_scheme() -> None:
    code = BRCode.dynamic(
        location_url="https://pix.example.com/qr/v2/9d36b84f",
        merchant_name="Loja",
        merchant_city="RECIFE",
    )
    assert code.is_dynamic
    encoded = code.encode()
    assert encoded.startswith("000201010212")
    assert "26520014br.gov.bcb.pix2530pix.example.com/qr/v2/9d36b84f" in encoded
    assert BRCode.parse(encoded) == code


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"merchant_name": "N" * 26}, "59"),
        ({"merchant_city": "C" * 16}, "60"),
        ({"merchant_name": "José"}, "59"),
        ({"merchant_city": "Tab\there"}, "60"),
        ({"merchant_name": ""}, "59"),
        ({"pix_key": "k" * 78}, "26-01"),
        ({"pix_key": None}, "26"),
        ({"location_url": "pix.example.com/x"}, "26"),
        ({"txid": "ABC-1"}, "62-05"),
        ({"txid": "A" * 26}, "62-05"),
        ({"amount": Money(0)}, "54"),
        ({"amount": Money(-1)}, "54"),
        ({"amount": Money(1_000_000_000_000)}, "54"),
        ({"point_of_initiation": "13"}, "01"),
        ({"merchant_category_code": "000"}, "52"),
        ({"gui": "br.gov.bcb.pax"}, "26-00"),
        ({"description": "d" * 99}, "26"),
        ({"merchant_account_id": "52"}, "52"),
        ({"extra_templates": (("59", "x"),)}, "59"),
        ({"extra_templates": (("81", "x"), ("80", "y"))}, "80"),
        ({"merchant_account_extra": (("01", "x"),)}, "26-01"),
        ({"additional_data_extra": (("50", "x" * 94),)}, "62"),
        ({"extra_templates": tuple((f"{i}", "x" * 60) for i in range(80, 87))}, "payload"),
    ],
)
def test_invalid_values_cannot_be_built(changes: dict[str, object], field: str) -> None:
    values: dict[str, object] = {
        "pix_key": "+5511987654321",
        "merchant_name": "Loja",
        "merchant_city": "RECIFE",
    }
    values.update(changes)
    with pytest.raises(InvalidBRCode) as caught:
        BRCode(**values)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert caught.value.details["field"] == field
    assert f"field {field}" in str(caught.value)
    assert caught.value.code == "invalid_br_code"


def test_url_with_scheme_is_refused() -> None:
    with pytest.raises(InvalidBRCode, match="scheme") as caught:
        BRCode(location_url="https://pix.example.com/x", merchant_name="N", merchant_city="C")
    assert caught.value.field == "26-25"


def test_dynamic_code_with_description_is_refused() -> None:
    with pytest.raises(InvalidBRCode) as caught:
        BRCode(
            location_url="pix.example.com/x", description="d", merchant_name="N", merchant_city="C"
        )
    assert caught.value.field == "26"


def test_key_of_77_characters_fills_the_99_character_template() -> None:
    code = BRCode(pix_key="k" * 77, merchant_name="N", merchant_city="C")
    assert "26990014br.gov.bcb.pix0177" in code.encode()


def test_ascii_fold_makes_accented_names_usable_but_encode_never_folds() -> None:
    assert ascii_fold("José São Paulo") == "Jose Sao Paulo"
    assert ascii_fold("Straße") == "Strae"
    code = BRCode.static(key="k", merchant_name=ascii_fold("Açaí do Zé"), merchant_city="BELEM")
    assert code.merchant_name == "Acai do Ze"


# -- parsing: refusals ----------------------------------------------------------------


def test_wrong_crc_is_refused() -> None:
    error = refusal(MANUAL_EXAMPLE[:-4] + "1D3E")
    assert error.field == "63"
    assert error.details["expected"] == "1D3D"


def test_lowercase_crc_is_refused() -> None:
    assert refusal(MANUAL_EXAMPLE[:-4] + "1d3d").field == "63"


def test_unpadded_crc_is_refused() -> None:
    assert refusal(MANUAL_EXAMPLE[:-8] + "6303D3D").field == "63"


def test_crc_covers_the_6304_prefix() -> None:
    body = MANUAL_EXAMPLE[:-8]
    crc_without_prefix = crc16_hex(body.encode())
    assert refusal(body + "6304" + crc_without_prefix).field == "63"


def test_a_right_crc_does_not_prove_a_right_structure() -> None:
    error = refusal(with_crc("000201265800"))
    assert error.field == "26"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (MANUAL_EXAMPLE[6:-8], "00"),
        (MANUAL_EXAMPLE[:-8].replace("000201", "000202", 1), "00"),
        (MANUAL_EXAMPLE[:-8].replace("5303986", "5303840"), "53"),
        (MANUAL_EXAMPLE[:-8].replace("5802BR", "5802US"), "58"),
        (MANUAL_EXAMPLE[:-8].replace("5204000053", "53"), "52"),
        (MANUAL_EXAMPLE[:-8].replace("62070503***", ""), "62"),
        (MANUAL_EXAMPLE[:-8].replace("62070503***", "62070703***"), "62-05"),
        (MANUAL_EXAMPLE[:-8].replace("5913Fulano de Tal", ""), "59"),
        (MANUAL_EXAMPLE[:-8].replace("6008BRASILIA", ""), "60"),
        (MANUAL_EXAMPLE[:-8].replace("6008BRASILIA", "60A8BRASILIA"), "60"),
        (MANUAL_EXAMPLE[:-8].replace("6008BRASILIA", "6008BRASILIA5802BR"), "58"),
        (MANUAL_EXAMPLE[:-8].replace("62070503***", "62080503***"), "62"),
        (MANUAL_EXAMPLE[:-8].replace("0014br.gov.bcb.pix", "0014br.gov.bcb.pax"), "26"),
        (MANUAL_EXAMPLE[:-8].replace("5913Fulano de Tal", "5913Fulano\tde Tal"), "59"),
        (MANUAL_EXAMPLE[:-8].replace("5913Fulano de Tal", "5900"), "59"),
        (MANUAL_EXAMPLE[:-8] + "6304ABCD", "63"),
        (MANUAL_EXAMPLE[:-8].replace("53039865802BR", "530398654041.2.5802BR"), "54"),
    ],
)
def test_structural_and_content_errors_name_the_field(body: str, field: str) -> None:
    assert refusal(with_crc(body)).field == field


def test_non_ascii_text_is_refused_naming_its_field() -> None:
    text = MANUAL_EXAMPLE.replace("Fulano de Tal", "Fulano de Tál")
    assert refusal(text).field == "59"


@pytest.mark.parametrize("text", ["00²201", "0²02016304ABCD", "000201" + "٥" * 10])
def test_non_ascii_digits_in_ids_or_lengths_are_refused_not_crashed_on(text: str) -> None:
    assert refusal(text).field in ("payload", "00")


def test_code_over_512_characters_is_refused() -> None:
    assert refusal("0" * 513).field == "payload"


def test_missing_crc_field_is_refused() -> None:
    assert refusal(MANUAL_EXAMPLE[:-8]).field == "63"
    assert refusal("").field == "63"


# -- parsing: leniency and preserved data -------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cents"), [("10", 1000), ("10.5", 1050), ("0.01", 1), ("010.00", 1000)]
)
def test_amount_is_parsed_leniently_and_encoded_with_two_decimals(raw: str, cents: int) -> None:
    body = MANUAL_EXAMPLE[:-8].replace("5303986", f"530398654{len(raw):02d}{raw}")
    code = BRCode.parse(with_crc(body))
    assert code.amount == Money(cents)
    assert f"54{len(code.amount.to_bcb()):02d}{code.amount.to_bcb()}" in code.encode()
    assert BRCode.parse(code.encode()) == code


def test_uppercase_gui_is_accepted_and_its_case_kept() -> None:
    text = with_crc(MANUAL_EXAMPLE[:-8].replace(PIX_GUI, "BR.GOV.BCB.PIX"))
    code = BRCode.parse(text)
    assert code.gui == "BR.GOV.BCB.PIX"
    assert code.encode() == text


def test_unknown_templates_and_subfields_round_trip_verbatim() -> None:
    brcode_version = tlv("00", "br.gov.bcb.brcode") + tlv("01", "1.0.0")
    body = (
        "000201"
        + tlv("04", "012345678901234")  # a card network's merchant account
        + MANUAL_EXAMPLE[6:-19]
        + tlv("62", tlv("05", "***") + tlv("50", brcode_version))
        + tlv("80", "0006abcdef")
    )
    text = with_crc(body)
    code = BRCode.parse(text)
    assert code.extra_templates == (("04", "012345678901234"), ("80", "0006abcdef"))
    assert code.additional_data_extra == (("50", brcode_version),)
    assert code.encode() == text


def test_pix_template_outside_26_is_found_by_its_gui() -> None:
    other = "0010com.acme.x0102ab"
    body = (
        "000201"
        f"26{len(other):02d}{other}"
        "27580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
        "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***"
    )
    code = BRCode.parse(with_crc(body))
    assert code.merchant_account_id == "27"
    assert code.extra_templates == (("26", other),)
    assert code.encode() == with_crc(body)


def test_two_pix_templates_are_refused() -> None:
    account = "0014br.gov.bcb.pix0101k"
    body = (
        f"00020126{len(account)}{account}27{len(account)}{account}"
        "5204000053039865802BR5901N6001C62070503***"
    )
    assert refusal(with_crc(body)).field == "27"


def test_fields_out_of_order_parse_and_encode_in_id_order() -> None:
    body = (
        "000201"
        "26580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
        "5204000053039865802BR6008BRASILIA5913Fulano de Tal62070503***"
    )
    code = BRCode.parse(with_crc(body))
    assert code.encode() == MANUAL_EXAMPLE
