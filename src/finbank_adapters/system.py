"""The production clock and id generator (the fakes for tests live in ``memory``)."""

from __future__ import annotations

import os
import threading
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
#: bytes of the OS's generator per id: 80 bits, the top 74 used
_ID_BYTES = 10
#: one OS read serves this many ids (a ``getrandom`` call per id cost ~2.6% of a request)
_IDS_PER_READ = 400


class _RandomBlocks:
    """Random bytes from ``os.urandom`` (what ``secrets`` reads), read a block at a time and
    handed out once each: the same unpredictability as a read per id, fewer system calls.
    A forked child starts with a new, empty pool (``_after_fork``), so it never hands out
    bytes its parent also holds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.block = b""
        self.offset = 0

    def take(self, size: int) -> bytes:
        with self.lock:
            start = self.offset
            end = start + size
            if end > len(self.block):
                self.block = os.urandom(size * _IDS_PER_READ)
                start, end = 0, size
            self.offset = end
            return self.block[start:end]


_pool = _RandomBlocks()
#: bumped in a forked child: generators copied from the parent drop what they remember
_fork_generation = 0


def _after_fork() -> None:
    global _pool, _fork_generation
    _pool = _RandomBlocks()  # also a fresh lock: another thread may have held the old one
    _fork_generation += 1


os.register_at_fork(after_in_child=_after_fork)


class UUIDv7Generator:
    """Monotonic UUIDv7: within one millisecond the 74 random bits are incremented.

    Strictly increasing within a process. In a forked child the generator forgets the
    parent's last id: both would otherwise step ``last + 1`` in the same millisecond
    and hand out the same id; the child's ids come from its own random bytes instead.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last = 0
        self._generation = _fork_generation

    def new_id(self) -> uuid.UUID:
        if self._generation != _fork_generation:
            self._generation = _fork_generation
            self._last = 0
        unix_ms = int(self._clock.now().timestamp() * 1000)
        bits = int.from_bytes(_pool.take(_ID_BYTES), "big") >> (8 * _ID_BYTES - 74)
        candidate = uuid7(unix_ms, bits >> 62, bits & _LOW_62).int
        if candidate <= self._last:
            # Same millisecond (or a clock step back): keep ids strictly increasing.
            candidate = self._last + 1
        self._last = candidate
        return uuid.UUID(int=candidate)
