"""Differential: our CPF/CNPJ validation against the validate-docbr package (2.x).

validate-docbr differs on purpose in three places, so inputs are kept where
both define the same thing:

* its CPF pads fewer than 11 digits with leading zeros (we refuse them), so
  only 11-digit inputs are compared;
* its CNPJ upper-cases lowercase letters (we refuse lowercase in
  validation and upper-case only in ``normalize_cnpj``), so only uppercase
  inputs are compared directly, and lowercase ones after ``normalize_cnpj``;
* it strips only ``.``/``-`` (CPF) and ``.``/``/``/``-`` (CNPJ), no spaces.

Version 2.x validates alphanumeric CNPJs with the same ``ord(c) - 48`` rule,
so those are compared too.
"""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finbank_core.pix import (
    generate_cnpj,
    generate_cpf,
    is_valid_cnpj,
    is_valid_cpf,
    normalize_cnpj,
)

validate_docbr = pytest.importorskip("validate_docbr", reason="differential oracle (dev extra)")
CPF = validate_docbr.CPF()
CNPJ = validate_docbr.CNPJ()

seeds = st.integers(0, 2**32)
digits11 = st.text(string.digits, min_size=11, max_size=11)
cnpj_like = st.tuples(
    st.text(string.digits + string.ascii_uppercase, min_size=12, max_size=12),
    st.text(string.digits, min_size=2, max_size=2),
).map("".join)


def _format_cpf(cpf: str) -> str:
    return f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}"


def _format_cnpj(cnpj: str) -> str:
    return f"{cnpj[:2]}.{cnpj[2:5]}.{cnpj[5:8]}/{cnpj[8:12]}-{cnpj[12:]}"


@given(digits11)
def test_cpf_agrees_on_random_digit_strings(text: str) -> None:
    assert is_valid_cpf(text) == CPF.validate(text)


@given(seeds)
def test_cpf_agrees_on_valid_generated_numbers_bare_and_formatted(seed: int) -> None:
    cpf = generate_cpf(random.Random(seed))
    assert CPF.validate(cpf)
    assert is_valid_cpf(_format_cpf(cpf)) == CPF.validate(_format_cpf(cpf)) is True


@given(seeds, st.integers(0, 10), st.sampled_from(string.digits))
def test_cpf_agrees_on_single_digit_changes(seed: int, position: int, digit: str) -> None:
    cpf = generate_cpf(random.Random(seed))
    changed = cpf[:position] + digit + cpf[position + 1 :]
    assert is_valid_cpf(changed) == CPF.validate(changed)


@pytest.mark.parametrize("digit", string.digits)
def test_cpf_agrees_on_all_equal_digits(digit: str) -> None:
    assert is_valid_cpf(digit * 11) is CPF.validate(digit * 11) is False


@given(st.text(string.digits, min_size=14, max_size=14))
def test_numeric_cnpj_agrees_on_random_digit_strings(text: str) -> None:
    assert is_valid_cnpj(text) == CNPJ.validate(text)


@given(cnpj_like)
def test_alphanumeric_cnpj_agrees_on_random_strings(text: str) -> None:
    assert is_valid_cnpj(text) == CNPJ.validate(text)


@given(seeds, st.booleans())
def test_cnpj_agrees_on_valid_generated_numbers_bare_and_formatted(
    seed: int, alphanumeric: bool
) -> None:
    cnpj = generate_cnpj(random.Random(seed), alphanumeric=alphanumeric)
    assert CNPJ.validate(cnpj)
    assert is_valid_cnpj(_format_cnpj(cnpj)) == CNPJ.validate(_format_cnpj(cnpj)) is True


@given(seeds, st.integers(0, 13), st.sampled_from(string.digits + string.ascii_uppercase))
def test_cnpj_agrees_on_single_character_changes(seed: int, position: int, char: str) -> None:
    cnpj = generate_cnpj(random.Random(seed), alphanumeric=True)
    changed = cnpj[:position] + char + cnpj[position + 1 :]
    assert is_valid_cnpj(changed) == CNPJ.validate(changed)


@given(seeds)
def test_lowercase_cnpj_agrees_only_after_normalisation(seed: int) -> None:
    cnpj = generate_cnpj(random.Random(seed), alphanumeric=True)
    lowered = cnpj.lower()
    assert CNPJ.validate(lowered)
    assert is_valid_cnpj(normalize_cnpj(lowered))
    if lowered != cnpj:  # it had letters
        assert not is_valid_cnpj(lowered)
