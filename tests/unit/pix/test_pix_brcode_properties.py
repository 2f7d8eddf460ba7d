"""Properties of BR Codes over generated valid values."""

from __future__ import annotations

import string

from hypothesis import assume, given
from hypothesis import strategies as st

from finbank_core.pix import BRCode, InvalidBRCode
from finbank_core.pix.codes.crc import crc16_hex
from finbank_core.shared.money import Money

PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
ALNUM = string.ascii_letters + string.digits


def text(max_size: int, min_size: int = 1) -> st.SearchStrategy[str]:
    return st.text(PRINTABLE, min_size=min_size, max_size=max_size)


def random_case(value: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(value), max_size=len(value)).map(
        lambda flags: "".join(c.upper() if f else c for c, f in zip(value, flags, strict=True))
    )


def extras(ids: list[str], max_value: int = 20) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    return st.lists(st.sampled_from(ids), unique=True, max_size=3).flatmap(
        lambda chosen: st.tuples(*(st.tuples(st.just(i), text(max_value)) for i in sorted(chosen)))
    )


@st.composite
def brcodes(draw: st.DrawFn) -> BRCode:
    account_id = draw(st.sampled_from(["26", "26", "26", "27", "51"]))
    gui = draw(random_case("br.gov.bcb.pix"))
    dynamic = draw(st.booleans())
    key = url = description = None
    account_extra: tuple[tuple[str, str], ...] = ()
    if dynamic:
        url = draw(text(77).filter(lambda u: not u.lower().startswith(("http://", "https://"))))
    else:
        key = draw(text(77))
        budget = 99 - (4 + len(gui)) - (4 + len(key))
        if budget >= 5 and draw(st.booleans()):
            description = draw(text(budget - 4))
        elif budget >= 5:
            account_extra = draw(extras(["03", "04", "30"], max_value=budget // 3 - 4))
    unknown_top = [f"{i:02d}" for i in [2, 4, 27, 40, 55, 64, *range(80, 100)]]
    code, refused_field = None, None
    try:
        code = BRCode(
            pix_key=key,
            location_url=url,
            description=description,
            gui=gui,
            merchant_account_id=account_id,
            merchant_account_extra=account_extra,
            merchant_name=draw(text(25)),
            merchant_city=draw(text(15)),
            amount=draw(st.none() | st.integers(1, 9_999_999_999_99).map(Money)),
            postal_code=draw(st.none() | text(20)),
            txid=draw(st.just("***") | st.text(ALNUM, min_size=1, max_size=25)),
            point_of_initiation=draw(st.sampled_from([None, "11", "12"])),
            merchant_category_code=draw(st.from_regex(r"[0-9]{4}", fullmatch=True)),
            additional_data_extra=draw(extras(["50", "51", "99"])),
            extra_templates=draw(extras([i for i in unknown_top if i != account_id], 40)),
        )
    except InvalidBRCode as error:
        refused_field = error.field
    # Only the 512-character ceiling may bite; any other refusal is a bug in
    # this strategy or in the validation.
    assert refused_field in (None, "payload")
    assume(code is not None)
    assert code is not None
    return code


@given(brcodes())
def test_parse_of_encode_gives_back_the_same_value(code: BRCode) -> None:
    encoded = code.encode()
    assert len(encoded) <= 512
    assert BRCode.parse(encoded) == code
    assert BRCode.parse(encoded).encode() == encoded


@given(brcodes(), st.data())
def test_any_single_character_substitution_is_refused(code: BRCode, data: st.DataObject) -> None:
    # True for every position: a change in the body is a burst of <= 8 bits,
    # which CRC-16 always detects; a change in the CRC digits makes them
    # disagree (lowercase hex is refused for this reason); a non-ASCII
    # character is refused before the CRC is even computed.
    encoded = code.encode()
    position = data.draw(st.integers(0, len(encoded) - 1))
    replacement = data.draw(
        st.characters(max_codepoint=0x2FF).filter(lambda c: c != encoded[position])
    )
    corrupted = encoded[:position] + replacement + encoded[position + 1 :]
    try:
        BRCode.parse(corrupted)
    except InvalidBRCode:
        return
    raise AssertionError(f"corruption at {position} was accepted")


@given(brcodes(), st.data())
def test_swapping_two_adjacent_characters_is_refused_or_harmless(
    code: BRCode, data: st.DataObject
) -> None:
    # Two adjacent bytes span at most 16 bits: still a burst CRC-16 catches.
    encoded = code.encode()
    position = data.draw(st.integers(0, len(encoded) - 2))
    a, b = encoded[position], encoded[position + 1]
    swapped = encoded[:position] + b + a + encoded[position + 2 :]
    if a == b:
        assert BRCode.parse(swapped) == code
        return
    try:
        BRCode.parse(swapped)
    except InvalidBRCode:
        return
    raise AssertionError(f"swap at {position} was accepted")


@given(st.text(max_size=600))
def test_parse_never_fails_with_anything_but_invalid_br_code(garbage: str) -> None:
    field = "parsed"
    try:
        BRCode.parse(garbage)
    except InvalidBRCode as error:
        field = error.field
    assert field


@given(brcodes(), st.data())
def test_edits_behind_a_recomputed_crc_are_parsed_or_refused_cleanly(
    code: BRCode, data: st.DataObject
) -> None:
    # A right CRC does not prove a right structure: edit the body, fix the
    # CRC, and the parser must still either accept a valid code or raise
    # InvalidBRCode (never IndexError, ValueError, InvalidAmount...).
    body = code.encode()[:-8]
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(body)))
        edit = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        char = data.draw(PRINTABLE | st.sampled_from("0123456789"))
        tail = body[position + (0 if edit == "insert" else 1) :]
        body = body[:position] + ("" if edit == "delete" else char) + tail
    text = body + "6304"
    text += crc16_hex(text.encode())
    try:
        parsed = BRCode.parse(text)
    except InvalidBRCode as error:
        field = error.field
    else:
        assert BRCode.parse(parsed.encode()) == parsed
        return
    assert field == "payload" or field[:2].isdigit()
