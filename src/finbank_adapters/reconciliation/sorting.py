"""External sort of reconciliation items: bounded memory for any number of items.

Items are sorted in chunks of ``chunk_size``; when there is more than one
chunk, each is spilled to a temporary file (msgpack) and the files are merged
with ``heapq.merge``. Peak memory is one chunk plus one item per spill file.
"""

from __future__ import annotations

import heapq
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from typing import IO

import msgspec

from finbank_core.reconciliation.model import ReconItem

DEFAULT_CHUNK = 100_000
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ReconItem)
_LEN = 4


def _sort_key(item: ReconItem) -> tuple[str, str]:
    return item.key, item.reference


def _spill(chunk: list[ReconItem], directory: str | None) -> IO[bytes]:
    handle = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by the merge
    for item in chunk:
        data = _encoder.encode(item)
        handle.write(len(data).to_bytes(_LEN, "big"))
        handle.write(data)
    handle.seek(0)
    return handle


def _read_spill(handle: IO[bytes]) -> Iterator[ReconItem]:
    try:
        while header := handle.read(_LEN):
            yield _decoder.decode(handle.read(int.from_bytes(header, "big")))
    finally:
        handle.close()


async def sort_items(
    items: AsyncIterable[ReconItem],
    *,
    chunk_size: int = DEFAULT_CHUNK,
    directory: str | os.PathLike[str] | None = None,
) -> AsyncIterator[ReconItem]:
    """Yield ``items`` sorted by key (then reference), in bounded memory."""
    spills: list[IO[bytes]] = []
    chunk: list[ReconItem] = []
    spill_dir = os.fspath(directory) if directory is not None else None
    try:
        async for item in items:
            chunk.append(item)
            if len(chunk) >= chunk_size:
                chunk.sort(key=_sort_key)
                spills.append(_spill(chunk, spill_dir))
                chunk = []
        chunk.sort(key=_sort_key)
        if not spills:
            for item in chunk:
                yield item
            return
        if chunk:
            spills.append(_spill(chunk, spill_dir))
            chunk = []
        for item in heapq.merge(*(_read_spill(h) for h in spills), key=_sort_key):
            yield item
    finally:
        for handle in spills:
            handle.close()
