"""What every chapter of ``finbank demo`` shares: the :class:`Story` and the chapter type.

A chapter is ``async def chapter(bank: Bank, story: Story) -> None``: it talks
to the bank through the typed facade (``bank.accounts``, ``bank.pix``, ...),
announces its steps with :meth:`Story.step` and checks what it expects with
:meth:`Story.check`. The chapters run in the order of
:data:`finbank_cli.demo.CHAPTERS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TextIO

from finbank import Bank


class Story:
    """Prints numbered steps and remembers whether every check held."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failures: list[str] = []
        self._step = 0

    def step(self, title: str) -> None:
        self._step += 1
        print(f"\n{self._step}. {title}", file=self.out)

    def say(self, text: str) -> None:
        print(f"   {text}", file=self.out)

    def check(self, ok: bool, what: str) -> None:
        mark = "ok " if ok else "FAIL"
        print(f"   [{mark}] {what}", file=self.out)
        if not ok:
            self.failures.append(what)


#: one chapter of the demo: tells its part of the story on an opened bank
Chapter = Callable[[Bank, Story], Awaitable[None]]
