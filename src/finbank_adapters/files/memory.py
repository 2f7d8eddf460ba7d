"""An in-memory ``FileStore`` that records what was written."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from finbank_core.shared.errors import NotFound

CHUNK_BYTES = 1 << 16


class InMemoryFileStore:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def put(self, path: str, chunks: AsyncIterable[bytes]) -> None:
        parts = [chunk async for chunk in chunks]
        self.files[path] = b"".join(parts)  # whole or not at all

    async def get(self, path: str) -> AsyncIterator[bytes]:
        data = self.files.get(path)
        if data is None:
            raise NotFound(f"no file at {path}")
        for offset in range(0, len(data), CHUNK_BYTES):
            yield data[offset : offset + CHUNK_BYTES]

    async def exists(self, path: str) -> bool:
        return path in self.files
