"""Tokens of the self-hosted provider: tampering, revocation on logout, refresh rotation.

Runs once with the in-memory stores and once with Redis (see conftest).
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import jwt
import pytest

from finbank_adapters.local_auth import LocalTokenVerifier
from finbank_core.auth import AuthenticateQuery, LoginCommand, LogoutCommand, RefreshCommand
from finbank_core.auth.errors import InvalidToken
from finbank_core.shared.errors import ServiceUnavailable
from tests.integration.auth.harness import PASSWORD, SECRET, AuthWorld


def claims_of(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return payload


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def resign(token: str, secret: bytes = SECRET, **changes: Any) -> str:
    return jwt.encode({**claims_of(token), **changes}, secret, algorithm="HS256")


async def test_an_untouched_access_token_is_accepted(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    assert (
        await world.authenticate(AuthenticateQuery(access_token=tokens.access_token))
    ).username == "maria"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(
            lambda t: f"{b64({'alg': 'none', 'typ': 'JWT'})}.{t.split('.')[1]}.", id="alg-none"
        ),
        pytest.param(lambda t: resign(t, iss="https://evil.example"), id="wrong-issuer"),
        pytest.param(lambda t: resign(t, aud="another-app"), id="wrong-audience"),
        pytest.param(lambda t: resign(t, secret=b"f" * 40), id="foreign-key"),
        pytest.param(lambda t: resign(t, token_use="refresh"), id="wrong-token-use"),
        pytest.param(lambda t: resign(t, sub="someone-else")[:-3] + "abc", id="bad-signature"),
        pytest.param(
            lambda t: t.split(".")[0] + "." + b64({"sub": "x"}) + "." + t.split(".")[2],
            id="payload-swapped",
        ),
    ],
)
async def test_a_tampered_access_token_is_refused(world: AuthWorld, tamper: Any) -> None:
    tokens = await world.user_without_mfa()
    with pytest.raises(InvalidToken):
        await world.authenticate(AuthenticateQuery(access_token=tamper(tokens.access_token)))


async def test_an_expired_access_token_is_refused(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    world.clock.advance(tokens.expires_in)
    with pytest.raises(InvalidToken):
        await world.authenticate(AuthenticateQuery(access_token=tokens.access_token))


async def test_a_refresh_token_is_not_an_access_token(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    assert tokens.refresh_token is not None
    with pytest.raises(InvalidToken):
        await world.authenticate(AuthenticateQuery(access_token=tokens.refresh_token))


async def test_after_logout_the_token_its_session_and_its_refresh_token_are_refused(
    world: AuthWorld,
) -> None:
    first = await world.user_without_mfa()
    assert first.refresh_token is not None
    sibling = await world.refresh(
        RefreshCommand(refresh_token=first.refresh_token)
    )  # same login session, new access token
    await world.logout(LogoutCommand(access_token=first.access_token))
    with pytest.raises(InvalidToken):
        await world.authenticate(AuthenticateQuery(access_token=first.access_token))
    with pytest.raises(InvalidToken):
        await world.authenticate(AuthenticateQuery(access_token=sibling.access_token))
    assert sibling.refresh_token is not None
    with pytest.raises(InvalidToken):
        await world.refresh(RefreshCommand(refresh_token=sibling.refresh_token))


async def test_a_logout_the_provider_failed_can_be_repeated_and_ends_the_session(
    world: AuthWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The token was denied before the provider's sign-out; when that failed, a repeat
    # was refused as a revoked token, so the refresh tokens were never revoked.
    tokens = await world.user_without_mfa()
    assert tokens.refresh_token is not None
    sign_out = world.provider.sign_out

    async def unreachable(access_token: str) -> None:
        raise ServiceUnavailable("identity provider")

    monkeypatch.setattr(world.provider, "sign_out", unreachable)
    with pytest.raises(ServiceUnavailable):
        await world.logout(LogoutCommand(access_token=tokens.access_token))
    with pytest.raises(InvalidToken):  # denied already, provider or not
        await world.authenticate(AuthenticateQuery(access_token=tokens.access_token))
    monkeypatch.setattr(world.provider, "sign_out", sign_out)
    await world.logout(LogoutCommand(access_token=tokens.access_token))
    # past the 24 h session deny, only the provider's sign-out keeps the refresh token
    # refused (its family lives 30 days)
    world.clock.advance(24 * 3600 + 60)
    with pytest.raises(InvalidToken):
        await world.refresh(RefreshCommand(refresh_token=tokens.refresh_token))
    # a token that fails verification still cannot log anyone out
    with pytest.raises(InvalidToken):
        await world.logout(LogoutCommand(access_token=resign(tokens.access_token, b"x" * 32)))


async def test_a_token_revoked_otherwise_cannot_log_out_the_logins_made_since(
    world: AuthWorld,
) -> None:
    # A logout may be repeated to finish its own sign-out; a token revoked another way
    # (here: a global sign-out from another device) was let through as well, and its
    # "logout" then signed the user out of a login made after it was revoked.
    stolen = await world.user_without_mfa()
    other = (await world.login(LoginCommand(username="maria", password=PASSWORD))).tokens
    assert other is not None
    await world.logout(LogoutCommand(access_token=other.access_token))  # global sign-out
    fresh = (await world.login(LoginCommand(username="maria", password=PASSWORD))).tokens
    assert fresh is not None
    assert fresh.refresh_token is not None
    with pytest.raises(InvalidToken):
        await world.logout(LogoutCommand(access_token=stolen.access_token))
    assert (
        await world.authenticate(AuthenticateQuery(access_token=fresh.access_token))
    ).username == "maria"
    assert (await world.refresh(RefreshCommand(refresh_token=fresh.refresh_token))).access_token


async def test_logouts_at_once_with_one_token_all_end_its_session_and_spare_later_logins(
    world: AuthWorld,
) -> None:
    # Concurrent repeats of one logout (a client retrying while the first is in flight):
    # each either finishes it or is refused as revoked, none fails otherwise, and the
    # session ends; a login made afterwards is untouched by any of them.
    tokens = await world.user_without_mfa()
    assert tokens.refresh_token is not None
    outcomes = await asyncio.gather(
        *(world.logout(LogoutCommand(access_token=tokens.access_token)) for _ in range(8)),
        return_exceptions=True,
    )
    assert all(o is None or isinstance(o, InvalidToken) for o in outcomes), outcomes
    assert any(o is None for o in outcomes), outcomes
    with pytest.raises(InvalidToken):
        await world.authenticate(AuthenticateQuery(access_token=tokens.access_token))
    with pytest.raises(InvalidToken):
        await world.refresh(RefreshCommand(refresh_token=tokens.refresh_token))
    with pytest.raises(InvalidToken):  # finished: a later repeat is refused
        await world.logout(LogoutCommand(access_token=tokens.access_token))
    fresh = (await world.login(LoginCommand(username="maria", password=PASSWORD))).tokens
    assert fresh is not None
    assert (
        await world.authenticate(AuthenticateQuery(access_token=fresh.access_token))
    ).username == "maria"


async def test_logout_leaves_other_users_tokens_alone(world: AuthWorld) -> None:
    maria = await world.user_without_mfa("maria")
    joao = await world.user_without_mfa("joao")
    await world.logout(LogoutCommand(access_token=maria.access_token))
    assert (
        await world.authenticate(AuthenticateQuery(access_token=joao.access_token))
    ).username == "joao"


async def test_refresh_tokens_rotate(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    assert tokens.refresh_token is not None
    renewed = await world.refresh(RefreshCommand(refresh_token=tokens.refresh_token))
    assert renewed.refresh_token not in (None, tokens.refresh_token)
    assert (
        await world.authenticate(AuthenticateQuery(access_token=renewed.access_token))
    ).username == "maria"


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(
    world: AuthWorld,
) -> None:
    tokens = await world.user_without_mfa()
    assert tokens.refresh_token is not None
    renewed = await world.refresh(RefreshCommand(refresh_token=tokens.refresh_token))
    with pytest.raises(InvalidToken):
        await world.refresh(RefreshCommand(refresh_token=tokens.refresh_token))  # the stolen copy
    assert renewed.refresh_token is not None
    with pytest.raises(InvalidToken):
        await world.refresh(
            RefreshCommand(refresh_token=renewed.refresh_token)
        )  # the legitimate one is dead too


async def test_rotation_does_not_extend_the_login_session(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    assert tokens.refresh_token is not None
    world.clock.advance(days=29)
    renewed = await world.refresh(RefreshCommand(refresh_token=tokens.refresh_token))
    world.clock.advance(days=1)
    assert renewed.refresh_token is not None
    with pytest.raises(InvalidToken):
        await world.refresh(RefreshCommand(refresh_token=renewed.refresh_token))


# -- the verifier's cache of verified tokens (LocalTokenVerifier) ---------------------------


async def test_a_remembered_token_is_still_refused_once_it_expires(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    query = AuthenticateQuery(access_token=tokens.access_token)
    assert (await world.authenticate(query)).username == "maria"  # verified, remembered
    assert (await world.authenticate(query)).username == "maria"  # from the cache
    world.clock.advance(tokens.expires_in - 1)
    assert (await world.authenticate(query)).username == "maria"
    world.clock.advance(1)
    with pytest.raises(InvalidToken):
        await world.authenticate(query)
    with pytest.raises(InvalidToken):  # and stays refused
        await world.authenticate(query)


async def test_a_remembered_token_is_still_refused_after_logout(world: AuthWorld) -> None:
    tokens = await world.user_without_mfa()
    query = AuthenticateQuery(access_token=tokens.access_token)
    await world.authenticate(query)
    await world.authenticate(query)
    await world.logout(LogoutCommand(access_token=tokens.access_token))
    with pytest.raises(InvalidToken):
        await world.authenticate(query)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), id="signature"),
        pytest.param(lambda t: resign(t, secret=b"f" * 40), id="foreign-key"),
        pytest.param(lambda t: resign(t, sub="someone-else")[:-3] + "abc", id="claims"),
    ],
)
async def test_a_variant_of_a_remembered_token_is_verified_in_full(
    world: AuthWorld, tamper: Any
) -> None:
    tokens = await world.user_without_mfa()
    await world.authenticate(AuthenticateQuery(access_token=tokens.access_token))
    with pytest.raises(InvalidToken):
        await world.authenticate(AuthenticateQuery(access_token=tamper(tokens.access_token)))
    assert (
        await world.authenticate(AuthenticateQuery(access_token=tokens.access_token))
    ).username == "maria"


async def test_the_verifier_remembers_a_bounded_number_of_tokens(world: AuthWorld) -> None:
    verifier = LocalTokenVerifier(world.issuer, cache_size=2)
    users = [await world.user_without_mfa(name) for name in ("ana", "bia", "caio")]
    for tokens in users:
        await verifier.verify(tokens.access_token)
        assert verifier.cached_tokens <= 2
    with pytest.raises(InvalidToken):
        await verifier.verify(users[0].refresh_token or "")  # refused: never remembered
    assert verifier.cached_tokens == 2
    for tokens, name in zip(users, ("ana", "bia", "caio"), strict=True):  # evicted: verified again
        assert (await verifier.verify(tokens.access_token)).username == name
