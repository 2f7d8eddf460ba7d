"""Bytes that are not HTTP/1.1 get a problem document, from both of uvicorn's parsers.

uvicorn answers what it cannot parse before any app sees it; its own answer is
``text/plain``. ``finbank serve`` runs :data:`finbank_http.protocol.ProblemHttpProtocol`
(httptools, as ``uvicorn[standard]`` picks); the app is served here with serve's
options as they are, and on the h11 protocol too, so the answer does not depend on
which parser is installed. The requests are written on a
raw socket: no HTTP client sends them.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from finbank_http.protocol import PROBLEM_BODY, ProblemH11Protocol
from tests.e2e.http_live import live_server

UNPARSABLE = {
    "not a request line": b"GARBAGE\r\n\r\n",
    "a header without a colon": b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    "a space in a header name": b"GET /health HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n",
    "a NUL in a header value": b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "two Content-Length": (
        b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
    ),
    "a chunk size that is no number": (
        b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
    ),
}


@pytest.fixture(scope="module", params=[None, ProblemH11Protocol], ids=["as-served", "h11"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    """A served app: with ``finbank serve``'s options as they are, or on the h11 protocol."""
    with live_server(protocol=request.param) as base:
        yield int(base.rsplit(":", 1)[1])


def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw``; everything the server wrote until it closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(raw)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


def parse(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


@pytest.mark.parametrize("raw", UNPARSABLE.values(), ids=UNPARSABLE.keys())
def test_an_unparsable_request_gets_a_problem_document_and_a_closed_connection(
    port: int, raw: bytes
) -> None:
    status, headers, body = parse(exchange(port, raw))  # returns once the server closed

    assert status == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert int(headers["content-length"]) == len(body)
    assert "server" not in headers
    assert "date" in headers
    assert json.loads(body) == {
        "type": "urn:finbank:problem:invalid_input",
        "title": "Invalid request",
        "status": 400,
        "detail": "the request is not valid HTTP/1.1",
        "code": "invalid_input",
    }
    assert body == PROBLEM_BODY


def test_well_formed_requests_are_uvicorns_as_before(port: int) -> None:
    # two requests on one connection: keep-alive and framing are untouched
    one = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

    answers = exchange(port, one + last).split(b"HTTP/1.1 ")[1:]

    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"200 OK", b"200 OK"]
    assert all(a.endswith(b'{"status":"ok"}') for a in answers)
