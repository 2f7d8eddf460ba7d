"""An in-memory ``FileStore`` that records what was written."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from finbank_adapters.files.paths import check_path
from finbank_core.shared.errors import NotFound

CHUNK_BYTES = 1 << 16


class InMemoryFileStore:
    """Takes the paths the disk and S3 stores take (``check_path``), so a test on it
    does not pass with a path a real store refuses."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def put(self, path: str, chunks: AsyncIterable[bytes]) -> None:
        check_path(path)
        parts = [chunk async for chunk in chunks]
        self.files[path] = b"".join(parts)  # whole or not at all

    async def get(self, path: str) -> AsyncIterator[bytes]:
        data = self.files.get(check_path(path))
        if data is None:
            raise NotFound(f"no file at {path}")
        for offset in range(0, len(data), CHUNK_BYTES):
            yield data[offset : offset + CHUNK_BYTES]

    async def exists(self, path: str) -> bool:
        return check_path(path) in self.files
