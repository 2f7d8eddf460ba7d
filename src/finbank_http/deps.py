"""Bridges from the bank to Litestar's DI, with plain ``Provide`` functions.

dependency-injector's ``@inject`` does not work in Litestar handlers, so the
app keeps the :class:`~finbank.Bank` facade in ``app.state`` and handlers
depend on it as ``bank: NamedDependency[Bank]`` (the app provides it): every
use case a route calls is a typed method of the facade (``bank.pix.send``),
checked by mypy, never a provider looked up by name.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection

from finbank import Bank

__all__ = ["Bank", "bank_of", "provide_bank"]


def bank_of(request: ASGIConnection[Any, Any, Any, Any]) -> Bank:
    """The bank the app runs on."""
    bank: Bank = request.app.state.bank
    return bank


async def provide_bank(request: Request[Any, Any, Any]) -> Bank:
    """The ``bank`` dependency of every route."""
    return bank_of(request)
