"""``Money.from_bcb`` reads ASCII digits and the whole text, nothing else.

``\\d`` matches every Unicode decimal digit and ``int`` reads them, so an
Arabic-Indic or full-width amount used to come out as a real number; ``$``
matches before a final newline, so ``"10.00\\n"`` used to be accepted.
"""

from __future__ import annotations

import pytest

from finbank_core.shared.errors import InvalidAmount
from finbank_core.shared.money import Money


@pytest.mark.parametrize(
    "text",
    [
        "1\u0662.\u0663\u0664",  # Arabic-Indic digits after the first: was read as 12.34
        "1.0\u0665",  # an Arabic-Indic five in the centavos: was read as 1.05
        "1\uff10.00",  # a full-width zero: was read as 10.00
        "10.00\n",  # $ matches before a final newline: was read as 10.00
    ],
)
def test_non_ascii_digits_and_a_trailing_newline_are_refused(text: str) -> None:
    with pytest.raises(InvalidAmount):
        Money.from_bcb(text)
