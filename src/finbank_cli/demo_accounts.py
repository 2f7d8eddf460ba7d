"""The accounts chapter of ``finbank demo``: sign-ups, accounts, a deposit, transfers."""

from __future__ import annotations

import secrets
import uuid

from finbank import Bank
from finbank_cli.story import Story
from finbank_core.accounts.errors import InsufficientFunds
from finbank_core.accounts.model import CustomerAccount
from finbank_core.accounts.use_cases import (
    BalanceResult,
    GetBalanceQuery,
    GetStatementQuery,
    InternalTransferCommand,
    MoveCashCommand,
    OpenAccountCommand,
    Statement,
)
from finbank_core.auth.model import AuthenticateQuery, Principal, SignUpCommand
from finbank_core.auth.use_cases import LoginCommand
from finbank_core.shared.money import Money


def demo_password() -> str:
    """A random password that any provider's policy takes: Cognito's default asks for an
    upper and a lower case letter, a digit and a symbol, which 22 random URL-safe
    characters miss now and then."""
    return f"{secrets.token_urlsafe(16)}Aa1!"


async def _customer(bank: Bank, story: Story, username: str) -> Principal | None:
    password = demo_password()
    signed_up = await bank.auth.sign_up(SignUpCommand(username=username, password=password))
    if signed_up.confirmation_required:
        story.check(
            False,
            f"{username} signed up, but the identity provider asks to confirm it with a code"
            " sent to the user, which the demo cannot read: run it on an identity that"
            " confirms sign-ups by itself (FINBANK_IDENTITY_BACKEND=local, or a Cognito pool"
            " whose pre sign-up trigger auto-confirms)",
        )
        return None
    login = await bank.auth.login(LoginCommand(username=username, password=password))
    # a LoginResult: tokens, as this user has no MFA
    story.check(login.tokens is not None, f"{username} signed up and logged in")
    if login.tokens is None:
        return None
    return await bank.auth.authenticate(AuthenticateQuery(access_token=login.tokens.access_token))


def _print_statement(story: Story, statement: Statement) -> None:
    for line in statement.lines:
        story.say(
            f"{line.timestamp:%H:%M:%S}  {line.amount.format_brl():>14}  "
            f"saldo {line.balance_after.format_brl():>14}  {line.description or ''}"
        )


async def _balance(bank: Bank, who: Principal, account: CustomerAccount) -> BalanceResult:
    return await bank.accounts.balance(GetBalanceQuery(owner_id=who.subject, account_id=account.id))


async def chapter(bank: Bank, story: Story) -> None:
    """Two customers sign up, open accounts, move money; a retry and an overdraft."""
    suffix = uuid.uuid4().hex[:6]
    story.step("Two customers sign up")
    ana = await _customer(bank, story, f"ana-{suffix}")
    bruno = await _customer(bank, story, f"bruno-{suffix}")
    if ana is None or bruno is None:
        return

    story.step("Each opens an account")
    ana_acc = await bank.accounts.open(
        OpenAccountCommand(owner_id=ana.subject, holder_name="Ana Souza")
    )
    bruno_acc = await bank.accounts.open(
        OpenAccountCommand(owner_id=bruno.subject, holder_name="Bruno Lima")
    )
    story.say(f"Ana: agência {ana_acc.branch} conta {ana_acc.number}")
    story.say(f"Bruno: agência {bruno_acc.branch} conta {bruno_acc.number}")
    story.check(ana_acc.number != bruno_acc.number, "account numbers are distinct")

    story.step("A teller deposits R$ 500,00 for Ana")
    await bank.accounts.deposit(
        MoveCashCommand(
            account_id=ana_acc.id,
            amount=Money.from_bcb("500.00"),
            idempotency_key=f"demo-deposit-{suffix}",
            operator_id="teller-1",
            description="depósito em espécie",
        )
    )
    balance = await _balance(bank, ana, ana_acc)
    story.check(balance.posted == Money(500_00), f"Ana's balance is {balance.posted}")

    story.step("Ana sends R$ 123,45 to Bruno, with an idempotency key")
    command = InternalTransferCommand(
        owner_id=ana.subject,
        from_account_id=ana_acc.id,
        to_account_id=bruno_acc.id,
        amount=Money.from_bcb("123.45"),
        idempotency_key=f"demo-transfer-{suffix}",
        description="aluguel",
    )
    first = await bank.accounts.transfer(command)
    story.check(not first.replayed, f"transfer {first.transfer_id} applied")

    story.step("The app retries the same request (a flaky network): nothing moves twice")
    again = await bank.accounts.transfer(command)
    story.check(again.replayed, "the retry is recognised as a replay")
    story.check(again.transfer_id == first.transfer_id, "and answers with the same transfer")
    ana_balance = await _balance(bank, ana, ana_acc)
    bruno_balance = await _balance(bank, bruno, bruno_acc)
    story.check(ana_balance.posted == Money(376_55), f"Ana has {ana_balance.posted}")
    story.check(bruno_balance.posted == Money(123_45), f"Bruno has {bruno_balance.posted}")

    story.step("Bruno tries to send more than he has")
    try:
        await bank.accounts.transfer(
            InternalTransferCommand(
                owner_id=bruno.subject,
                from_account_id=bruno_acc.id,
                to_account_id=ana_acc.id,
                amount=Money.from_bcb("1000.00"),
                idempotency_key=f"demo-overdraft-{suffix}",
            )
        )
        story.check(False, "an overdraft was refused")
    except InsufficientFunds as exc:
        story.check(True, f"refused: {exc.code}")

    story.step("Statements with running balances")
    for name, who, acc in (("Ana", ana, ana_acc), ("Bruno", bruno, bruno_acc)):
        story.say(f"-- {name}")
        result = await bank.accounts.statement(
            GetStatementQuery(owner_id=who.subject, account_id=acc.id)
        )
        _print_statement(story, result)
        total = sum(line.amount.cents for line in result.lines)
        last = result.lines[-1].balance_after.cents if result.lines else 0
        story.check(total == last, f"{name}'s entries add up to the final balance")
