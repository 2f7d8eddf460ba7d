"""``finbank demo``: a readable end-to-end story on whatever profile is configured.

Every step states what it expects and checks it; the command exits 0 only if
every check held. The story talks to the use cases through the container,
as an embedding application would.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import Any, TextIO

from finbank_adapters.containers import BankContainer as Container
from finbank_adapters.containers import close_container, open_container
from finbank_cli.demo_pix import pix_story
from finbank_cli.story import Story, call
from finbank_core.accounts.errors import InsufficientFunds
from finbank_core.accounts.model import CustomerAccount
from finbank_core.accounts.use_cases import (
    AccountBalance,
    BalanceQuery,
    InternalTransferCommand,
    MoveCashCommand,
    OpenAccountCommand,
    Statement,
    StatementQuery,
    TransferReceipt,
)
from finbank_core.auth.model import Principal, SignUpRequest, TokenSet
from finbank_core.shared.money import Money


async def _customer(container: Container, story: Story, username: str) -> Principal:
    password = secrets.token_urlsafe(16)
    await (await call(container, "sign_up"))(SignUpRequest(username=username, password=password))
    login = await (await call(container, "password_login"))(username, password)
    tokens = login.tokens  # a LoginResult: tokens, as this user has no MFA
    story.check(isinstance(tokens, TokenSet), f"{username} signed up and logged in")
    verifier = await call(container, "token_verifier")
    principal: Principal = await verifier.verify(tokens.access_token)
    return principal


def _print_statement(story: Story, statement: Statement) -> None:
    for line in statement.lines:
        story.say(
            f"{line.timestamp:%H:%M:%S}  {line.amount.format_brl():>14}  "
            f"saldo {line.balance_after.format_brl():>14}  {line.description or ''}"
        )


async def accounts_story(container: Container, story: Story) -> None:
    suffix = uuid.uuid4().hex[:6]
    story.step("Two customers sign up")
    ana = await _customer(container, story, f"ana-{suffix}")
    bruno = await _customer(container, story, f"bruno-{suffix}")

    story.step("Each opens an account")
    open_account = await call(container, "open_account")
    ana_acc: CustomerAccount = await open_account(
        OpenAccountCommand(owner_id=ana.subject, holder_name="Ana Souza")
    )
    bruno_acc: CustomerAccount = await open_account(
        OpenAccountCommand(owner_id=bruno.subject, holder_name="Bruno Lima")
    )
    story.say(f"Ana: agência {ana_acc.branch} conta {ana_acc.number}")
    story.say(f"Bruno: agência {bruno_acc.branch} conta {bruno_acc.number}")
    story.check(ana_acc.number != bruno_acc.number, "account numbers are distinct")

    story.step("A teller deposits R$ 500,00 for Ana")
    deposit = await call(container, "deposit")
    await deposit(
        MoveCashCommand(
            account_id=ana_acc.id,
            amount=Money.from_bcb("500.00"),
            idempotency_key=f"demo-deposit-{suffix}",
            operator_id="teller-1",
            description="depósito em espécie",
        )
    )
    balance = await _balance(container, ana, ana_acc)
    story.check(balance.posted == Money(500_00), f"Ana's balance is {balance.posted}")

    story.step("Ana sends R$ 123,45 to Bruno, with an idempotency key")
    transfer = await call(container, "internal_transfer")
    command = InternalTransferCommand(
        owner_id=ana.subject,
        from_account_id=ana_acc.id,
        to_account_id=bruno_acc.id,
        amount=Money.from_bcb("123.45"),
        idempotency_key=f"demo-transfer-{suffix}",
        description="aluguel",
    )
    first: TransferReceipt = await transfer(command)
    story.check(not first.replayed, f"transfer {first.transfer_id} applied")

    story.step("The app retries the same request (a flaky network): nothing moves twice")
    again: TransferReceipt = await transfer(command)
    story.check(again.replayed, "the retry is recognised as a replay")
    story.check(again.transfer_id == first.transfer_id, "and answers with the same transfer")
    ana_balance = await _balance(container, ana, ana_acc)
    bruno_balance = await _balance(container, bruno, bruno_acc)
    story.check(ana_balance.posted == Money(376_55), f"Ana has {ana_balance.posted}")
    story.check(bruno_balance.posted == Money(123_45), f"Bruno has {bruno_balance.posted}")

    story.step("Bruno tries to send more than he has")
    try:
        await transfer(
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
    statement = await call(container, "get_statement")
    for name, who, acc in (("Ana", ana, ana_acc), ("Bruno", bruno, bruno_acc)):
        story.say(f"-- {name}")
        result: Statement = await statement(StatementQuery(owner_id=who.subject, account_id=acc.id))
        _print_statement(story, result)
        total = sum(line.amount.cents for line in result.lines)
        last = result.lines[-1].balance_after.cents if result.lines else 0
        story.check(total == last, f"{name}'s entries add up to the final balance")


async def _balance(
    container: Container, who: Principal, account: CustomerAccount
) -> AccountBalance:
    get_balance = await call(container, "get_balance")
    result: AccountBalance = await get_balance(
        BalanceQuery(owner_id=who.subject, account_id=account.id)
    )
    return result


#: the chapters of the story, in order; other contexts append theirs
CHAPTERS: list[Callable[[Container, Story], Any]] = [accounts_story, pix_story]


async def run_demo(container: Container, out: TextIO) -> int:
    story = Story(out)
    print("finbank demo", file=out)
    await open_container(container)
    try:
        for chapter in CHAPTERS:
            await chapter(container, story)
    finally:
        await close_container(container)
    if story.failures:
        print(f"\n{len(story.failures)} check(s) failed:", file=out)
        for failure in story.failures:
            print(f"  - {failure}", file=out)
        return 1
    print("\nEvery step behaved.", file=out)
    return 0
