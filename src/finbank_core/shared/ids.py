"""Identifiers: the ``IdGenerator`` port, a pure UUIDv7 constructor (RFC 9562) and a
fast ``uuid5`` derivation (name-based ids, bit-identical to ``uuid.uuid5``)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Protocol


class IdGenerator(Protocol):
    """Hands out unique, time-ordered ids."""

    def new_id(self) -> uuid.UUID:
        """Return a new UUIDv7, greater than every id this generator returned before."""
        ...


def uuid7(unix_ms: int, rand_a: int, rand_b: int) -> uuid.UUID:
    """Build a UUIDv7 from a millisecond timestamp and 12 + 62 random bits."""
    if not 0 <= unix_ms < 1 << 48:
        raise ValueError("unix_ms out of range")
    value = (unix_ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= (rand_a & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand_b & 0x3FFF_FFFF_FFFF_FFFF
    return uuid.UUID(int=value)


def uuid7_unix_ms(value: uuid.UUID) -> int:
    """The millisecond timestamp of a UUIDv7."""
    return value.int >> 80


#: uuid5's version (5) and RFC 4122 variant bits, and the mask clearing where they go
_V5_BITS = (5 << 76) | (0x8000 << 48)
_V5_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_new_uuid = object.__new__
_set_slot = object.__setattr__
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown


def uuid5_of(namespace: uuid.UUID) -> Callable[[str], uuid.UUID]:
    """``name -> uuid.uuid5(namespace, name)``, the same value (tests compare them on many
    names) for a third of the CPU: the SHA-1 digest's first 16 bytes with the version and
    variant bits set, put in a ``UUID`` without its constructor's checks (it sets the
    same two slots, ``int`` and ``is_safe``). Ids derived this way are stored (ledger
    transfer ids, event ids), so they must never change: keep it bit-identical."""
    prefix = namespace.bytes
    sha1 = hashlib.sha1

    def derive(name: str) -> uuid.UUID:
        digest = sha1(prefix + name.encode("utf-8")).digest()  # uuid5 is SHA-1 by definition
        made: uuid.UUID = _new_uuid(uuid.UUID)
        _set_slot(made, "int", (int.from_bytes(digest[:16], "big") & _V5_MASK) | _V5_BITS)
        _set_slot(made, "is_safe", _UNKNOWN_SAFETY)
        return made

    return derive
