"""Envelope encryption: a sealed value has one spelling; any other one does not open.

The parts were decoded by ``urlsafe_b64decode``, which skips characters outside
the alphabet and anything after padding: a value with a space, ``==`` or ``+/``
in it opened as if untouched, although the module promises that a tampered value
raises ``SecretUnreadable``. The keyring's keys likewise took junk after ``=``.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from finbank_adapters.crypto import (
    EnvelopeCipher,
    LocalKeyEncryptionKey,
    SecretUnreadable,
    parse_keyring,
)

SECRET = "JBSWY3DPEHPK3PXP"
CONTEXT = "auth_users/subject-1/totp_secret"
V1 = LocalKeyEncryptionKey("v1", bytes(range(32)))
#: sealed by the module before strict decoding (SECRET, CONTEXT, V1): values already in
#: the database must keep opening
SEALED_BEFORE = (
    "fbx1.djE.SGE_-fQ2UQiqSwvV5xVE0z6kkjxroSsC6YYoLCBHyC3CW154EmH4RGaUWTjEs4UilbLehIxciHulB2Tf"
    ".eb2kUhjCcV1B4FeK.NwaILeCLJKeLwrZwHdyOcq2Zhd1tYCYiaYsHcAZ0BRQ"
)
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def with_part(sealed: str, part: int, change: Any) -> str:
    parts = sealed.split(".")
    parts[part] = change(parts[part])
    return ".".join(parts)


def low_bits_changed(text: str) -> str:
    """The same bytes, spelt with other (unused) low bits in the last character."""
    assert len(text) % 4 in (2, 3), "the last character of this part has unused bits"
    return text[:-1] + URLSAFE[URLSAFE.index(text[-1]) ^ 1]


async def test_a_value_sealed_before_still_opens_and_a_new_one_round_trips() -> None:
    cipher = EnvelopeCipher(V1)
    assert await cipher.open(SEALED_BEFORE, CONTEXT) == SECRET
    assert not cipher.needs_rewrap(SEALED_BEFORE)
    for plaintext in ("", "ç", SECRET * 50):
        assert await cipher.open(await cipher.seal(plaintext, CONTEXT), CONTEXT) == plaintext


RESPELLINGS = {
    "space inside the wrapped key": lambda s: with_part(s, 2, lambda p: p[:5] + " " + p[5:]),
    "padding after the nonce": lambda s: with_part(s, 3, lambda p: p + "=="),
    "padding after the kek id": lambda s: with_part(s, 1, lambda p: p + "="),
    "standard base64 characters": lambda s: s.replace("-", "+").replace("_", "/"),
    "other unused bits in the body": lambda s: with_part(s, 4, low_bits_changed),
    "other unused bits in the kek id": lambda s: with_part(s, 1, low_bits_changed),
}


@pytest.mark.parametrize("respell", RESPELLINGS.values(), ids=RESPELLINGS.keys())
async def test_another_spelling_of_a_sealed_value_does_not_open(respell: Any) -> None:
    cipher = EnvelopeCipher(V1)
    for sealed in (SEALED_BEFORE, await cipher.seal(SECRET, CONTEXT)):
        respelt = respell(sealed)
        assert respelt != sealed
        with pytest.raises(SecretUnreadable, match="not a sealed secret"):
            await cipher.open(respelt, CONTEXT)
        assert cipher.needs_rewrap(respelt)  # not taken for a current value either


@pytest.mark.parametrize("value", [None, 42, b"fbx1.a.b.c.d"], ids=["None", "int", "bytes"])
async def test_a_value_that_is_not_a_string_is_unreadable_not_an_attribute_error(
    value: Any,
) -> None:
    with pytest.raises(SecretUnreadable):
        await EnvelopeCipher(V1).open(value, CONTEXT)


KEY = bytes(range(32))
STANDARD = base64.b64encode(KEY).decode()  # ends with "="
URL_SAFE = base64.urlsafe_b64encode(KEY).decode()


@pytest.mark.parametrize(
    "encoded",
    [STANDARD, STANDARD.rstrip("="), URL_SAFE, URL_SAFE.rstrip("=")],
    ids=["standard", "standard-unpadded", "url-safe", "url-safe-unpadded"],
)
def test_the_keyring_takes_standard_or_url_safe_base64_padded_or_not(encoded: str) -> None:
    [key] = parse_keyring(f"v1:{encoded}")
    assert key.key_id == "v1"


@pytest.mark.parametrize(
    "encoded",
    [
        STANDARD + "junk?",
        STANDARD + "AAAA",
        STANDARD + "=",
        STANDARD.rstrip("=") + "===",
        STANDARD[:10] + " " + STANDARD[10:],
        STANDARD[:10] + "!" + STANDARD[10:],
        low_bits_changed(URL_SAFE.rstrip("=")),
    ],
    ids=[
        "junk-after-padding",
        "a-group-after-padding",
        "over-padded",
        "three-pads",
        "inner-space",
        "inner-bang",
        "other-unused-bits",
    ],
)
def test_the_keyring_refuses_anything_else_without_echoing_the_key(encoded: str) -> None:
    with pytest.raises(ValueError, match="key 1 is not base64") as refused:
        parse_keyring(f"v1:{encoded}")
    assert STANDARD.rstrip("=")[:8] not in str(refused.value)
