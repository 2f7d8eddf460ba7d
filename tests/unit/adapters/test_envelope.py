"""Envelope encryption: round trip, binding, tampering, wrong keys, rotation, the keyring."""

from __future__ import annotations

import base64

import pytest

from finbank_adapters.crypto import (
    EnvelopeCipher,
    LocalKeyEncryptionKey,
    SecretUnreadable,
    is_sealed,
    parse_keyring,
)
from finbank_core.shared.errors import ServiceUnavailable

SECRET = "JBSWY3DPEHPK3PXP"
CONTEXT = "auth_users/subject-1/totp_secret"
V1 = LocalKeyEncryptionKey("v1", bytes(range(32)))
V2 = LocalKeyEncryptionKey("v2", bytes(range(32, 64)))


def flip(sealed: str, part: int) -> str:
    """Flip one bit in part ``part`` (1 kek id, 2 wrapped key, 3 nonce, 4 ciphertext)."""
    parts = sealed.split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[part] + "=" * (-len(parts[part]) % 4)))
    raw[len(raw) // 2] ^= 0x01
    parts[part] = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    return ".".join(parts)


async def test_a_sealed_secret_opens_in_its_context_and_does_not_show_the_secret() -> None:
    cipher = EnvelopeCipher(V1)
    sealed = await cipher.seal(SECRET, CONTEXT)
    assert is_sealed(sealed)
    assert SECRET not in sealed
    assert await cipher.open(sealed, CONTEXT) == SECRET


async def test_every_seal_uses_a_fresh_data_key_and_nonce() -> None:
    cipher = EnvelopeCipher(V1)
    first, second = await cipher.seal(SECRET, CONTEXT), await cipher.seal(SECRET, CONTEXT)
    assert first != second
    assert first.split(".")[2] != second.split(".")[2]  # wrapped data keys differ


@pytest.mark.parametrize("part", [1, 2, 3, 4])
async def test_a_tampered_value_is_refused(part: int) -> None:
    cipher = EnvelopeCipher(V1, [V2])
    sealed = await cipher.seal(SECRET, CONTEXT)
    with pytest.raises(SecretUnreadable) as refused:
        await cipher.open(flip(sealed, part), CONTEXT)
    assert isinstance(refused.value, ServiceUnavailable)  # fail closed: 503
    assert SECRET not in str(refused.value)


async def test_a_truncated_or_foreign_value_is_refused() -> None:
    cipher = EnvelopeCipher(V1)
    sealed = await cipher.seal(SECRET, CONTEXT)
    for bad in (sealed[:-6], sealed.rsplit(".", 1)[0], "fbx1.!!!.a.b.c", "fbx1."):
        with pytest.raises(SecretUnreadable):
            await cipher.open(bad, CONTEXT)


async def test_a_value_moved_to_another_row_or_column_is_refused() -> None:
    cipher = EnvelopeCipher(V1)
    sealed = await cipher.seal(SECRET, CONTEXT)
    for other in ("auth_users/subject-2/totp_secret", "auth_users/subject-1/pending_totp_secret"):
        with pytest.raises(SecretUnreadable):
            await cipher.open(sealed, other)


async def test_a_wrong_key_under_the_same_id_is_refused() -> None:
    sealed = await EnvelopeCipher(V1).seal(SECRET, CONTEXT)
    impostor = LocalKeyEncryptionKey("v1", bytes(32))
    with pytest.raises(SecretUnreadable):
        await EnvelopeCipher(impostor).open(sealed, CONTEXT)


async def test_an_unknown_key_id_is_refused() -> None:
    sealed = await EnvelopeCipher(V1).seal(SECRET, CONTEXT)
    with pytest.raises(SecretUnreadable):
        await EnvelopeCipher(V2).open(sealed, CONTEXT)


async def test_after_rotation_old_values_open_new_ones_use_the_new_key() -> None:
    old = await EnvelopeCipher(V1).seal(SECRET, CONTEXT)
    rotated = EnvelopeCipher(V2, [V1])
    assert rotated.current_key_id == "v2"
    assert await rotated.open(old, CONTEXT) == SECRET
    assert rotated.needs_rewrap(old)
    new = await rotated.seal(SECRET, CONTEXT)
    assert not rotated.needs_rewrap(new)
    assert await EnvelopeCipher(V2).open(new, CONTEXT) == SECRET  # v1 can be retired
    assert rotated.needs_rewrap("PLAINTEXTSECRET")
    assert not rotated.needs_rewrap(None)


def test_the_keyring_parses_ids_and_keys_and_never_echoes_a_key() -> None:
    k1 = base64.b64encode(bytes(range(32))).decode()
    k2 = base64.urlsafe_b64encode(bytes(range(32, 64))).decode().rstrip("=")
    keys = parse_keyring(f" v2:{k2} , v1:{k1}")
    assert [k.key_id for k in keys] == ["v2", "v1"]
    assert k1 not in repr(keys)
    short = base64.b64encode(b"too short").decode()
    for bad in (f"v1:{short}", "v1", f"v1:{k1},v1:{k1}", "v1:***"):
        with pytest.raises(ValueError, match=r"^(?!.*(dG9v|AAEC)).*$"):
            parse_keyring(bad)
    assert parse_keyring("") == []


def test_reprs_never_show_key_material() -> None:
    cipher = EnvelopeCipher(V2, [V1])
    assert "v2" in repr(cipher)
    assert str(bytes(range(32))) not in repr(V1)


async def test_the_container_seals_with_configured_keys_or_one_derived_from_the_jwt_secret() -> (
    None
):
    from finbank_adapters.containers import build_container, close_container, resolve
    from finbank_adapters.settings import Settings

    key = base64.b64encode(bytes(range(32))).decode()
    configured = build_container(
        Settings.from_env({"FINBANK_AUTH_SECRETS_KEYS": f"k2:{key},k1:{key}"})
    )
    derived_a = build_container(Settings.from_env({"FINBANK_JWT_SECRET": "j" * 40}))
    derived_b = build_container(Settings.from_env({"FINBANK_JWT_SECRET": "j" * 40}))
    other = build_container(Settings.from_env({"FINBANK_JWT_SECRET": "k" * 40}))
    try:
        cipher: EnvelopeCipher = await resolve(configured.auth.secrets_cipher())
        assert cipher.current_key_id == "k2"
        a: EnvelopeCipher = await resolve(derived_a.auth.secrets_cipher())
        b: EnvelopeCipher = await resolve(derived_b.auth.secrets_cipher())
        c: EnvelopeCipher = await resolve(other.auth.secrets_cipher())
        assert a.current_key_id == b.current_key_id != c.current_key_id
        assert a.current_key_id.startswith("derived-")
        sealed = await a.seal(SECRET, CONTEXT)
        assert await b.open(sealed, CONTEXT) == SECRET  # another process, same JWT secret
        with pytest.raises(SecretUnreadable):
            await c.open(sealed, CONTEXT)  # a changed JWT secret is detected, not misread
    finally:
        for container in (configured, derived_a, derived_b, other):
            await close_container(container)
