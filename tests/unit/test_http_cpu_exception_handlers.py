"""Route handlers' exception handlers are resolved once, when the app is built
(``finbank_http.app.resolve_exception_handlers_once``), to what Litestar resolves."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from litestar import Litestar, Router, get
from litestar.testing import TestClient

from finbank_adapters.containers import build_container
from finbank_adapters.settings import JwtOptions, Settings
from finbank_core.shared.errors import DomainError
from finbank_http import create_app
from finbank_http.app import resolve_exception_handlers_once
from finbank_http.problems import EXCEPTION_HANDLERS


def handlers_of(app: Litestar) -> list[Any]:
    return [h for route in app.routes for h in getattr(route, "route_handlers", ())]


def test_every_handler_keeps_the_map_litestar_resolves() -> None:
    app = create_app(build_container(Settings(jwt=JwtOptions(secret=secrets.token_hex(32)))))
    ours = 0
    for handler in handlers_of(app):
        litestar_resolves = type(handler).resolve_exception_handlers(handler)
        assert dict(handler.resolve_exception_handlers()) == litestar_resolves
        if getattr(handler.fn, "__module__", "").startswith("finbank_http"):
            ours += 1
            assert "resolve_exception_handlers" in handler.__dict__
            assert handler.resolve_exception_handlers() is handler.resolve_exception_handlers()
            with pytest.raises(TypeError):
                handler.resolve_exception_handlers()[KeyError] = None
    assert ours > 50


def test_the_closest_layer_still_wins_and_errors_are_answered_by_it() -> None:
    def teapot(request: Any, exc: Exception) -> Any:
        from litestar import Response

        return Response({"by": "router"}, status_code=418)

    @get("/fails")
    async def fails() -> None:
        raise DomainError("nope")

    @get("/plain")
    async def plain() -> None:
        raise DomainError("nope")

    app = Litestar(
        [Router("/r", route_handlers=[fails], exception_handlers={DomainError: teapot}), plain],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
    resolve_exception_handlers_once(app)
    with TestClient(app) as client:
        assert client.get("/r/fails").status_code == 418
        answer = client.get("/plain")
        assert answer.headers["content-type"] == "application/problem+json"
