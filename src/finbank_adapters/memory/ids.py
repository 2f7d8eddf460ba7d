"""A predictable id generator for tests (production ids: ``finbank_adapters.system``)."""

from __future__ import annotations

import uuid

from finbank_core.shared.ids import uuid7


class SequentialIdGenerator:
    """UUIDv7-shaped ids 1, 2, 3... at a fixed timestamp: stable across test runs."""

    def __init__(self, unix_ms: int = 1_767_225_600_000) -> None:
        self._unix_ms = unix_ms
        self._counter = 0

    def new_id(self) -> uuid.UUID:
        self._counter += 1
        return uuid7(self._unix_ms, 0, self._counter)
