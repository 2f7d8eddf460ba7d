"""Bearer-token authentication and the security headers of every response.

Protected routes (those under the router :func:`protected_opt` marks)
authenticate first thing in the app's ``before_request`` hook
(:func:`authenticate_then`), which Litestar runs before it reads the body, the
query or any dependency: a request without a valid token gets 401 whatever
else is wrong with it, and a failed authentication never reaches the input
checks or the dependency resolver. The app refuses to start if a protected
route's ``before_request`` is another hook (a layer that set its own would
otherwise silence the authentication). :func:`authenticated` is the same
check as a guard, for routes outside that router (the auth routes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from finbank import Bank
from finbank_core.auth.errors import InvalidToken
from finbank_core.auth.model import AuthenticateQuery, Principal
from finbank_http.observability.middleware import RESPONSE_START, ResponseStart

BEARER_SCHEME = "BearerToken"
_PRINCIPAL_STATE = "finbank_principal"
#: the ``opt`` key of the routes that need a bearer token (:func:`authenticate_then`)
AUTHENTICATED_OPT = "finbank_authenticated"
_AUTHORIZATION = b"authorization"
#: ``ScopeType.HTTP`` read once: a member read through the enum class costs a look-up in
#: Python 3.11's ``EnumType.__getattr__`` hook on every request
_HTTP = ScopeType.HTTP


def protected_opt() -> dict[str, Any]:
    """The ``opt`` of a layer whose routes all need a valid bearer token."""
    return {AUTHENTICATED_OPT: True}


def bank_of(request: ASGIConnection[Any, Any, Any, Any]) -> Bank:
    """The bank the app runs on (kept in ``app.state``; ``finbank_http.deps`` provides it).

    Read as ``state["bank"]``: ``state.bank`` first fails the ordinary attribute look-up
    of a slotted class (an ``AttributeError`` raised and cleared) before ``State``'s
    ``__getattr__`` reads the same dictionary, ten times the cost, twice a request."""
    bank: Bank = request.scope["litestar_app"].state["bank"]
    return bank


def _token_of(header: str) -> str:
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("a bearer token is required")
    return token


def bearer_token(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The bearer token of the ``Authorization`` header (its first, as ``Headers.get``)."""
    for name, value in request.scope["headers"]:
        if name == _AUTHORIZATION or name.lower() == _AUTHORIZATION:
            return _token_of(value.decode("latin-1"))
    raise InvalidToken("a bearer token is required")


def _state_of(scope: Any) -> dict[str, Any]:
    state: dict[str, Any] | None = scope.get("state")
    if state is None:
        state = scope["state"] = {}
    return state


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Verify the bearer token (``TokenVerifier`` and the denylist); keep the principal.

    A revoked token (logout) is refused; if the denylist cannot be read the
    request fails with 503 rather than accept an unchecked token. The
    principal is kept in the connection's state for :func:`provide_principal`.
    """
    principal = await bank_of(connection).auth.authenticate(
        AuthenticateQuery(access_token=bearer_token(connection))
    )
    _state_of(connection.scope)[_PRINCIPAL_STATE] = principal
    return principal


async def authenticated(
    connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
) -> None:
    """Guard: :func:`authenticate` before anything else (``OPTIONS`` excepted)."""
    if connection.scope.get("method") == "OPTIONS":  # answers the methods only, to anyone
        return
    await authenticate(connection)


def authenticate_then(
    check: Callable[[Request[Any, Any, Any]], Awaitable[Any]],
    call: Callable[[Request[Any, Any, Any]], Awaitable[Any]] | None = None,
) -> Callable[[Request[Any, Any, Any]], Awaitable[Any]]:
    """The app's ``before_request``: on a route marked :func:`protected_opt`,
    :func:`authenticate` first (``OPTIONS`` excepted, as the guard), then ``check``
    (the input limits), whose answer it returns if it has one; otherwise ``call``'s
    (:class:`~finbank_http.direct_calls.DirectCalls`: the handler's answer, or None
    for Litestar to call it).

    The same order a guard gives (401 before the input is looked at), without
    the per-request copy of the route handler Litestar makes for each guard.
    """
    protected: dict[int, bool] = {}

    async def before_request(request: Request[Any, Any, Any]) -> Any:
        scope = request.scope
        handler = scope["route_handler"]
        key = id(handler)
        needs_token = protected.get(key)
        if needs_token is None:
            needs_token = protected[key] = bool(handler.opt.get(AUTHENTICATED_OPT))
        if needs_token and scope["method"] != "OPTIONS":
            await authenticate(request)
        answer = await check(request)
        if answer is None and call is not None:
            return await call(request)
        return answer

    before_request.__qualname__ = before_request.__name__ = "authenticate_then"
    return before_request


async def bearer_present(
    connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
) -> None:
    """Guard for routes that verify the token themselves (logout): 401 first if there is none."""
    if connection.scope.get("method") != "OPTIONS":
        bearer_token(connection)


def verified_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal :func:`authenticate` kept for this request; ``InvalidToken`` if none
    (a route that did not authenticate gets no principal: refused, never guessed)."""
    state = request.scope.get("state")
    principal = state.get(_PRINCIPAL_STATE) if state is not None else None
    if not isinstance(principal, Principal):
        raise InvalidToken("a bearer token is required")
    return principal


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The principal :func:`authenticate` verified (it runs first)."""
    state = request.scope.get("state")
    principal = state.get(_PRINCIPAL_STATE) if state is not None else None
    if not isinstance(principal, Principal):  # a route mounted without authentication
        principal = await authenticate(request)
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
        common = [(b"x-content-type-options", b"nosniff")]
        strict = [(b"strict-transport-security", hsts.encode())] if hsts else []
        #: under /schema (the documentation pages: cacheable, framed by nothing of ours)
        self._schema: tuple[tuple[bytes, bytes], ...] = (*common, *strict)
        self._api: tuple[tuple[bytes, bytes], ...] = (
            *common,
            (b"cache-control", b"no-store"),
            (b"x-frame-options", b"DENY"),
            (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
            *strict,
        )
        #: what each set replaces of the route's own headers (``server`` is never sent)
        self._replaced_api = frozenset(name for name, _ in self._api) | {b"server"}
        self._replaced_schema = frozenset(name for name, _ in self._schema) | {b"server"}

    def headers_for(self, path: str) -> list[tuple[bytes, bytes]]:
        return list(self._schema if path.startswith("/schema") else self._api)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """An ASGI middleware adding the headers (replacing any the route set).

        It is the one send wrapper of a request: it leaves a
        :class:`~finbank_http.observability.middleware.ResponseStart` in the
        scope, to which the request-context middleware adds its id headers
        and from which it reads the status, instead of wrapping ``send`` again.
        """
        api = (self._api, self._replaced_api)
        schema = (self._schema, self._replaced_schema)

        async def with_headers(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != _HTTP:
                await app(scope, receive, send)
                return
            added, replaced = schema if str(scope.get("path", "")).startswith("/schema") else api
            start = ResponseStart(list(added))
            scope[RESPONSE_START] = start  # type: ignore[literal-required]

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    start.status = int(message["status"])
                    kept = [
                        (name, value)
                        for name, value in message.get("headers", ())
                        if name.lower() not in replaced
                    ]
                    kept += start.headers
                    message = {**message, "headers": kept}
                await send(message)

            await app(scope, receive, send_with_headers)

        return with_headers
