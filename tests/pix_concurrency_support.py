"""Helpers for PIX concurrency tests: let in-memory adapters interleave, count outcomes."""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")


class Interleaved:
    """A proxy whose async methods first yield to the event loop, then call the adapter.

    In-memory adapters never suspend, so coroutines gathered over them run one
    after another and hide every race in the code that calls them. Through
    this proxy, concurrent callers take turns at every store call, as they do
    with a store across a network. The adapter's own operations stay atomic
    (the yield comes before the call, not inside it).
    """

    def __init__(self, target: object) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        async def interleaved(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)  # a turn for the others, not a wait for anything
            return await attribute(*args, **kwargs)

        return interleaved


def interleaved(target: T) -> T:
    """``target`` behind :class:`Interleaved`, typed as ``target``."""
    return cast(T, Interleaved(target))


async def outcomes(calls: list[Callable[[], Awaitable[T]]]) -> tuple[list[T], Counter[str]]:
    """Run the calls at once; their results, and the errors they raised counted by class."""
    settled = await asyncio.gather(*(call() for call in calls), return_exceptions=True)
    results: list[T] = []
    errors: Counter[str] = Counter()
    for outcome in settled:
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome
            errors[type(outcome).__name__] += 1
        else:
            results.append(outcome)
    return results, errors
