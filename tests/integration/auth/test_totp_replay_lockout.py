"""A replayed (already spent) TOTP code is a failed attempt, and counts towards the lockout.

The decision (docs/auth.md, "A replayed code is a failure"): OWASP ASVS 4.0.3
2.8.4 / 5.0 6.5.x require a TOTP to be usable once within its validity; an
answer with a spent code is refused like a wrong one (``incorrect_code``),
and — as every refused authentication answer — it counts towards the
account lockout (ASVS 2.2.1 / NIST SP 800-63B 5.2.2: rate-limit *failed
attempts*). A replay is what a phishing relay or a shoulder-surfer sends;
not counting it would give them unmetered tries. A legitimate double
submission costs one failure, which the following successful login clears.
"""

from __future__ import annotations

import pytest

from finbank_core.auth import AnswerChallengeCommand, LoginCommand
from finbank_core.auth.errors import AccountLocked, IncorrectCode
from tests.integration.auth.harness import PASSWORD, POLICY, AuthWorld


async def test_replayed_valid_codes_lock_the_account_like_wrong_ones(world: AuthWorld) -> None:
    totp = await world.user_with_totp()
    code = world.code(totp)
    first = (await world.challenge()).challenge_id
    assert first is not None
    assert (
        await world.answer(AnswerChallengeCommand(challenge_id=first, answer=code))
    ).tokens is not None  # success clears the history
    for _ in range(POLICY.max_failures):
        replayed = (await world.challenge()).challenge_id
        assert replayed is not None
        with pytest.raises(IncorrectCode):
            await world.answer(AnswerChallengeCommand(challenge_id=replayed, answer=code))
    with pytest.raises(AccountLocked):
        await world.login(LoginCommand(username="maria", password=PASSWORD))


async def test_one_short_of_the_limit_the_owner_still_logs_in(world: AuthWorld) -> None:
    totp = await world.user_with_totp()
    code = world.code(totp)
    first = (await world.challenge()).challenge_id
    assert first is not None
    assert (
        await world.answer(AnswerChallengeCommand(challenge_id=first, answer=code))
    ).tokens is not None
    for _ in range(POLICY.max_failures - 1):
        replayed = (await world.challenge()).challenge_id
        assert replayed is not None
        with pytest.raises(IncorrectCode):
            await world.answer(AnswerChallengeCommand(challenge_id=replayed, answer=code))
    world.clock.advance(30)
    fresh = (await world.challenge()).challenge_id
    assert fresh is not None
    assert (
        await world.answer(AnswerChallengeCommand(challenge_id=fresh, answer=world.code(totp)))
    ).tokens is not None
