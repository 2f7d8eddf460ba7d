"""Request and response bodies. Amounts travel as strings like ``"1234.56"``, never floats."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from finbank_core.accounts.ledger import TransferCode
from finbank_core.accounts.model import AccountKind, AccountStatus, CustomerAccount, HolderType
from finbank_core.accounts.use_cases import (
    BalanceResult,
    Statement,
    StatementLine,
    TransferReceipt,
)
from finbank_core.auth.model import ChallengeType
from finbank_core.shared.money import Money

#: ``$(?!\n)``: the end of the text, not before a final newline (Python's ``$`` alone
#: would accept ``"0.01\n"``); ``[0-9]``, not ``\d`` (which takes any script's digits);
#: no leading zero (``Money.from_bcb``'s form)
AMOUNT_PATTERN = r"^(?:0|[1-9][0-9]{0,9})\.[0-9]{2}$(?!\n)"
AmountText = Annotated[
    str,
    msgspec.Meta(
        pattern=AMOUNT_PATTERN,
        description="Amount in reais with exactly two decimals, e.g. 1234.56",
        examples=["150.00"],
    ),
]
#: amounts that move money: more than zero (0.00 is refused as the core refuses it)
POSITIVE_AMOUNT_PATTERN = r"^(?:0\.(?:0[1-9]|[1-9][0-9])|[1-9][0-9]{0,9}\.[0-9]{2})$(?!\n)"
PositiveAmountText = Annotated[
    str,
    msgspec.Meta(
        pattern=POSITIVE_AMOUNT_PATTERN,
        description="Amount in reais, more than zero, with exactly two decimals, e.g. 1234.56",
        examples=["150.00"],
    ),
]
#: amounts the service reports (balances, statement lines): any size, maybe negative
SIGNED_AMOUNT_PATTERN = r"^-?[0-9]+\.[0-9]{2}$(?!\n)"
AmountOut = Annotated[
    str,
    msgspec.Meta(
        pattern=SIGNED_AMOUNT_PATTERN,
        description="Amount in reais with two decimals, negative for debits; not bounded",
        examples=["1234.56", "-20.00"],
    ),
]
#: the password rule of sign-up (the identity provider's minimum length)
PASSWORD_MIN_LENGTH = 10


def signed_amount(money: Money) -> str:
    """``money`` as ``"-1234.56"``: reading our own figures is never bound by the input range."""
    whole, cents = divmod(abs(money.cents), 100)
    return f"{'-' if money.cents < 0 else ''}{whole}.{cents:02d}"


# -- auth ---------------------------------------------------------------------------


class SignUpIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    password: Annotated[
        str,
        msgspec.Meta(
            min_length=PASSWORD_MIN_LENGTH,
            max_length=256,
            description=f"at least {PASSWORD_MIN_LENGTH} characters; a passphrase is welcome",
        ),
    ]
    email: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=254,
                pattern=r"^[^@ ]+@[^@ ]+\.[^@ ]+$(?!\n)",
                description="an e-mail address",
            ),
        ]
        | None
    ) = None
    phone_number: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=r"^\+[1-9][0-9]{1,14}$(?!\n)", description="E.164, e.g. +5511999998888"
            ),
        ]
        | None
    ) = None
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=140)] | None = None


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


class LoggedIn(msgspec.Struct, kw_only=True, tag_field="outcome", tag="tokens"):
    """The login is complete: ``tokens`` to call the API with."""

    mfa_required: Literal[False] = False
    tokens: TokensOut


class MfaChallenge(msgspec.Struct, kw_only=True, tag_field="outcome", tag="mfa_challenge"):
    """A second factor is needed: answer ``challenge_id`` at ``/v1/auth/mfa``."""

    mfa_required: Literal[True] = True
    challenge_id: str
    challenge_type: ChallengeType
    expires_in: int
    #: SELECT_MFA_TYPE: the types to choose from; MFA_SETUP: the types that can be set up
    available_types: list[str] | None = None


#: what a login step answers, told apart by ``outcome``
LoginOut = LoggedIn | MfaChallenge


# -- accounts -------------------------------------------------------------------------


class OpenAccountIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    holder_name: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=140,
            description=(
                "trimmed; 1 to 140 printable characters with at least one letter"
                " (no control or invisible characters)"
            ),
        ),
    ]
    holder_type: HolderType = HolderType.INDIVIDUAL
    holder_document: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=18,
                description=(
                    "a CPF for an individual, a CNPJ (numeric or alphanumeric) for a company,"
                    " bare or formatted, with valid check digits; 400 `invalid_holder` otherwise"
                ),
                examples=["529.982.247-25", "12.ABC.345/01DE-35"],
            ),
        ]
        | None
    ) = None
    kind: AccountKind = AccountKind.PAYMENT


class AccountOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    branch: str
    number: str
    kind: AccountKind
    status: AccountStatus
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
            status=account.status,
            holder_name=account.holder_name,
            holder_type=account.holder_type,
            created_at=account.created_at,
        )


class BalanceOut(msgspec.Struct, kw_only=True):
    posted: AmountOut
    available: AmountOut
    pending_debits: AmountOut
    pending_credits: AmountOut


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
    amount: AmountOut
    balance_after: AmountOut
    #: why the money moved: 1 deposit, 2 withdrawal, 3 transfer between accounts of this
    #: bank, 10 PIX sent, 11 PIX received, 12 PIX refund sent, 13 PIX refund received, 20 fee
    code: TransferCode
    description: str | None

    @classmethod
    def of(cls, line: StatementLine) -> StatementLineOut:
        return cls(
            sequence=line.sequence,
            transfer_id=line.transfer_id,
            timestamp=line.timestamp,
            amount=signed_amount(line.amount),
            balance_after=signed_amount(line.balance_after),
            code=TransferCode(line.code),
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
    amount: PositiveAmountText
    description: Annotated[str, msgspec.Meta(max_length=140)] | None = None


class TransferOut(msgspec.Struct, kw_only=True):
    transfer_id: uuid.UUID
    from_account_id: uuid.UUID
    to_account_id: uuid.UUID
    amount: AmountOut
    description: str | None
    created_at: datetime

    @classmethod
    def of(cls, receipt: TransferReceipt) -> TransferOut:
        return cls(
            transfer_id=receipt.transfer_id,
            from_account_id=receipt.debit_account_id,
            to_account_id=receipt.credit_account_id,
            amount=signed_amount(receipt.amount),
            description=receipt.description,
            created_at=receipt.created_at,
        )


class SandboxDepositIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    account_id: uuid.UUID
    amount: PositiveAmountText
