"""Bearer-token authentication and the security headers of every response.

Protected routes authenticate in a *guard* (:func:`authenticated`), which
Litestar runs before it reads the body, the query or any dependency: a
request without a valid token gets 401 whatever else is wrong with it, and a
failed authentication never reaches the dependency resolver.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from finbank import Bank
from finbank_core.auth.errors import InvalidToken
from finbank_core.auth.model import AuthenticateQuery, Principal

BEARER_SCHEME = "BearerToken"
_PRINCIPAL_STATE = "finbank_principal"


def bank_of(request: ASGIConnection[Any, Any, Any, Any]) -> Bank:
    """The bank the app runs on (kept in ``app.state``; ``finbank_http.deps`` provides it)."""
    bank: Bank = request.app.state.bank
    return bank


def bearer_token(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("a bearer token is required")
    return token.strip()


async def authenticated(
    connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
) -> None:
    """Guard: verify the bearer token (``TokenVerifier`` and the denylist) before anything else.

    A revoked token (logout) is refused; if the denylist cannot be read the
    request fails with 503 rather than accept an unchecked token. The
    principal is kept in the connection's state for :func:`provide_principal`.
    """
    if connection.scope.get("method") == "OPTIONS":  # answers the methods only, to anyone
        return
    principal = await bank_of(connection).auth.authenticate(
        AuthenticateQuery(access_token=bearer_token(connection))
    )
    connection.state[_PRINCIPAL_STATE] = principal


async def bearer_present(
    connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
) -> None:
    """Guard for routes that verify the token themselves (logout): 401 first if there is none."""
    if connection.scope.get("method") != "OPTIONS":
        bearer_token(connection)


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The principal the :func:`authenticated` guard verified (it runs first)."""
    principal = request.state.get(_PRINCIPAL_STATE)
    if not isinstance(principal, Principal):  # a route mounted without the guard
        await authenticated(request, request.route_handler)
        principal = request.state[_PRINCIPAL_STATE]
    assert isinstance(principal, Principal)
    return principal


class SecurityHeaders:
    """The headers every response carries (OWASP secure headers):

    - ``Cache-Control: no-store`` on API responses (they carry tokens, balances
      and personal data; nothing of ours is meant for a shared cache), except
      the API documentation pages under ``/schema``;
    - ``X-Content-Type-Options: nosniff``; ``X-Frame-Options: DENY`` and a
      ``frame-ancestors 'none'`` content security policy on API responses;
    - ``Strict-Transport-Security`` when ``hsts_max_age_seconds`` > 0;
    - no ``Server`` header (``finbank serve`` also turns uvicorn's off).
    """

    def __init__(
        self, *, hsts_max_age_seconds: int = 0, hsts_include_subdomains: bool = False
    ) -> None:
        hsts = ""
        if hsts_max_age_seconds > 0:
            hsts = f"max-age={hsts_max_age_seconds}"
            if hsts_include_subdomains:
                hsts += "; includeSubDomains"
        self.hsts = hsts

    def headers_for(self, path: str) -> list[tuple[bytes, bytes]]:
        headers = [(b"x-content-type-options", b"nosniff")]
        if not path.startswith("/schema"):
            headers += [
                (b"cache-control", b"no-store"),
                (b"x-frame-options", b"DENY"),
                (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
            ]
        if self.hsts:
            headers.append((b"strict-transport-security", self.hsts.encode()))
        return headers

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """An ASGI middleware adding the headers (replacing any the route set)."""

        async def with_headers(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            extra = self.headers_for(str(scope.get("path", "")))
            replaced = {name for name, _ in extra} | {b"server"}

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    kept = [
                        (name, value)
                        for name, value in message.get("headers", [])
                        if name.lower() not in replaced
                    ]
                    message = {**message, "headers": [*kept, *extra]}
                await send(message)

            await app(scope, receive, send_with_headers)

        return with_headers
