"""``finbank demo``: a readable end-to-end story on whatever profile is configured.

Every step states what it expects and checks it; the command exits 0 only if
every check held. The chapters talk to the bank through
:func:`finbank.open_bank`'s typed facade, as an embedding application would.

A new chapter is a module of this package with
``async def chapter(bank: Bank, story: Story) -> None`` and one entry in
:data:`CHAPTERS`.
"""

from __future__ import annotations

import sys
from typing import TextIO

from finbank import Bank, Settings, open_bank
from finbank_adapters import metrics
from finbank_cli import demo_accounts, demo_automatic, demo_med, demo_pix
from finbank_cli.demo_settlement import (
    DEFAULT_TIMEOUT_SECONDS,
    Settlement,
    SettlementTimeout,
    background_workers,
)
from finbank_cli.story import Chapter, Story
from finbank_core.shared.errors import DomainError, ServiceUnavailable

#: the chapters of the story, in the order they run
CHAPTERS: tuple[Chapter, ...] = (
    demo_accounts.chapter,
    demo_pix.chapter,
    demo_automatic.chapter,
    demo_med.chapter,
)


async def tell(bank: Bank, out: TextIO, chapters: tuple[Chapter, ...] = CHAPTERS) -> int:
    """Run ``chapters`` on an opened ``bank``; 0 if every check held, else 1."""
    story = Story(out)
    print("finbank demo", file=out)
    for chapter in chapters:
        try:
            await chapter(bank, story)
        except SettlementTimeout as exc:  # the rest would wait for the same missing process
            story.check(False, str(exc))
            break
        except ServiceUnavailable:
            raise  # a server it needs did not answer: the command says which, in one line
        except DomainError as exc:  # a refusal the story did not expect: said, not a traceback
            story.check(False, f"the bank refused a step: {type(exc).__name__}: {exc}")
            break  # the next chapters would start from a story that did not happen
    if story.failures:
        print(f"\n{len(story.failures)} check(s) failed:", file=out)
        for failure in story.failures:
            print(f"  - {failure}", file=out)
        return 1
    print("\nEvery step behaved.", file=out)
    return 0


async def run_demo(
    out: TextIO,
    settings: Settings | None = None,
    *,
    with_workers: bool = False,
    settle_timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> int:
    """Open the bank on ``settings`` (``FINBANK_*`` when omitted) and tell the story.

    Where PIX settles asynchronously, each outcome is awaited for at most
    ``settle_timeout`` seconds; ``with_workers`` runs the relay and the
    settlement worker in this process meanwhile.
    """
    Settlement.timeout_seconds = settle_timeout
    async with open_bank(settings) as bank:
        if not with_workers:
            return await tell(bank, out)
        # The workers configure the process's metrics (unless something did before).
        # Their EMF lines (the aws profile's format) go to stderr, out of the story.
        metrics.configure(bank.settings, stream=sys.stderr)
        try:
            async with background_workers(bank.settings):
                return await tell(bank, out)
        except SettlementTimeout as exc:
            print(f"finbank demo: {exc}", file=out)
            return 1
