"""Bearer-token authentication: a dependency that yields the calling ``Principal``."""

from __future__ import annotations

from typing import Any

from litestar import Request

from finbank_core.auth.errors import InvalidToken
from finbank_core.auth.model import Principal

BEARER_SCHEME = "BearerToken"


def bearer_token(request: Request[Any, Any, Any]) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("a bearer token is required")
    return token.strip()


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Verify the bearer token with the configured ``TokenVerifier`` and the denylist.

    A revoked token (logout) is refused; if the denylist cannot be read the
    request fails with 503 rather than accept an unchecked token.
    """
    from finbank_http.deps import bank_of

    return await bank_of(request).auth.authenticate(bearer_token(request))
