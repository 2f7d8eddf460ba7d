"""A ``FileStore`` on the local filesystem, under one root directory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import tempfile
from collections.abc import AsyncIterable, AsyncIterator

from finbank_core.shared.errors import InvalidInput, NotFound

CHUNK_BYTES = 1 << 16


class LocalFileStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = pathlib.Path(root).resolve()

    def _path(self, path: str) -> pathlib.Path:
        full = (self._root / path).resolve()
        if not full.is_relative_to(self._root):
            raise InvalidInput("path escapes the file store's root")
        return full

    async def put(self, path: str, chunks: AsyncIterable[bytes]) -> None:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename: readers never see half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                async for chunk in chunks:
                    await asyncio.to_thread(handle.write, chunk)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    async def get(self, path: str) -> AsyncIterator[bytes]:
        source = self._path(path)
        if not source.is_file():
            raise NotFound(f"no file at {path}")
        with source.open("rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk

    async def exists(self, path: str) -> bool:
        return self._path(path).is_file()
