"""A ``FileStore`` on S3 through an already-open aioboto3 client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from finbank_adapters._extras import require_extra
from finbank_adapters.files.paths import MAX_PATH_BYTES, check_path
from finbank_core.shared.errors import InvalidInput, NotFound, ServiceUnavailable

require_extra("finbank_adapters.files.s3", "aws", ["aioboto3", "botocore"])

from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

PART_BYTES = 8 << 20  # S3 multipart parts must be >= 5 MiB except the last
CHUNK_BYTES = 1 << 16
#: error codes of a missing object (``head_object`` has no body, so only the status)
MISSING_OBJECT = ("NoSuchKey", "404", "NotFound")

#: what the client raises when S3 answers with an error (ClientError) or is not
#: reached at all (BotoCoreError: EndpointConnectionError, timeouts, a broken body)
S3_ERRORS = (BotoCoreError, ClientError)


class S3FileStore:
    """Streams both ways: multipart upload for writes, ranged body reads for reads.

    Paths are checked as every store checks them (``check_path``): S3 does not
    normalise keys, so ``../tenant-b/x`` under the prefix ``tenant-a`` would be
    stored as the literal key ``tenant-a/../tenant-b/x``.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix.strip("/")

    def _key(self, path: str) -> str:
        check_path(path)
        key = f"{self._prefix}/{path}" if self._prefix else path
        if len(key.encode()) > MAX_PATH_BYTES:
            raise InvalidInput(f"the S3 key of a file must be at most {MAX_PATH_BYTES} bytes")
        return key

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
        except S3_ERRORS as exc:
            await self._abort(key, upload_id)
            raise ServiceUnavailable("could not write to S3") from exc
        except BaseException:
            # The source failed, or the task was cancelled: the parts already sent are
            # stored (and billed) until aborted, so they are aborted here too.
            await self._abort(key, upload_id)
            raise

    async def _abort(self, key: str, upload_id: str | None) -> None:
        """Abort a started multipart upload; an abort that fails does not hide why we
        abort (the bucket's lifecycle rule removes what is left)."""
        if upload_id is None:
            return
        with contextlib.suppress(*S3_ERRORS):
            await self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=key, UploadId=upload_id
            )

    async def _upload_part(
        self, key: str, upload_id: str, number: int, data: bytearray
    ) -> dict[str, Any]:
        response = await self._client.upload_part(
            Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(data)
        )
        return {"ETag": response["ETag"], "PartNumber": number}

    async def get(self, path: str) -> AsyncIterator[bytes]:
        key = self._key(path)
        try:
            response = await self._client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in MISSING_OBJECT:
                raise NotFound(f"no file at {path}") from None
            raise ServiceUnavailable("could not read from S3") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailable("could not read from S3") from exc
        body = response["Body"]  # aiobotocore StreamingBody: read(n) streams
        try:
            while True:
                try:
                    chunk = await body.read(CHUNK_BYTES)
                except S3_ERRORS as exc:  # the connection broke mid-body
                    raise ServiceUnavailable("could not read from S3") from exc
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    async def exists(self, path: str) -> bool:
        key = self._key(path)
        try:
            await self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _code(exc) not in MISSING_OBJECT:
                raise ServiceUnavailable("could not reach S3") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailable("could not reach S3") from exc
        else:
            return True
        return await self._absent(key)

    async def _absent(self, key: str) -> bool:
        """False if the bucket answers "no such key"; a missing bucket is ``ServiceUnavailable``.

        ``head_object`` answers a bare 404 both for a missing object and a missing
        bucket (a HEAD response has no body to name which): a misconfigured bucket
        would read as "no file", and the reconciliation would skip statements it
        should fail on. ``get_object`` names the error; it needs no permission
        ``head_object`` does not, and it is asked only when the object seems absent.
        """
        try:
            response = await self._client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _code(exc) == "NoSuchKey":
                return False
            raise ServiceUnavailable("could not reach S3") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailable("could not reach S3") from exc
        response["Body"].close()  # written in between: it exists, its bytes are not wanted
        return True


def _code(exc: ClientError) -> Any:
    return exc.response.get("Error", {}).get("Code")
