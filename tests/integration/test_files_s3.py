"""``S3FileStore`` against moto, and against no S3 at all.

What it did wrong: ``get`` and ``exists`` let botocore's own errors
(``EndpointConnectionError``: S3 not reached) escape where ``put`` raised
``ServiceUnavailable``; ``exists`` on a missing bucket answered ``False``, so a
misconfigured bucket read as "no statement yet"; a write whose source failed after
the first part left the multipart upload (and its stored parts) behind; and keys
were not checked, so ``../tenant-b/x`` under the prefix ``tenant-a`` was stored as
the literal key ``tenant-a/../tenant-b/x``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aioboto3
import pytest
from botocore.config import Config

from finbank_adapters.files.s3 import PART_BYTES, S3FileStore
from finbank_core.shared.errors import InvalidInput, NotFound, ServiceUnavailable
from tests.integration.aws_fixtures import DUMMY_AWS_ENV, aws_endpoint
from tests.unit.adapters.test_files_paths import REFUSED

pytestmark = pytest.mark.services
__all__ = ["aws_endpoint"]  # fixture

BUCKET = "finbank-files-test"


@pytest.fixture
async def client(aws_endpoint: str) -> AsyncIterator[Any]:
    session = aioboto3.Session()
    async with session.client("s3", endpoint_url=aws_endpoint, region_name="sa-east-1") as client:
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            await client.create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "sa-east-1"}
            )
        yield client


@pytest.fixture
def prefix() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


async def one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def read(store: S3FileStore, path: str) -> bytes:
    return b"".join([chunk async for chunk in store.get(path)])


async def keys(client: Any) -> list[str]:
    listed = await client.list_objects_v2(Bucket=BUCKET)
    return [o["Key"] for o in listed.get("Contents", [])]


async def uploads(client: Any, prefix: str) -> list[str]:
    listed = await client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return [u["Key"] for u in listed.get("Uploads", [])]


@pytest.mark.parametrize("path", REFUSED.values(), ids=REFUSED.keys())
async def test_a_path_every_store_refuses_is_refused_before_any_request(
    path: str, client: Any, prefix: str
) -> None:
    store = S3FileStore(client, BUCKET, prefix=prefix)
    before = await keys(client)
    with pytest.raises(InvalidInput):
        await store.put(path, one(b"x"))
    with pytest.raises(InvalidInput):
        await read(store, path)
    with pytest.raises(InvalidInput):
        await store.exists(path)
    assert await keys(client) == before


async def test_a_path_that_fits_alone_but_not_under_the_prefix_is_refused(client: Any) -> None:
    store = S3FileStore(client, BUCKET, prefix="p" * 100)
    path = "/".join(["a" * 200] * 5)  # 1004 bytes: a valid path, a 1105-byte key
    with pytest.raises(InvalidInput):
        await store.put(path, one(b"x"))


async def test_exists_tells_a_missing_file_from_a_missing_bucket(client: Any, prefix: str) -> None:
    store = S3FileStore(client, BUCKET, prefix=prefix)
    await store.put("statements/2026-03-10.csv", one(b"data"))
    assert await store.exists("statements/2026-03-10.csv")
    assert not await store.exists("statements/2026-03-11.csv")
    with pytest.raises(NotFound):
        await read(store, "statements/2026-03-11.csv")

    nowhere = S3FileStore(client, f"no-such-bucket-{uuid.uuid4().hex[:8]}")
    with pytest.raises(ServiceUnavailable):
        await nowhere.exists("statements/2026-03-10.csv")  # a misconfiguration, not "absent"
    with pytest.raises(ServiceUnavailable):
        await read(nowhere, "statements/2026-03-10.csv")


async def test_a_source_failing_after_the_first_part_leaves_no_multipart_upload(
    client: Any, prefix: str
) -> None:
    store = S3FileStore(client, BUCKET, prefix=prefix)
    await store.put("report.csv", one(b"old"))

    async def breaks_after_a_part() -> AsyncIterator[bytes]:
        yield b"a" * PART_BYTES  # the upload is created and its first part sent
        yield b"b" * 100
        raise RuntimeError("source broke mid-stream")

    with pytest.raises(RuntimeError, match="source broke mid-stream"):  # passed on as it is
        await store.put("report.csv", breaks_after_a_part())
    assert await uploads(client, prefix) == []
    assert await read(store, "report.csv") == b"old"


async def test_a_cancelled_write_after_the_first_part_leaves_no_multipart_upload(
    client: Any, prefix: str
) -> None:
    store = S3FileStore(client, BUCKET, prefix=prefix)
    asked_for_more = asyncio.Event()

    async def stalls_after_a_part() -> AsyncIterator[bytes]:
        yield b"a" * PART_BYTES
        asked_for_more.set()  # the first part is uploaded: the store wants the next chunk
        await asyncio.Event().wait()
        yield b"never"

    write = asyncio.create_task(store.put("report.csv", stalls_after_a_part()))
    await asked_for_more.wait()
    assert await uploads(client, prefix) == [f"{prefix}/report.csv"]
    write.cancel()
    with pytest.raises(asyncio.CancelledError):
        await write
    assert await uploads(client, prefix) == []
    assert not await store.exists("report.csv")


@pytest.fixture
async def unreachable_client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """A client whose endpoint refuses connections (a port bound, then released)."""
    for key, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = aioboto3.Session()
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=5)
    async with session.client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="sa-east-1", config=config
    ) as client:
        yield client


async def test_an_unreachable_s3_is_service_unavailable_for_every_operation(
    unreachable_client: Any,
) -> None:
    store = S3FileStore(unreachable_client, BUCKET)
    with pytest.raises(ServiceUnavailable):
        await read(store, "statements/2026-03-10.csv")
    with pytest.raises(ServiceUnavailable):
        await store.exists("statements/2026-03-10.csv")
    with pytest.raises(ServiceUnavailable):
        await store.put("statements/2026-03-10.csv", one(b"x"))
