"""Customer accounts: the product a person or company holds, on a ledger account."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import msgspec

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
    """A customer's account. ``id`` is also the id of its ledger account."""

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
