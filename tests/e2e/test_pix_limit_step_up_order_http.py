"""A step-up token is spent only by a change that is going to apply, and only once.

``PUT /v1/pix/automatic/limit`` and ``PUT /v1/pix/limits`` with an
``X-Step-Up-Token`` for ``pix_limit_raise``: a request the bank refuses
before changing anything (someone else's account: 404; a figure of zero or
less: 400) leaves the caller's token usable; the request that applies spends
it, and the same token replayed is refused (403 ``step_up_required``) with
nothing changed. On the memory profile and on PostgreSQL.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.e2e.test_pix_automatic_limit_http import (  # noqa: F401 (fixtures)
    LIMIT,
    client,
    clock,
    join,
    limit_of,
    open_account,
    settings,
    stepped_up,
)

PIX_LIMITS = "/v1/pix/limits"


async def test_a_refused_automatic_limit_change_leaves_the_token_usable_and_a_replay_is_refused(
    client: AsyncTestClient[Litestar],  # noqa: F811
) -> None:
    ana, bob = await join(client, "ana"), await join(client, "bob")
    anas = await open_account(client, ana, "Ana Souza")
    bobs = await open_account(client, bob, "Bob Lima")
    assert (
        await client.put(
            LIMIT, json={"account_id": anas, "daily_limit": "10.00"}, headers=ana.headers
        )
    ).status_code == 200
    assert (
        await client.put(
            LIMIT, json={"account_id": bobs, "daily_limit": "10.00"}, headers=bob.headers
        )
    ).status_code == 200
    token = await stepped_up(client, bob)

    # bob's token on ana's account, a raise and a removal: not found, nothing changes
    for daily in ("500.00", None):
        refused = await client.put(
            LIMIT, json={"account_id": anas, "daily_limit": daily}, headers=token
        )
        assert refused.status_code == 404, refused.text
    # a figure the core refuses, on his own account: nothing changes either
    refused = await client.put(
        LIMIT, json={"account_id": bobs, "daily_limit": "0.00"}, headers=token
    )
    assert refused.status_code == 400, refused.text
    assert await limit_of(client, ana, anas) == "10.00"
    assert await limit_of(client, bob, bobs) == "10.00"

    # the token was not spent by those: it raises bob's own limit, once
    raised = await client.put(
        LIMIT, json={"account_id": bobs, "daily_limit": "90.00"}, headers=token
    )
    assert (raised.status_code, raised.json()["daily_limit"]) == (200, "90.00"), raised.text
    replayed = await client.put(
        LIMIT, json={"account_id": bobs, "daily_limit": None}, headers=token
    )
    assert (replayed.status_code, replayed.json()["code"]) == (403, "step_up_required")
    assert await limit_of(client, bob, bobs) == "90.00"


def tier(day: str) -> dict[str, str]:
    return {
        "day_per_transaction": day,
        "day_per_period": day,
        "night_per_transaction": "100.00",
        "night_per_period": "100.00",
    }


async def test_a_refused_pix_limits_change_leaves_the_token_usable_and_a_replay_is_refused(
    client: AsyncTestClient[Litestar],  # noqa: F811
) -> None:
    ana, bob = await join(client, "ana"), await join(client, "bob")
    anas = await open_account(client, ana, "Ana Souza")
    bobs = await open_account(client, bob, "Bob Lima")
    for member, account in ((ana, anas), (bob, bobs)):
        lowered = await client.put(
            PIX_LIMITS,
            json={"account_id": account, "limits": tier("50.00")},
            headers=member.headers,
        )
        assert lowered.status_code == 200, lowered.text
    token = await stepped_up(client, bob)

    refused = await client.put(
        PIX_LIMITS, json={"account_id": anas, "limits": tier("900.00")}, headers=token
    )
    assert refused.status_code == 404, refused.text
    shown = await client.get(f"{PIX_LIMITS}?account_id={anas}", headers=ana.headers)
    assert shown.json()["pending_raise"] is None

    # the token was not spent on ana's account: bob's own raise goes through (pending), once
    raised = await client.put(
        PIX_LIMITS, json={"account_id": bobs, "limits": tier("900.00")}, headers=token
    )
    assert raised.status_code == 200, raised.text
    assert raised.json()["pending_raise"]["day_per_period"] == "900.00"
    replayed = await client.put(
        PIX_LIMITS, json={"account_id": bobs, "limits": tier("950.00")}, headers=token
    )
    assert (replayed.status_code, replayed.json()["code"]) == (403, "step_up_required")
    shown = await client.get(f"{PIX_LIMITS}?account_id={bobs}", headers=bob.headers)
    assert shown.json()["pending_raise"]["day_per_period"] == "900.00"
