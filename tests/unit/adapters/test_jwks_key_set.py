"""JwksKeySet and CognitoTokenVerifier against a scripted JWKS endpoint, on a fake clock.

The endpoint is a counting fake, so "how long does an outage cost" is asked as
"how many fetches": each fetch of the real ``HttpJwksFetcher`` may wait its
whole timeout, and fetches are serialised, so every extra fetch is latency
added to a request. Claims are signed with the key the endpoint publishes, so
only the claim under test is wrong.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from finbank_adapters.aws.jwks import CognitoTokenVerifier, HttpJwksFetcher, JwksKeySet
from finbank_adapters.memory import FakeClock
from finbank_core.auth.errors import InvalidToken
from finbank_core.shared.errors import ServiceUnavailable

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Test"
CLIENT_ID = "app-client"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NEW_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private_key: Any, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


GOOD_DOCUMENT = {"keys": [public_jwk(KEY, "k1")]}


class ScriptedEndpoint:
    """A JWKS endpoint that serves ``document``, or is down (optionally hanging until
    ``gate`` opens, as a real fetch hangs until its timeout)."""

    def __init__(self) -> None:
        self.document: Any = GOOD_DOCUMENT
        self.down = False
        self.gate: asyncio.Event | None = None
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ServiceUnavailable("the key set could not be fetched")
        document: dict[str, Any] = self.document
        return document


def make_verifier(endpoint: ScriptedEndpoint, clock: FakeClock) -> CognitoTokenVerifier:
    return CognitoTokenVerifier(
        JwksKeySet(endpoint, clock), issuer=ISSUER, client_id=CLIENT_ID, clock=clock
    )


def token(clock: FakeClock, key: Any = KEY, kid: str = "k1", **claims: Any) -> str:
    now = int(clock.now().timestamp())
    body = {
        "sub": "user-1",
        "iss": ISSUER,
        "exp": now + 3 * 3600,
        "iat": now,
        "token_use": "access",
        "client_id": CLIENT_ID,
        "username": "maria",
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))


async def until_fetched(endpoint: ScriptedEndpoint, calls: int) -> None:
    """Lets the event loop run until the endpoint has been called ``calls`` times."""
    for _ in range(1000):
        if endpoint.calls >= calls:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"the endpoint was called {endpoint.calls} times, not {calls}")


# -- B4: an outage after the cache expires ---------------------------------------------


async def test_an_outage_after_the_hour_costs_one_fetch_per_cooldown_not_one_per_verify(
    clock: FakeClock,
) -> None:
    endpoint = ScriptedEndpoint()
    verifier = make_verifier(endpoint, clock)
    await verifier.verify(token(clock))
    assert endpoint.calls == 1

    endpoint.down = True
    endpoint.gate = asyncio.Event()  # the fetch hangs, as one does until its timeout
    clock.advance(3601)
    verifies = [asyncio.create_task(verifier.verify(token(clock))) for _ in range(10)]
    await until_fetched(endpoint, 2)
    endpoint.gate.set()
    principals = await asyncio.gather(*verifies)
    assert {p.username for p in principals} == {"maria"}  # the old keys still serve
    assert endpoint.calls == 2  # the ten verifies shared one fetch

    for _ in range(5):  # within the cooldown of the failed refresh: no fetch at all
        await verifier.verify(token(clock))
    assert endpoint.calls == 2
    clock.advance(60)
    await verifier.verify(token(clock))
    assert endpoint.calls == 3  # one more try per cooldown while the endpoint is down

    endpoint.down = False  # back, and the pool has rotated its key
    endpoint.document = {"keys": [public_jwk(NEW_KEY, "k2")]}
    clock.advance(60)
    assert (await verifier.verify(token(clock, key=NEW_KEY, kid="k2"))).username == "maria"
    assert endpoint.calls == 4
    with pytest.raises(InvalidToken):  # the refreshed set replaced the old one
        await verifier.verify(token(clock))


async def test_concurrent_verifies_with_no_keys_share_one_failing_fetch(
    clock: FakeClock,
) -> None:
    endpoint = ScriptedEndpoint()
    endpoint.down = True
    endpoint.gate = asyncio.Event()
    verifier = make_verifier(endpoint, clock)
    verifies = [asyncio.create_task(verifier.verify(token(clock))) for _ in range(10)]
    await until_fetched(endpoint, 1)
    endpoint.gate.set()
    outcomes = await asyncio.gather(*verifies, return_exceptions=True)
    assert all(isinstance(outcome, ServiceUnavailable) for outcome in outcomes)  # 503
    assert endpoint.calls == 1
    # with nothing to verify with, the next request tries again rather than wait a cooldown
    with pytest.raises(ServiceUnavailable):
        await verifier.verify(token(clock))
    assert endpoint.calls == 2


# -- B5: malformed or empty key sets ---------------------------------------------------

BAD_DOCUMENTS: list[tuple[str, Any]] = [
    ("no-keys-member", {}),
    ("empty-keys", {"keys": []}),
    ("keys-null", {"keys": None}),
    ("keys-number", {"keys": 5}),
    ("keys-string", {"keys": "abc"}),
    ("only-a-broken-key", {"keys": [{**public_jwk(KEY, "k1"), "n": "!!!"}]}),
]


@pytest.mark.parametrize(
    ("name", "document"), BAD_DOCUMENTS, ids=[name for name, _ in BAD_DOCUMENTS]
)
async def test_a_bad_first_key_set_is_a_503(clock: FakeClock, name: str, document: Any) -> None:
    endpoint = ScriptedEndpoint()
    endpoint.document = document
    with pytest.raises(ServiceUnavailable):
        await make_verifier(endpoint, clock).verify(token(clock))


@pytest.mark.parametrize(
    ("name", "document"), BAD_DOCUMENTS, ids=[name for name, _ in BAD_DOCUMENTS]
)
async def test_a_bad_refresh_keeps_the_cached_keys(
    clock: FakeClock, name: str, document: Any
) -> None:
    endpoint = ScriptedEndpoint()
    verifier = make_verifier(endpoint, clock)
    await verifier.verify(token(clock))
    endpoint.document = document
    clock.advance(3601)
    for _ in range(5):
        assert (await verifier.verify(token(clock))).username == "maria"
    assert endpoint.calls == 2  # one refresh, then the cooldown


async def test_a_key_set_nested_past_the_stack_is_a_503_not_a_crash() -> None:
    async def nested(request: web.Request) -> web.Response:
        return web.Response(body=b"[" * 500_000, content_type="application/json")

    app = web.Application()
    app.router.add_get("/jwks.json", nested)
    async with TestServer(app, host="127.0.0.1") as server:
        fetch = HttpJwksFetcher(str(server.make_url("/jwks.json")))
        with pytest.raises(ServiceUnavailable):
            await fetch()


# -- B5: signed claims that are out of range or of the wrong type ----------------------

BAD_CLAIMS: list[tuple[str, dict[str, Any]]] = [
    ("exp-past-year-9999", {"exp": 10**20}),
    ("exp-infinite", {"exp": float("inf")}),
    ("exp-a-string", {"exp": "9999999999"}),
    ("iat-past-year-9999", {"iat": 10**20}),
    ("nbf-before-year-1", {"nbf": -(10**20)}),
    ("nbf-a-string", {"nbf": "0"}),
    ("groups-a-string", {"cognito:groups": "admin"}),
    ("groups-with-a-number", {"cognito:groups": ["admin", 1]}),
    ("groups-an-object", {"cognito:groups": {"admin": True}}),
]


@pytest.mark.parametrize(("name", "claims"), BAD_CLAIMS, ids=[name for name, _ in BAD_CLAIMS])
async def test_a_signed_but_malformed_claim_is_an_invalid_token(
    clock: FakeClock, name: str, claims: dict[str, Any]
) -> None:
    verifier = make_verifier(ScriptedEndpoint(), clock)
    with pytest.raises(InvalidToken):
        await verifier.verify(token(clock, **claims))


async def test_groups_become_roles_only_as_a_list_of_strings(clock: FakeClock) -> None:
    verifier = make_verifier(ScriptedEndpoint(), clock)
    groups: dict[str, Any] = {"cognito:groups": ["admin", "ops"]}
    principal = await verifier.verify(token(clock, **groups))
    assert principal.roles == frozenset({"admin", "ops"})
    assert (await verifier.verify(token(clock))).roles == frozenset()  # no groups claim
    with pytest.raises(InvalidToken):  # not the roles {a, d, i, m, n}
        await verifier.verify(token(clock, **{"cognito:groups": "admin"}))
