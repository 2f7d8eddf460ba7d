"""PostgreSQL round trips of one PIX payment on the local profile with PIX on PostgreSQL.

Two paths are counted, each after warming up (prepared statements, pooled
connections, the token cache), with every statement sent on any asyncpg
connection of this process (the counting wrapper of
:mod:`tests.integration.test_transfer_round_trips`), so a failure says what
was sent:

* the request: ``POST /v1/pix/payments`` to the sandbox peer's key (request
  claim, idempotency look-ups, payer account, DICT, limits, ledger
  reservation, record, outbox row);
* the settlement: the worker's handler for that payment's
  ``pix.payment_requested`` event, with its PostgreSQL inbox (inbox row,
  record, reservation status, ledger post, record update, outcome outbox row).

Upper bounds, not exact counts, so a cheaper path stays green; each bound is
below what the path cost before: the limit reservation is one call
(``pix_reserve_usage`` of migration ``0021``, ``pix_reserve_scoped_usage`` since
``0033``) rather than a transaction of four round trips, and a ledger step
writes first and looks its id up only when the ledger does not answer OK.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest

from finbank_adapters.containers import build_container, resolve
from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_adapters.settings import Settings
from finbank_core.accounts.events import make_event
from finbank_core.pix.events import PAYMENT_REQUESTED
from finbank_http import create_app
from tests.integration.test_transfer_round_trips import StatementLog, statements
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

pytestmark = pytest.mark.services

__all__ = ["statements"]  # the counting fixture, used here

#: at most this many statements for a new payment's request: 14 when the limit
#: reservation was a transaction of four round trips, 11 with pix_reserve_usage, 10
#: with the record and its event in one statement, 8 with the idempotency look-ups
#: and the request claim in one (pix_claim_request), 7 with the claim released by the
#: record's own statement
REQUEST_BOUND = 7
#: at most this many for its settlement by the worker: 9 when each ledger step looked
#: its id up before writing, 8 with the outcome event in a statement of its own, 7 now
#: (inbox BEGIN and row, record, reservation status, post, record update with its
#: outcome event, COMMIT)
SETTLEMENT_BOUND = 7


async def pay(api: httpx.AsyncClient, headers: dict[str, str], account: str, key: str) -> Any:
    return await api.post(
        "/v1/pix/payments",
        json={"account_id": account, "key": PEER_KEY_EMAIL, "amount": "1.00"},
        headers={**headers, "Idempotency-Key": key},
    )


async def test_a_pix_payment_request_and_its_settlement_are_bounded_in_round_trips(
    statements: StatementLog,
) -> None:
    require_postgres()
    async with isolated_schema() as (_, schema), open_test_redis() as (_redis, prefix):
        settings = Settings.from_env(
            {
                "FINBANK_PROFILE": "local",
                "FINBANK_PIX_BACKEND": "postgres",
                "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
                "FINBANK_REDIS_KEY_PREFIX": prefix,
                "FINBANK_JWT_SECRET": secrets.token_hex(32),
                "FINBANK_SANDBOX": "true",
            }
        )
        container = build_container(settings)
        app = create_app(container)
        async with app.lifespan():
            transport = httpx.ASGITransport(app=cast(Any, app))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
                await request_and_settlement(api, container, statements)


async def request_and_settlement(
    api: httpx.AsyncClient, container: Any, statements: StatementLog
) -> None:
    body = {"username": f"rt-{secrets.token_hex(4)}", "password": secrets.token_hex(8)}
    assert (await api.post("/v1/auth/signup", json=body)).status_code == 201
    login = await api.post("/v1/auth/login", json=body)
    headers = {"Authorization": f"Bearer {login.json()['tokens']['access_token']}"}
    opened = await api.post("/v1/accounts", json={"holder_name": "Ana"}, headers=headers)
    account = opened.json()["id"]
    deposit = {"account_id": account, "amount": "100.00"}
    assert (
        await api.post("/v1/sandbox/deposits", json=deposit, headers=headers)
    ).status_code == 201
    # the use cases of both paths are built once per container, not per request
    assert await resolve(container.pix.send_pix()) is await resolve(container.pix.send_pix())
    settle_pix = await resolve(container.pix.settle_pix_payment())
    assert settle_pix is await resolve(container.pix.settle_pix_payment())
    inbox = await resolve(container.events.inbox(consumer="round-trips"))
    handler = await resolve(container.workers.pix_settlement_handler(inbox=inbox))

    async def settle(e2e: str) -> None:
        event = make_event(
            event_id=uuid.uuid4(),
            type=PAYMENT_REQUESTED,
            occurred_at=datetime.now(UTC),
            aggregate_id=e2e,
            payload={"end_to_end_id": e2e},
        )
        await handler(event)

    for n in range(3):  # warm both paths
        warm = await pay(api, headers, account, f"warm-{n}")
        assert warm.status_code == 201, warm.text
        await settle(warm.json()["end_to_end_id"])

    statements.recording = True
    paid = await pay(api, headers, account, "rent")
    sent_by_request = statements.take()
    assert paid.status_code == 201, paid.text
    e2e = paid.json()["end_to_end_id"]
    await settle(e2e)
    sent_by_settlement = statements.take()
    statements.recording = False

    assert len(sent_by_request) <= REQUEST_BOUND, (len(sent_by_request), sent_by_request)
    assert any("pix_payments" in s for s in sent_by_request), sent_by_request
    assert len(sent_by_settlement) <= SETTLEMENT_BOUND, (
        len(sent_by_settlement),
        sent_by_settlement,
    )
    assert handler.outcomes[e2e] == "SETTLED"
    settled = await api.get(f"/v1/pix/payments/{e2e}", headers=headers)
    assert settled.json()["status"] == "SETTLED"
    balance = await api.get(f"/v1/accounts/{account}", headers=headers)
    assert balance.json()["balance"]["posted"] == "96.00"  # four payments of 1.00
