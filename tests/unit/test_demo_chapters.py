"""``finbank demo`` runs the chapters of one registry, in order, on one opened bank."""

from __future__ import annotations

import io

from finbank import Bank, open_bank
from finbank_cli import demo
from finbank_cli.story import Chapter, Story
from finbank_core.accounts import ListAccountsQuery, OpenAccountCommand


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
