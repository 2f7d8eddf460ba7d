"""Cognito token verification against the user pool's JWKS.

``JwksKeySet`` fetches and caches the pool's public keys; a token signed
with a key id it does not know triggers one refetch (key rotation), at most
once per ``refetch_cooldown_seconds`` so a flood of forged ``kid``s cannot
turn into a flood of fetches. Keys older than ``max_age_seconds`` are
refreshed on the same cooldown, and while the endpoint is down (or serves no
usable key) the cached keys keep being used: an outage of the JWKS endpoint
costs one fetch per cooldown, not one per request. ``CognitoTokenVerifier``
accepts RS256 only and checks ``iss``, ``exp`` (on the injected clock),
``token_use`` and ``client_id`` (access tokens) or ``aud`` (id tokens).

The JWKS URL and the issuer are configured separately: moto serves the JWKS
at ``{endpoint}/{pool_id}/.well-known/jwks.json`` but signs tokens with the
real AWS issuer ``https://cognito-idp.{region}.amazonaws.com/{pool_id}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import jwt

from finbank_core.auth.errors import InvalidToken
from finbank_core.auth.model import Principal
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import ServiceUnavailable

ALGORITHM = "RS256"
MAX_JWKS_BYTES = 1 << 20
logger = logging.getLogger("finbank.jwks")

JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


def cognito_issuer(region: str, user_pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


def cognito_jwks_url(issuer: str) -> str:
    return f"{issuer}/.well-known/jwks.json"


class HttpJwksFetcher:
    """Fetches a JWKS document over HTTP(S) with aiohttp (a dependency of aioboto3)."""

    def __init__(self, url: str, *, timeout_seconds: float = 5.0) -> None:
        self._url = url
        self._timeout_seconds = timeout_seconds

    async def __call__(self) -> dict[str, Any]:
        import aiohttp

        try:
            timeout = aiohttp.ClientTimeout(total=self._timeout_seconds)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(self._url, allow_redirects=False) as response,
            ):
                if response.status != 200:
                    raise ServiceUnavailable("the key set could not be fetched")
                body = await response.content.read(MAX_JWKS_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.warning("JWKS fetch failed: %s", type(exc).__name__)
            raise ServiceUnavailable("the key set could not be fetched") from None
        if len(body) > MAX_JWKS_BYTES:
            raise ServiceUnavailable("the key set is too large")
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):  # a megabyte of "[" nests past the stack
            raise ServiceUnavailable("the key set is not JSON") from None
        if not isinstance(document, dict):
            raise ServiceUnavailable("the key set is malformed")
        return document


class JwksKeySet:
    """RSA signing keys by ``kid``, cached for ``max_age_seconds``.

    Fetches are serialised and shared: a task that waited for the lock while
    another task's fetch ran uses that fetch's outcome instead of queueing its
    own, so N concurrent verifies during an outage cost one fetch timeout, not
    N of them back to back. A failed fetch, or one that brings no usable key,
    never replaces keys we already have.
    """

    def __init__(
        self,
        fetch: JwksFetcher,
        clock: Clock,
        *,
        refetch_cooldown_seconds: float = 60.0,
        max_age_seconds: float = 3600.0,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._cooldown = refetch_cooldown_seconds
        self._max_age = max_age_seconds
        self._keys: dict[str, Any] = {}  # never emptied once filled
        self._fetched_at: datetime | None = None
        self._attempted_at: datetime | None = None
        self._completed = 0  # fetches that finished, well or badly (not cancelled)
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    async def key(self, kid: str) -> Any:
        """The public key for ``kid``; ``InvalidToken`` if the pool has no such key.

        Raises ``ServiceUnavailable`` when no key set could ever be fetched.
        """
        if not self._keys:
            # nothing to verify with: every call tries (sharing one in-flight fetch)
            await self._refresh(lambda now: not self._keys)
            if not self._keys:
                raise ServiceUnavailable("the key set could not be fetched")  # fail closed
        elif self._due_for_refresh(self._clock.now()):
            await self._refresh(self._due_for_refresh)
        key = self._keys.get(kid)
        if key is None:
            await self._refresh(lambda now: kid not in self._keys and self._cooled_down(now))
            key = self._keys.get(kid)
        if key is None:
            raise InvalidToken()
        return key

    def _due_for_refresh(self, now: datetime) -> bool:
        """Old keys are refreshed, but no more than once per cooldown.

        Without the cooldown a failed refresh leaves the keys old, so every
        verify would wait for its own fetch (up to the fetcher's timeout each)
        for as long as the endpoint is down.
        """
        if self._fetched_at is None:
            return True
        expired = (now - self._fetched_at).total_seconds() >= self._max_age
        return expired and self._cooled_down(now)

    def _cooled_down(self, now: datetime) -> bool:
        if self._attempted_at is None:
            return True
        return (now - self._attempted_at).total_seconds() >= self._cooldown

    async def _refresh(self, due: Callable[[datetime], bool]) -> None:
        completed = self._completed
        async with self._lock:
            if self._completed != completed:
                return  # a fetch finished while this task waited: its outcome is ours
            now = self._clock.now()
            if not due(now):
                return  # fresh enough, or within the cooldown of the last attempt
            self._attempted_at = now
            self.fetch_count += 1
            try:
                keys = _signing_keys(await self._fetch())
            except ServiceUnavailable:
                keys = {}
            self._completed += 1
            if not keys:
                logger.warning("JWKS refresh failed; keeping %d cached keys", len(self._keys))
                return  # keep the keys we have (none: the caller fails closed)
            self._keys = keys
            self._fetched_at = now


def _signing_keys(document: object) -> dict[str, Any]:
    """The usable RS256 signing keys of a JWKS document; unusable entries are skipped.

    A document that is not ``{"keys": [...]}`` is a broken endpoint, not a
    key set, and yields no keys (the caller treats that as a failed fetch).
    """
    jwks = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(jwks, list):
        return {}
    keys: dict[str, Any] = {}
    for jwk in jwks:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
            continue
        if jwk.get("alg", ALGORITHM) != ALGORITHM:
            continue
        try:
            keys[jwk["kid"]] = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
        except jwt.PyJWTError:
            continue
    return keys


class CognitoTokenVerifier:
    """``TokenVerifier`` for Cognito access tokens (or id tokens with ``token_use="id"``)."""

    def __init__(
        self,
        keys: JwksKeySet,
        *,
        issuer: str,
        client_id: str,
        clock: Clock,
        token_use: str = "access",  # noqa: S107 - a claim value, not a secret
    ) -> None:
        if token_use not in ("access", "id"):
            raise ValueError("token_use must be 'access' or 'id'")
        self._keys = keys
        self._issuer = issuer
        self._client_id = client_id
        self._clock = clock
        self._expected_use = token_use

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken() from None
        kid = header.get("kid")
        # Checked before any key is touched: no "none", no HS256 keyed with the public key.
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise InvalidToken()
        key = await self._keys.key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={
                    "require": ["exp", "iss", "sub", "token_use"],
                    # exp and nbf are checked below on the injected clock; aud by token_use
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                },
            )
        except jwt.PyJWTError:
            raise InvalidToken() from None
        expires_at = self._check_claims(claims)
        return Principal(
            subject=str(claims["sub"]),
            username=str(claims.get("username") or claims.get("cognito:username") or ""),
            token_id=str(claims["jti"]) if claims.get("jti") else None,
            session_id=str(claims["origin_jti"]) if claims.get("origin_jti") else None,
            expires_at=expires_at,
            roles=_groups(claims),
        )

    def _check_claims(self, claims: dict[str, Any]) -> datetime:
        """Checks the claims PyJWT was told to leave alone; returns the expiry."""
        now = self._clock.now()
        expires = _numeric_date(claims["exp"])
        if "iat" in claims:
            _numeric_date(claims["iat"])
        if expires <= now:
            raise InvalidToken()
        if "nbf" in claims and _numeric_date(claims["nbf"]) > now:
            raise InvalidToken()
        if claims.get("token_use") != self._expected_use:
            raise InvalidToken()
        if self._expected_use == "access":
            if claims.get("client_id") != self._client_id:
                raise InvalidToken()
        else:
            audience = claims.get("aud")
            audiences = audience if isinstance(audience, list) else [audience]
            if self._client_id not in audiences:
                raise InvalidToken()
        return expires


def _numeric_date(value: object) -> datetime:
    """A JWT NumericDate claim as an aware datetime; ``InvalidToken`` if it is not one.

    A valid signature says who wrote a claim, not that it is sane: a string,
    a bool, NaN or a year past 9999 must be a 401, not an ``OverflowError``
    (a 500) out of ``datetime``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken()
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (OverflowError, ValueError, OSError):
        raise InvalidToken() from None


def _groups(claims: dict[str, Any]) -> frozenset[str]:
    """``cognito:groups`` as roles: a list of strings, or absent.

    Anything else is refused rather than coerced: iterating the string
    ``"admin"`` would grant the roles ``a``, ``d``, ``i``, ``m`` and ``n``.
    """
    groups = claims.get("cognito:groups", [])
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        raise InvalidToken()
    return frozenset(groups)
