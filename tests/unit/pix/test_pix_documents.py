"""CPF and CNPJ: check digits, validation, normalisation, masking."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finbank_core.pix import (
    InvalidDocument,
    cnpj_check_digits,
    cpf_check_digits,
    format_cnpj,
    generate_cnpj,
    generate_cpf,
    is_valid_cnpj,
    is_valid_cpf,
    mask_document,
    normalize_cnpj,
    normalize_cpf,
    parse_cnpj,
    parse_cpf,
)

seeds = st.integers(min_value=0, max_value=2**32)
CNPJ_CHARS = string.digits + string.ascii_uppercase

# -- CPF ----------------------------------------------------------------------


def test_domain_example_cpf_is_valid() -> None:
    assert is_valid_cpf("52998224725")
    assert cpf_check_digits("529982247") == "25"


def test_formatted_cpf_is_valid() -> None:
    assert is_valid_cpf("529.982.247-25")
    assert is_valid_cpf(" 529 982 247 25 ")


def test_cpf_with_wrong_check_digit_is_refused() -> None:
    assert not is_valid_cpf("52998224726")
    assert not is_valid_cpf("52998224715")


@pytest.mark.parametrize("digit", string.digits)
def test_all_equal_cpf_is_refused_although_its_check_digits_match(digit: str) -> None:
    cpf = digit * 11
    assert cpf_check_digits(cpf[:9]) == cpf[9:]
    assert not is_valid_cpf(cpf)


@pytest.mark.parametrize(
    "text",
    ["5299822472", "529982247250", "5299822472a", "", "５２９９８２２４７２５", "52998224725\n1"],
)
def test_cpf_of_wrong_length_or_characters_is_refused(text: str) -> None:
    assert not is_valid_cpf(text)


def test_cpf_with_non_ascii_digits_is_refused() -> None:
    # "٥" is ARABIC-INDIC DIGIT FIVE: str.isdigit() says yes, a CPF says no.
    assert not is_valid_cpf("٥2998224725")


def test_cpf_check_digit_is_eleven_minus_remainder_or_zero_below_two() -> None:
    assert cpf_check_digits("000000001")[0] == "9"  # sum 2: r = 2 -> 11 - 2
    assert cpf_check_digits("100000000")[0] == "1"  # sum 10: r = 10 -> 11 - 10
    assert cpf_check_digits("000020000")[0] == "0"  # sum 12: r = 1 -> 0
    assert cpf_check_digits("000000000") == "00"  # r = 0 -> 0


def test_cpf_check_digits_refuse_a_bad_base() -> None:
    with pytest.raises(InvalidDocument):
        cpf_check_digits("12345678")
    with pytest.raises(InvalidDocument):
        cpf_check_digits("12345678a")


def test_normalize_cpf_strips_punctuation_and_whitespace_only() -> None:
    assert normalize_cpf(" 529.982.247-25 ") == "52998224725"
    assert normalize_cpf("529/982") == "529982"
    assert normalize_cpf("abc") == "abc"


def test_parse_cpf_returns_bare_digits_or_raises_without_echoing_the_number() -> None:
    assert parse_cpf("529.982.247-25") == "52998224725"
    with pytest.raises(InvalidDocument) as caught:
        parse_cpf("529.982.247-26")
    assert "52998224726" not in str(caught.value)
    assert "529.982.247-26" not in str(caught.value)
    assert caught.value.code == "invalid_document"


# -- CNPJ ---------------------------------------------------------------------


def test_domain_example_cnpj_is_valid_bare_and_formatted() -> None:
    assert is_valid_cnpj("11222333000181")
    assert is_valid_cnpj("11.222.333/0001-81")
    assert cnpj_check_digits("112223330001") == "81"


def test_alphanumeric_cnpj_is_valid() -> None:
    # Example published by the Receita Federal for the 2026 format.
    assert cnpj_check_digits("12ABC34501DE") == "35"
    assert is_valid_cnpj("12ABC34501DE35")
    assert is_valid_cnpj("12.ABC.345/01DE-35")


def test_alphanumeric_cnpj_in_lowercase_is_refused_but_normalizes() -> None:
    assert not is_valid_cnpj("12abc34501de35")
    assert normalize_cnpj("12.abc.345/01de-35") == "12ABC34501DE35"
    assert parse_cnpj("12.abc.345/01de-35") == "12ABC34501DE35"


def test_cnpj_with_letters_in_check_digits_is_refused() -> None:
    assert not is_valid_cnpj("12ABC34501DE3A")


def test_cnpj_with_non_ascii_letters_is_refused() -> None:
    assert not is_valid_cnpj("12ÁBC34501DE35")
    assert normalize_cnpj("ßa") == "ßA"  # only ASCII is upper-cased; length kept


def test_cnpj_with_wrong_check_digit_is_refused() -> None:
    assert not is_valid_cnpj("11222333000182")
    with pytest.raises(InvalidDocument):
        parse_cnpj("11222333000182")


def test_all_equal_cnpj_is_refused() -> None:
    assert cnpj_check_digits("000000000000") == "00"
    assert not is_valid_cnpj("00000000000000")


def test_cnpj_check_digits_refuse_a_bad_base() -> None:
    with pytest.raises(InvalidDocument):
        cnpj_check_digits("11222333000")
    with pytest.raises(InvalidDocument):
        cnpj_check_digits("11222333000a")


# -- masking --------------------------------------------------------------------


def test_cpf_is_masked_like_the_dict_does() -> None:
    assert mask_document("52998224725") == "***.982.247-**"
    assert mask_document("529.982.247-25") == "***.982.247-**"


def test_cnpj_is_shown_formatted_in_full() -> None:
    assert mask_document("11222333000181") == "11.222.333/0001-81"
    assert format_cnpj("12abc34501de35") == "12.ABC.345/01DE-35"


def test_masking_an_invalid_document_is_refused() -> None:
    with pytest.raises(InvalidDocument):
        mask_document("52998224726")


# -- generation and single-character changes -------------------------------------


@given(seeds)
def test_generated_cpf_is_valid(seed: int) -> None:
    cpf = generate_cpf(random.Random(seed))
    assert len(cpf) == 11
    assert is_valid_cpf(cpf)


@given(seeds, st.booleans())
def test_generated_cnpj_is_valid(seed: int, alphanumeric: bool) -> None:
    cnpj = generate_cnpj(random.Random(seed), alphanumeric=alphanumeric)
    assert len(cnpj) == 14
    assert is_valid_cnpj(cnpj)
    assert cnpj[12:].isdigit()
    if not alphanumeric:
        assert cnpj.isdigit()


@given(seeds, st.integers(0, 10), st.integers(1, 9))
def test_changing_one_cpf_digit_breaks_it_except_at_the_two_blind_spots(
    seed: int, position: int, step: int
) -> None:
    # Claimed often, but not true: mod 11 maps remainders 0 and 1 to the same
    # digit 0, so some changes keep DV1 and DV2. Worked out and checked
    # exhaustively: only position 0 with a change of +-1 (its DV2 weight is
    # 11 = 0 mod 11) and position 5 with +-2 or +-9 can slip through.
    cpf = generate_cpf(random.Random(seed))
    new_digit = (int(cpf[position]) + step) % 10
    changed = cpf[:position] + str(new_digit) + cpf[position + 1 :]
    delta = abs(new_digit - int(cpf[position]))
    blind_spot = (position == 0 and delta == 1) or (position == 5 and delta in (2, 9))
    if not blind_spot:
        assert not is_valid_cpf(changed)


def test_a_cpf_digit_change_can_go_unnoticed_at_position_zero() -> None:
    # 82298295603 and 92298295603 share both check digits.
    assert is_valid_cpf("82298295603")
    assert is_valid_cpf("92298295603")


@given(seeds, st.booleans(), st.integers(0, 13), st.sampled_from(CNPJ_CHARS))
def test_changing_one_cnpj_character_breaks_it_unless_delta_is_a_multiple_of_11(
    seed: int, alphanumeric: bool, position: int, new_char: str
) -> None:
    # Same mod-11 blind spots as the CPF (positions 0, 4 and 8 here), plus one
    # the alphanumeric scheme adds: characters whose values differ by a
    # multiple of 11 ("0" = 0 and "F" = 22, "1" and "G"...) are
    # interchangeable anywhere in the first 12 positions.
    cnpj = generate_cnpj(random.Random(seed), alphanumeric=alphanumeric)
    if new_char == cnpj[position]:
        return
    changed = cnpj[:position] + new_char + cnpj[position + 1 :]
    delta = (ord(new_char) - ord(cnpj[position])) % 11
    check_digit_changed = position >= 12  # always caught
    outside_blind_spots = delta != 0 and position not in (0, 4, 8)
    if check_digit_changed or outside_blind_spots:
        assert not is_valid_cnpj(changed)


def test_swapping_one_for_g_in_an_alphanumeric_cnpj_goes_unnoticed() -> None:
    # "1" = 1 and "G" = 23: a difference of 22, invisible to mod 11.
    assert is_valid_cnpj("12ABC34501DE35")
    assert is_valid_cnpj("12ABC3450GDE35")
