"""Account holders are validated on open: name rules, CPF/CNPJ check digits, type ↔ document.

Vectors come from outside this repository:

* validate-docbr 2.x (PyPI, dev extra) generates valid CPFs and numeric and
  alphanumeric CNPJs, and validates independently;
* Faker's ``pt_BR`` provider (PyPI, dev extra) generates valid CPFs and CNPJs
  with its own implementation;
* ``12.ABC.345/01DE-35`` is the alphanumeric CNPJ that Receita Federal uses
  as the worked example of the 2026 format (validate-docbr accepts it too,
  checked below); ``529.982.247-25`` and ``11.222.333/0001-81`` are the
  usual textbook CPF and CNPJ.
"""

from __future__ import annotations

import uuid

import pytest
from faker import Faker

from finbank import open_bank
from finbank_adapters.containers import resolve
from finbank_core.accounts.errors import InvalidHolder
from finbank_core.accounts.model import HolderType, masked_document, validate_holder
from finbank_core.accounts.use_cases import OpenAccountCommand
from finbank_core.shared.errors import InvalidInput

validate_docbr = pytest.importorskip("validate_docbr", reason="vector source (dev extra)")
CPF = validate_docbr.CPF()
CNPJ = validate_docbr.CNPJ()
FAKER = Faker("pt_BR")

RFB_ALPHANUMERIC_CNPJ = "12.ABC.345/01DE-35"
TEXTBOOK_CPF = "529.982.247-25"
TEXTBOOK_CNPJ = "11.222.333/0001-81"


def refused_field(name: str, holder_type: HolderType, document: str | None) -> str:
    with pytest.raises(InvalidHolder) as refused:
        validate_holder(name, holder_type, document)
    assert isinstance(refused.value, InvalidInput)  # 400 over HTTP
    assert refused.value.code == "invalid_holder"
    if document:
        assert document not in refused.value.message
    return str(refused.value.details["field"])


def test_the_reference_vectors_are_valid_for_validate_docbr_too() -> None:
    assert CNPJ.validate(RFB_ALPHANUMERIC_CNPJ)
    assert CPF.validate(TEXTBOOK_CPF)
    assert CNPJ.validate(TEXTBOOK_CNPJ)


def test_an_individual_with_a_cpf_is_kept_with_the_bare_number_and_a_trimmed_name() -> None:
    holder = validate_holder("  Ana Souza ", HolderType.INDIVIDUAL, TEXTBOOK_CPF)
    assert (holder.name, holder.document) == ("Ana Souza", "52998224725")


def test_a_company_with_an_alphanumeric_cnpj_is_kept_upper_case_and_bare() -> None:
    holder = validate_holder("Acme Ltda", HolderType.COMPANY, "12.abc.345/01de-35")
    assert holder.document == "12ABC34501DE35"
    assert validate_holder("Acme", HolderType.COMPANY, TEXTBOOK_CNPJ).document == "11222333000181"


def test_no_document_is_allowed_for_either_type() -> None:
    assert validate_holder("Ana", HolderType.INDIVIDUAL, None).document is None
    assert validate_holder("Acme", HolderType.COMPANY, None).document is None


@pytest.mark.parametrize(
    ("holder_type", "document"),
    [
        (HolderType.INDIVIDUAL, "hello"),
        (HolderType.INDIVIDUAL, "529.982.247-26"),  # wrong check digit
        (HolderType.INDIVIDUAL, "111.111.111-11"),  # passes the arithmetic, never issued
        (HolderType.INDIVIDUAL, TEXTBOOK_CNPJ),  # a person with a CNPJ
        (HolderType.COMPANY, TEXTBOOK_CPF),  # a company with a CPF
        (HolderType.COMPANY, "12.ABC.345/01DE-36"),
        (HolderType.COMPANY, "00.000.000/0000-00"),
        (HolderType.INDIVIDUAL, "５２９９８２２４７２５"),  # fullwidth digits
        (HolderType.INDIVIDUAL, "529982247\x0025"),
        (HolderType.INDIVIDUAL, ""),
        (HolderType.COMPANY, "1" * 40),
    ],
)
def test_bad_documents_are_refused_naming_the_field(holder_type: HolderType, document: str) -> None:
    assert refused_field("Ana", holder_type, document) == "holder_document"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "a" * 141,
        "Ana\x00Souza",
        "Ana\nSouza",
        "Ana\u200bSouza",
        "Ana\u202eSouza",
        "12345",
    ],
)
def test_bad_names_are_refused_naming_the_field(name: str) -> None:
    assert refused_field(name, HolderType.INDIVIDUAL, None) == "holder_name"


def test_a_name_of_140_characters_and_accented_names_are_accepted() -> None:
    assert len(validate_holder("a" * 140, HolderType.INDIVIDUAL, None).name) == 140
    assert validate_holder("João D'Ávila-Çé", HolderType.INDIVIDUAL, None).name == "João D'Ávila-Çé"


@pytest.mark.parametrize("masked", [False, True])
def test_validate_docbr_cpfs_open_individuals_and_never_companies(masked: bool) -> None:
    for cpf in CPF.generate_list(200, mask=masked):
        bare = cpf.replace(".", "").replace("-", "")
        assert validate_holder("Ana", HolderType.INDIVIDUAL, cpf).document == bare
        assert refused_field("Acme", HolderType.COMPANY, cpf) == "holder_document"


@pytest.mark.parametrize("masked", [False, True])
def test_validate_docbr_cnpjs_open_companies_and_never_individuals(masked: bool) -> None:
    for cnpj in CNPJ.generate_list(200, mask=masked):
        assert validate_holder("Acme", HolderType.COMPANY, cnpj).document is not None
        assert refused_field("Ana", HolderType.INDIVIDUAL, cnpj) == "holder_document"


def test_validate_docbr_alphanumeric_cnpjs_open_companies() -> None:
    # validate-docbr 2.x has no alphanumeric generator: mutate valid bases and let it judge.
    import random
    import string

    from finbank_core.pix.codes.documents import cnpj_check_digits

    rng = random.Random(2026)
    for _ in range(300):
        base = "".join(rng.choices(string.digits + string.ascii_uppercase, k=12))
        cnpj = base + cnpj_check_digits(base)
        if cnpj == cnpj[0] * 14:
            continue
        assert CNPJ.validate(cnpj)  # the independent implementation agrees
        assert validate_holder("Acme", HolderType.COMPANY, cnpj).document == cnpj
        broken = cnpj[:13] + str((int(cnpj[13]) + 1) % 10)
        assert not CNPJ.validate(broken)
        assert refused_field("Acme", HolderType.COMPANY, broken) == "holder_document"


def test_faker_documents_agree() -> None:
    FAKER.seed_instance(17)
    for _ in range(200):
        cpf, cnpj = FAKER.cpf(), FAKER.cnpj()
        assert validate_holder("Ana", HolderType.INDIVIDUAL, cpf).document is not None
        assert validate_holder("Acme", HolderType.COMPANY, cnpj).document is not None
        assert refused_field("Ana", HolderType.INDIVIDUAL, cnpj) == "holder_document"


def test_the_masked_document_shows_neither_check_digits_nor_the_cpf_prefix() -> None:
    assert masked_document("52998224725") == "***.982.247-**"
    assert masked_document("12ABC34501DE35") == "**.***.345/01DE-**"
    assert masked_document("garbage") == "***"
    assert masked_document(None) is None


async def test_a_refused_holder_leaves_nothing_written() -> None:
    async with open_bank(profile="memory") as bank:
        owner = str(uuid.uuid4())
        with pytest.raises(InvalidHolder):
            await bank.accounts.open(
                OpenAccountCommand(
                    owner_id=owner,
                    holder_name="Acme",
                    holder_type=HolderType.COMPANY,
                    holder_document=TEXTBOOK_CPF,
                )
            )
        repository = await resolve(bank.container.accounts.account_repository())
        assert await repository.list_by_owner(owner) == []
        account = await bank.accounts.open(
            OpenAccountCommand(
                owner_id=owner,
                holder_name=" Acme ",
                holder_type=HolderType.COMPANY,
                holder_document=RFB_ALPHANUMERIC_CNPJ,
            )
        )
        assert (account.holder_name, account.holder_document) == ("Acme", "12ABC34501DE35")
        assert "12ABC34501DE35" not in repr(account)
