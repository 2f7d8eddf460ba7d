"""No personal data in the repr of a BR Code or of its reading.

The key, the merchant's name (a sole trader is named after a person) and
the free text (the description 26-02, other sub-fields of 26 and 62, which
may hold a customer label or a phone) are masked in both ``BRCode`` and
``BRCodeReading``, as ``masked_repr`` does elsewhere: ``'***'`` when present,
``None`` or ``()`` when absent.
"""

from __future__ import annotations

from finbank_core.pix import BRCode
from finbank_core.pix.codes.brcode_reader import read_brcode

NAME = "Maria Joaquina Souza"
DESCRIPTION = "CPF 52998224725"
LABEL = "Maria 11987654321"


def sample() -> BRCode:
    return BRCode(
        pix_key="52998224725",
        merchant_name=NAME,
        merchant_city="SAO PAULO",
        description=DESCRIPTION,
        merchant_account_extra=(("03", LABEL),),
        additional_data_extra=(("06", LABEL),),
    )


def test_brcode_repr_masks_name_description_and_free_text() -> None:
    shown = repr(sample())
    for secret in ("52998224725", NAME, "Maria", "11987654321"):
        assert secret not in shown
    assert "merchant_name='***'" in shown
    assert "description='***'" in shown
    assert "merchant_account_extra='***'" in shown
    assert "additional_data_extra='***'" in shown
    assert "merchant_city='SAO PAULO'" in shown


def test_reading_repr_masks_name_and_description() -> None:
    shown = repr(read_brcode(sample().encode()))
    for secret in ("52998224725", NAME, "Maria"):
        assert secret not in shown
    assert "merchant_name='***'" in shown
    assert "description='***'" in shown


def test_absent_values_stay_visible_as_absent() -> None:
    code = BRCode(pix_key="a@b.com", merchant_name=NAME, merchant_city="SAO PAULO")
    shown = repr(code)
    assert "description=None" in shown
    assert "merchant_account_extra=()" in shown
    assert "additional_data_extra=()" in shown
    assert "description=None" in repr(read_brcode(code.encode()))
