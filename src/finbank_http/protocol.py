"""uvicorn's HTTP protocol, answering bytes it cannot parse with a problem document.

uvicorn answers a request that is not HTTP/1.1 (a broken request line, a header
with a control character, a bad chunk size, two ``Content-Length``) itself,
before any app sees it, with ``text/plain`` *Invalid HTTP request received.*
Every other error of the service is ``application/problem+json`` (RFC 9457);
these are too. :data:`ProblemHttpProtocol` is uvicorn's own protocol with
that one answer replaced: the same status and ``Connection: close``, the
service's fixed security headers (not HSTS), and the body below. It is the protocol
``uvicorn[standard]`` would pick (httptools when installed, else h11), so
parsing, keep-alive and every well-formed request are uvicorn's, unchanged.

The answer is written raw, as uvicorn's httptools protocol writes its own:
after a parse error neither parser can frame a response any more (h11's
connection is in its error state), and the connection is closed right after.
``send_400_response`` is uvicorn's, not a public API: the version is pinned
by ``constraints.txt`` and ``tests/e2e/test_http_unparsable_requests.py``
sends malformed bytes through both protocols to a served app.
"""

from __future__ import annotations

from typing import Any

import msgspec
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["PROBLEM_BODY", "ProblemH11Protocol", "ProblemHttpProtocol", "problem_response"]

#: the problem document of a request uvicorn could not parse (no route saw it: no instance)
PROBLEM_BODY = msgspec.json.encode(
    {
        "type": "urn:finbank:problem:invalid_input",
        "title": "Invalid request",
        "status": 400,
        "detail": "the request is not valid HTTP/1.1",
        "code": "invalid_input",
    }
)
#: the service's fixed security headers (``finbank_http.security``); not HSTS, which
#: depends on settings this protocol does not see (browsers ignore it on a 400 of a
#: connection that is closed anyway)
_HEADERS = (
    b"content-type: application/problem+json\r\n"
    b"x-content-type-options: nosniff\r\n"
    b"x-frame-options: DENY\r\n"
    b"content-security-policy: default-src 'none'; frame-ancestors 'none'\r\n"
    b"cache-control: no-store\r\n"
    b"connection: close\r\n"
)


def problem_response(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The whole 400 answer, with the server's ``default_headers`` (its ``date``)."""
    lines = [b"HTTP/1.1 400 Bad Request\r\n"]
    lines.extend(name + b": " + value + b"\r\n" for name, value in default_headers)
    lines.append(_HEADERS)
    lines.append(b"content-length: %d\r\n\r\n" % len(PROBLEM_BODY))
    lines.append(PROBLEM_BODY)
    return b"".join(lines)


class _ProblemAnswer:
    """Replaces uvicorn's plain-text answer to an unparsable request (see the module)."""

    transport: Any
    server_state: Any

    def send_400_response(self, msg: str) -> None:
        # ``msg`` is uvicorn's text ("Invalid HTTP request received."): it names no field
        self.transport.write(problem_response(self.server_state.default_headers))
        self.transport.close()


class ProblemH11Protocol(_ProblemAnswer, H11Protocol):
    """uvicorn's h11 protocol, answering an unparsable request with a problem document."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
    ProblemHttpProtocol: type[Any] = ProblemH11Protocol
else:

    class ProblemHttpToolsProtocol(_ProblemAnswer, HttpToolsProtocol):
        """uvicorn's httptools protocol, answering an unparsable request with a problem."""

    ProblemHttpProtocol = ProblemHttpToolsProtocol
