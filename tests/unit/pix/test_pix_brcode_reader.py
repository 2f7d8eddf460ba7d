"""Reading BR Codes: strict and tolerant modes against a corpus of real codes.

``corpus/brcodes.json`` holds real codes from public sources (the central
bank's manuals, other PIX libraries' test suites, issue threads where people
pasted codes), each with its source, its expected reading and the deviations
tolerant reading must report; and real codes that are broken, with the field
that must be named. The crafted cases below cover what the corpus cannot
(whitespace from copy and paste, lowercase CRCs, each refusal).
"""

from __future__ import annotations

import json
import pathlib
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finbank_core.pix import BRCode, InvalidBRCode
from finbank_core.pix.codes.brcode_reader import (
    BRCodeReading,
    DeviationCode,
    read_brcode,
)
from finbank_core.pix.codes.crc import crc16_hex
from finbank_core.shared.money import Money

CORPUS: dict[str, list[dict[str, Any]]] = json.loads(
    (pathlib.Path(__file__).parent / "corpus" / "brcodes.json").read_text(encoding="utf-8")
)
VALID = CORPUS["valid"]
INVALID = CORPUS["invalid"]
STRICT_VALID = [entry for entry in VALID if entry["strict"]]

MANUAL_EXAMPLE = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
RECURRENCE_ONLY = next(e["code"] for e in VALID if e["id"] == "bcb-composite-recurrence-only")
COMPOSITE_DYNAMIC = next(e["code"] for e in VALID if e["id"] == "bcb-composite-dynamic")
BODY = MANUAL_EXAMPLE[:-8]
KEY_26 = MANUAL_EXAMPLE[6:68]  # the whole PIX template, id and length included


def with_crc(body: str) -> str:
    body += "6304"
    return body + crc16_hex(body.encode("utf-8"))


def tlv(field_id: str, value: str) -> str:
    return f"{field_id}{len(value):02d}{value}"


def reading_of(result: BRCodeReading) -> dict[str, Any]:
    return {
        "kind": result.kind,
        "pix_key": result.pix_key,
        "location_url": result.location_url,
        "recurrence_url": result.recurrence_url,
        "amount": None if result.amount is None else result.amount.to_bcb(),
        "txid": result.txid,
        "merchant_name": result.merchant_name,
        "merchant_city": result.merchant_city,
        "postal_code": result.postal_code,
        "description": result.description,
    }


def deviations_of(result: BRCodeReading) -> list[list[str]]:
    return [[d.code, d.field] for d in result.deviations]


def refused(text: str, mode: str = "tolerant") -> InvalidBRCode:
    with pytest.raises(InvalidBRCode) as caught:
        read_brcode(text, mode)  # type: ignore[arg-type]
    return caught.value


# -- the corpus ----------------------------------------------------------------------


def test_corpus_has_sixty_real_codes_each_with_a_source_and_a_verified_crc() -> None:
    assert len(VALID) >= 60
    assert len({entry["id"] for entry in VALID + INVALID}) == len(VALID) + len(INVALID)
    for entry in VALID:
        assert entry["source"], entry["id"]
        code = entry["code"]
        assert code[-8:-4] == "6304"
        assert crc16_hex(code[:-4].encode("utf-8")) == code[-4:].upper(), entry["id"]


@pytest.mark.parametrize("entry", VALID, ids=[e["id"] for e in VALID])
def test_tolerant_reading_of_each_real_code(entry: dict[str, Any]) -> None:
    result = read_brcode(entry["code"])
    assert reading_of(result) == entry["reading"]
    assert deviations_of(result) == entry["deviations"]
    assert all(code in set(DeviationCode) for code in result.deviation_codes)


@pytest.mark.parametrize("entry", VALID, ids=[e["id"] for e in VALID])
def test_strict_reads_exactly_the_codes_with_no_deviation(entry: dict[str, Any]) -> None:
    assert entry["strict"] == (not entry["deviations"])
    if entry["strict"]:
        strict = read_brcode(entry["code"], "strict")
        assert strict == read_brcode(entry["code"])
        assert BRCode.parse(entry["code"]).encode() == BRCode.parse(entry["code"]).encode()
    else:
        refused(entry["code"], "strict")


@pytest.mark.parametrize("entry", INVALID, ids=[e["id"] for e in INVALID])
def test_broken_real_codes_are_refused_in_both_modes_naming_the_field(
    entry: dict[str, Any],
) -> None:
    assert refused(entry["code"]).field == entry["field"]
    refused(entry["code"], "strict")


def test_the_corpus_covers_every_class_the_issue_names() -> None:
    seen = {code for entry in VALID for code, _ in entry["deviations"]}
    assert {
        "amount_trailing_point",
        "txid_missing",
        "txid_not_alphanumeric",
        "text_not_ascii",
        "text_too_long",
        "lengths_in_utf8_bytes",
        "location_url_scheme",
        "empty_field",
    } <= seen
    kinds = {entry["reading"]["kind"] for entry in VALID}
    assert kinds == {"static", "dynamic", "recurrence"}


# -- Pix Automático: composite codes ---------------------------------------------------


def test_strict_reads_the_manuals_recurrence_only_code_and_round_trips_it() -> None:
    code = BRCode.parse(RECURRENCE_ONLY)
    assert (code.pix_key, code.location_url) == (None, None)
    assert code.recurrence_url == "pix.example.com/rec/2353c790eefb11eaadc10242ac120002"
    assert code.encode() == RECURRENCE_ONLY
    assert read_brcode(RECURRENCE_ONLY, "strict").kind == "recurrence"


def test_composite_dynamic_code_exposes_both_urls() -> None:
    result = read_brcode(COMPOSITE_DYNAMIC)
    assert result.kind == "dynamic"
    assert result.location_url == "pix.example.com/8b3da2f39a4140d1a91abd93113bd441"
    assert result.recurrence_url == "pix.example.com/rec/2353c790eefb11eaadc10242ac120002"


@pytest.mark.parametrize(
    "template",
    [
        tlv("00", "br.gov.bcb.pix") + tlv("25", "pix.example.com/qr/v2/abc"),  # no /rec/
        tlv("00", "br.com.outro") + tlv("25", "pix.example.com/rec/abc"),  # not PIX's GUI
        tlv("00", "br.gov.bcb.pix"),  # no URL at all
    ],
)
def test_gui_alone_without_a_recurrence_template_is_refused(template: str) -> None:
    body = RECURRENCE_ONLY[:-8].replace(RECURRENCE_ONLY[RECURRENCE_ONLY.index("8074") : -8], "")
    text = with_crc(body + tlv("80", template))
    assert refused(text).field == "26"
    assert refused(text, "strict").field == "26"


def test_a_recurrence_template_outside_80_99_does_not_count() -> None:
    template = tlv("00", "br.gov.bcb.pix") + tlv("25", "pix.example.com/rec/abc")
    body = RECURRENCE_ONLY[:-8].replace(RECURRENCE_ONLY[RECURRENCE_ONLY.index("8074") : -8], "")
    body = body.replace("5204", tlv("79", template) + "5204")
    assert refused(with_crc(body)).field == "26"


def test_brcode_without_key_or_url_needs_a_recurrence_template() -> None:
    with pytest.raises(InvalidBRCode) as caught:
        BRCode(merchant_name="N", merchant_city="C")
    assert caught.value.field == "26"
    recurrence = (("80", tlv("00", "br.gov.bcb.pix") + tlv("25", "psp.example/rec/1")),)
    code = BRCode(merchant_name="N", merchant_city="C", extra_templates=recurrence)
    assert code.recurrence_url == "psp.example/rec/1"
    assert BRCode.parse(code.encode()) == code
    with pytest.raises(InvalidBRCode) as caught:
        BRCode(merchant_name="N", merchant_city="C", description="d", extra_templates=recurrence)
    assert caught.value.field == "26"


# -- copy and paste: whitespace and CRC case ---------------------------------------------


@pytest.mark.parametrize("wrap", ["  {}  ", "{}\n", "\t{}\r\n", "\n\n{} "])
def test_surrounding_whitespace_is_tolerated_and_reported(wrap: str) -> None:
    result = read_brcode(wrap.format(MANUAL_EXAMPLE))
    assert deviations_of(result) == [["surrounding_whitespace", "payload"]]
    assert reading_of(result) == reading_of(read_brcode(MANUAL_EXAMPLE))
    assert refused(wrap.format(MANUAL_EXAMPLE), "strict").field in ("63", "00", "payload")


@pytest.mark.parametrize("crc", ["1d3d", "1D3d", "1d3D"])
def test_lowercase_crc_is_tolerated_and_reported(crc: str) -> None:
    result = read_brcode(MANUAL_EXAMPLE[:-4] + crc)
    assert deviations_of(result) == [["crc_lowercase", "63"]]
    assert refused(MANUAL_EXAMPLE[:-4] + crc, "strict").field == "63"


@pytest.mark.parametrize("junk", ["\u00a0", "\u200b", "\ufeff", "\u2060 ", "\u3000"])
def test_invisible_characters_from_copying_are_tolerated_at_the_ends(junk: str) -> None:
    result = read_brcode(junk + MANUAL_EXAMPLE + junk)
    assert deviations_of(result) == [["surrounding_whitespace", "payload"]]
    assert result.pix_key == "123e4567-e12b-12d1-a456-426655440000"


def test_a_blank_inside_the_code_is_not_removed() -> None:
    wrapped = MANUAL_EXAMPLE[:60] + "\n" + MANUAL_EXAMPLE[60:]
    assert refused(wrapped).field == "63"


def test_lowercase_crc_must_still_match() -> None:
    error = refused(MANUAL_EXAMPLE[:-4] + "1d3e")
    assert (error.field, error.details["expected"]) == ("63", "1D3D")


@pytest.mark.parametrize("entry", STRICT_VALID, ids=[e["id"] for e in STRICT_VALID])
def test_tolerance_never_changes_key_url_amount_or_txid(entry: dict[str, Any]) -> None:
    code = entry["code"]
    pasted = "\n " + code[:-4] + code[-4:].lower() + "\r\n"
    strict, tolerant = read_brcode(code, "strict"), read_brcode(pasted)
    assert (tolerant.pix_key, tolerant.location_url, tolerant.amount, tolerant.txid) == (
        strict.pix_key,
        strict.location_url,
        strict.amount,
        strict.txid,
    )
    assert tolerant.recurrence_url == strict.recurrence_url


# -- the other tolerated classes, crafted ----------------------------------------------------


def test_amount_with_a_trailing_point() -> None:
    body = MANUAL_EXAMPLE[:-8].replace("5303986", "5303986" + tlv("54", "25."))
    result = read_brcode(with_crc(body))
    assert result.amount == Money(2500)
    assert deviations_of(result) == [["amount_trailing_point", "54"]]


def test_dynamic_code_without_62_or_with_62_but_no_05() -> None:
    dynamic = BRCode.dynamic(
        location_url="psp.example/qr/v2/x", merchant_name="N", merchant_city="C"
    )
    text = dynamic.encode()
    without_62 = with_crc(text[:-8].replace("62070503***", ""))
    assert deviations_of(read_brcode(without_62)) == [["txid_missing", "62"]]
    only_50 = with_crc(text[:-8].replace("62070503***", tlv("62", tlv("50", "0014x"))))
    result = read_brcode(only_50)
    assert deviations_of(result) == [["txid_missing", "62-05"]]
    assert (result.location_url, result.txid) == ("psp.example/qr/v2/x", "***")


def test_dynamic_code_with_more_than_gui_and_url_in_26() -> None:
    account = tlv("00", "br.gov.bcb.pix") + tlv("25", "psp.example/x") + tlv("02", "pedido")
    body = MANUAL_EXAMPLE[:-8].replace(MANUAL_EXAMPLE[6:68], tlv("26", account))
    result = read_brcode(with_crc(body))
    assert (result.location_url, result.description) == ("psp.example/x", None)
    assert deviations_of(result) == [["account_extra_fields", "26"]]
    assert refused(with_crc(body), "strict").field == "26"


def test_optional_fields_written_empty_are_read_as_absent_and_reported() -> None:
    # go-pix, python-brcode and qrcode-pix (Java) write an empty description as 0200.
    account = tlv("00", "br.gov.bcb.pix") + tlv("01", "k@example.com") + "0200"
    body = BODY.replace(KEY_26, tlv("26", account))
    result = read_brcode(with_crc(body))
    assert (result.pix_key, result.description, result.txid) == ("k@example.com", None, "***")
    assert deviations_of(result) == [["empty_field", "26-02"]]
    assert refused(with_crc(body), "strict").field == "26-02"
    extras = body.replace("62070503***", tlv("62", tlv("05", "PED1") + "5000")) + "6100" + "8100"
    result = read_brcode(with_crc(extras))
    assert (result.txid, result.postal_code) == ("PED1", None)
    assert deviations_of(result) == [
        ["empty_field", "61"],
        ["empty_field", "81"],
        ["empty_field", "62-50"],
        ["empty_field", "26-02"],
    ]


@pytest.mark.parametrize(
    ("additional", "field"), [("62040500", "62-05"), ("6200", "62")], ids=["05", "62"]
)
def test_an_empty_txid_or_additional_data_is_no_txid(additional: str, field: str) -> None:
    result = read_brcode(with_crc(BODY.replace("62070503***", additional)))
    assert (result.txid, deviations_of(result)) == ("***", [["txid_missing", field]])
    refused(with_crc(BODY.replace("62070503***", additional)), "strict")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (BODY.replace(KEY_26, tlv("26", tlv("00", "br.gov.bcb.pix") + "0100")), "26-01"),
        (BODY.replace(KEY_26, tlv("26", tlv("00", "br.gov.bcb.pix") + "2500")), "26-25"),
        (BODY.replace(KEY_26, tlv("26", "0000" + tlv("01", "k"))), "26"),
        (BODY.replace("5303986", "53039865400"), "54"),
        (BODY.replace("5913Fulano de Tal", "5900"), "59"),
        (BODY.replace("6008BRASILIA", "6000"), "60"),
        (BODY.replace("52040000", "5200"), "52"),
        (BODY.replace("000201", "0002010100", 1), "01"),
    ],
    ids=["key", "url", "gui", "amount", "name", "city", "mcc", "point-of-initiation"],
)
def test_an_empty_key_url_gui_amount_or_mandatory_field_is_refused(body: str, field: str) -> None:
    assert refused(with_crc(body)).field == field
    refused(with_crc(body), "strict")


def test_utf8_byte_lengths_are_tried_only_when_character_lengths_do_not_walk() -> None:
    city = "São Paulo"
    by_bytes = MANUAL_EXAMPLE[:-8].replace("6008BRASILIA", f"60{len(city.encode()):02d}{city}")
    result = read_brcode(with_crc(by_bytes))
    assert result.merchant_city == city
    assert deviations_of(result) == [
        ["lengths_in_utf8_bytes", "payload"],
        ["text_not_ascii", "60"],
    ]
    by_chars = MANUAL_EXAMPLE[:-8].replace("6008BRASILIA", tlv("60", city))
    assert deviations_of(read_brcode(with_crc(by_chars))) == [["text_not_ascii", "60"]]


def test_a_key_is_never_read_from_non_ascii_text() -> None:
    account = tlv("00", "br.gov.bcb.pix") + tlv("01", "josé@example.com")
    body = MANUAL_EXAMPLE[:-8].replace(KEY_26, tlv("26", account))
    assert refused(with_crc(body)).field == "26-01"


def test_non_ascii_in_fields_we_do_not_interpret_is_reported() -> None:
    account = tlv("00", "br.gov.bcb.pix") + tlv("01", "k@example.com") + tlv("03", "São")
    body = MANUAL_EXAMPLE[:-8].replace(KEY_26, tlv("26", account)).replace(
        "62070503***", tlv("62", tlv("05", "***") + tlv("50", "versão"))
    ) + tlv("81", "Olá")
    result = read_brcode(with_crc(body))
    assert deviations_of(result) == [
        ["text_not_ascii", "62-50"],
        ["text_not_ascii", "26-03"],
        ["text_not_ascii", "81"],
    ]
    assert result.pix_key == "k@example.com"
    refused(with_crc(body), "strict")


def test_deviation_messages_never_carry_the_value() -> None:
    secret = "Fulano Secreto da Silva Sauro"
    body = MANUAL_EXAMPLE[:-8].replace("5913Fulano de Tal", tlv("59", secret))
    result = read_brcode(with_crc(body))
    assert deviations_of(result) == [["text_too_long", "59"]]
    assert all(secret not in d.message and "Secreto" not in d.message for d in result.deviations)


# -- refused in both modes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (MANUAL_EXAMPLE[:-4] + "1D3E", "63"),
        (MANUAL_EXAMPLE[:-1], "63"),
        (MANUAL_EXAMPLE[:-8], "63"),
        ("", "63"),
        ("   ", "63"),
        (with_crc(BODY[:-3]), "62"),  # truncated TLV: 62 says 7, holds 4
        (with_crc(BODY.replace("0014br.gov.bcb.pix", "0014br.gov.bcb.pax")), "26"),
        (with_crc(BODY.replace(KEY_26, tlv("26", tlv("01", "k")))), "26"),
        (with_crc(BODY.replace("5303986", "5303986" + tlv("54", "1,00"))), "54"),
        (with_crc(BODY.replace("5303986", "5303986" + tlv("54", "-1.00"))), "54"),
        (with_crc(BODY.replace("5303986", "5303986" + tlv("54", "1.234"))), "54"),
        (with_crc(BODY.replace("5303986", "5303986" + tlv("54", "0.00"))), "54"),
        (with_crc(BODY.replace("5303986", "5303986" + tlv("54", "."))), "54"),
        (with_crc(BODY.replace("5303986", "5303986" + tlv("54", "99999999999.0"))), "54"),
        (with_crc(BODY.replace("5303986", "5303840")), "53"),
        (with_crc(BODY.replace("5802BR", "5802br")), "58"),
        (with_crc(BODY.replace("000201", "000202", 1)), "00"),
        (with_crc(BODY.replace("52040000", "5204ABCD")), "52"),
        (with_crc(BODY.replace("000201", "0002010102 1", 1)), "01"),
        (with_crc(BODY.replace("5913Fulano de Tal", "")), "59"),
        (with_crc(BODY.replace("5913Fulano de Tal", "5913Fulano\nde Tal")), "59"),
        (
            with_crc(
                BODY.replace(
                    KEY_26,
                    tlv("26", tlv("00", "br.gov.bcb.pix") + tlv("01", "k") + tlv("25", "u/x")),
                )
            ),
            "26",
        ),
        (
            with_crc(
                BODY.replace(
                    KEY_26, tlv("26", tlv("00", "br.gov.bcb.pix") + tlv("25", "http://psp/x"))
                )
            ),
            "26-25",
        ),
        (with_crc(BODY + tlv("63", "ABCD")), "63"),
        ("0" * 513, "payload"),
    ],
)
def test_genuinely_broken_codes_are_refused_in_both_modes(text: str, field: str) -> None:
    assert refused(text).field == field
    refused(text, "strict")


def test_a_template_length_written_with_three_digits_is_refused_naming_the_template() -> None:
    url = "psp.example/qr/v2/" + "a" * 63  # the template is 18 + 4 + 81 = 103 long
    account = tlv("00", "br.gov.bcb.pix") + "2581" + url
    body = BODY.replace(KEY_26, f"26{len(account)}{account}")
    error = refused(with_crc(body))
    assert (error.field, "3 digits" in str(error)) == ("26", True)
    refused(with_crc(body), "strict")


def test_not_text_and_unknown_mode_are_refused_with_the_documented_error() -> None:
    assert refused(b"000201", "tolerant").field == "payload"  # type: ignore[arg-type]
    assert refused(MANUAL_EXAMPLE, "lenient").field == "payload"


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([entry["code"] for entry in VALID]),
    st.integers(0, 2**32),
    st.sampled_from(["delete", "insert", "replace", "truncate"]),
    st.text(min_size=1, max_size=3),
)
def test_mutated_codes_are_read_or_refused_never_crash(
    code: str, seed: int, how: str, junk: str
) -> None:
    rng = random.Random(seed)
    at = rng.randrange(len(code))
    mutated = {
        "delete": code[:at] + code[at + 1 :],
        "insert": code[:at] + junk + code[at:],
        "replace": code[:at] + junk + code[at + len(junk) :],
        "truncate": code[:at],
    }[how]
    for fix_crc in (False, True):
        text = with_crc(mutated[:-8]) if fix_crc and len(mutated) > 8 else mutated
        readings: dict[str, BRCodeReading | None] = {}
        for mode in ("strict", "tolerant"):  # both ReadMode values
            field, readings[mode] = "read", None
            try:
                readings[mode] = read_brcode(text, mode)
            except InvalidBRCode as error:
                field = error.field
            assert field  # read, or refused naming a field; nothing else escapes
        strict, tolerant = readings["strict"], readings["tolerant"]
        # Every tolerance is reported: no deviation means strict reads it the same.
        if tolerant is not None and not tolerant.deviations:
            assert strict == tolerant
        if strict is not None:
            assert tolerant == strict


def test_strict_reading_is_brcode_parse() -> None:
    for entry in STRICT_VALID:
        assert read_brcode(entry["code"], "strict") == BRCodeReading.of(BRCode.parse(entry["code"]))


# -- properties over generated codes ------------------------------------------------------

PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@st.composite
def issued_codes(draw: st.DrawFn) -> BRCode:
    """Codes we could issue: static, dynamic, and either with a recurrence template."""
    name = draw(st.text(PRINTABLE, min_size=1, max_size=25))
    city = draw(st.text(PRINTABLE, min_size=1, max_size=15))
    amount = draw(st.none() | st.integers(1, 10**9).map(Money))
    recurrence = draw(st.booleans())
    extra: tuple[tuple[str, str], ...] = ()
    if recurrence:
        url = "psp.example/rec/" + draw(st.text(ALNUM, min_size=1, max_size=30))
        extra = (("80", tlv("00", "br.gov.bcb.pix") + tlv("25", url)),)
    kind = draw(st.sampled_from(["static", "dynamic", "recurrence"] if recurrence else ["s", "d"]))
    if kind in ("static", "s"):
        return BRCode(
            pix_key=draw(st.text(PRINTABLE, min_size=1, max_size=77)),
            merchant_name=name,
            merchant_city=city,
            amount=amount,
            txid=draw(st.just("***") | st.text(ALNUM, min_size=1, max_size=25)),
            extra_templates=extra,
        )
    if kind in ("dynamic", "d"):
        location = "psp.example/qr/v2/" + draw(st.text(ALNUM, min_size=1, max_size=50))
        return BRCode(
            location_url=location,
            merchant_name=name,
            merchant_city=city,
            amount=amount,
            point_of_initiation="12",
            extra_templates=extra,
        )
    return BRCode(merchant_name=name, merchant_city=city, extra_templates=extra)


@given(issued_codes())
def test_what_we_issue_reads_the_same_strictly_and_tolerantly(code: BRCode) -> None:
    text = code.encode()
    tolerant = read_brcode(text)
    assert tolerant == read_brcode(text, "strict") == BRCodeReading.of(code)
    assert tolerant.deviations == ()
    assert tolerant.recurrence_url == code.recurrence_url


@given(issued_codes(), st.data())
def test_a_changed_character_is_refused_or_changes_nothing_that_is_paid(
    code: BRCode, data: st.DataObject
) -> None:
    text = code.encode()
    position = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(
        st.characters(max_codepoint=0x2FF).filter(lambda c: c != text[position])
    )
    changed = text[:position] + replacement + text[position + 1 :]
    try:
        result = read_brcode(changed)
    except InvalidBRCode:
        return
    # Only a CRC digit's case (or a blank at either end) can change unnoticed.
    assert result.deviation_codes <= {"crc_lowercase", "surrounding_whitespace"}
    original = BRCodeReading.of(code)
    assert (result.pix_key, result.location_url, result.recurrence_url) == (
        original.pix_key,
        original.location_url,
        original.recurrence_url,
    )
    assert (result.amount, result.txid) == (original.amount, original.txid)


def _fields(text: str) -> list[tuple[str, str]]:
    """The TLV fields of ``text`` (a template's value, or a code without its CRC), in order."""
    out, pos, end = [], 0, len(text)
    while pos < end:
        size = int(text[pos + 2 : pos + 4])
        out.append((text[pos : pos + 2], text[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    return out


@given(issued_codes(), st.sampled_from(["26", "62"]), st.sampled_from(["03", "09", "50", "99"]))
def test_an_empty_optional_sub_field_changes_nothing_that_is_paid(
    code: BRCode, template: str, sub_id: str
) -> None:
    fields = _fields(code.encode()[:-8])
    parent = "26" if template == "26" else "62"
    if any(f == parent and sub_id in dict(_fields(value)) for f, value in fields):
        return  # the sub-field is already there
    body = "".join(tlv(f, value + (sub_id + "00" if f == parent else "")) for f, value in fields)
    if len(body) > 500:
        return
    result = read_brcode(with_crc(body))
    original = BRCodeReading.of(code)
    assert (result.pix_key, result.location_url, result.recurrence_url) == (
        original.pix_key,
        original.location_url,
        original.recurrence_url,
    )
    assert (result.amount, result.txid) == (original.amount, original.txid)
    assert deviations_of(result) == [["empty_field", f"{parent}-{sub_id}"]]
    assert refused(with_crc(body), "strict").field == f"{parent}-{sub_id}"
