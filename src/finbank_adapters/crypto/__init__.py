"""Secrets at rest: envelope encryption with AES-256-GCM.

Each value is sealed with a fresh 256-bit data key; the data key is wrapped
by a key-encryption key (KEK): AWS KMS on the aws profile
(``finbank_adapters.crypto.kms``, imported on its own: it needs the aws
extra), or a key from the settings or Secrets Manager elsewhere
(:class:`LocalKeyEncryptionKey`). The KEK's id travels in
the sealed value, so after a rotation old values still open with the old
KEK while every write seals with the new one; ``finbank secrets rewrap``
(:mod:`finbank_adapters.postgres.rewrap`) re-seals what was not written
since. See docs/auth.md, "Secrets at rest".
"""

from finbank_adapters.crypto.envelope import (
    EnvelopeCipher,
    KeyEncryptionKey,
    LocalKeyEncryptionKey,
    SecretUnreadable,
    is_sealed,
    parse_keyring,
)

__all__ = [
    "EnvelopeCipher",
    "KeyEncryptionKey",
    "LocalKeyEncryptionKey",
    "SecretUnreadable",
    "is_sealed",
    "parse_keyring",
]
