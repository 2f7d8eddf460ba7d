"""Envelope encryption of short secrets (TOTP secrets, provider sessions).

A sealed value is one ASCII string::

    fbx1.<kek id>.<wrapped data key>.<nonce>.<ciphertext+tag>

(each part base64url without padding, exactly as :func:`_b64` writes it: a
part with a character outside that alphabet, padding, whitespace, or any other
spelling of the same bytes is refused, so a sealed value has one spelling and
a changed one does not open). The data key is 32 random bytes,
used once; the value is AES-256-GCM with a 96-bit random nonce. The
associated data binds the ciphertext to the format version, the KEK id and
a *context* the caller gives (for example ``auth_users/<subject>/totp_secret``),
so a sealed value copied to another row or field, or relabelled with another
KEK id, does not open. Anything wrong (tampered, truncated, unknown KEK,
wrong key) raises :class:`SecretUnreadable`: the caller fails closed.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from finbank_core.shared.errors import ServiceUnavailable

PREFIX = "fbx1"
DATA_KEY_BYTES = 32
NONCE_BYTES = 12
#: unwrapped data keys kept in memory, so a KMS-wrapped value is not unwrapped on every read
DATA_KEY_CACHE_SIZE = 1024


class SecretUnreadable(ServiceUnavailable):
    """A sealed secret cannot be opened (tampered, or its key is not configured).

    The message names the reason, never the value.
    """

    code = "secret_unreadable"
    title = "A stored secret cannot be decrypted"


class KeyEncryptionKey(Protocol):
    """A key that wraps data keys (a local AES key, or a KMS key)."""

    @property
    def key_id(self) -> str: ...

    async def new_data_key(self) -> tuple[bytes, bytes]:
        """A fresh data key: ``(plaintext, wrapped)``."""
        ...

    async def unwrap(self, wrapped: bytes) -> bytes:
        """The plaintext of a data key this KEK wrapped; ``SecretUnreadable`` otherwise."""
        ...


class LocalKeyEncryptionKey:
    """A 256-bit AES key held by the process (from the settings or Secrets Manager).

    Wraps a data key as ``nonce || AES-GCM(kek, data key, aad=id)``.
    """

    def __init__(self, key_id: str, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a key-encryption key must be 32 bytes (AES-256)")
        _check_key_id(key_id)
        self._key_id = key_id
        self._aead = AESGCM(key)

    @property
    def key_id(self) -> str:
        return self._key_id

    def __repr__(self) -> str:
        return f"LocalKeyEncryptionKey(key_id={self._key_id!r}, key='***')"

    async def new_data_key(self) -> tuple[bytes, bytes]:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        wrapped = nonce + self._aead.encrypt(nonce, data_key, self._aad())
        return data_key, wrapped

    async def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], self._aad())
        except (InvalidTag, ValueError):
            raise SecretUnreadable("the data key does not open with this key") from None

    def _aad(self) -> bytes:
        return b"finbank-data-key:" + self._key_id.encode()


def _check_key_id(key_id: str) -> None:
    if not key_id or len(key_id) > 2048 or not key_id.isascii() or not key_id.isprintable():
        raise ValueError("a key id must be 1 to 2048 printable ASCII characters")


def parse_keyring(text: str) -> list[LocalKeyEncryptionKey]:
    """Keys from ``"id:base64key,id:base64key"`` (the first is the current one).

    ``base64key`` is 32 bytes in standard or URL-safe base64. Raises
    ``ValueError`` naming the entry's position, never the key.
    """
    keys: list[LocalKeyEncryptionKey] = []
    for position, entry in enumerate(filter(None, (e.strip() for e in text.split(","))), 1):
        key_id, sep, encoded = entry.partition(":")
        if not sep:
            raise ValueError(f"key {position} must look like id:base64key")
        try:
            raw = _key_bytes(encoded.strip())
        except (binascii.Error, ValueError):
            raise ValueError(f"key {position} is not base64") from None
        if len(raw) != 32:
            raise ValueError(f"key {position} must be 32 bytes (AES-256)")
        keys.append(LocalKeyEncryptionKey(key_id.strip(), raw))
    ids = [k.key_id for k in keys]
    if len(set(ids)) != len(ids):
        raise ValueError("two keys share an id")
    return keys


def is_sealed(value: str | None) -> bool:
    return value is not None and value.startswith(PREFIX + ".")


class EnvelopeCipher:
    """Seals with the current KEK; opens with whichever configured KEK sealed a value."""

    def __init__(
        self, current: KeyEncryptionKey, previous: Sequence[KeyEncryptionKey] = ()
    ) -> None:
        self._current = current
        self._keks = {k.key_id: k for k in (*previous, current)}
        self._data_keys: OrderedDict[bytes, bytes] = OrderedDict()

    @property
    def current_key_id(self) -> str:
        return self._current.key_id

    def __repr__(self) -> str:
        return f"EnvelopeCipher(current={self._current.key_id!r}, keys={sorted(self._keks)!r})"

    async def seal(self, plaintext: str, context: str) -> str:
        data_key, wrapped = await self._current.new_data_key()
        nonce = os.urandom(NONCE_BYTES)
        kek_id = self._current.key_id
        body = AESGCM(data_key).encrypt(nonce, plaintext.encode(), _aad(kek_id, context))
        parts = (kek_id.encode(), wrapped, nonce, body)
        return ".".join((PREFIX, *(_b64(p) for p in parts)))

    async def open(self, sealed: str, context: str) -> str:
        """The plaintext of ``sealed``; ``SecretUnreadable`` for anything that is not a
        value this cipher's keys sealed in ``context`` (``None`` and non-strings too)."""
        kek_id, wrapped, nonce, body = _split(sealed)
        kek = self._keks.get(kek_id)
        if kek is None:
            raise SecretUnreadable("the secret was sealed with a key that is not configured")
        data_key = await self._data_key(kek, wrapped)
        try:
            plaintext = AESGCM(data_key).decrypt(nonce, body, _aad(kek_id, context))
        except (InvalidTag, ValueError):
            raise SecretUnreadable("the secret does not open: tampered or misplaced") from None
        try:
            return plaintext.decode()
        except UnicodeDecodeError:  # authentic, but not what seal() writes
            raise SecretUnreadable("the secret is not text") from None

    def needs_rewrap(self, value: str | None) -> bool:
        """True for plaintext (legacy) values and values sealed with an older KEK."""
        if value is None:
            return False
        if not is_sealed(value):
            return True
        try:
            return _split(value)[0] != self._current.key_id
        except SecretUnreadable:
            return True

    async def _data_key(self, kek: KeyEncryptionKey, wrapped: bytes) -> bytes:
        cache_key = kek.key_id.encode() + b"\x00" + wrapped
        cached = self._data_keys.get(cache_key)
        if cached is not None:
            self._data_keys.move_to_end(cache_key)
            return cached
        data_key = await kek.unwrap(wrapped)
        if len(data_key) != DATA_KEY_BYTES:
            raise SecretUnreadable("the data key has the wrong length")
        self._data_keys[cache_key] = data_key
        if len(self._data_keys) > DATA_KEY_CACHE_SIZE:
            self._data_keys.popitem(last=False)
        return data_key


def _aad(kek_id: str, context: str) -> bytes:
    return f"{PREFIX}\x1f{kek_id}\x1f{context}".encode()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)


_B64URL_UNPADDED = re.compile(r"[A-Za-z0-9_-]*")
_B64_KEY = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def _unb64(text: str) -> bytes:
    """The bytes of a part :func:`_b64` wrote; ``ValueError`` for any other spelling.

    ``urlsafe_b64decode`` skips characters outside the alphabet and what follows
    the padding, so a value with a space, ``==`` or ``+/`` added opened as if
    untouched; and two encodings differing only in the unused low bits of the last
    character decode alike. Only the one spelling we write is accepted.
    """
    if not _B64URL_UNPADDED.fullmatch(text):
        raise ValueError("not unpadded base64url")
    raw = base64.urlsafe_b64decode(_padded(text))
    if _b64(raw) != text:
        raise ValueError("not the canonical encoding")
    return raw


def _key_bytes(encoded: str) -> bytes:
    """A keyring key: standard or URL-safe base64, padded or not, nothing else.

    Anything after the padding, characters outside the alphabets or padding that
    does not complete the last group are refused rather than skipped.
    """
    if not _B64_KEY.fullmatch(encoded):
        raise ValueError("not base64")
    body = encoded.rstrip("=")
    if body != encoded and len(encoded) % 4:
        raise ValueError("padding that does not complete the last group")
    return _unb64(body.replace("+", "-").replace("/", "_"))


def _split(sealed: str) -> tuple[str, bytes, bytes, bytes]:
    if not isinstance(sealed, str):
        raise SecretUnreadable("not a sealed secret")
    parts = sealed.split(".")
    if len(parts) != 5 or parts[0] != PREFIX:
        raise SecretUnreadable("not a sealed secret")
    try:
        kek_id, wrapped, nonce, body = (_unb64(p) for p in parts[1:])
        return kek_id.decode(), wrapped, nonce, body
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise SecretUnreadable("not a sealed secret") from None
