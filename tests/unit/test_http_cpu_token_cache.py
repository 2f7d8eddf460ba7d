"""A remembered access token is accepted exactly while a fresh verification would accept
it (``LocalTokenVerifier`` compares the principal's ``expires_at`` with the clock; the
full check compares whole seconds), including between whole seconds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from finbank_adapters.local_auth.tokens import LocalTokenIssuer, LocalTokenVerifier
from finbank_adapters.memory.clock import FakeClock
from finbank_core.auth.errors import InvalidToken

START = datetime(2026, 3, 1, 9, 30, 15, 250_000, tzinfo=UTC)  # a fraction of a second in


async def accepted(verifier: LocalTokenVerifier, token: str) -> bool:
    try:
        await verifier.verify(token)
    except InvalidToken:
        return False
    return True


@pytest.mark.parametrize(
    "seconds_later",
    [0.0, 59.0, 59.7, 59.75, 59.999_999, 60.0, 60.2, 60.75, 61.0],
)
async def test_a_remembered_token_expires_when_a_fresh_check_says_so(
    seconds_later: float,
) -> None:
    clock = FakeClock(START)
    issuer = LocalTokenIssuer(
        secret=b"s" * 32, issuer="finbank-test", audience="finbank", clock=clock
    )
    token = issuer.sign("access", "user-1", 60, username="u", sid="session-1")
    remembering = LocalTokenVerifier(issuer)
    assert await accepted(remembering, token)  # verified in full, remembered
    assert remembering.cached_tokens == 1
    clock.advance(seconds_later)
    fresh = LocalTokenVerifier(issuer, cache_size=0)
    assert await accepted(remembering, token) == await accepted(fresh, token)
