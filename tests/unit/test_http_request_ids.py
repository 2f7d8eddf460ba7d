"""The request context middleware binds the request's ids for the logs of the request and
puts back what was bound before, whether it sets structlog's context variables itself (its
fast path) or through ``bind_contextvars``/``reset_contextvars``."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from finbank_http.observability import middleware
from finbank_http.observability.middleware import RequestContextMiddleware


@pytest.mark.parametrize("direct", [True, False], ids=["context variables", "structlog calls"])
async def test_ids_are_bound_during_the_request_and_what_was_bound_before_comes_back(
    direct: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if direct:
        assert middleware._ID_VARS is not None  # this structlog's variables were found
    else:
        monkeypatch.setattr(middleware, "_ID_VARS", None)
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(structlog.contextvars.get_contextvars())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "headers": [(b"x-correlation-id", b"flow-1")],
    }
    structlog.contextvars.bind_contextvars(request_id="outer", user="u-1")
    try:
        await RequestContextMiddleware(app)(scope, None, send)
        headers = dict(sent[0]["headers"])
        assert seen == {
            "request_id": headers[b"x-request-id"].decode(),
            "correlation_id": "flow-1",
            "user": "u-1",
        }
        assert structlog.contextvars.get_contextvars() == {"request_id": "outer", "user": "u-1"}
    finally:
        structlog.contextvars.clear_contextvars()


async def test_the_fast_path_sets_the_variables_bind_contextvars_sets() -> None:
    assert middleware._ID_VARS is not None
    tokens = structlog.contextvars.bind_contextvars(request_id="r", correlation_id="c")
    try:
        assert middleware._ID_VARS[0].get() == "r"
        assert middleware._ID_VARS[1].get() == "c"
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
