"""The production clock and id generator (the fakes for tests live in ``memory``)."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime

from finbank_core.shared.clock import Clock
from finbank_core.shared.ids import uuid7

__all__ = ["SystemClock", "UUIDv7Generator"]


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


_LOW_62 = (1 << 62) - 1


class UUIDv7Generator:
    """Monotonic UUIDv7: within one millisecond the 74 random bits are incremented."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last = 0

    def new_id(self) -> uuid.UUID:
        unix_ms = int(self._clock.now().timestamp() * 1000)
        bits = secrets.randbits(74)  # one read of the OS's generator, not two
        candidate = uuid7(unix_ms, bits >> 62, bits & _LOW_62).int
        if candidate <= self._last:
            # Same millisecond (or a clock step back): keep ids strictly increasing.
            candidate = self._last + 1
        self._last = candidate
        return uuid.UUID(int=candidate)
