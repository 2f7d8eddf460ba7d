"""``PixKey(type, value)`` with the type given as a plain string.

A struct built in Python is not type-checked, so ``PixKey("EMAIL", ...)``
reaches ``__post_init__`` with a ``str``. As ``checked_enums`` does for
commands (and msgspec when decoding), the enum's value becomes its member;
anything else is ``InvalidPixKey``, never an ``AttributeError`` or a
``KeyError``, and the message does not echo what was given.
"""

from __future__ import annotations

import msgspec
import pytest

from finbank_core.pix import InvalidPixKey, PixKey, PixKeyType


@pytest.mark.parametrize(
    ("given", "value"),
    [
        ("EMAIL", "a@b.com"),
        ("CPF", "52998224725"),
        ("PHONE", "+5511987654321"),
        ("EVP", "123e4567-e12b-12d1-a456-426655440000"),
    ],
)
def test_the_enum_value_becomes_the_member(given: str, value: str) -> None:
    key = PixKey(given, value)  # type: ignore[arg-type]
    assert type(key.type) is PixKeyType
    assert key == PixKey(PixKeyType(given), value)
    assert hash(key) == hash(PixKey(PixKeyType(given), value))
    assert value not in repr(key)
    assert repr(key).startswith(f"PixKey(type={given}, ")
    assert key.masked() == PixKey(PixKeyType(given), value).masked()


def test_a_plain_type_with_a_non_canonical_value_is_invalid_pix_key() -> None:
    with pytest.raises(InvalidPixKey) as caught:
        PixKey("CPF", "529.982.247-25")  # type: ignore[arg-type]
    assert "canonical" in str(caught.value)


@pytest.mark.parametrize("given", ["FOO", "email", "", "52998224725", 3, None, ["CPF"]])
def test_an_unknown_type_is_invalid_pix_key_without_echoing_it(given: object) -> None:
    with pytest.raises(InvalidPixKey) as caught:
        PixKey(given, "a@b.com")  # type: ignore[arg-type]
    assert "unknown key type" in str(caught.value)
    assert "52998224725" not in str(caught.value)


def test_decoding_reads_the_same_member() -> None:
    decoded = msgspec.json.decode(b'{"type": "EMAIL", "value": "a@b.com"}', type=PixKey)
    assert decoded == PixKey("EMAIL", "a@b.com")  # type: ignore[arg-type]
