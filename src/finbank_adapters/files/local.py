"""A ``FileStore`` on the local filesystem, under one root directory."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import pathlib
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterator

from finbank_adapters.files.paths import check_path
from finbank_core.shared.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable

CHUNK_BYTES = 1 << 16
#: a fixed, short temporary name: one derived from the target's name overflowed the
#: 255-byte file-name limit for a long (but valid) name
TEMP_PREFIX = ".finbank-"
TEMP_SUFFIX = ".tmp"


class LocalFileStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = pathlib.Path(root).resolve()

    def _path(self, path: str) -> pathlib.Path:
        # Refused paths never reach the disk: resolving "" or "." gave the root itself,
        # and the temporary file of a write went into the root's parent.
        full = (self._root / check_path(path)).resolve()
        if full == self._root or not full.is_relative_to(self._root):
            raise InvalidInput("path escapes the file store's root")  # through a symlink
        return full

    async def put(self, path: str, chunks: AsyncIterable[bytes]) -> None:
        target = self._path(path)
        with _disk_errors(path):
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write beside the target and rename: readers never see half a file.
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                # Only our own disk errors are translated: the source's go through as they are.
                async for chunk in chunks:
                    with _disk_errors(path):
                        await asyncio.to_thread(handle.write, chunk)
                with _disk_errors(path):
                    handle.flush()  # a full disk shows here, not from close()
            with _disk_errors(path):
                os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    async def get(self, path: str) -> AsyncIterator[bytes]:
        source = self._path(path)
        if not source.is_file():
            raise NotFound(f"no file at {path}")
        with _disk_errors(path):
            handle = source.open("rb")
        with handle:
            while True:
                with _disk_errors(path):
                    chunk = await asyncio.to_thread(handle.read, CHUNK_BYTES)
                if not chunk:
                    return
                yield chunk

    async def exists(self, path: str) -> bool:
        return self._path(path).is_file()


@contextlib.contextmanager
def _disk_errors(path: str) -> Iterator[None]:
    """The file system's errors as core errors, so a caller handles every store alike."""
    try:
        yield
    except FileNotFoundError:
        raise NotFound(f"no file at {path}") from None  # removed while we looked
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        # "a/b" where "a" is a file, or a write over a directory
        raise Conflict(f"{path} clashes with a file or directory already in the store") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise InvalidInput("the file path is too long for this file system") from None
        raise ServiceUnavailable(f"the file store could not access {path}") from exc
