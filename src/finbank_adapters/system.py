"""The production clock and id generator (the fakes for tests live in ``memory``)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from finbank_core.shared.clock import Clock

__all__ = ["SystemClock", "UUIDv7Generator"]


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


_LOW_62 = (1 << 62) - 1
_LOW_12 = (1 << 12) - 1
#: version 7 and the RFC 9562 variant, where they go in the 128 bits
_VERSION_AND_VARIANT = (0x7 << 76) | (0b10 << 62)
#: random 64-bit words per OS read, two per id (12 + 62 of their bits used)
_WORDS_PER_READ = 800
_IDS_PER_READ = _WORDS_PER_READ // 2
_new_uuid = object.__new__
_set_slot = object.__setattr__
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown

#: random words from ``os.urandom`` (what ``secrets`` reads), one read per block, each word
#: handed out once: ``list.pop`` is atomic, so threads never share one. A forked child
#: starts with none (``_after_fork``), so it never hands out words its parent also holds.
_words: list[int] = []
#: bumped in a forked child: generators copied from the parent drop what they remember
_fork_generation = 0


def _random_word() -> int:
    try:
        return _words.pop()
    except IndexError:
        _words.extend(memoryview(os.urandom(8 * _WORDS_PER_READ)).cast("Q").tolist())
        return _words.pop()


def _after_fork() -> None:
    global _fork_generation
    _words.clear()
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
        if not 0 <= unix_ms < 1 << 48:
            raise ValueError("unix_ms out of range")
        # as ``uuid7(unix_ms, rand_a, rand_b)``, built in place (a test compares them)
        candidate = (
            (unix_ms << 80)
            | _VERSION_AND_VARIANT
            | ((_random_word() & _LOW_12) << 64)
            | (_random_word() & _LOW_62)
        )
        if candidate <= self._last:
            # Same millisecond (or a clock step back): keep ids strictly increasing.
            candidate = self._last + 1
        self._last = candidate
        # a UUID without its constructor's checks: the same two slots it would set
        made: uuid.UUID = _new_uuid(uuid.UUID)
        _set_slot(made, "int", candidate)
        _set_slot(made, "is_safe", _UNKNOWN_SAFETY)
        return made
