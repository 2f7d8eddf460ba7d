"""``finbank_http.responses.JSONResponse`` sends what Litestar's ``Response`` sends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from litestar import Litestar, Response, post
from litestar.datastructures import Cookie
from litestar.testing import TestClient

from finbank_http.responses import JSONResponse


class Out(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    amount: str
    description: str | None
    created_at: datetime
    tags: list[str]


CONTENT = Out(
    id=uuid.UUID("ae363def-8295-507d-8c43-c2bb0495a890"),
    amount="-12.34",
    description='caf\u00e9 \U0001f600 "quoted" \\ </script>',
    created_at=datetime(2026, 3, 2, 15, 0, 0, 123456, tzinfo=UTC),
    tags=["a", "b"],
)
CASES: dict[str, dict[str, Any]] = {
    "plain": {"status_code": 201},
    "replayed": {"status_code": 201, "headers": {"Idempotent-Replayed": "true"}},
    "no status": {},
    "own content type": {"status_code": 200, "headers": {"Content-Type": "application/json"}},
    "a cookie": {"status_code": 201, "cookies": [Cookie(key="k", value="v")]},
    "media type": {"status_code": 201, "media_type": "application/json"},
}


def app() -> Litestar:
    handlers: list[Any] = []
    for index, options in enumerate(CASES.values()):

        def make(kind: type[Response[Out]], opts: dict[str, Any]) -> Any:
            async def handler() -> Response[Out]:
                return kind(CONTENT, **opts)

            return handler

        handlers.append(post(f"/litestar/{index}")(make(Response, options)))
        handlers.append(post(f"/ours/{index}")(make(JSONResponse, options)))

    @post("/route-headers", response_headers={"X-Route": "1"}, status_code=202)
    async def route_headers() -> Response[Out]:
        return JSONResponse(CONTENT, headers={"Idempotent-Replayed": "true"})

    @post("/route-headers-litestar", response_headers={"X-Route": "1"}, status_code=202)
    async def route_headers_litestar() -> Response[Out]:
        return Response(CONTENT, headers={"Idempotent-Replayed": "true"})

    return Litestar([*handlers, route_headers, route_headers_litestar], openapi_config=None)


@pytest.mark.parametrize(("index", "case"), list(enumerate(CASES)))
def test_the_same_status_headers_and_body_as_litestars_response(index: int, case: str) -> None:
    with TestClient(app()) as client:
        theirs = client.post(f"/litestar/{index}")
        ours = client.post(f"/ours/{index}")
    assert ours.status_code == theirs.status_code, case
    assert ours.headers.raw == theirs.headers.raw, case
    assert ours.content == theirs.content, case
    assert msgspec.json.decode(ours.content, type=Out) == CONTENT


def test_route_level_headers_take_litestars_own_path() -> None:
    with TestClient(app()) as client:
        ours = client.post("/route-headers")
        theirs = client.post("/route-headers-litestar")
    assert ours.status_code == theirs.status_code == 202
    assert ours.headers.raw == theirs.headers.raw
    assert ours.headers["x-route"] == "1"
    assert ours.content == theirs.content


ATTRIBUTES = (
    "content",
    "background",
    "cookies",
    "encoding",
    "headers",
    "media_type",
    "status_code",
    "response_type_encoders",
)


@pytest.mark.parametrize(
    "options",
    [
        *CASES.values(),
        {"headers": None},
        {"headers": {}},
        {"status_code": 201, "encoding": "latin-1"},
        {"type_encoders": {Out: str}},
    ],
)
def test_it_is_built_as_litestars_response_is(options: dict[str, Any]) -> None:
    ours = JSONResponse(CONTENT, **options)
    theirs = Response(CONTENT, **options)
    for name in ATTRIBUTES:
        assert getattr(ours, name) == getattr(theirs, name), name
    if "headers" in options and options["headers"] is not None:
        assert ours.headers is not options["headers"]  # a copy, as Response keeps
