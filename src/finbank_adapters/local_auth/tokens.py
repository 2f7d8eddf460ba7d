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


#: verified access tokens a :class:`LocalTokenVerifier` remembers (each a few hundred bytes)
VERIFIED_CACHE_SIZE = 4096


class LocalTokenVerifier:
    """``TokenVerifier`` for access tokens signed by :class:`LocalTokenIssuer`.

    A client sends the same access token with every request until it expires,
    and checking its HS256 signature and claims with PyJWT is the dearest step
    of an authenticated request. So the verifier remembers, for up to
    ``cache_size`` tokens, the principal of a token it verified, keyed by the
    *whole* token text, signature included: another text, even one differing
    only in its signature, is a miss and is verified in full. What a token
    proves cannot change once its signature and claims are checked (the
    issuer's secret is fixed for its lifetime); what can change is checked on
    every use: the expiry, against the injected clock, here, and revocation,
    by the caller (``Authenticate`` asks the denylist each time). Refused
    tokens are never remembered; when the cache is full the oldest entry goes.
    """

    def __init__(self, issuer: LocalTokenIssuer, *, cache_size: int = VERIFIED_CACHE_SIZE) -> None:
        self._issuer = issuer
        self._cache_size = cache_size
        #: token text -> (its ``exp`` as a UTC datetime, principal); insertion order is age
        self._verified: dict[str, tuple[datetime, Principal]] = {}

    @property
    def cached_tokens(self) -> int:
        """How many verified tokens are remembered now (at most ``cache_size``)."""
        return len(self._verified)

    async def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None:
            expires_at, principal = cached
            # exp > int(now.timestamp()), as decode() checks, is exp > now for a whole exp
            if expires_at > self._issuer.clock.now():
                return principal
            self._verified.pop(token, None)
            raise InvalidToken()
        claims = self._issuer.decode(token, "access")
        expires = int(claims["exp"])
        expires_at = datetime.fromtimestamp(expires, UTC)
        principal = Principal(
            subject=str(claims["sub"]),
            username=str(claims.get("username", "")),
            token_id=str(claims["jti"]),
            session_id=str(claims["sid"]) if claims.get("sid") else None,
            expires_at=expires_at,
            roles=frozenset(claims.get("roles", ())),
        )
        if self._cache_size > 0:
            verified = self._verified
            while len(verified) >= self._cache_size:
                verified.pop(next(iter(verified)), None)
            verified[token] = (expires_at, principal)
        return principal
