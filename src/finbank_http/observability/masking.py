"""Redaction of personal data and credentials in log events.

Two layers, both applied to every event (ours, Litestar's, uvicorn's):

- by **field name**, recursively through dicts, lists and tuples: passwords,
  secrets, tokens, authorization and cookie headers, one-time codes (``otp``,
  ``totp``, ``mfa_code``, ...), Cognito sessions, PIX keys (``key``,
  ``pix_key``, ``chave``...), documents (``cpf``, ``cnpj``, ``document``)
  and, when configured, amounts;
- by **pattern**, on every string (messages, exception text, query strings):
  JWTs, ``Bearer`` credentials, ``name=value`` pairs with a sensitive name,
  CPF and CNPJ (formatted, bare, and the alphanumeric CNPJ), e-mail
  addresses, +55 phone numbers, EVP keys next to a key-ish word and, when
  configured, ``R$`` amounts.

Over-masking is accepted: any bare run of 11 or 14 digits is treated as a
document, because a log line is not where a CPF is worth telling apart from a
phone number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

REDACTED = "[REDACTED]"

#: field names whose values are always secret (matched case-insensitively, as a
#: whole name or as a ``_``/``-``-separated part of it: ``access_token``, ``x-api-key``)
SECRET_FIELD_PARTS = frozenset(
    {
        "password", "passwd", "pwd", "senha", "secret", "token", "authorization", "cookie",
        "otp", "totp", "session", "jwt", "credential", "credentials", "signature",
    }
)  # fmt: skip
SECRET_FIELD_NAMES = frozenset(
    {
        "api_key", "apikey", "x-api-key", "set-cookie", "mfa_code", "sms_code",
        "verification_code", "confirmation_code", "user_code", "challenge_responses",
        "redis_auth", "auth_token", "dsn", "postgres_dsn", "secret_string",
    }
)  # fmt: skip
#: PIX keys and documents: personal data
PERSONAL_FIELD_NAMES = frozenset(
    {
        "key", "pix_key", "chave", "dict_key", "key_value", "cpf", "cnpj", "document",
        "tax_id", "email", "phone", "phone_number",
    }
)  # fmt: skip
AMOUNT_FIELD_PARTS = frozenset({"amount", "balance", "valor", "saldo"})
#: a field named plainly ``code`` is an error code unless its value looks like an OTP
OTP_VALUE = re.compile(r"^\s*\d{4,8}\s*$")

_SENSITIVE_NAME = (
    r"(?:password|passwd|pwd|senha|secret|client_secret|token|access_token|refresh_token|"
    r"id_token|otp|totp|mfa_code|sms_code|session|api_key|apikey|jwt|cpf|cnpj|chave|"
    r"pix_key|key|phone|phone_number|email|document|tax_id)"
)
# a quoted value runs to its closing quote, a bare one to a space, quote or separator;
# a value already redacted is left alone (masking twice must not leave a stray "]")
_NAME_VALUE_RE = re.compile(
    r"(?i)(?<![A-Za-z0-9])(" + _SENSITIVE_NAME + r")(\"|')?(\s*[=:]\s*)"
    r"(?:(\"|')(?!\[REDACTED\])[^\"']*|(?!\[REDACTED\])[^\s\"'&,;}]+)"
)


def _redact_value(match: re.Match[str]) -> str:
    name, name_quote, separator, value_quote = match.groups()
    return f"{name}{name_quote or ''}{separator}{value_quote or ''}{REDACTED}"


_NAME_VALUE: tuple[re.Pattern[str], Callable[[re.Match[str]], str]] = (
    _NAME_VALUE_RE,
    _redact_value,
)
_PATTERNS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[JWT]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    # name=value and "name": "value" with a sensitive name (query strings, reprs, JSON text)
    _NAME_VALUE,
    (
        re.compile(
            r"(?i)(?<![A-Za-z0-9])((?:mfa_|sms_|otp_|totp_|verification_)?code\W{1,4})\d{4,8}(?!\d)"
        ),
        r"\1" + REDACTED,
    ),
    # A CPF formatted, bare or half-way (529.982247-25, 529982247-25, 529 982 247 25):
    # the dots may be there or not, one at a time; the last separator is a hyphen
    # or a space, never a dot, so a dotted quad like 192.168.100.10 stays.
    (re.compile(r"(?<![\w.])\d{3}[. ]?\d{3}[. ]?\d{3}[- ]?\d{2}(?!\w)"), "[CPF]"),
    (
        re.compile(
            r"(?<![\w.])[0-9A-Za-z]{2}\.[0-9A-Za-z]{3}\.[0-9A-Za-z]{3}/[0-9A-Za-z]{4}-\d{2}"
        ),
        "[CNPJ]",
    ),
    (re.compile(r"(?<![\w/.-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[EMAIL]"),
    (
        re.compile(r"\+55[\s.-]?\(?\d{2}\)?[\s.-]?9?\d{4}[\s.-]?\d{4}(?!\d)"),
        "[PHONE]",
    ),
    (re.compile(r"(?<![0-9A-Za-z])55\d{2}9\d{8}(?![0-9A-Za-z])"), "[PHONE]"),
    (re.compile(r"(?<![0-9A-Za-z])\d{14}(?![0-9A-Za-z])"), "[CNPJ]"),
    (re.compile(r"(?<![0-9A-Za-z])\d{11}(?![0-9A-Za-z])"), "[CPF]"),
    (
        re.compile(
            r"(?i)((?:key|chave|evp)\W{1,4})"
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        ),
        r"\1[PIX_KEY]",
    ),
)
_AMOUNT_TEXT = re.compile(r"R\$\s?-?[\d.]+(?:,\d{2})?")


class Masker:
    """Redacts an event dict (recursively) and free text; safe to share between threads."""

    def __init__(self, *, mask_amounts: bool = False) -> None:
        self.mask_amounts = mask_amounts

    # -- structlog processor -----------------------------------------------------------
    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        return self.mask_mapping(event_dict)

    # -- pieces -------------------------------------------------------------------------
    def mask_text(self, text: str) -> str:
        if "%" in text:  # URL-encoded paths and query strings: mask what they say
            # values first, while encoded: "password=three%20word%20phrase" is one value
            text = unquote(_NAME_VALUE_RE.sub(_redact_value, text))
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        if self.mask_amounts:
            text = _AMOUNT_TEXT.sub("R$ [AMOUNT]", text)
        return text

    def mask_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.mask_text(value)
        if isinstance(value, Mapping):
            return self.mask_mapping(value)
        if isinstance(value, list | tuple | set | frozenset):
            return [self.mask_value(item) for item in value]
        if isinstance(value, bytes | bytearray):
            return self.mask_text(bytes(value).decode("utf-8", "replace"))
        return value

    def mask_mapping(self, mapping: Mapping[Any, Any]) -> dict[Any, Any]:
        masked: dict[Any, Any] = {}
        for key, value in mapping.items():
            replacement = self.replacement_for(str(key), value)
            masked[key] = replacement if replacement is not None else self.mask_value(value)
        return masked

    def replacement_for(self, name: str, value: Any) -> str | None:
        """The placeholder for a field called ``name``, or None to mask its value by pattern."""
        lowered = name.lower()
        parts = set(re.split(r"[_\-.\s]+", lowered))
        if value is None or value == "":
            return None
        if lowered in SECRET_FIELD_NAMES or parts & SECRET_FIELD_PARTS:
            return REDACTED
        if lowered in PERSONAL_FIELD_NAMES:
            return "[PIX_KEY]" if lowered not in {"cpf", "cnpj", "document", "tax_id"} else "[DOC]"
        if lowered == "code" and isinstance(value, str | int) and OTP_VALUE.match(str(value)):
            return REDACTED
        if self.mask_amounts and parts & AMOUNT_FIELD_PARTS:
            return "[AMOUNT]"
        return None
