"""CPF and CNPJ: normalisation, check digits, validation, masking, generation.

Rules:

* CPF: 11 ASCII digits; DV1 uses weights 10..2 over the first 9 digits, DV2
  weights 11..2 over the first 10; ``r = sum % 11``, digit ``0 if r < 2 else
  11 - r``. All-equal numbers (``111.111.111-11``) pass the arithmetic but are
  not issued, so they are refused.
* CNPJ: 12 characters ``[0-9A-Z]`` then 2 numeric check digits; each
  character is worth ``ord(c) - 48`` (digits keep their value, ``A`` = 17), so
  the numeric CNPJs issued until 2026 and the alphanumeric ones issued after
  validate with the same code. All-equal numbers are refused too.

``is_valid_*`` accept the bare form and the usual formatted forms: they ignore
``.``, ``-``, ``/`` and whitespace wherever they are. Anything else (letters in
a CPF, lowercase or non-ASCII letters in a CNPJ) makes a number invalid.
``normalize_*`` only strip that punctuation (and upper-case the ASCII letters
of a CNPJ) without validating; ``parse_*`` normalise *and* validate.
"""

from __future__ import annotations

import random
import string
from typing import Final

from finbank_core.pix.errors import InvalidDocument

_PUNCTUATION: Final = str.maketrans("", "", ".-/")
_ASCII_UPPER: Final = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
_CNPJ_BODY_CHARS: Final = frozenset(string.digits + string.ascii_uppercase)
_CPF_DV1_WEIGHTS: Final = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_CPF_DV2_WEIGHTS: Final = (11, 10, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_DV1_WEIGHTS: Final = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_DV2_WEIGHTS: Final = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_ALNUM_UPPER: Final = string.digits + string.ascii_uppercase


def _strip(text: str) -> str:
    return "".join(text.translate(_PUNCTUATION).split())


def _mod11_digit(values: list[int], weights: tuple[int, ...]) -> int:
    remainder = sum(v * w for v, w in zip(values, weights, strict=True)) % 11
    return 0 if remainder < 2 else 11 - remainder


def _is_ascii_digits(text: str) -> bool:
    # str.isdigit alone accepts e.g. Arabic-Indic and superscript digits.
    return text.isascii() and text.isdigit()


# -- CPF ----------------------------------------------------------------------


def normalize_cpf(text: str) -> str:
    """Strip ``.``, ``-``, ``/`` and whitespace; no validation."""
    return _strip(text)


def cpf_check_digits(base: str) -> str:
    """The two check digits of a CPF whose first 9 digits are ``base``.

    Raises ``InvalidDocument`` unless ``base`` is exactly 9 ASCII digits.
    """
    if len(base) != 9 or not _is_ascii_digits(base):
        raise InvalidDocument("a CPF base must be 9 digits")
    values = [ord(c) - 48 for c in base]
    dv1 = _mod11_digit(values, _CPF_DV1_WEIGHTS)
    values.append(dv1)
    dv2 = _mod11_digit(values, _CPF_DV2_WEIGHTS)
    return f"{dv1}{dv2}"


def _is_valid_bare_cpf(cpf: str) -> bool:
    if len(cpf) != 11 or not _is_ascii_digits(cpf) or cpf == cpf[0] * 11:
        return False
    return cpf_check_digits(cpf[:9]) == cpf[9:]


def is_valid_cpf(text: str) -> bool:
    """True iff ``text``, bare or formatted (``529.982.247-25``), is a valid CPF."""
    return _is_valid_bare_cpf(_strip(text))


def parse_cpf(text: str) -> str:
    """The bare 11-digit form of a valid CPF; ``InvalidDocument`` otherwise."""
    cpf = _strip(text)
    if len(cpf) != 11 or not _is_ascii_digits(cpf):
        raise InvalidDocument("a CPF must have 11 digits")
    if not _is_valid_bare_cpf(cpf):
        raise InvalidDocument("CPF check digits do not match")
    return cpf


# -- CNPJ ---------------------------------------------------------------------


def normalize_cnpj(text: str) -> str:
    """Strip ``.``, ``-``, ``/`` and whitespace and upper-case ASCII letters.

    Only ASCII letters are upper-cased: ``str.upper`` would turn ``ß`` into
    ``SS`` and change the length. No validation.
    """
    return _strip(text).translate(_ASCII_UPPER)


def cnpj_check_digits(base: str) -> str:
    """The two check digits of a CNPJ whose first 12 characters are ``base``.

    ``base`` is 12 characters of ``[0-9A-Z]`` (numeric or alphanumeric CNPJ);
    anything else raises ``InvalidDocument``.
    """
    if len(base) != 12 or not _CNPJ_BODY_CHARS.issuperset(base):
        raise InvalidDocument("a CNPJ base must be 12 characters of 0-9 or A-Z")
    values = [ord(c) - 48 for c in base]
    dv1 = _mod11_digit(values, _CNPJ_DV1_WEIGHTS)
    values.append(dv1)
    dv2 = _mod11_digit(values, _CNPJ_DV2_WEIGHTS)
    return f"{dv1}{dv2}"


def _is_valid_bare_cnpj(cnpj: str) -> bool:
    if (
        len(cnpj) != 14
        or not _CNPJ_BODY_CHARS.issuperset(cnpj[:12])
        or not _is_ascii_digits(cnpj[12:])
        or cnpj == cnpj[0] * 14
    ):
        return False
    return cnpj_check_digits(cnpj[:12]) == cnpj[12:]


def is_valid_cnpj(text: str) -> bool:
    """True iff ``text``, bare or formatted (``11.222.333/0001-81``), is a valid CNPJ.

    Numeric and alphanumeric CNPJs are accepted; letters must be uppercase
    ASCII (use :func:`normalize_cnpj` or :func:`parse_cnpj` on user input).
    """
    return _is_valid_bare_cnpj(_strip(text))


def parse_cnpj(text: str) -> str:
    """The bare 14-character form of a valid CNPJ (letters upper-cased).

    Raises ``InvalidDocument`` if it is not one.
    """
    cnpj = normalize_cnpj(text)
    if len(cnpj) != 14:
        raise InvalidDocument("a CNPJ must have 14 characters")
    if not _CNPJ_BODY_CHARS.issuperset(cnpj[:12]) or not _is_ascii_digits(cnpj[12:]):
        raise InvalidDocument("a CNPJ is 12 characters of 0-9 or A-Z and 2 check digits")
    if not _is_valid_bare_cnpj(cnpj):
        raise InvalidDocument("CNPJ check digits do not match")
    return cnpj


# -- display and generation -----------------------------------------------------


def format_cnpj(cnpj: str) -> str:
    """``11.222.333/0001-81`` from a valid CNPJ in any accepted form."""
    bare = parse_cnpj(cnpj)
    return f"{bare[:2]}.{bare[2:5]}.{bare[5:8]}/{bare[8:12]}-{bare[12:]}"


def mask_document(document: str) -> str:
    """A CPF or CNPJ as it may be shown to someone other than its holder.

    A CPF is masked the way the DICT returns it, ``***.982.247-**``: it
    identifies a person. A CNPJ is public registry data, so it is only
    formatted (``11.222.333/0001-81``). Raises ``InvalidDocument`` if
    ``document`` is neither a valid CPF nor a valid CNPJ.
    """
    bare = _strip(document)
    if _is_valid_bare_cpf(bare):
        return f"***.{bare[3:6]}.{bare[6:9]}-**"
    if _is_valid_bare_cnpj(bare.translate(_ASCII_UPPER)):
        return format_cnpj(bare)
    raise InvalidDocument("not a valid CPF or CNPJ")


def generate_cpf(rng: random.Random) -> str:
    """A random valid CPF (bare digits), for tests and demos; never all-equal."""
    while True:
        base = "".join(rng.choices(string.digits, k=9))
        cpf = base + cpf_check_digits(base)
        if cpf != cpf[0] * 11:
            return cpf


def generate_cnpj(rng: random.Random, *, alphanumeric: bool = False) -> str:
    """A random valid CNPJ (bare), numeric or with letters in its first 12 chars."""
    alphabet = _ALNUM_UPPER if alphanumeric else string.digits
    while True:
        base = "".join(rng.choices(alphabet, k=12))
        cnpj = base + cnpj_check_digits(base)
        if cnpj != cnpj[0] * 14:
            return cnpj
