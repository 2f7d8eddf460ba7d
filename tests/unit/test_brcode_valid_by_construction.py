"""``BRCode`` is valid by construction: what it encodes, both readers read back.

An extra template in 26-51 that carries PIX's GUI is a second PIX template:
both parsers refuse a code with two, so the constructor refuses the value
(naming the template) instead of encoding a code nobody can read. Likewise a
template in 26 that is not TLV when the PIX template sits elsewhere: 26 is
PIX's slot, and the parser reports its defect.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finbank_core.pix import BRCode, InvalidBRCode
from finbank_core.pix.codes.brcode_reader import BRCodeReading, read_brcode


def build(**changes: object) -> BRCode:
    fields: dict[str, object] = {
        "merchant_name": "N",
        "merchant_city": "C",
        "pix_key": "a@b.com",
    }
    fields.update(changes)
    return BRCode(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field_id", "value"),
    [
        ("27", "0014br.gov.bcb.pix0105abcde"),  # the probe's value
        ("51", "0014BR.GOV.BCB.PIX0105abcde"),  # the parsers compare the GUI case-insensitively
        ("30", "0105abcde0014Br.Gov.Bcb.Pix"),  # 00 need not come first
        ("44", "0014br.gov.bcb.pix0100"),  # tolerant reading walks empty sub-fields
        ("26", "0014br.gov.bcb.pix2510pix.ex/abc"),  # 26 as an extra, PIX template in 27
    ],
)
def test_a_second_template_with_the_pix_gui_is_refused(field_id: str, value: str) -> None:
    account_id = "27" if field_id == "26" else "26"
    with pytest.raises(InvalidBRCode) as caught:
        build(merchant_account_id=account_id, extra_templates=((field_id, value),))
    assert caught.value.field == field_id


def test_a_non_tlv_template_in_26_is_refused_when_pix_sits_elsewhere() -> None:
    with pytest.raises(InvalidBRCode) as caught:
        build(merchant_account_id="27", extra_templates=(("26", "not tlv"),))
    assert caught.value.field == "26"


@pytest.mark.parametrize(
    ("field_id", "value"),
    [
        ("27", "0014br.com.example0105abcde"),  # another arrangement
        ("28", "0014br.gov.bcb.pixjunk"),  # not TLV: opaque, skipped by the parsers
        ("80", "0014br.gov.bcb.pix0105abcde"),  # 80-99 is not a merchant account
        ("02", "0014br.gov.bcb.pix0105abcde"),  # nor are ids under 26
    ],
)
def test_other_templates_are_kept_and_round_trip(field_id: str, value: str) -> None:
    code = build(extra_templates=((field_id, value),))
    assert BRCode.parse(code.encode()) == code
    assert read_brcode(code.encode()) == BRCodeReading.of(code)


TEMPLATE_VALUES = st.sampled_from(
    [
        "0014br.gov.bcb.pix0105abcde",
        "0014BR.GOV.BCB.PIX0100",
        "0014br.gov.bcb.pix2520pix.example.com/rec/1",
        "0100",
        "0014br.com.example0105abcde",
        "not tlv",
    ]
)
EXTRA_IDS = [f"{i:02d}" for i in [*range(2, 52), *range(64, 100)]]


@settings(max_examples=300, deadline=None)
@given(
    account_id=st.sampled_from(["26", "27", "51"]),
    templates=st.dictionaries(st.sampled_from(EXTRA_IDS), TEMPLATE_VALUES, max_size=3),
    dynamic=st.booleans(),
)
def test_every_code_we_can_build_reads_back_in_both_modes(
    account_id: str, templates: dict[str, str], dynamic: bool
) -> None:
    extras = tuple(sorted((f, v) for f, v in templates.items() if f != account_id))
    payment = {"location_url": "pix.example.com/v2/abc"} if dynamic else {"pix_key": "a@b.com"}
    try:
        code = BRCode(
            merchant_name="N",
            merchant_city="C",
            merchant_account_id=account_id,
            extra_templates=extras,
            **payment,  # type: ignore[arg-type]
        )
    except InvalidBRCode:
        return
    text = code.encode()
    assert BRCode.parse(text) == code
    assert read_brcode(text) == BRCodeReading.of(code)
