"""PIX keys as the directory (DICT) stores them.

A :class:`PixKey` always holds the canonical form of a valid key: CPF as 11
digits, CNPJ as 14 uppercase characters, phone in E.164 with ``+``, email in
lowercase, EVP as a lowercase UUID. Build one with :meth:`PixKey.parse`, which
normalises what a person types; constructing ``PixKey(type, value)`` directly
(or decoding one with msgspec) only accepts the canonical form.

Normalisation never changes a key's meaning: punctuation is removed from
documents and phones, case is folded only where the DICT folds it, and an
11-digit number is never read as a phone (phones need the ``+``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

import msgspec

from finbank_core.pix.codes.documents import (
    format_cnpj,
    is_valid_cnpj,
    is_valid_cpf,
    mask_document,
    normalize_cnpj,
    normalize_cpf,
)
from finbank_core.pix.errors import InvalidPixKey

MAX_KEY_LENGTH: Final = 77

_PHONE: Final = re.compile(r"\+[1-9][0-9]{1,14}")  # E.164, as the DICT API has it
_PHONE_SEPARATORS: Final = str.maketrans("", "", " ()-.")
_EVP: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A deliberately basic shape: one "@", a local part of the characters mail
# systems accept (minus "%", which the DICT refuses), a dotted domain of
# LDH labels. Deliverability is the owner's proof (the DICT sends a code).
_EMAIL: Final = re.compile(
    r"[a-z0-9.!#$&'*+/=?^_`{|}~-]+"
    r"@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+"
)
_DOCUMENT_CHARS: Final = frozenset(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-/"
)
_PHONE_HINT: Final = "phone keys must be in E.164 form, e.g. +5511987654321"


class PixKeyType(StrEnum):
    """The five key types of the DICT, with the names its API uses."""

    CPF = "CPF"
    CNPJ = "CNPJ"
    PHONE = "PHONE"
    EMAIL = "EMAIL"
    EVP = "EVP"


def _cpf(raw: str) -> str:
    cpf = normalize_cpf(raw)
    if len(cpf) != 11 or not (cpf.isascii() and cpf.isdigit()):
        raise InvalidPixKey("a CPF key must have 11 digits", key_type="CPF")
    if not is_valid_cpf(cpf):
        raise InvalidPixKey("not a valid CPF (check digits do not match)", key_type="CPF")
    return cpf


def _cnpj(raw: str) -> str:
    cnpj = normalize_cnpj(raw)
    if not is_valid_cnpj(cnpj):
        raise InvalidPixKey(
            "not a valid CNPJ (14 characters of 0-9 or A-Z with matching check digits)",
            key_type="CNPJ",
        )
    return cnpj


def _phone(raw: str) -> str:
    phone = raw.strip().translate(_PHONE_SEPARATORS)
    if not phone.isascii() or _PHONE.fullmatch(phone) is None:
        raise InvalidPixKey(f"not a valid phone key; {_PHONE_HINT}", key_type="PHONE")
    return phone


def _email(raw: str) -> str:
    email = raw.strip().lower()
    if "%" in email:
        raise InvalidPixKey("email keys may not contain '%'", key_type="EMAIL")
    if len(email) > MAX_KEY_LENGTH:
        raise InvalidPixKey(f"email keys have at most {MAX_KEY_LENGTH} characters")
    if not email.isascii() or _EMAIL.fullmatch(email) is None:
        raise InvalidPixKey("not a valid email address", key_type="EMAIL")
    return email


def _evp(raw: str) -> str:
    evp = raw.strip().lower()
    if not evp.isascii() or _EVP.fullmatch(evp) is None:
        raise InvalidPixKey(
            "not a valid random key (EVP): expected a UUID like "
            "123e4567-e89b-12d3-a456-426614174000",
            key_type="EVP",
        )
    return evp


_NORMALISERS: Final = {
    PixKeyType.CPF: _cpf,
    PixKeyType.CNPJ: _cnpj,
    PixKeyType.PHONE: _phone,
    PixKeyType.EMAIL: _email,
    PixKeyType.EVP: _evp,
}


def _infer(raw: str) -> PixKeyType:
    text = raw.strip()
    # "@" first: a phone never holds one, while an email's local part may start
    # with "+" ("+info@example.com" is a valid address).
    if "@" in text:
        return PixKeyType.EMAIL
    if text.startswith("+"):
        return PixKeyType.PHONE
    if len(text) == 36 and text.isascii() and _EVP.fullmatch(text.lower()):
        return PixKeyType.EVP
    compact = "".join(text.split())
    if compact and _DOCUMENT_CHARS.issuperset(compact):
        bare = normalize_cnpj(compact)
        if len(bare) == 11 and bare.isdigit():
            if is_valid_cpf(bare):
                return PixKeyType.CPF
            # Never fall back to a phone: an 11-digit phone without "+55" is
            # ambiguous with a CPF, and the DICT only knows E.164 phones.
            raise InvalidPixKey(f"11 digits that are not a valid CPF; {_PHONE_HINT}")
        if len(bare) == 14:
            if is_valid_cnpj(bare):
                return PixKeyType.CNPJ
            raise InvalidPixKey("14 characters that are not a valid CNPJ")
        if bare.isdigit():
            raise InvalidPixKey(
                f"digits only, but neither a CPF (11) nor a CNPJ (14); {_PHONE_HINT}"
            )
    raise InvalidPixKey(
        "could not tell the key type: expected a CPF, a CNPJ, an E.164 phone "
        "(+55...), an email or a random key (UUID)"
    )


class PixKey(msgspec.Struct, frozen=True):
    """A valid PIX key in canonical form.

    ``PixKey(type, value)`` refuses a ``value`` that is not already canonical
    for ``type`` (raises ``InvalidPixKey``); use :meth:`parse` for user input.
    ``type`` may be given as the enum's value (``"EMAIL"``), as msgspec decodes
    it and as ``checked_enums`` reads enum fields: it becomes the member; any
    other type is ``InvalidPixKey``.
    ``repr`` masks the value: keys are personal data and reprs reach logs.
    """

    type: PixKeyType
    value: str

    def __post_init__(self) -> None:
        if type(self.type) is not PixKeyType:
            # Built in Python, a struct's field is not type-checked: a plain "EMAIL"
            # would reach the normalisers' lookup and ``masked()``'s identity checks.
            try:
                member = PixKeyType(self.type)
            except (ValueError, TypeError):
                # Not echoed: a key passed as the type by mistake is personal data.
                raise InvalidPixKey(
                    "unknown key type; expected CPF, CNPJ, PHONE, EMAIL or EVP"
                ) from None
            msgspec.structs.force_setattr(self, "type", member)
        if not isinstance(self.value, str) or len(self.value) > MAX_KEY_LENGTH:
            raise InvalidPixKey(f"a key is a string of at most {MAX_KEY_LENGTH} characters")
        if _NORMALISERS[self.type](self.value) != self.value:
            raise InvalidPixKey(
                f"{self.type.value} key is not in canonical form; build it with PixKey.parse",
                key_type=self.type.value,
            )

    @classmethod
    def parse(cls, raw: str, key_type: PixKeyType | None = None) -> PixKey:
        """Normalise and validate ``raw`` as a key of ``key_type``.

        Without ``key_type`` the type is inferred: an ``@`` is an email, else
        a leading ``+`` a phone, a UUID an EVP, 14 characters with valid CNPJ check
        digits a CNPJ, 11 digits with valid CPF check digits a CPF. Anything
        else, or a key invalid for the given type, raises ``InvalidPixKey``;
        the message names the type and the rule broken, never the key.
        Idempotent: ``parse(parse(x).value, parse(x).type) == parse(x)``.
        """
        if not isinstance(raw, str):
            raise InvalidPixKey("a key must be a string")
        if key_type is None:
            resolved = _infer(raw)
        elif key_type in _NORMALISERS:
            resolved = PixKeyType(key_type)
        else:
            raise InvalidPixKey("unknown key type; expected CPF, CNPJ, PHONE, EMAIL or EVP")
        value = _NORMALISERS[resolved](raw)
        if len(value) > MAX_KEY_LENGTH:
            raise InvalidPixKey(f"a key has at most {MAX_KEY_LENGTH} characters")
        return cls(resolved, value)

    def masked(self) -> str:
        """The key as shown to someone who is not its owner.

        CPF ``***.982.247-**`` (as the DICT shows it), CNPJ formatted in full
        (public registry data), phone ``+5511*****4321``, email
        ``f***@example.com``, EVP with its middle groups hidden.
        """
        value = self.value
        if self.type is PixKeyType.CPF:
            return mask_document(value)
        if self.type is PixKeyType.CNPJ:
            return format_cnpj(value)
        if self.type is PixKeyType.PHONE:
            if len(value) < 10:  # too short to show both ends without revealing it all
                return value[:3] + "*" * (len(value) - 3)
            return value[:5] + "*" * (len(value) - 9) + value[-4:]
        if self.type is PixKeyType.EMAIL:
            local, _, domain = value.partition("@")
            return f"{local[0]}***@{domain}"
        return f"{value[:8]}-****-****-****-********{value[-4:]}"

    def __repr__(self) -> str:
        return f"PixKey(type={self.type.value}, value={self.masked()!r})"

    def __str__(self) -> str:
        return self.masked()
