"""In-memory MED cases and precautionary blocks (the ``memory`` backend of ``MedRepository``).

Each method completes without awaiting, so on one event loop every write
(and its version check) is atomic, as a conditional write is in DynamoDB or
a row-locked update in PostgreSQL.
"""

from __future__ import annotations

import msgspec

from finbank_core.pix.med.errors import (
    MedCaseAlreadyExists,
    MedCaseNotFound,
    MedVersionConflict,
    PrecautionaryBlockAlreadyExists,
)
from finbank_core.pix.med.model import MedCase, PrecautionaryBlock
from finbank_core.shared.errors import NotFound


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
