"""Customer accounts: the product a person or company holds, on a ledger account."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import msgspec

from finbank_core.accounts.errors import InvalidHolder

DEFAULT_BRANCH = "0001"


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    CLOSED = "closed"


class AccountKind(enum.StrEnum):
    """Account types as the PIX directory names them."""

    CHECKING = "CACC"
    PAYMENT = "TRAN"
    SAVINGS = "SVGS"
    SALARY = "SLRY"


class HolderType(enum.StrEnum):
    INDIVIDUAL = "individual"
    COMPANY = "company"


class CustomerAccount(msgspec.Struct, frozen=True, kw_only=True):
    """A customer's account. ``id`` is also the id of its ledger account.

    ``repr`` masks the holder's document (a CPF identifies a person).
    """

    id: uuid.UUID
    owner_id: str
    holder_name: str
    holder_type: HolderType
    branch: str
    number: str  # digits, dash, check digit: "1234567-8"
    kind: AccountKind
    status: AccountStatus
    created_at: datetime
    holder_document: str | None = None  # CPF/CNPJ: personal data, never logged

    def __repr__(self) -> str:
        return (
            f"CustomerAccount(id={self.id!r}, owner_id={self.owner_id!r},"
            f" holder_type={self.holder_type.value!r}, branch={self.branch!r},"
            f" number={self.number!r}, kind={self.kind.value!r}, status={self.status.value!r},"
            f" created_at={self.created_at!r},"
            f" holder_document={masked_document(self.holder_document)!r})"
        )


#: the longest holder name (the DICT's name field is 140 characters too)
HOLDER_NAME_MAX = 140


class Holder(msgspec.Struct, frozen=True, kw_only=True):
    """A validated account holder: trimmed name, bare document consistent with the type."""

    name: str
    type: HolderType
    document: str | None

    def __repr__(self) -> str:
        return f"Holder(type={self.type.value!r}, document={masked_document(self.document)!r})"


def validate_holder(name: str, holder_type: HolderType, document: str | None) -> Holder:
    """The holder of a new account, or ``InvalidHolder`` naming the field.

    * ``holder_name``: trimmed; 1 to 140 characters; printable only (no NUL,
      control, format or line-separator characters); at least one letter.
    * ``holder_document`` (optional): a CPF for an individual, a CNPJ for a
      company (numeric, or the alphanumeric CNPJ issued from July 2026), with
      valid check digits, bare or formatted; kept in its bare form.
    """
    # Imported here: the PIX package imports this module, so importing it at the
    # top would be circular. The validators are the ones PIX keys use.
    from finbank_core.pix.codes.documents import is_valid_cnpj, is_valid_cpf, normalize_cnpj

    trimmed = name.strip()
    if not trimmed or len(trimmed) > HOLDER_NAME_MAX:
        raise InvalidHolder(
            f"holder name must be 1 to {HOLDER_NAME_MAX} characters", field="holder_name"
        )
    if not trimmed.isprintable():
        raise InvalidHolder(
            "holder name must not contain control or invisible characters", field="holder_name"
        )
    if not any(c.isalpha() for c in trimmed):
        raise InvalidHolder("holder name must contain a letter", field="holder_name")
    if document is None:
        return Holder(name=trimmed, type=holder_type, document=None)
    if not document.isascii() or not document.isprintable() or len(document) > 32:
        raise InvalidHolder("holder document must be a CPF or a CNPJ", field="holder_document")
    bare = normalize_cnpj(document)
    if holder_type is HolderType.INDIVIDUAL:
        if not is_valid_cpf(bare):
            raise InvalidHolder(
                "an individual's document must be a valid CPF", field="holder_document"
            )
    elif not is_valid_cnpj(bare):
        raise InvalidHolder("a company's document must be a valid CNPJ", field="holder_document")
    return Holder(name=trimmed, type=holder_type, document=bare)


def masked_document(document: str | None) -> str | None:
    """A document as ``repr`` may show it: a CPF ``***.982.247-**``, a CNPJ ``**.***.333/0001-**``.

    Anything else (not a valid document) is fully masked.
    """
    if document is None:
        return None
    bare = "".join(c for c in document if c.isalnum())
    if len(bare) == 11 and bare.isdigit():
        return f"***.{bare[3:6]}.{bare[6:9]}-**"
    if len(bare) == 14:
        return f"**.***.{bare[5:8]}/{bare[8:12]}-**"
    return "***"


def account_check_digit(number: int) -> str:
    """Mod-11 check digit over the digits of ``number`` (weights 2..9 from the right).

    A remainder giving 10 is written ``X``, as several Brazilian banks do.
    """
    total = 0
    weight = 2
    for digit in reversed(str(number)):
        total += int(digit) * weight
        weight = 2 if weight == 9 else weight + 1
    dv = 11 - total % 11
    if dv >= 10:
        return "0" if dv == 11 else "X"
    return str(dv)


def format_account_number(number: int) -> str:
    return f"{number}-{account_check_digit(number)}"


def is_valid_account_number(text: str) -> bool:
    base, sep, dv = text.rpartition("-")
    if not sep or not base.isdigit() or not base.isascii():
        return False
    return account_check_digit(int(base)) == dv
