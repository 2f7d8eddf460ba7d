"""PIX keys: normalisation, inference of the type, refusals, masking."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from finbank_core.pix import (
    MAX_KEY_LENGTH,
    InvalidPixKey,
    PixKey,
    PixKeyType,
    generate_cnpj,
    generate_cpf,
)

# -- inference ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key_type", "value"),
    [
        ("52998224725", PixKeyType.CPF, "52998224725"),
        ("529.982.247-25", PixKeyType.CPF, "52998224725"),
        ("11222333000181", PixKeyType.CNPJ, "11222333000181"),
        ("11.222.333/0001-81", PixKeyType.CNPJ, "11222333000181"),
        ("12.abc.345/01de-35", PixKeyType.CNPJ, "12ABC34501DE35"),
        ("+5511987654321", PixKeyType.PHONE, "+5511987654321"),
        ("+55 (11) 98765-4321", PixKeyType.PHONE, "+5511987654321"),
        ("Fulano.Tal@Example.COM", PixKeyType.EMAIL, "fulano.tal@example.com"),
        (
            "123E4567-E12B-12D1-A456-426655440000",
            PixKeyType.EVP,
            "123e4567-e12b-12d1-a456-426655440000",
        ),
        ("  52998224725\n", PixKeyType.CPF, "52998224725"),
    ],
)
def test_key_type_is_inferred_and_value_normalised(
    raw: str, key_type: PixKeyType, value: str
) -> None:
    key = PixKey.parse(raw)
    assert key == PixKey(key_type, value)


def test_eleven_digits_failing_the_cpf_check_are_not_read_as_a_phone() -> None:
    with pytest.raises(InvalidPixKey) as caught:
        PixKey.parse("11987654321")
    message = str(caught.value)
    assert "not a valid CPF" in message
    assert "+5511987654321" in message  # the E.164 hint, an example, not the input
    assert "11987654321" not in message.replace("+5511987654321", "")


def test_a_valid_cpf_is_never_read_as_a_phone() -> None:
    assert PixKey.parse("52998224725").type is PixKeyType.CPF


def test_fourteen_characters_failing_the_cnpj_check_are_refused() -> None:
    with pytest.raises(InvalidPixKey, match="not a valid CNPJ"):
        PixKey.parse("11222333000182")


def test_phone_without_plus_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidPixKey, match=r"E\.164"):
        PixKey.parse("5511987654321")


@pytest.mark.parametrize("raw", ["", "   ", "hello", "abc-def", "12345", "+", "@"])
def test_unrecognisable_keys_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPixKey):
        PixKey.parse(raw)


# -- explicit type ----------------------------------------------------------------


def test_explicit_type_validates_against_that_type_only() -> None:
    assert PixKey.parse("52998224725", PixKeyType.CPF).type is PixKeyType.CPF
    with pytest.raises(InvalidPixKey):
        PixKey.parse("52998224725", PixKeyType.PHONE)
    with pytest.raises(InvalidPixKey):
        PixKey.parse("+5511987654321", PixKeyType.CPF)
    with pytest.raises(InvalidPixKey):
        PixKey.parse("11222333000181", PixKeyType.CPF)


@pytest.mark.parametrize(
    "raw",
    [
        "+0511987654321",
        "+5",
        "+55119876543210000",
        "+5561912345678901",  # 16 digits (brdoc's test suite): E.164 allows 15
        "+55 11 9876a4321",
        "+５５11987654321",
    ],
)
def test_phone_outside_e164_is_refused(raw: str) -> None:
    with pytest.raises(InvalidPixKey):
        PixKey.parse(raw, PixKeyType.PHONE)


def test_email_with_percent_is_refused() -> None:
    with pytest.raises(InvalidPixKey, match="%"):
        PixKey.parse("a%b@example.com")


@pytest.mark.parametrize(
    "raw", ["no-at.example.com", "a@b", "a@@b.com", "a b@c.com", "josé@example.com", "@b.com"]
)
def test_malformed_email_is_refused(raw: str) -> None:
    with pytest.raises(InvalidPixKey):
        PixKey.parse(raw, PixKeyType.EMAIL)


def test_email_over_77_characters_is_refused_and_77_accepted() -> None:
    domain = "@example.com"
    fits = "a" * (MAX_KEY_LENGTH - len(domain)) + domain
    assert PixKey.parse(fits).value == fits
    with pytest.raises(InvalidPixKey, match="77"):
        PixKey.parse("a" + fits)


@pytest.mark.parametrize(
    "raw",
    ["123e4567-e12b-12d1-a456-42665544000", "123e4567e12b12d1a456426655440000", "g" * 36],
)
def test_malformed_evp_is_refused(raw: str) -> None:
    with pytest.raises(InvalidPixKey):
        PixKey.parse(raw, PixKeyType.EVP)


def test_unknown_key_type_is_refused() -> None:
    with pytest.raises(InvalidPixKey, match="unknown key type"):
        PixKey.parse("52998224725", "RG")  # type: ignore[arg-type]


# -- construction, serialisation, display -------------------------------------------


def test_direct_construction_requires_canonical_form() -> None:
    with pytest.raises(InvalidPixKey, match="canonical"):
        PixKey(PixKeyType.CPF, "529.982.247-25")
    with pytest.raises(InvalidPixKey):
        PixKey(PixKeyType.EMAIL, "Fulano@example.com")


def test_decoding_a_key_validates_it() -> None:
    key = PixKey.parse("+5511987654321")
    assert msgspec.json.decode(msgspec.json.encode(key), type=PixKey) == key
    with pytest.raises(InvalidPixKey):
        msgspec.json.decode(b'{"type":"CPF","value":"52998224726"}', type=PixKey)


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("52998224725", "***.982.247-**"),
        ("11222333000181", "11.222.333/0001-81"),
        ("+5511987654321", "+5511*****4321"),
        ("fulano@example.com", "f***@example.com"),
        ("123e4567-e12b-12d1-a456-426655440000", "123e4567-****-****-****-********0000"),
    ],
)
def test_masked_hides_personal_data(raw: str, masked: str) -> None:
    assert PixKey.parse(raw).masked() == masked


def test_repr_and_str_do_not_leak_the_key() -> None:
    key = PixKey.parse("52998224725")
    assert "52998224725" not in repr(key)
    assert "52998224725" not in str(key)
    assert "CPF" in repr(key)


def test_error_messages_never_echo_the_key() -> None:
    for raw, key_type in [
        ("52998224726", PixKeyType.CPF),
        ("11222333000182", PixKeyType.CNPJ),
        ("+0511987654321", PixKeyType.PHONE),
        ("secret%name@example.com", PixKeyType.EMAIL),
    ]:
        with pytest.raises(InvalidPixKey) as caught:
            PixKey.parse(raw, key_type)
        assert raw not in str(caught.value)
        assert caught.value.code == "invalid_pix_key"


# -- properties ---------------------------------------------------------------------


def _formatted_cpf(cpf: str) -> str:
    return f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}"


key_inputs = st.one_of(
    st.integers(0, 2**32).map(lambda seed: generate_cpf(random.Random(seed))),
    st.integers(0, 2**32).map(lambda seed: _formatted_cpf(generate_cpf(random.Random(seed)))),
    st.tuples(st.integers(0, 2**32), st.booleans()).map(
        lambda args: generate_cnpj(random.Random(args[0]), alphanumeric=args[1])
    ),
    st.from_regex(r"\+[1-9][0-9]{1,14}", fullmatch=True),  # E.164: at most 15 digits
    st.from_regex(r"[A-Za-z0-9._+-]{1,30}@[A-Za-z0-9]{1,20}\.[A-Za-z]{2,6}", fullmatch=True),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
)


@given(key_inputs)
def test_parse_is_idempotent(raw: str) -> None:
    key = PixKey.parse(raw)
    assert PixKey.parse(key.value, key.type) == key
    assert PixKey.parse(key.value) == key
    assert len(key.value) <= MAX_KEY_LENGTH


@given(st.text(max_size=90))
def test_parse_either_returns_a_canonical_key_or_raises_invalid_pix_key(raw: str) -> None:
    try:
        key = PixKey.parse(raw)
    except InvalidPixKey:
        return
    assert PixKey(key.type, key.value) == key


def test_an_email_whose_local_part_starts_with_plus_is_an_email_not_a_phone() -> None:
    # Found by the idempotence property above: "+@0.AA" was inferred as a phone.
    key = PixKey.parse("+info@Example.com")
    assert key.type is PixKeyType.EMAIL
    assert PixKey.parse(key.value) == key
