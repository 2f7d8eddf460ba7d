"""PIX building blocks: documents (CPF/CNPJ), DICT keys, network ids, BR Codes.

Pure functions and frozen values; nothing here does I/O. Every refusal is an
``InvalidInput`` subclass with a stable ``code`` and a message that names the
rule and field, never the personal data that broke it.
"""

from finbank_core.pix.codes.brcode import PIX_GUI, BRCode, ascii_fold
from finbank_core.pix.codes.crc import crc16_ccitt_false, crc16_hex
from finbank_core.pix.codes.documents import (
    cnpj_check_digits,
    cpf_check_digits,
    format_cnpj,
    generate_cnpj,
    generate_cpf,
    is_valid_cnpj,
    is_valid_cpf,
    mask_document,
    normalize_cnpj,
    normalize_cpf,
    parse_cnpj,
    parse_cpf,
)
from finbank_core.pix.codes.identifiers import (
    EndToEndId,
    ReturnId,
    TxId,
    is_valid_ispb,
    is_valid_static_txid,
    parse_ispb,
)
from finbank_core.pix.codes.keys import MAX_KEY_LENGTH, PixKey, PixKeyType
from finbank_core.pix.errors import InvalidBRCode, InvalidDocument, InvalidIdentifier, InvalidPixKey

__all__ = [
    "MAX_KEY_LENGTH",
    "PIX_GUI",
    "BRCode",
    "EndToEndId",
    "InvalidBRCode",
    "InvalidDocument",
    "InvalidIdentifier",
    "InvalidPixKey",
    "PixKey",
    "PixKeyType",
    "ReturnId",
    "TxId",
    "ascii_fold",
    "cnpj_check_digits",
    "cpf_check_digits",
    "crc16_ccitt_false",
    "crc16_hex",
    "format_cnpj",
    "generate_cnpj",
    "generate_cpf",
    "is_valid_cnpj",
    "is_valid_cpf",
    "is_valid_ispb",
    "is_valid_static_txid",
    "mask_document",
    "normalize_cnpj",
    "normalize_cpf",
    "parse_cnpj",
    "parse_cpf",
    "parse_ispb",
]
