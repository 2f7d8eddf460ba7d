"""In-memory MED cases and precautionary blocks (the ``memory`` backend of ``MedRepository``).

Each method completes without awaiting, so on one event loop every write
(and its version check) is atomic, as a conditional write is in DynamoDB or
a row-locked update in PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

import msgspec

from finbank_core.pix.med.errors import (
    MedCaseAlreadyExists,
    MedCaseNotFound,
    MedVersionConflict,
    PrecautionaryBlockAlreadyExists,
)
from finbank_core.pix.med.model import MedCase, MedDue, PrecautionaryBlock
from finbank_core.shared.errors import NotFound


class _Due(Protocol):
    @property
    def end_to_end_id(self) -> str: ...

    def attention_at(self) -> datetime | None: ...


def _due(
    records: Iterable[_Due], until: datetime, after: MedDue | None, limit: int
) -> list[MedDue]:
    """What ``due_cases`` and ``due_blocks`` answer, by a scan (tests and small sandboxes)."""
    due = sorted(
        MedDue(at, record.end_to_end_id)
        for record in records
        if (at := record.attention_at()) is not None and at <= until
    )
    return [d for d in due if after is None or d > after][:limit]


class InMemoryMedRepository:
    """The ``MedRepository`` port in dictionaries (memory profile, tests)."""

    def __init__(self) -> None:
        self._cases: dict[str, MedCase] = {}
        self._blocks: dict[str, PrecautionaryBlock] = {}

    async def add_case(self, case: MedCase) -> MedCase:
        if case.end_to_end_id in self._cases:
            raise MedCaseAlreadyExists()
        stored = msgspec.structs.replace(case, version=1)
        self._cases[case.end_to_end_id] = stored
        return stored

    async def get_case(self, end_to_end_id: str) -> MedCase | None:
        return self._cases.get(end_to_end_id)

    async def update_case(self, case: MedCase, expected_version: int) -> MedCase:
        current = self._cases.get(case.end_to_end_id)
        if current is None:
            raise MedCaseNotFound()
        if current.version != expected_version:
            raise MedVersionConflict()
        stored = msgspec.structs.replace(case, version=expected_version + 1)
        self._cases[case.end_to_end_id] = stored
        return stored

    async def add_block(self, block: PrecautionaryBlock) -> PrecautionaryBlock:
        if block.end_to_end_id in self._blocks:
            raise PrecautionaryBlockAlreadyExists()
        stored = msgspec.structs.replace(block, version=1)
        self._blocks[block.end_to_end_id] = stored
        return stored

    async def get_block(self, end_to_end_id: str) -> PrecautionaryBlock | None:
        return self._blocks.get(end_to_end_id)

    async def update_block(
        self, block: PrecautionaryBlock, expected_version: int
    ) -> PrecautionaryBlock:
        current = self._blocks.get(block.end_to_end_id)
        if current is None:
            raise NotFound("no such precautionary block")
        if current.version != expected_version:
            raise MedVersionConflict()
        stored = msgspec.structs.replace(block, version=expected_version + 1)
        self._blocks[block.end_to_end_id] = stored
        return stored

    async def due_cases(
        self, until: datetime, *, after: MedDue | None = None, limit: int = 100
    ) -> list[MedDue]:
        return _due(self._cases.values(), until, after, limit)

    async def due_blocks(
        self, until: datetime, *, after: MedDue | None = None, limit: int = 100
    ) -> list[MedDue]:
        return _due(self._blocks.values(), until, after, limit)
