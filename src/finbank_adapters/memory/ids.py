"""Id generators: UUIDv7 from the clock plus randomness, and a predictable one for tests."""

from __future__ import annotations

import secrets
import uuid

from finbank_core.shared.clock import Clock
from finbank_core.shared.ids import uuid7


class UUIDv7Generator:
    """Monotonic UUIDv7: within one millisecond the 74 random bits are incremented."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last = 0

    def new_id(self) -> uuid.UUID:
        unix_ms = int(self._clock.now().timestamp() * 1000)
        candidate = uuid7(unix_ms, secrets.randbits(12), secrets.randbits(62)).int
        if candidate <= self._last:
            # Same millisecond (or a clock step back): keep ids strictly increasing.
            candidate = self._last + 1
        self._last = candidate
        return uuid.UUID(int=candidate)


class SequentialIdGenerator:
    """UUIDv7-shaped ids 1, 2, 3... at a fixed timestamp: stable across test runs."""

    def __init__(self, unix_ms: int = 1_767_225_600_000) -> None:
        self._unix_ms = unix_ms
        self._counter = 0

    def new_id(self) -> uuid.UUID:
        self._counter += 1
        return uuid7(self._unix_ms, 0, self._counter)
