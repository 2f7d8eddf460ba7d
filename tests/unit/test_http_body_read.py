"""``InputLimits`` reads a request's body as ``Request.body()`` does (limits.py, ``_read_body``):
the same bytes, the same 413s and errors, the body kept where Litestar's parsing reads it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
from litestar import Litestar, Request, post
from litestar.params import JSONBody
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from finbank_http.limits import InputLimits

LIMIT = 64


class Body(msgspec.Struct):
    text: str


@post("/small", request_max_body_size=16, sync_to_thread=False)
def small(data: JSONBody[Body]) -> dict[str, str]:
    return {"text": data.text}


@post("/big", sync_to_thread=False)
def big(data: JSONBody[Body]) -> dict[str, str]:
    return {"text": data.text}


def app(limits: InputLimits | None = None) -> Litestar:
    limits = limits or InputLimits(max_body_bytes=LIMIT, max_json_depth=32)
    return Litestar(
        [small, big],
        request_max_body_size=LIMIT,
        before_request=limits.check,
        openapi_config=None,
        logging_config=None,
    )


def receiver(events: list[dict[str, Any]]) -> Callable[[], Awaitable[dict[str, Any]]]:
    pending = list(events)

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    return receive


def request_of(
    litestar: Litestar, path: str, headers: list[tuple[bytes, bytes]], events: list[dict[str, Any]]
) -> Request[Any, Any, Any]:
    [route] = [r for r in litestar.routes if isinstance(r, HTTPRoute) and r.path == path]
    handler = route.route_handlers[0]
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "app": litestar,
        "litestar_app": litestar,
        "route_handler": handler,
        "state": {},
        "path_params": {},
    }
    return Request(scope, receiver(events))  # type: ignore[arg-type]


def chunked(*parts: bytes) -> list[dict[str, Any]]:
    return [
        {"type": "http.request", "body": part, "more_body": n < len(parts) - 1}
        for n, part in enumerate(parts)
    ]


JSON = (b"content-type", b"application/json")
CASES: dict[str, tuple[str, list[tuple[bytes, bytes]], list[dict[str, Any]]]] = {
    "one chunk": ("/big", [JSON, (b"content-length", b"12")], chunked(b'{"text":"a"}')),
    "chunks": ("/big", [JSON, (b"transfer-encoding", b"chunked")], chunked(b'{"te', b'xt":"ab"}')),
    "empty chunks between": (
        "/big",
        [JSON, (b"transfer-encoding", b"chunked")],
        chunked(b"", b'{"text":"a"}', b""),
    ),
    "announced over the app's limit": (
        "/big",
        [JSON, (b"content-length", str(LIMIT + 1).encode())],
        [],  # refused before anything is received (a receive here would see a disconnect)
    ),
    "streamed over the app's limit": (
        "/big",
        [JSON, (b"transfer-encoding", b"chunked")],
        chunked(b"x" * 40, b"x" * 40),
    ),
    "announced over the route's limit": (
        "/small",
        [JSON, (b"content-length", b"17")],
        [],
    ),
    "streamed over the route's limit": (
        "/small",
        [JSON, (b"transfer-encoding", b"chunked")],
        chunked(b"x" * 10, b"x" * 10),
    ),
    "a lying small length": ("/small", [JSON, (b"content-length", b"2")], chunked(b"x" * 20)),
    "disconnected": ("/big", [JSON, (b"transfer-encoding", b"chunked")], chunked(b"{")[:0]),
    "disconnected midway": (
        "/big",
        [JSON, (b"transfer-encoding", b"chunked")],
        [{"type": "http.request", "body": b"{", "more_body": True}],
    ),
    "not a length": ("/big", [JSON, (b"content-length", b"12x")], chunked(b'{"text":"a"}')),
}


async def outcome(call: Callable[[], Awaitable[bytes]]) -> tuple[str, Any]:
    try:
        return "body", await call()
    except Exception as error:  # compared by type and text
        return type(error).__name__, str(error)


@pytest.mark.parametrize("case", list(CASES))
async def test_the_body_is_read_as_litestar_reads_it(case: str) -> None:
    path, headers, events = CASES[case]
    litestar = app()
    theirs = request_of(litestar, path, headers, events)
    expected = await outcome(theirs.body)
    limits = InputLimits(max_body_bytes=LIMIT, max_json_depth=32)
    ours = request_of(litestar, path, headers, events)
    length = dict(headers).get(b"content-length")
    got = await outcome(lambda: limits._read_body(ours, length))
    assert got == expected
    if expected[0] == "body":
        # kept where Litestar looks, read once: no second receive
        assert ours.is_connected is False
        assert await ours.body() == expected[1]
        again: Request[Any, Any, Any] = Request(ours.scope, receiver([]))  # type: ignore[arg-type]
        assert await again.body() == expected[1]
        assert await limits._read_body(again, length) == expected[1]


async def test_a_body_already_read_is_not_read_again() -> None:
    litestar = app()
    request = request_of(litestar, "/big", [JSON], chunked(b'{"text":"a"}'))
    assert await request.body() == b'{"text":"a"}'
    limits = InputLimits(max_body_bytes=LIMIT, max_json_depth=32)
    assert await limits._read_body(request, None) == b'{"text":"a"}'


def test_through_the_app_bodies_reach_the_handler_and_the_limits_are_each_routes() -> None:
    with TestClient(app()) as client:
        assert client.post("/big", json={"text": "a" * 40}).json() == {"text": "a" * 40}
        assert client.post("/small", json={"text": "a"}).json() == {"text": "a"}
        assert client.post("/small", json={"text": "a" * 10}).status_code == 413
        assert client.post("/big", json={"text": "a" * LIMIT}).status_code == 413

        def parts() -> Any:
            yield b'{"text":'
            yield b'"' + b"a" * 70 + b'"}'

        streamed = client.post(
            "/big", content=parts(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
