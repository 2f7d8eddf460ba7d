"""What both chapters of ``finbank demo`` share: the :class:`Story` (numbered steps,
each check remembered) and :func:`call`, a use case from the bank's containers."""

from __future__ import annotations

from typing import Any, TextIO

from finbank_adapters.containers import BankContainer as Container
from finbank_adapters.containers import resolve


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


def _provider(container: Container, name: str) -> Any:
    """The provider ``name`` of whichever context container has it."""
    for context in ("accounts", "auth", "pix", "events", "infra"):
        found = getattr(container, context).providers.get(name)
        if found is not None:
            return found
    raise AttributeError(name)


async def call(container: Container, name: str) -> Any:
    """The use case (or port) ``name``, resolved from the container that provides it."""
    return await resolve(_provider(container, name)())
