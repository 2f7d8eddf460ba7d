"""The composition root: the only place that chooses and builds adapters.

One container per context (:mod:`.infrastructure`, :mod:`.events`,
:mod:`.accounts`, :mod:`.auth`, :mod:`.pix`, :mod:`.reconciliation`),
composed by :class:`~finbank_adapters.containers.bank.BankContainer`. Each
port is a ``Selector`` over the backends the settings name; use cases are
factories over the ports. The shared connections (pools, clients) are
resources opened by :func:`open_container` and closed by
:func:`close_container`; the HTTP lifespan, ``open_bank``, the CLI, the
workers and the Lambdas call them and build nothing themselves.

Once an async resource is part of the graph, calling a provider that depends
on it returns an awaitable; :func:`resolve` hides that difference.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar, cast

from dependency_injector import providers

from finbank_adapters.containers.bank import BankContainer
from finbank_adapters.containers.infrastructure import Eager
from finbank_adapters.settings import Settings
from finbank_core.accounts.use_cases import EnsureBankAccounts

T = TypeVar("T")

__all__ = ["BankContainer", "build_container", "close_container", "open_container", "resolve"]


async def resolve(provided: T | Any) -> T:
    """Await a provider's result when an async resource made it awaitable."""
    if inspect.isawaitable(provided):
        return cast(T, await provided)
    return cast(T, provided)


def build_container(settings: Settings | None = None) -> BankContainer:
    """A new container on ``settings`` (``Settings.from_env()`` when omitted); nothing opened."""
    container = BankContainer()
    if settings is not None:  # built by hand, perhaps: checked as the environment's are
        container.infra.settings.override(providers.Object(settings.validated()))
    return container


async def open_container(container: BankContainer) -> None:
    """Open the shared connections and make sure the bank's own ledger accounts exist."""
    result = container.init_resources(Eager)
    if result is not None:
        await result
    ensure: EnsureBankAccounts = await resolve(container.accounts.ensure_bank_accounts())
    await ensure()


async def close_container(container: BankContainer) -> None:
    """Close every connection the container opened (including on-demand ones)."""
    result = container.shutdown_resources()
    if result is not None:
        await result
