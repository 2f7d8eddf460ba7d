"""UUIDv7 ids: version, variant, time order."""

from __future__ import annotations

from datetime import UTC, datetime

from finbank_adapters.memory import FakeClock, SequentialIdGenerator
from finbank_adapters.system import UUIDv7Generator
from finbank_core.shared.ids import uuid7_unix_ms


def test_generated_ids_are_uuid7_and_strictly_increasing() -> None:
    clock = FakeClock(datetime(2026, 5, 1, tzinfo=UTC))
    ids = UUIDv7Generator(clock)
    values = [ids.new_id() for _ in range(1000)]
    assert all(v.version == 7 and v.variant == "specified in RFC 4122" for v in values)
    assert values == sorted(values)
    assert len(set(values)) == 1000
    assert uuid7_unix_ms(values[0]) == int(clock.now().timestamp() * 1000)


def test_ids_follow_the_clock() -> None:
    clock = FakeClock(datetime(2026, 5, 1, tzinfo=UTC))
    ids = UUIDv7Generator(clock)
    first = ids.new_id()
    clock.advance(1)
    later = ids.new_id()
    assert uuid7_unix_ms(later) - uuid7_unix_ms(first) == 1000


def test_sequential_ids_are_predictable() -> None:
    a, b = SequentialIdGenerator(), SequentialIdGenerator()
    assert [a.new_id() for _ in range(3)] == [b.new_id() for _ in range(3)]
