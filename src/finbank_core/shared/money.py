"""Money as an integer number of centavos (BRL). No floats anywhere."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

import msgspec

from finbank_core.shared.errors import InvalidAmount

#: ``[0-9]``, not ``\d`` (which also takes Arabic-Indic and other Unicode digits, that
#: ``int`` then reads), and used with ``fullmatch`` (``$`` also matches before a final
#: newline): the central bank's form is ASCII digits and nothing else
_BCB_AMOUNT: Final = re.compile(r"(0|[1-9][0-9]{0,9})\.([0-9]{2})")
_MAX_BCB_CENTS: Final = 9_999_999_999_99
#: the largest amount the central bank's API form carries (``9999999999.99``): every
#: figure a customer or a receiver sets (limits, a recurrence's amounts, a charge's) is
#: held to it, so that it can always be sent, shown and stored (PostgreSQL's bigint)
MAX_BCB_CENTS: Final = _MAX_BCB_CENTS


class Money(msgspec.Struct, frozen=True, order=True):
    """An amount of Brazilian reais in integer centavos.

    ``Money(cents=123456)`` is R$ 1.234,56. Arithmetic stays exact; negative
    values are allowed (balances can be), use :meth:`require_positive` where an
    amount to move is expected.
    """

    cents: int

    def __post_init__(self) -> None:
        if isinstance(self.cents, bool) or not isinstance(self.cents, int):
            raise InvalidAmount("amount must be an integer number of centavos")

    # -- parsing --------------------------------------------------------------

    @classmethod
    def from_bcb(cls, text: str) -> Money:
        """Parse the central bank's API form ``\\d{1,10}\\.\\d{2}`` (e.g. ``"1234.56"``).

        The digits are ASCII ones and the text is the amount whole: ``"1\\u0662.00"``
        (an Arabic-Indic two) and ``"10.00\\n"`` are refused, not read as 12.00 and 10.00.
        """
        match = _BCB_AMOUNT.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidAmount(
                "amount must look like 1234.56: digits, a dot and exactly two decimals",
                value_format="\\d{1,10}\\.\\d{2}",
            )
        return cls(int(match.group(1)) * 100 + int(match.group(2)))

    @classmethod
    def from_decimal(cls, value: Decimal | str) -> Money:
        """Convert a decimal with at most two places; refuses anything finer."""
        try:
            dec = Decimal(value)
        except (InvalidOperation, TypeError, ValueError) as exc:
            raise InvalidAmount("amount is not a decimal number") from exc
        if not dec.is_finite():
            raise InvalidAmount("amount must be finite")
        scaled = dec * 100
        if scaled != scaled.to_integral_value():
            raise InvalidAmount("amount has more than two decimal places")
        return cls(int(scaled))

    # -- formatting -----------------------------------------------------------

    def to_bcb(self) -> str:
        """The central bank's API form, e.g. ``"1234.56"``; negative amounts have none."""
        if self.cents < 0 or self.cents > _MAX_BCB_CENTS:
            raise InvalidAmount("amount out of the range the central bank's APIs accept")
        return f"{self.cents // 100}.{self.cents % 100:02d}"

    def format_brl(self) -> str:
        """Human form, ``R$ 1.234,56`` (``-R$ 1.234,56`` when negative)."""
        sign = "-" if self.cents < 0 else ""
        whole, frac = divmod(abs(self.cents), 100)
        grouped = f"{whole:,}".replace(",", ".")
        return f"{sign}R$ {grouped},{frac:02d}"

    def __str__(self) -> str:
        return self.format_brl()

    # -- arithmetic -----------------------------------------------------------

    def __add__(self, other: Money) -> Money:
        return Money(self.cents + other.cents)

    def __sub__(self, other: Money) -> Money:
        return Money(self.cents - other.cents)

    def __neg__(self) -> Money:
        return Money(-self.cents)

    def require_positive(self) -> Money:
        """Return ``self`` if it is an amount that can be moved, else raise."""
        if self.cents <= 0:
            raise InvalidAmount("amount must be greater than zero")
        return self

    @classmethod
    def zero(cls) -> Money:
        return cls(0)
