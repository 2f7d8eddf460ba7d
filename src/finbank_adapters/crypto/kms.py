"""A key-encryption key in AWS KMS: ``GenerateDataKey`` and ``Decrypt``.

KMS generates each data key and returns it with its wrapped form; only the
wrapped form is stored. An encryption context (``finbank-purpose``) is
bound to every data key, so a data key wrapped for something else does not
unwrap here. KMS's own rotation of a key's material is invisible here (the
key id stays); moving to another KMS key is a rotation like any other: list
the old key id in ``FINBANK_AUTH_SECRETS_PREVIOUS_KMS_KEY_IDS``.
"""

from __future__ import annotations

from typing import Any

from finbank_adapters._extras import require_extra
from finbank_adapters.crypto.envelope import SecretUnreadable
from finbank_core.shared.errors import ServiceUnavailable

require_extra("finbank_adapters.crypto.kms", "aws", ["aioboto3", "botocore"])

from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

_CONTEXT = {"finbank-purpose": "secrets-at-rest"}
#: KMS errors that mean "this blob does not open", not "KMS is down"
_REFUSED = {"InvalidCiphertextException", "IncorrectKeyException", "NotFoundException"}


class KmsKeyEncryptionKey:
    """Wraps data keys with the KMS key ``key_id`` (an id, ARN or alias) through ``client``."""

    def __init__(self, client: Any, key_id: str) -> None:
        if not key_id:
            raise ValueError("a KMS key id is required")
        self._client = client
        self._key_id = key_id

    @property
    def key_id(self) -> str:
        return self._key_id

    def __repr__(self) -> str:
        return f"KmsKeyEncryptionKey(key_id={self._key_id!r})"

    async def new_data_key(self) -> tuple[bytes, bytes]:
        try:
            response = await self._client.generate_data_key(
                KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=_CONTEXT
            )
        except (ClientError, BotoCoreError, OSError) as exc:
            raise ServiceUnavailable(f"KMS refused a data key: {_code(exc)}") from None
        return bytes(response["Plaintext"]), bytes(response["CiphertextBlob"])

    async def unwrap(self, wrapped: bytes) -> bytes:
        try:
            response = await self._client.decrypt(
                CiphertextBlob=wrapped, KeyId=self._key_id, EncryptionContext=_CONTEXT
            )
        except ClientError as exc:
            if _code(exc) in _REFUSED:
                raise SecretUnreadable("the data key does not open with this KMS key") from None
            raise ServiceUnavailable(f"KMS failed: {_code(exc)}") from None
        except (BotoCoreError, OSError) as exc:
            raise ServiceUnavailable(f"KMS is unreachable: {type(exc).__name__}") from None
        return bytes(response["Plaintext"])


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return type(exc).__name__
