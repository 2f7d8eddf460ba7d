"""The one typed way the facades reach a use case in the containers."""

from __future__ import annotations

import inspect
from typing import TypeVar, cast

from dependency_injector import providers

T = TypeVar("T")


async def provided(provider: providers.Provider[T]) -> T:
    """What ``provider`` builds, typed as it declares (``Factory(SendPix, ...)`` gives ``SendPix``).

    The facades take providers from the typed context containers
    (``container.pix().send_pix`` is a ``Factory[SendPix]`` to mypy), so a
    provider that builds the wrong class, or a facade method that claims
    the wrong result, is a type error. A provider that depends on an async
    resource returns an awaitable; it is awaited here.
    """
    built: object = provider()
    if inspect.isawaitable(built):
        built = await built
    return cast(T, built)
