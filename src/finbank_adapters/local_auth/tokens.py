"""JWTs for the self-hosted provider: HS256 with an allow-list of one algorithm."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from finbank_core.auth.errors import InvalidToken
from finbank_core.auth.model import Principal
from finbank_core.shared.clock import Clock

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32


class LocalTokenIssuer:
    """Signs access, refresh and MFA-session tokens.

    ``token_use`` separates the kinds so a refresh or MFA-session token can
    never be used as an access token.
    """

    def __init__(
        self,
        *,
        secret: bytes,
        issuer: str,
        audience: str,
        clock: Clock,
        access_ttl_seconds: int = 900,
        refresh_ttl_seconds: int = 30 * 24 * 3600,
    ) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the signing secret must have at least {MIN_SECRET_BYTES} bytes")
        self.secret = secret
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        self.access_ttl_seconds = access_ttl_seconds
        self.refresh_ttl_seconds = refresh_ttl_seconds

    def sign(self, token_use: str, subject: str, ttl_seconds: int, **claims: Any) -> str:
        now = self.clock.now()
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
            "jti": secrets.token_hex(16),
            "token_use": token_use,
            **claims,
        }
        return jwt.encode(payload, self.secret, algorithm=ALGORITHM)

    def decode(self, token: str, token_use: str) -> dict[str, Any]:
        """Verify signature, algorithm, issuer, audience, expiry and ``token_use``."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": ["exp", "iat", "sub", "jti", "iss", "aud"],
                    # Time claims are checked below against the injected clock only:
                    # PyJWT would compare exp, iat and nbf with the system clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken() from exc
        if claims.get("token_use") != token_use:
            raise InvalidToken()
        if int(claims["exp"]) <= int(self.clock.now().timestamp()):
            raise InvalidToken()
        return claims


class LocalTokenVerifier:
    """``TokenVerifier`` for access tokens signed by :class:`LocalTokenIssuer`."""

    def __init__(self, issuer: LocalTokenIssuer) -> None:
        self._issuer = issuer

    async def verify(self, token: str) -> Principal:
        claims = self._issuer.decode(token, "access")
        return Principal(
            subject=str(claims["sub"]),
            username=str(claims.get("username", "")),
            token_id=str(claims["jti"]),
            session_id=str(claims["sid"]) if claims.get("sid") else None,
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            roles=frozenset(claims.get("roles", ())),
        )
