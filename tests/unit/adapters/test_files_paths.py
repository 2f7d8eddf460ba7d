"""File stores: one path rule for memory, disk and S3, checked before the disk is touched.

``LocalFileStore`` resolved what it was given: ``""`` and ``"."`` were the root itself
(the write's temporary file went into the root's *parent*, then ``IsADirectoryError``),
``a/../b`` was ``b`` while S3 stored the literal key; a NUL gave ``ValueError``, a
255-byte name ``OSError`` (the temporary name was longer still), a file under a file
``FileExistsError``. Each is now a core error; the S3 side is in
``tests/integration/test_files_s3.py``.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import AsyncIterator

import pytest

from finbank_adapters.files import InMemoryFileStore, LocalFileStore
from finbank_adapters.files.paths import check_path
from finbank_core.shared.errors import Conflict, InvalidInput

REFUSED = {
    "empty": "",
    "dot": ".",
    "dot-dot": "..",
    "parent": "../x",
    "dot-dot-inside": "a/../b",
    "dot-segment": "./a",
    "absolute": "/a",
    "empty-segment": "a//b",
    "trailing-slash": "a/",
    "nul": "a\x00b",
    "newline": "a\nb",
    "del": "a\x7fb",
    "lone-surrogate": "a" + chr(0xD800),
    "long-name": "a" * 256,
    "long-path": "/".join(["a" * 200] * 6),
}
ACCEPTED = [
    "reports/2026-03-10/amount_mismatch.csv",
    "statements/2026-03-10.csv",
    "%2e%2e/x",
    "a..b/.hidden",
    "ação/relatório.csv",
    "n" * 255,
]


async def chunks(*parts: bytes, fail: bool = False) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if fail:
        raise RuntimeError("upstream broke")


async def read(store: LocalFileStore | InMemoryFileStore, path: str) -> bytes:
    return b"".join([chunk async for chunk in store.get(path)])


def tree(directory: pathlib.Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    (tmp_path / "root").mkdir()
    return tmp_path / "root"


@pytest.mark.parametrize("path", REFUSED.values(), ids=REFUSED.keys())
def test_the_shared_rule_refuses_paths_that_do_not_name_one_file_everywhere(path: str) -> None:
    with pytest.raises(InvalidInput):
        check_path(path)


@pytest.mark.parametrize("path", REFUSED.values(), ids=REFUSED.keys())
async def test_the_disk_store_refuses_them_before_touching_the_disk(
    path: str, root: pathlib.Path
) -> None:
    store = LocalFileStore(root)
    before = tree(root.parent)
    with pytest.raises(InvalidInput):
        await store.put(path, chunks(b"x"))
    with pytest.raises(InvalidInput):
        await read(store, path)
    with pytest.raises(InvalidInput):
        await store.exists(path)
    assert tree(root.parent) == before  # no temporary file, here or beside the root


@pytest.mark.parametrize("path", REFUSED.values(), ids=REFUSED.keys())
async def test_the_memory_store_refuses_them_too(path: str) -> None:
    store = InMemoryFileStore()
    with pytest.raises(InvalidInput):
        await store.put(path, chunks(b"x"))
    with pytest.raises(InvalidInput):
        await read(store, path)
    with pytest.raises(InvalidInput):
        await store.exists(path)
    assert store.files == {}


@pytest.mark.parametrize("path", ACCEPTED)
async def test_a_valid_path_round_trips_on_disk_and_in_memory(
    path: str, root: pathlib.Path
) -> None:
    assert check_path(path) == path
    for store in (LocalFileStore(root), InMemoryFileStore()):
        await store.put(path, chunks(b"one", b"two"))
        assert await store.exists(path)
        assert await read(store, path) == b"onetwo"
    assert tree(root.parent) - {"root"} == {
        str(pathlib.Path("root", *path.split("/")[: i + 1])) for i in range(path.count("/") + 1)
    }  # the file and its directories, no temporary file left


async def test_a_symlink_to_the_root_is_not_a_file_of_the_store(root: pathlib.Path) -> None:
    os.symlink(root, root / "itself")
    store = LocalFileStore(root)
    before = tree(root.parent)
    with pytest.raises(InvalidInput):
        await store.put("itself", chunks(b"x"))
    assert tree(root.parent) == before


async def test_a_file_where_a_directory_is_needed_and_the_reverse_are_conflicts(
    root: pathlib.Path,
) -> None:
    store = LocalFileStore(root)
    await store.put("f", chunks(b"file"))
    await store.put("d/inner", chunks(b"inner"))
    with pytest.raises(Conflict):
        await store.put("f/g", chunks(b"x"))
    with pytest.raises(Conflict):
        await store.put("d", chunks(b"x"))
    assert await read(store, "f") == b"file"
    assert await read(store, "d/inner") == b"inner"
    assert tree(root) == {"f", "d", os.path.join("d", "inner")}  # no temporary file left
