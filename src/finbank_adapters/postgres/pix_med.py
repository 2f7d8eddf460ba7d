"""MED cases and precautionary blocks on PostgreSQL (migrations ``0014``, ``0031``).

``pix_med_cases`` and ``pix_med_blocks``, one row per EndToEndId, the
msgspec JSON of the record in ``body``. ``add_*`` is one ``INSERT ... ON
CONFLICT DO NOTHING`` (a taken EndToEndId writes nothing:
``MedCaseAlreadyExists`` / ``PrecautionaryBlockAlreadyExists``);
``update_*`` is one ``UPDATE ... WHERE version = expected`` (``MedVersionConflict``;
not found if the row is missing): of concurrent writers that read one
version, the row lock lets exactly one through. Each write also stores the
record's ``attention_at()`` (column ``attention_at``, indexed where not null),
so ``due_cases`` and ``due_blocks`` read an index. Driver errors leave through
:mod:`~finbank_adapters.postgres.errors`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import msgspec

from finbank_adapters.postgres.errors import translated
from finbank_core.pix.med.errors import (
    MedCaseAlreadyExists,
    MedCaseNotFound,
    MedVersionConflict,
    PrecautionaryBlockAlreadyExists,
)
from finbank_core.pix.med.model import MedCase, MedDue, PrecautionaryBlock
from finbank_core.shared.errors import NotFound

_encoder = msgspec.json.Encoder()
_case_decoder = msgspec.json.Decoder(MedCase)
_block_decoder = msgspec.json.Decoder(PrecautionaryBlock)

_ADD_CASE = """
INSERT INTO pix_med_cases
    (end_to_end_id, report_id, version, side, status, opened_at, body, attention_at)
VALUES ($1, $2, 1, $3, $4, $5, $6, $7)
ON CONFLICT DO NOTHING
RETURNING true
"""
_UPDATE_CASE = """
UPDATE pix_med_cases SET version = $2 + 1, status = $3, body = $4, attention_at = $5
WHERE end_to_end_id = $1 AND version = $2
RETURNING true
"""
_GET_CASE = "SELECT body FROM pix_med_cases WHERE end_to_end_id = $1"
_CASE_EXISTS = "SELECT true FROM pix_med_cases WHERE end_to_end_id = $1"
_ADD_BLOCK = """
INSERT INTO pix_med_blocks
    (end_to_end_id, account_id, version, status, expires_at, body, attention_at)
VALUES ($1, $2, 1, $3, $4, $5, $6)
ON CONFLICT DO NOTHING
RETURNING true
"""
_UPDATE_BLOCK = """
UPDATE pix_med_blocks SET version = $2 + 1, status = $3, body = $4, attention_at = $5
WHERE end_to_end_id = $1 AND version = $2
RETURNING true
"""
_GET_BLOCK = "SELECT body FROM pix_med_blocks WHERE end_to_end_id = $1"
# the first page starts after (-infinity, ''): every key sorts after it
_DUE_CASES = """
SELECT attention_at, end_to_end_id FROM pix_med_cases
WHERE attention_at IS NOT NULL AND attention_at <= $1
  AND (attention_at, end_to_end_id) > ($2, $3)
ORDER BY attention_at, end_to_end_id
LIMIT $4
"""
_DUE_BLOCKS = """
SELECT attention_at, end_to_end_id FROM pix_med_blocks
WHERE attention_at IS NOT NULL AND attention_at <= $1
  AND (attention_at, end_to_end_id) > ($2, $3)
ORDER BY attention_at, end_to_end_id
LIMIT $4
"""
_FIRST = (datetime(1, 1, 1, tzinfo=UTC), "")  # before every time a record stores


class PostgresMedRepository:
    """The ``MedRepository`` port on PostgreSQL (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add_case(self, case: MedCase) -> MedCase:
        stored = msgspec.structs.replace(case, version=1)
        with translated():
            added = await self._pool.fetchval(
                _ADD_CASE,
                stored.end_to_end_id,
                stored.report_id,
                stored.side.value,
                stored.status.value,
                stored.opened_at,
                _encoder.encode(stored).decode(),
                stored.attention_at(),
            )
        if not added:
            raise MedCaseAlreadyExists()
        return stored

    async def get_case(self, end_to_end_id: str) -> MedCase | None:
        with translated():
            body = await self._pool.fetchval(_GET_CASE, end_to_end_id)
        return None if body is None else _case_decoder.decode(body)

    async def update_case(self, case: MedCase, expected_version: int) -> MedCase:
        stored = msgspec.structs.replace(case, version=expected_version + 1)
        with translated():
            updated = await self._pool.fetchval(
                _UPDATE_CASE,
                case.end_to_end_id,
                expected_version,
                stored.status.value,
                _encoder.encode(stored).decode(),
                stored.attention_at(),
            )
            if updated:
                return stored
            exists = await self._pool.fetchval(_CASE_EXISTS, case.end_to_end_id)
        if not exists:
            raise MedCaseNotFound()
        raise MedVersionConflict()

    async def add_block(self, block: PrecautionaryBlock) -> PrecautionaryBlock:
        stored = msgspec.structs.replace(block, version=1)
        with translated():
            added = await self._pool.fetchval(
                _ADD_BLOCK,
                stored.end_to_end_id,
                stored.account_id,
                stored.status.value,
                stored.expires_at,
                _encoder.encode(stored).decode(),
                stored.attention_at(),
            )
        if not added:
            raise PrecautionaryBlockAlreadyExists()
        return stored

    async def get_block(self, end_to_end_id: str) -> PrecautionaryBlock | None:
        with translated():
            body = await self._pool.fetchval(_GET_BLOCK, end_to_end_id)
        return None if body is None else _block_decoder.decode(body)

    async def update_block(
        self, block: PrecautionaryBlock, expected_version: int
    ) -> PrecautionaryBlock:
        stored = msgspec.structs.replace(block, version=expected_version + 1)
        with translated():
            updated = await self._pool.fetchval(
                _UPDATE_BLOCK,
                block.end_to_end_id,
                expected_version,
                stored.status.value,
                _encoder.encode(stored).decode(),
                stored.attention_at(),
            )
        if updated:
            return stored
        if await self.get_block(block.end_to_end_id) is None:
            raise NotFound("no such precautionary block")
        raise MedVersionConflict()

    async def due_cases(
        self, until: datetime, *, after: MedDue | None = None, limit: int = 100
    ) -> list[MedDue]:
        return await self._due(_DUE_CASES, until, after, limit)

    async def due_blocks(
        self, until: datetime, *, after: MedDue | None = None, limit: int = 100
    ) -> list[MedDue]:
        return await self._due(_DUE_BLOCKS, until, after, limit)

    async def _due(
        self, query: str, until: datetime, after: MedDue | None, limit: int
    ) -> list[MedDue]:
        at, end_to_end_id = _FIRST if after is None else (after.at, after.end_to_end_id)
        with translated():
            rows = await self._pool.fetch(query, until, at, end_to_end_id, limit)
        return [MedDue(row[0], row[1]) for row in rows]
