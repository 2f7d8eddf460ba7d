"""Bridges from the container to Litestar's DI, with plain ``Provide`` functions.

dependency-injector's ``@inject`` does not work in Litestar handlers, so each
use case is provided by a small function that resolves it from the container
kept in ``app.state``.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide

from finbank_adapters.container import Container, resolve


def container_of(request: Request[Any, Any, Any]) -> Container:
    container: Container = request.app.state.container
    return container


def use_case(name: str) -> Provide:
    """A Litestar dependency resolving the container provider ``name``."""

    async def provide(request: Request[Any, Any, Any]) -> Any:
        return await resolve(getattr(container_of(request), name)())

    provide.__name__ = f"provide_{name}"
    return Provide(provide)
