"""A ``FileStore`` on S3 through an already-open aioboto3 client."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from finbank_adapters._extras import require_extra
from finbank_core.shared.errors import NotFound, ServiceUnavailable

require_extra("finbank_adapters.files.s3", "aws", ["aioboto3", "botocore"])

from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

PART_BYTES = 8 << 20  # S3 multipart parts must be >= 5 MiB except the last
CHUNK_BYTES = 1 << 16


class S3FileStore:
    """Streams both ways: multipart upload for writes, ranged body reads for reads."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix.strip("/")

    def _key(self, path: str) -> str:
        return f"{self._prefix}/{path}" if self._prefix else path

    async def put(self, path: str, chunks: AsyncIterable[bytes]) -> None:
        key = self._key(path)
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= PART_BYTES:
                    if upload_id is None:
                        created = await self._client.create_multipart_upload(
                            Bucket=self._bucket, Key=key
                        )
                        upload_id = created["UploadId"]
                    parts.append(await self._upload_part(key, upload_id, len(parts) + 1, buffer))
                    buffer = bytearray()
            if upload_id is None:
                await self._client.put_object(Bucket=self._bucket, Key=key, Body=bytes(buffer))
                return
            if buffer:
                parts.append(await self._upload_part(key, upload_id, len(parts) + 1, buffer))
            await self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except (BotoCoreError, ClientError) as exc:
            if upload_id is not None:
                await self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=key, UploadId=upload_id
                )
            raise ServiceUnavailable("could not write to S3") from exc

    async def _upload_part(
        self, key: str, upload_id: str, number: int, data: bytearray
    ) -> dict[str, Any]:
        response = await self._client.upload_part(
            Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(data)
        )
        return {"ETag": response["ETag"], "PartNumber": number}

    async def get(self, path: str) -> AsyncIterator[bytes]:
        try:
            response = await self._client.get_object(Bucket=self._bucket, Key=self._key(path))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound(f"no file at {path}") from None
            raise ServiceUnavailable("could not read from S3") from exc
        body = response["Body"]  # aiobotocore StreamingBody: read(n) streams
        try:
            while chunk := await body.read(CHUNK_BYTES):
                yield chunk
        finally:
            body.close()

    async def exists(self, path: str) -> bool:
        try:
            await self._client.head_object(Bucket=self._bucket, Key=self._key(path))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise ServiceUnavailable("could not reach S3") from exc
        return True
