"""Identifiers: the ``IdGenerator`` port and a pure UUIDv7 constructor (RFC 9562)."""

from __future__ import annotations

import uuid
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
