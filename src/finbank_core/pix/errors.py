"""Errors of the PIX context.

All are ``InvalidInput``: a value from outside (a typed key, a pasted code, a
document number) is not what the PIX rules allow. Messages name the rule and
the field, never the value itself: keys and documents are personal data and
messages end up in logs and HTTP responses.
"""

from __future__ import annotations

from typing import Any

from finbank_core.shared.errors import InvalidInput


class InvalidDocument(InvalidInput):
    """A CPF or CNPJ is malformed or its check digits do not match."""

    code = "invalid_document"
    title = "Invalid CPF or CNPJ"


class InvalidPixKey(InvalidInput):
    """A PIX key does not follow the directory's (DICT) format for its type."""

    code = "invalid_pix_key"
    title = "Invalid PIX key"


class InvalidIdentifier(InvalidInput):
    """An EndToEndId, return id, txid or ISPB is malformed."""

    code = "invalid_identifier"
    title = "Invalid PIX identifier"


class InvalidBRCode(InvalidInput):
    """A BR Code ("Pix Copia e Cola") is malformed or breaks a rule of the manual.

    ``field`` is the EMV id of the offending field, ``"26-01"`` style for a
    sub-field; it is in ``details["field"]`` and at the start of the message,
    so a client can point at the culprit without parsing prose.
    """

    code = "invalid_br_code"
    title = "Invalid BR Code"

    def __init__(self, message: str, *, field: str, **details: Any) -> None:
        self.field = field
        super().__init__(f"BR Code field {field}: {message}", field=field, **details)
