"""Bridges from the bank to Litestar's DI, with plain ``Provide`` functions.

dependency-injector's ``@inject`` does not work in Litestar handlers, so the
app keeps the :class:`~finbank.Bank` facade in ``app.state`` and handlers
depend on it as ``bank: NamedDependency[Bank]`` (the app provides it): every
use case a route calls is a typed method of the facade (``bank.pix.send``),
checked by mypy, never a provider looked up by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from finbank import Bank
from finbank_core.auth.model import Principal
from finbank_http import security
from finbank_http.security import bank_of

__all__ = ["Bank", "bank_of", "bank_provider", "provide_bank", "provide_principal"]


def provide_bank(request: Request[Any, Any, Any]) -> Bank:
    """The bank of ``request``'s app (the app itself provides :func:`bank_provider`'s)."""
    return bank_of(request)


def bank_provider(state: State) -> Callable[[], Bank]:
    """The ``bank`` dependency of the app whose ``state`` this is: the bank in it, read
    when a request asks (the lifespan puts the opened bank there). A function of no
    parameters: Litestar then has nothing to parse or validate to call it."""

    def provide_bank() -> Bank:
        bank: Bank = state["bank"]  # as security.bank_of reads it
        return bank

    return provide_bank


def provide_principal(request: Request[Any, Any, Any], bank: NamedDependency[Bank]) -> Principal:
    """The ``principal`` dependency of protected routes: what the authentication verified
    (``Provide(..., sync_to_thread=False)``; the app's ``before_request`` authenticates
    every protected route first, so a request without a principal here is refused).

    It depends on ``bank`` (unused) on purpose: Litestar resolves dependencies
    that do not depend on one another concurrently, in an anyio task group
    per request; chained, they are resolved one after the other, inline.
    """
    return security.verified_principal(request)
