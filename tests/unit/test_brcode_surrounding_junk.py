"""Blanks and invisible characters around a pasted code, in any mix.

Tolerant reading strips every blank, zero-width character and BOM at both
ends, however they alternate (``"\\u200b \\u200b"`` from a chat app), and
notes ``surrounding_whitespace``; strict reading refuses the code saying so,
naming the payload, instead of blaming the CRC (63) or the text.
"""

from __future__ import annotations

import pytest

from finbank_core.pix import BRCode, InvalidBRCode
from finbank_core.pix.codes.brcode_reader import read_brcode

MANUAL = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
MIXES = [
    ("\u200b \u200b", ""),
    ("", " \u200b \ufeff\n"),
    (" \u2060\u00a0\u200b", "\u200d\r\n\u200c "),
    ("\ufeff\u3000\u200b\t", "\u200b\u3000"),
]


@pytest.mark.parametrize(("before", "after"), MIXES)
def test_tolerant_reading_strips_any_mix_at_the_ends(before: str, after: str) -> None:
    reading = read_brcode(before + MANUAL + after)
    assert [(d.code, d.field) for d in reading.deviations] == [
        ("surrounding_whitespace", "payload")
    ]
    assert reading.pix_key == "123e4567-e12b-12d1-a456-426655440000"


@pytest.mark.parametrize(
    ("before", "after"), [*MIXES, (" ", ""), ("", "\n"), ("\u200b", ""), ("", "\t")]
)
def test_strict_reading_says_what_is_wrong(before: str, after: str) -> None:
    with pytest.raises(InvalidBRCode) as caught:
        BRCode.parse(before + MANUAL + after)
    assert caught.value.field == "payload"
    assert "around the code" in str(caught.value)


def test_a_long_alternating_mix_is_stripped_in_one_pass() -> None:
    junk = "\u200b " * 5_000
    assert read_brcode(junk + MANUAL + junk).merchant_city == "BRASILIA"


def test_junk_inside_the_code_is_still_refused() -> None:
    with pytest.raises(InvalidBRCode):
        read_brcode(MANUAL[:60] + "\u200b " + MANUAL[60:])
