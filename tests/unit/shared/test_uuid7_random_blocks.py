"""``UUIDv7Generator`` draws its random bits from the OS a block at a time: ids stay unique,
laid out as UUIDv7, strictly increasing in a process, and a forked child never hands out
the random bytes (or the ids) its parent does."""

from __future__ import annotations

import os
import pickle
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from finbank_adapters import system
from finbank_adapters.memory import FakeClock
from finbank_adapters.system import SystemClock, UUIDv7Generator
from finbank_core.shared.ids import uuid7, uuid7_unix_ms

START = datetime(2026, 5, 1, tzinfo=UTC)
_RANDOM_74 = (1 << 74) - 1


def _random_part(value: uuid.UUID) -> int:
    """The 74 random bits (rand_a, rand_b) without version and variant."""
    n = value.int
    return (((n >> 64) & 0xFFF) << 62) | (n & ((1 << 62) - 1))


class _StepClock:
    """A clock one millisecond later on each read: every id is fresh random bits
    (never the ``last + 1`` of a repeated millisecond)."""

    def __init__(self) -> None:
        self._clock = FakeClock(START)

    def now(self) -> datetime:
        self._clock.advance(0.001)
        return self._clock.now()


def test_many_ids_over_several_blocks_are_unique_uuid7_and_increasing() -> None:
    count = 20 * system._IDS_PER_READ + 7  # many refills, one cut mid-block
    for clock in (FakeClock(START), SystemClock(), _StepClock()):
        ids = UUIDv7Generator(clock)
        values = [ids.new_id() for _ in range(count)]
        assert len(set(values)) == count
        assert values == sorted(values)
        assert all(v.version == 7 and v.variant == uuid.RFC_4122 for v in values)
        # the layout: 48-bit ms timestamp, then version 7, then variant 0b10
        assert all((v.int >> 76) & 0xF == 7 and (v.int >> 62) & 0b11 == 0b10 for v in values)


def test_the_timestamp_is_the_clocks_millisecond() -> None:
    clock = FakeClock(datetime(2026, 5, 1, 12, 30, 1, 250_000, tzinfo=UTC))
    value = UUIDv7Generator(clock).new_id()
    assert uuid7_unix_ms(value) == int(clock.now().timestamp() * 1000)


def test_random_bits_differ_from_id_to_id() -> None:
    ids = UUIDv7Generator(_StepClock())
    parts = [_random_part(ids.new_id()) for _ in range(3 * system._IDS_PER_READ)]
    assert len(set(parts)) == len(parts)
    # every one of the 74 bits takes both values: no bit is stuck (a slicing error would)
    ones = 0
    zeros = 0
    for part in parts:
        ones |= part
        zeros |= ~part & _RANDOM_74
    assert ones == _RANDOM_74
    assert zeros == _RANDOM_74


class _Readings:
    """A clock that reads the given times in turn (a wall clock may step back)."""

    def __init__(self, *times: datetime) -> None:
        self._times = list(times)

    def now(self) -> datetime:
        return self._times.pop(0)


def test_a_clock_step_back_keeps_ids_increasing() -> None:
    ids = UUIDv7Generator(_Readings(START, START - timedelta(seconds=5)))
    first = ids.new_id()
    second = ids.new_id()
    assert second > first
    assert uuid7_unix_ms(second) == uuid7_unix_ms(first)


def test_generators_on_many_threads_never_share_an_id() -> None:
    clock = FakeClock(START)  # one millisecond for all: only the random bits tell ids apart
    per_thread = 2 * system._IDS_PER_READ
    results: list[list[uuid.UUID]] = []
    start = threading.Barrier(8)

    def run() -> None:
        ids = UUIDv7Generator(clock)
        start.wait()
        results.append([ids.new_id() for _ in range(per_thread)])

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [v for made in results for v in made]
    assert len(everything) == 8 * per_thread
    assert len(set(everything)) == len(everything)


#: Python 3.12+ warns at every fork of a process with threads (earlier tests of the run
#: leave some, e.g. the default executor's). The child here touches only objects this test
#: made, which no other thread holds, and leaves with os._exit: nothing it needs can be
#: locked by a thread that did not come along.
_FORK_OF_A_THREADED_PROCESS = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning"
)


def _ids_in_a_forked_child(ids: UUIDv7Generator, count: int) -> list[uuid.UUID]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its ids and leave at once
        try:
            os.close(read)
            payload = b"".join(ids.new_id().bytes for _ in range(count))
            with os.fdopen(write, "wb") as out:
                out.write(payload)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as source:
        data = source.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(data) == 16 * count
    return [uuid.UUID(bytes=data[i : i + 16]) for i in range(0, len(data), 16)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@_FORK_OF_A_THREADED_PROCESS
def test_a_forked_child_draws_bytes_of_its_own() -> None:
    ids = UUIDv7Generator(_StepClock())
    before = [ids.new_id() for _ in range(5)]  # the parent's block is part used
    count = 50
    child = _ids_in_a_forked_child(ids, count)
    parent = [ids.new_id() for _ in range(count)]
    # same clock readings in both (the step clock was copied): the random bits must differ
    assert [uuid7_unix_ms(v) for v in child] == [uuid7_unix_ms(v) for v in parent]
    assert not {_random_part(v) for v in child} & {_random_part(v) for v in parent}
    assert not set(child) & set(parent)
    assert not set(child) & set(before)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@_FORK_OF_A_THREADED_PROCESS
def test_a_forked_child_in_the_same_millisecond_does_not_repeat_the_parents_ids() -> None:
    clock = FakeClock(START)  # every id in one millisecond: the increment path
    ids = UUIDv7Generator(clock)
    before = [ids.new_id() for _ in range(200)]
    count = 200
    child = _ids_in_a_forked_child(ids, count)
    parent = [ids.new_id() for _ in range(count)]
    assert parent[0] > before[-1]
    assert parent == sorted(parent)
    assert child == sorted(child)
    assert len(set(child)) == count
    assert not set(child) & set(parent)
    assert not set(child) & set(before)


def test_an_id_is_uuid7_of_its_clock_and_random_words(monkeypatch: pytest.MonkeyPatch) -> None:
    words = [(1 << 64) - 1, 0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210, 0]

    def scripted() -> int:
        return words.pop(0)

    monkeypatch.setattr(system, "_random_word", scripted)
    clock = _StepClock()
    ids = UUIDv7Generator(clock)
    first, second = ids.new_id(), ids.new_id()
    start_ms = int(START.timestamp() * 1000)
    assert first == uuid7(start_ms + 1, (1 << 64) - 1, 0x0123_4567_89AB_CDEF)
    assert second == uuid7(start_ms + 2, 0xFEDC_BA98_7654_3210, 0)
    for made in (first, second):
        assert uuid.UUID(str(made)) == made
        assert hash(made) == hash(uuid.UUID(int=made.int))
        assert pickle.loads(pickle.dumps(made)) == made  # noqa: S301 - bytes made here
        assert type(made) is uuid.UUID
