"""Identifiers of the PIX network: EndToEndId, return id (rtrId), txid, ISPB.

``EndToEndId`` and ``ReturnId`` share one 32-character layout::

    E 12345678 202501311459 aB3dE5fG7hJ
    | ISPB (8) | UTC yyyyMMddHHmm | 11 x [a-zA-Z0-9]

with ``D`` instead of ``E`` for a return. They are case-sensitive and unique
forever, so the random part comes from the OS's generator (``os.urandom``, as
``secrets``) unless a test injects a seeded ``random.Random``.
"""

from __future__ import annotations

import os
import random
import string
from datetime import UTC, datetime
from typing import ClassVar, Final, Self

import msgspec

from finbank_core.pix.errors import InvalidIdentifier

_ISPB_CHARS: Final = frozenset(string.digits + string.ascii_uppercase)
_ALNUM: Final = string.ascii_letters + string.digits
_ALNUM_SET: Final = frozenset(_ALNUM)
_SPI_ID_LENGTH: Final = 32
_SUFFIX_LENGTH: Final = 11
_TXID_MIN, _TXID_MAX = 26, 35
_STATIC_TXID_MAX: Final = 25


#: byte -> character of ``_ALNUM``: 248 = 4 x 62 bytes map evenly (b % 62), the other 8
#: are dropped, so every character stays equally likely (no modulo bias)
_ALNUM_OF_BYTE: Final = bytes(ord(_ALNUM[b % len(_ALNUM)]) for b in range(256))
_UNEVEN_BYTES: Final = bytes(range(4 * len(_ALNUM), 256))


def _secure_alnum(length: int) -> str:
    """``length`` characters of ``_ALNUM``, uniform and independent, from the OS's generator
    (``os.urandom``, what ``secrets`` reads) in one read instead of one per character."""
    # 8 spare bytes: too few kept needs 9+ drops of odds 1/32 (~3e-9 at 11, ~1e-5 at 32)
    drawn = os.urandom(length + 8).translate(_ALNUM_OF_BYTE, _UNEVEN_BYTES)
    while len(drawn) < length:
        drawn += os.urandom(length).translate(_ALNUM_OF_BYTE, _UNEVEN_BYTES)
    return drawn[:length].decode("ascii")


def _random_alnum(length: int, rng: random.Random | None) -> str:
    if rng is None:
        return _secure_alnum(length)
    return "".join(rng.choices(_ALNUM, k=length))


def is_valid_ispb(text: str) -> bool:
    """True iff ``text`` is 8 characters of ``[0-9A-Z]`` (numeric today)."""
    return isinstance(text, str) and len(text) == 8 and _ISPB_CHARS.issuperset(text)


def parse_ispb(text: str) -> str:
    """``text`` itself if it is a valid ISPB; ``InvalidIdentifier`` otherwise."""
    if not is_valid_ispb(text):
        raise InvalidIdentifier("an ISPB is 8 characters of 0-9 or A-Z", identifier="ispb")
    return text


class _SpiId(msgspec.Struct, frozen=True):
    """Shared layout of EndToEndId and ReturnId; ``prefix`` tells them apart."""

    prefix: ClassVar[str]
    kind: ClassVar[str]

    value: str

    def __post_init__(self) -> None:
        text = self.value
        if not isinstance(text, str) or len(text) != _SPI_ID_LENGTH:
            self._fail(f"must have {_SPI_ID_LENGTH} characters")
        if text[0] != self.prefix:
            self._fail(f"must start with {self.prefix!r}")
        if not is_valid_ispb(text[1:9]):
            self._fail("characters 2-9 must be an ISPB (8 of 0-9 or A-Z)")
        stamp = text[9:21]
        try:
            if not (stamp.isascii() and stamp.isdigit()):
                raise ValueError(stamp)
            _ = self.created_at  # datetime() refuses month 13, Feb 30, hour 24...
        except ValueError:
            self._fail("characters 10-21 must be a real UTC date-time yyyyMMddHHmm")
        if not _ALNUM_SET.issuperset(text[21:]):
            self._fail("the last 11 characters must be letters or digits")

    def _fail(self, rule: str) -> None:
        raise InvalidIdentifier(f"{self.kind} {rule}", identifier=self.kind)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Validate ``text``; raises ``InvalidIdentifier`` naming the broken rule."""
        return cls(text)

    @classmethod
    def generate(cls, ispb: str, now: datetime, rng: random.Random | None = None) -> Self:
        """A new id for institution ``ispb`` at ``now`` (aware; written in UTC).

        The 11 random characters come from ``os.urandom`` unless ``rng`` is given
        (tests). Raises ``InvalidIdentifier`` for a bad ISPB and ``ValueError``
        for a naive ``now``: its UTC minute would be a guess.
        """
        parse_ispb(ispb)
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be a timezone-aware datetime")
        stamp = now.astimezone(UTC).strftime("%Y%m%d%H%M")
        return cls(f"{cls.prefix}{ispb}{stamp}{_random_alnum(_SUFFIX_LENGTH, rng)}")

    @property
    def ispb(self) -> str:
        """The ISPB of the institution that created the id."""
        return self.value[1:9]

    @property
    def created_at(self) -> datetime:
        """When the id was created, in UTC, to the minute."""
        v = self.value
        return datetime(
            int(v[9:13]), int(v[13:15]), int(v[15:17]), int(v[17:19]), int(v[19:21]), tzinfo=UTC
        )

    def __str__(self) -> str:
        return self.value


class EndToEndId(_SpiId, frozen=True):
    """The id of a PIX payment across the whole network (``E`` + ...).

    ``EndToEndId(value)`` and ``parse`` validate; ``generate`` makes a new
    one for the payer's institution.
    """

    prefix = "E"
    kind = "EndToEndId"


class ReturnId(_SpiId, frozen=True):
    """The id of a PIX return (devolução), ``rtrId``: like an EndToEndId, with ``D``."""

    prefix = "D"
    kind = "ReturnId"


class TxId(msgspec.Struct, frozen=True):
    """The id of a charge (cob/cobv): 26 to 35 letters or digits, case-sensitive."""

    value: str

    def __post_init__(self) -> None:
        text = self.value
        if (
            not isinstance(text, str)
            or not _TXID_MIN <= len(text) <= _TXID_MAX
            or not _ALNUM_SET.issuperset(text)
        ):
            raise InvalidIdentifier(
                f"a txid is {_TXID_MIN} to {_TXID_MAX} letters or digits", identifier="txid"
            )

    @classmethod
    def parse(cls, text: str) -> TxId:
        """Validate ``text`` as a charge txid; ``InvalidIdentifier`` otherwise."""
        return cls(text)

    @classmethod
    def generate(cls, rng: random.Random | None = None) -> TxId:
        """A new 32-character txid from ``os.urandom`` (or ``rng`` in tests)."""
        return cls(_random_alnum(32, rng))

    def __str__(self) -> str:
        return self.value


def is_valid_static_txid(text: str) -> bool:
    """True iff ``text`` may be the txid of a static BR Code (field 62-05).

    That is 1 to 25 letters or digits, or ``***`` for "no txid".
    """
    if text == "***":
        return True
    return (
        isinstance(text, str) and 0 < len(text) <= _STATIC_TXID_MAX and _ALNUM_SET.issuperset(text)
    )
