"""Request and response bodies. Amounts travel as strings like ``"1234.56"``, never floats."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from finbank_core.accounts.model import AccountKind, CustomerAccount, HolderType
from finbank_core.accounts.use_cases import (
    BalanceResult,
    Statement,
    StatementLine,
    TransferReceipt,
)
from finbank_core.shared.money import Money

AmountText = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\d{1,10}\.\d{2}$",
        description="Amount in reais with exactly two decimals, e.g. 1234.56",
        examples=["150.00"],
    ),
]


def signed_amount(money: Money) -> str:
    sign = "-" if money.cents < 0 else ""
    return sign + Money(abs(money.cents)).to_bcb()


# -- auth ---------------------------------------------------------------------------


class SignUpIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    email: str | None = None
    phone_number: str | None = None
    name: str | None = None


class SignUpOut(msgspec.Struct, kw_only=True):
    subject: str
    confirmation_required: bool


class LoginIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class TokensOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str | None = None
    id_token: str | None = None


class LoginOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Either ``tokens`` or an MFA challenge to answer at ``/v1/auth/mfa``."""

    mfa_required: bool
    tokens: TokensOut | None = None
    challenge_id: str | None = None
    challenge_type: str | None = None
    expires_in: int | None = None
    #: SELECT_MFA_TYPE: the types to choose from; MFA_SETUP: the types that can be set up
    available_types: list[str] | None = None


# -- accounts -------------------------------------------------------------------------


class OpenAccountIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    holder_name: Annotated[str, msgspec.Meta(min_length=1, max_length=140)]
    holder_type: HolderType = HolderType.INDIVIDUAL
    holder_document: Annotated[str, msgspec.Meta(max_length=18)] | None = None
    kind: AccountKind = AccountKind.PAYMENT


class AccountOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    branch: str
    number: str
    kind: AccountKind
    status: str
    holder_name: str
    holder_type: HolderType
    created_at: datetime

    @classmethod
    def of(cls, account: CustomerAccount) -> AccountOut:
        return cls(
            id=account.id,
            branch=account.branch,
            number=account.number,
            kind=account.kind,
            status=account.status.value,
            holder_name=account.holder_name,
            holder_type=account.holder_type,
            created_at=account.created_at,
        )


class BalanceOut(msgspec.Struct, kw_only=True):
    posted: str
    available: str
    pending_debits: str
    pending_credits: str


class AccountDetailOut(msgspec.Struct, kw_only=True):
    account: AccountOut
    balance: BalanceOut

    @classmethod
    def of(cls, balance: BalanceResult) -> AccountDetailOut:
        return cls(
            account=AccountOut.of(balance.account),
            balance=BalanceOut(
                posted=signed_amount(balance.posted),
                available=signed_amount(balance.available),
                pending_debits=signed_amount(balance.pending_debits),
                pending_credits=signed_amount(balance.pending_credits),
            ),
        )


class StatementLineOut(msgspec.Struct, kw_only=True):
    sequence: int
    transfer_id: uuid.UUID
    timestamp: datetime
    amount: str
    balance_after: str
    code: int
    description: str | None

    @classmethod
    def of(cls, line: StatementLine) -> StatementLineOut:
        return cls(
            sequence=line.sequence,
            transfer_id=line.transfer_id,
            timestamp=line.timestamp,
            amount=signed_amount(line.amount),
            balance_after=signed_amount(line.balance_after),
            code=line.code,
            description=line.description,
        )


class StatementOut(msgspec.Struct, kw_only=True):
    account_id: uuid.UUID
    since: datetime | None
    until: datetime | None
    lines: list[StatementLineOut]
    next_cursor: int | None

    @classmethod
    def of(cls, statement: Statement) -> StatementOut:
        return cls(
            account_id=statement.account.id,
            since=statement.since,
            until=statement.until,
            lines=[StatementLineOut.of(line) for line in statement.lines],
            next_cursor=statement.next_cursor,
        )


# -- transfers --------------------------------------------------------------------------


class TransferIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    from_account_id: uuid.UUID
    to_account_id: uuid.UUID
    amount: AmountText
    description: Annotated[str, msgspec.Meta(max_length=140)] | None = None


class TransferOut(msgspec.Struct, kw_only=True):
    transfer_id: uuid.UUID
    from_account_id: uuid.UUID
    to_account_id: uuid.UUID
    amount: str
    description: str | None
    created_at: datetime

    @classmethod
    def of(cls, receipt: TransferReceipt) -> TransferOut:
        return cls(
            transfer_id=receipt.transfer_id,
            from_account_id=receipt.debit_account_id,
            to_account_id=receipt.credit_account_id,
            amount=receipt.amount.to_bcb(),
            description=receipt.description,
            created_at=receipt.created_at,
        )


class SandboxDepositIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    account_id: uuid.UUID
    amount: AmountText
