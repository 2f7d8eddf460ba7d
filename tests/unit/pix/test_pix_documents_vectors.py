"""CPF and CNPJ vectors from other implementations' test suites, with their sources.

``corpus/documents.json`` holds the vectors of python-stdnum (numeric CNPJs
found online, CPF), cnpj-alfa-validator (alphanumeric CNPJ, including the
Receita Federal's example ``12.ABC.345/01DE-35``, and the malformed inputs
it refuses), validate-docbr (all-equal CPFs), brdoc (Go) and cpf_cnpj (Ruby),
a list of test CNPJs and Banco do Brasil's test CPF key. We agree with every
verdict; where a source's comment suggests other check digits, ``why`` says
which ones modulo 11 gives.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from finbank_core.pix import cnpj_check_digits, is_valid_cnpj, is_valid_cpf

VECTORS: dict[str, list[dict[str, Any]]] = json.loads(
    (pathlib.Path(__file__).parent / "corpus" / "documents.json").read_text(encoding="utf-8")
)


def test_every_vector_has_a_source_and_alphanumeric_cnpjs_are_among_them() -> None:
    everything = VECTORS["cnpj"] + VECTORS["cpf"] + VECTORS["cnpj_check_digits"]
    assert all(vector["source"].startswith("https://github.com/") for vector in everything)
    assert any(v["valid"] and any(c.isalpha() for c in v["value"]) for v in VECTORS["cnpj"])


def ids(kind: str) -> list[str]:
    """Test ids that name the vector's position, not the document number."""
    return [f"{kind}-{i}" for i in range(len(VECTORS[kind]))]


@pytest.mark.parametrize("vector", VECTORS["cnpj"], ids=ids("cnpj"))
def test_cnpj_vectors(vector: dict[str, Any]) -> None:
    assert is_valid_cnpj(vector["value"]) is vector["valid"]


@pytest.mark.parametrize("vector", VECTORS["cpf"], ids=ids("cpf"))
def test_cpf_vectors(vector: dict[str, Any]) -> None:
    assert is_valid_cpf(vector["value"]) is vector["valid"]


@pytest.mark.parametrize("vector", VECTORS["cnpj_check_digits"], ids=ids("cnpj_check_digits"))
def test_cnpj_check_digit_vectors(vector: dict[str, Any]) -> None:
    assert cnpj_check_digits(vector["base"]) == vector["digits"]
