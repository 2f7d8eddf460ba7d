"""``finbank demo`` runs the chapters of one registry, in order, on one opened bank."""

from __future__ import annotations

import io
from typing import Any, cast

import pytest

from finbank import Bank, Overrides, open_bank
from finbank_cli import demo, demo_accounts
from finbank_cli.demo_accounts import demo_password
from finbank_cli.story import Chapter, Story
from finbank_core.accounts import ListAccountsQuery, OpenAccountCommand
from finbank_core.auth.model import SignUpCommand, SignUpResult
from finbank_core.auth.ports import IdentityProvider
from finbank_core.pix.automatic import RecurrenceNotActive
from finbank_core.shared.errors import ServiceUnavailable


async def test_chapters_run_in_order_on_one_bank_and_every_check_counts() -> None:
    seen: list[str] = []

    async def opens(bank: Bank, story: Story) -> None:
        story.step("open")
        await bank.accounts.open(OpenAccountCommand(owner_id="ana", holder_name="Ana"))
        seen.append("opens")

    async def finds(bank: Bank, story: Story) -> None:
        story.step("find")
        found = await bank.accounts.list(ListAccountsQuery(owner_id="ana"))
        story.check(len(found) == 1, "the first chapter's account is there")
        seen.append("finds")

    out = io.StringIO()
    async with open_bank(profile="memory") as bank:
        assert await demo.tell(bank, out, (opens, finds)) == 0
    assert seen == ["opens", "finds"]
    assert "1. open" in out.getvalue()
    assert "2. find" in out.getvalue()
    assert out.getvalue().rstrip().endswith("Every step behaved.")


async def test_a_failed_check_makes_the_story_fail_and_is_named() -> None:
    async def fails(bank: Bank, story: Story) -> None:
        story.check(False, "the impossible happened")

    out = io.StringIO()
    async with open_bank(profile="memory") as bank:
        assert await demo.tell(bank, out, (fails,)) == 1
    assert "1 check(s) failed" in out.getvalue()
    assert "  - the impossible happened" in out.getvalue()


def test_the_registry_lists_the_accounts_and_pix_chapters_first() -> None:
    from finbank_cli import demo_accounts, demo_pix

    chapters: tuple[Chapter, ...] = demo.CHAPTERS
    assert chapters[:2] == (demo_accounts.chapter, demo_pix.chapter)


async def test_a_refusal_the_story_did_not_expect_is_a_failed_check_and_ends_the_story() -> None:
    """Not a traceback: the refusal is named, and later chapters (which would start from
    a story that did not happen) do not run."""
    ran: list[str] = []

    async def refused(bank: Bank, story: Story) -> None:
        story.step("refused")
        raise RecurrenceNotActive("the recurrence is APROVADA", status="APROVADA")

    async def later(bank: Bank, story: Story) -> None:
        ran.append("later")

    out = io.StringIO()
    async with open_bank(profile="memory") as bank:
        assert await demo.tell(bank, out, (refused, later)) == 1
    assert ran == []
    text = out.getvalue()
    assert "[FAIL] the bank refused a step: RecurrenceNotActive: the recurrence is APROVADA" in text
    assert "1 check(s) failed" in text


async def test_a_server_that_does_not_answer_still_stops_the_command_with_its_one_line() -> None:
    async def unavailable(bank: Bank, story: Story) -> None:
        raise ServiceUnavailable("the database is unavailable")

    async with open_bank(profile="memory") as bank:
        with pytest.raises(ServiceUnavailable):
            await demo.tell(bank, io.StringIO(), (unavailable,))


def test_the_demo_password_meets_cognitos_default_policy_every_time() -> None:
    """Upper and lower case, a digit and a symbol, 8 or more: 22 URL-safe random characters
    lack a symbol about half the time, and Cognito then refused the sign-up."""
    symbols = set("^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+-")
    for _ in range(500):
        password = demo_password()
        assert len(password) >= 8
        assert any(c.isupper() for c in password), password
        assert any(c.islower() for c in password), password
        assert any(c.isdigit() for c in password), password
        assert any(c in symbols for c in password), password
    assert len({demo_password() for _ in range(100)}) == 100


class ConfirmationFirst:
    """An identity provider that, as a Cognito pool without auto-confirmation, asks for
    the code it sent before the user can log in."""

    def __init__(self) -> None:
        self.signed_up: list[str] = []

    async def sign_up(self, request: SignUpCommand) -> SignUpResult:
        self.signed_up.append(request.username)
        return SignUpResult(subject=f"sub-{request.username}", confirmation_required=True)


async def test_a_sign_up_that_needs_a_code_fails_its_check_saying_why() -> None:
    provider = ConfirmationFirst()
    out = io.StringIO()
    overrides = Overrides(identity_provider=cast(IdentityProvider, provider))
    async with open_bank(profile="memory", overrides=overrides) as bank:
        assert await demo.tell(bank, out, (demo_accounts.chapter,)) == 1
    assert len(provider.signed_up) == 2  # both customers tried; nothing after that
    text = out.getvalue()
    failed = [line for line in text.splitlines() if "[FAIL]" in line]
    assert len(failed) == 2
    assert all("asks to confirm it with a code sent to the user" in line for line in failed)
    assert "FINBANK_IDENTITY_BACKEND=local" in text
    assert "2. " not in text  # the chapter stopped at its first step


async def test_the_automatic_chapter_behaves_when_a_scheduler_round_came_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A scheduler round (``finbank worker pix-automatic``, or another demo run on the
    same database) leases every due charge. Here one runs just before each debit the
    chapter makes: the chapter debits its own charges by txid, so it still sees each
    outcome (a round of its own found them leased by the other and returned nothing)."""
    from finbank.automatic import AutomaticFacade
    from finbank_cli import demo_automatic
    from finbank_core.pix.automatic import RunDueDebitsCommand

    taken: list[str] = []
    execute, run_due = AutomaticFacade.execute, AutomaticFacade.run_due

    async def other_round(self: AutomaticFacade) -> None:
        ran = await run_due(self, RunDueDebitsCommand(holder="another-scheduler"))
        taken.extend(c.txid for c in ran.charges)

    async def execute_after_a_round(self: AutomaticFacade, command: Any) -> Any:
        await other_round(self)
        return await execute(self, command)

    async def run_due_after_a_round(self: AutomaticFacade, command: Any) -> Any:
        await other_round(self)
        return await run_due(self, command)

    monkeypatch.setattr(AutomaticFacade, "execute", execute_after_a_round)
    monkeypatch.setattr(AutomaticFacade, "run_due", run_due_after_a_round)
    out = io.StringIO()
    async with open_bank(profile="memory") as bank:
        code = await demo.tell(bank, out, (demo_automatic.chapter,))
    assert taken, "no round came first"
    assert code == 0, out.getvalue()
