"""Money: integer centavos, exact parsing and formatting."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finbank_core.shared.errors import InvalidAmount
from finbank_core.shared.money import Money


@pytest.mark.parametrize(
    ("text", "cents"),
    [("0.00", 0), ("0.01", 1), ("1234.56", 123456), ("9999999999.99", 999999999999)],
)
def test_central_bank_form_is_parsed_to_centavos(text: str, cents: int) -> None:
    assert Money.from_bcb(text).cents == cents


@pytest.mark.parametrize(
    "text",
    ["1234.5", "1234", "01.00", "-1.00", "1,00", "1.000", " 1.00", "1e3", "", "12345678901.00"],
)
def test_malformed_amounts_are_refused(text: str) -> None:
    with pytest.raises(InvalidAmount):
        Money.from_bcb(text)


@pytest.mark.parametrize(
    ("cents", "human"),
    [
        (0, "R$ 0,00"),
        (5, "R$ 0,05"),
        (123456, "R$ 1.234,56"),
        (100000000, "R$ 1.000.000,00"),
        (-12345, "-R$ 123,45"),
    ],
)
def test_human_form_uses_brazilian_separators(cents: int, human: str) -> None:
    assert Money(cents).format_brl() == human


@given(st.integers(min_value=0, max_value=999999999999))
def test_central_bank_form_round_trips(cents: int) -> None:
    assert Money.from_bcb(Money(cents).to_bcb()) == Money(cents)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_decimal_conversion_is_exact(cents: int) -> None:
    assert Money.from_decimal(Decimal(cents) / 100) == Money(cents)


def test_fractions_of_a_centavo_are_refused() -> None:
    with pytest.raises(InvalidAmount):
        Money.from_decimal("0.001")
    with pytest.raises(InvalidAmount):
        Money.from_decimal("NaN")


def test_floats_and_bools_are_not_money() -> None:
    with pytest.raises(InvalidAmount):
        Money(1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidAmount):
        Money(True)


def test_arithmetic_is_exact_and_ordered() -> None:
    assert Money(10) + Money(5) == Money(15)
    assert Money(10) - Money(15) == Money(-5)
    assert Money(1) < Money(2)
    with pytest.raises(InvalidAmount):
        Money(0).require_positive()
    with pytest.raises(InvalidAmount):
        Money(-1).to_bcb()
