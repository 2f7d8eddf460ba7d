"""CognitoTokenVerifier against moto's JWKS: real tokens pass, tampered ones do not.

Tampered tokens are signed with moto's own pool key where the point is a bad
claim, so only that claim is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.utilities.utils import load_resource

from finbank_adapters.aws.jwks import (
    CognitoTokenVerifier,
    HttpJwksFetcher,
    JwksKeySet,
    cognito_issuer,
)
from finbank_adapters.memory import FakeClock
from finbank_core.auth import LoginCommand
from finbank_core.auth.errors import InvalidToken
from finbank_core.shared.errors import ServiceUnavailable
from tests.integration.cognito.conftest import PASSWORD, REGION, CognitoWorld

MOTO_KID = "dummy"


def moto_private_key() -> Any:
    jwk = load_resource("cognitoidp/resources/jwks-private.json")
    return jwt.PyJWK(jwk, algorithm="RS256").key


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign(claims: dict[str, Any], key: Any = None, kid: str = MOTO_KID) -> str:
    return jwt.encode(claims, key or moto_private_key(), algorithm="RS256", headers={"kid": kid})


def unsigned(claims: dict[str, Any]) -> str:
    header = b64(json.dumps({"alg": "none", "kid": MOTO_KID}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


def hs256_with_public_key(claims: dict[str, Any]) -> str:
    """The algorithm-confusion attack: HMAC keyed with the pool's *public* key."""
    public_pem = (
        moto_private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = b64(json.dumps({"alg": "HS256", "kid": MOTO_KID, "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def foreign_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


async def access_token(world: CognitoWorld, username: str = "maria") -> str:
    world.pool.user(username)
    tokens = (await world.login(LoginCommand(username=username, password=PASSWORD))).tokens
    assert tokens is not None
    return tokens.access_token


async def test_a_real_access_token_is_verified(world: CognitoWorld) -> None:
    principal = await world.verifier.verify(await access_token(world))
    assert principal.username == "maria"
    assert principal.token_id
    assert principal.session_id


async def test_a_token_re_signed_with_the_pool_key_and_no_change_passes(
    world: CognitoWorld,
) -> None:
    # the control for the tampering cases below: re-signing alone breaks nothing
    claims = claims_of(await access_token(world))
    assert (await world.verifier.verify(sign(claims))).username == "maria"


TAMPERINGS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("alg-none", unsigned),
    ("hs256-keyed-with-the-public-key", hs256_with_public_key),
    ("wrong-issuer", lambda c: sign({**c, "iss": cognito_issuer(REGION, "us-east-1_other")})),
    ("wrong-client-id", lambda c: sign({**c, "client_id": "another-app-client"})),
    ("id-token-as-access-token", lambda c: sign({**c, "token_use": "id", "aud": c["client_id"]})),
    ("expired", lambda c: sign({**c, "exp": c["iat"] - 1})),
    ("not-yet-valid", lambda c: sign({**c, "nbf": c["exp"]})),
    ("foreign-key-same-kid", lambda c: sign(c, key=foreign_key())),
    ("foreign-key-unknown-kid", lambda c: sign(c, key=foreign_key(), kid="attacker")),
    ("no-token-use", lambda c: sign({k: v for k, v in c.items() if k != "token_use"})),
]


@pytest.mark.parametrize(("name", "tamper"), TAMPERINGS, ids=[name for name, _ in TAMPERINGS])
async def test_a_tampered_token_is_refused(
    world: CognitoWorld, name: str, tamper: Callable[[dict[str, Any]], str]
) -> None:
    claims = claims_of(await access_token(world))
    # The fixture's clock stopped when the world was built and moto stamps iat
    # with the real time, seconds later on a busy machine: "expired" (exp one
    # second before iat) would still lie ahead of a clock that has not moved.
    # Our clock reads the issue time, so only the tampered claim is wrong.
    world.clock.set(datetime.fromtimestamp(claims["iat"], UTC))
    with pytest.raises(InvalidToken):
        await world.verifier.verify(tamper(claims))


async def test_a_token_expires_on_the_injected_clock(world: CognitoWorld) -> None:
    token = await access_token(world)
    world.clock.advance(claims_of(token)["exp"] - world.clock.now().timestamp())
    with pytest.raises(InvalidToken):
        await world.verifier.verify(token)


async def test_an_id_token_verifier_checks_aud_instead_of_client_id(
    world: CognitoWorld,
) -> None:
    world.pool.user("maria")
    tokens = (await world.login(LoginCommand(username="maria", password=PASSWORD))).tokens
    assert tokens is not None
    assert tokens.id_token is not None
    id_verifier = CognitoTokenVerifier(
        world.keys,
        issuer=cognito_issuer(REGION, world.pool.pool_id),
        client_id=world.pool.client_id,
        clock=world.clock,
        token_use="id",
    )
    assert (await id_verifier.verify(tokens.id_token)).subject
    with pytest.raises(InvalidToken):
        await id_verifier.verify(tokens.access_token)


async def test_unknown_kids_refetch_the_key_set_at_most_once_per_cooldown(
    world: CognitoWorld,
) -> None:
    claims = claims_of(await access_token(world))
    await world.verifier.verify(sign(claims))
    fetches = world.keys.fetch_count
    with pytest.raises(InvalidToken):  # within the cooldown of the first fetch: no refetch
        await world.verifier.verify(sign(claims, key=foreign_key(), kid="forged-early"))
    assert world.keys.fetch_count == fetches
    world.clock.advance(60)
    for i in range(20):
        with pytest.raises(InvalidToken):
            await world.verifier.verify(sign(claims, key=foreign_key(), kid=f"forged-{i}"))
    assert world.keys.fetch_count == fetches + 1
    world.clock.advance(60)
    with pytest.raises(InvalidToken):
        await world.verifier.verify(sign(claims, key=foreign_key(), kid="forged-later"))
    assert world.keys.fetch_count == fetches + 2


async def test_an_unreachable_key_set_fails_closed(world: CognitoWorld, clock: FakeClock) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    verifier = CognitoTokenVerifier(
        JwksKeySet(HttpJwksFetcher(f"http://127.0.0.1:{closed_port}/jwks.json"), clock),
        issuer=cognito_issuer(REGION, world.pool.pool_id),
        client_id=world.pool.client_id,
        clock=clock,
    )
    with pytest.raises(ServiceUnavailable):
        await verifier.verify(await access_token(world))
