"""Issue 15 as its reviewer checks it: MED, precautionary blocks and key claims over HTTP.

What the other e2e files do not already hold: many callers at once on the same key
claim, the same MED case's returns and the same payment's contestation, on the memory
profile and on the local profile (two app replicas sharing PostgreSQL, Redis and a
``FakeClock``), with the final state checked (the key on one account, money conserved,
each step once in the outbox); and the deadlines at their instant and just after, with
a different caller (the payee, the payer, the back office) the first to notice each.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from dependency_injector import providers

from finbank import Bank as Bank_
from finbank import open_bank
from finbank_adapters.containers import BankContainer, build_container, resolve
from finbank_adapters.memory import FakeClock
from finbank_adapters.sandbox import PEER_ACCOUNT_NUMBER, PEER_KEY_EMAIL
from finbank_adapters.settings import JwtOptions, Settings
from finbank_core.accounts import OpenAccountCommand
from finbank_core.auth.users import UserStore
from finbank_core.pix.claims import (
    CancelReason,
    ClaimParty,
    ClaimStatus,
    ClaimType,
    KeyClaimError,
    KeyClaimPeriodEnded,
)
from finbank_core.pix.claims.use_cases import (
    CancelKeyClaimCommand,
    CompleteKeyClaimCommand,
    GetKeyClaimQuery,
    OpenKeyClaimCommand,
)
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.med import events as med_events
from finbank_core.pix.use_cases import ListPixKeysQuery, RegisterPixKeyCommand
from finbank_http import create_app
from finbank_http.routes.pix_med import ANALYST_ROLE
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

#: 12:00 in São Paulo
START = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)
CALLERS = 12
BACK_OFFICE = "/v1/backoffice/pix"
EMAIL = "disputed.key@example.com"
CARLA_CPF = "52998224725"  # the sandbox peer's account holder


@dataclass
class Bank:
    """App replicas on one clock sharing their stores; call ``i`` goes to replica ``i % n``."""

    replicas: list[tuple[httpx.AsyncClient, BankContainer]]
    clock: FakeClock
    pool: asyncpg.Pool | None
    passwords: dict[str, str] = field(default_factory=dict)

    def at(self, i: int) -> httpx.AsyncClient:
        return self.replicas[i % len(self.replicas)][0]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.replicas[0][0]

    async def log_in(self, name: str, *, role: str | None = None) -> dict[str, str]:
        """``name``'s headers (signed up on first use); tokens are on the fake clock."""
        if name not in self.passwords:
            self.passwords[name] = f"pw-{secrets.token_hex(8)}"
            body = {"username": name, "password": self.passwords[name]}
            created = await self.client.post("/v1/auth/signup", json=body)
            assert created.status_code == 201, created.text
            if role is not None:
                store: UserStore = await resolve(self.replicas[0][1].auth.user_store())
                record = await store.get_by_username(name)
                assert record is not None
                await store.update(msgspec.structs.replace(record, roles=(role,)))
        body = {"username": name, "password": self.passwords[name]}
        logged = await self.client.post("/v1/auth/login", json=body)
        assert logged.status_code == 200, logged.text
        return {"Authorization": f"Bearer {logged.json()['tokens']['access_token']}"}

    async def account(self, headers: dict[str, str], deposit: str | None = None) -> str:
        opened = await self.client.post(
            "/v1/accounts", json={"holder_name": "Holder"}, headers=headers
        )
        assert opened.status_code == 201, opened.text
        account_id: str = opened.json()["id"]
        if deposit is not None:
            body = {"account_id": account_id, "amount": deposit}
            paid = await self.client.post("/v1/sandbox/deposits", json=body, headers=headers)
            assert paid.status_code == 201, paid.text
        return account_id

    async def available(self, headers: dict[str, str], account_id: str) -> Decimal:
        got = await self.client.get(f"/v1/accounts/{account_id}", headers=headers)
        assert got.status_code == 200, got.text
        return Decimal(got.json()["balance"]["available"])

    async def pay(
        self, payer: dict[str, str], source: str, payee: dict[str, str], target: str, amount: str
    ) -> str:
        key = await self.client.post(
            "/v1/pix/keys", json={"account_id": target, "key_type": "EVP"}, headers=payee
        )
        assert key.status_code == 201, key.text
        paid = await self.client.post(
            "/v1/pix/payments",
            json={"account_id": source, "key": key.json()["key"], "amount": amount},
            headers={**payer, "Idempotency-Key": secrets.token_hex(8)},
        )
        assert paid.status_code == 201, paid.text
        assert paid.json()["status"] == "SETTLED"
        e2e: str = paid.json()["end_to_end_id"]
        return e2e

    async def outbox(self, aggregate_id: str, prefix: str) -> dict[str, int]:
        """Events of ``aggregate_id`` whose type starts with ``prefix``, counted (local only)."""
        assert self.pool is not None
        rows = await self.pool.fetch(
            "SELECT type, count(*) AS n FROM outbox WHERE aggregate_id = $1 AND type LIKE $2"
            " GROUP BY type",
            aggregate_id,
            f"{prefix}%",
        )
        return {r["type"]: r["n"] for r in rows}


@asynccontextmanager
async def open_bank_over_http(profile: str) -> AsyncIterator[Bank]:
    clock = FakeClock(START)
    async with AsyncExitStack() as stack:
        if profile == "memory":
            settings = Settings(jwt=JwtOptions(secret=secrets.token_hex(32)))
            yield Bank([await replica(stack, settings, clock)], clock, None)
            return
        require_postgres()
        pool, schema = await stack.enter_async_context(isolated_schema())
        _redis, prefix = await stack.enter_async_context(open_test_redis())
        settings = Settings.from_env(
            {
                "FINBANK_PROFILE": "local",
                "FINBANK_PIX_BACKEND": "postgres",
                "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
                "FINBANK_REDIS_KEY_PREFIX": prefix,
                "FINBANK_JWT_SECRET": secrets.token_hex(32),
                "FINBANK_SANDBOX": "true",
                "FINBANK_POSTGRES_POOL_MAX": str(CALLERS),
            }
        )
        yield Bank([await replica(stack, settings, clock) for _ in range(2)], clock, pool)


async def replica(
    stack: AsyncExitStack, settings: Settings, clock: FakeClock
) -> tuple[httpx.AsyncClient, BankContainer]:
    """An app whose requests run on this event loop, side by side with the others'."""
    container = build_container(settings)
    container.infra.clock.override(providers.Object(clock))
    app = create_app(container)
    await stack.enter_async_context(app.lifespan())
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar's ASGI types
    client = httpx.AsyncClient(transport=transport, base_url="http://finbank.test")
    return await stack.enter_async_context(client), container


@pytest.fixture(params=["memory", pytest.param("local", marks=pytest.mark.services)])
def profile(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


Check = Callable[[Bank], Awaitable[None]]


def over_http(check: Check) -> Callable[[str], Awaitable[None]]:
    """A test running ``check`` on a bank of ``profile``, opened and closed in the test's task
    (the apps' lifespans are entered and left in one task)."""

    async def test(profile: str) -> None:
        async with open_bank_over_http(profile) as bank:
            await check(bank)

    test.__doc__ = check.__doc__
    return test


def statuses(responses: list[httpx.Response]) -> list[int]:
    return sorted(r.status_code for r in responses)


# --- key claims ---------------------------------------------------------------------------


async def check_many_claims_on_one_key_at_once_leave_it_on_one_account(bank: Bank) -> None:
    alice = await bank.log_in("alice")
    alice_account = await bank.account(alice)
    body = {"account_id": alice_account, "key_type": "EMAIL", "key": EMAIL}
    registered = await bank.client.post("/v1/pix/keys", json=body, headers=alice)
    assert registered.status_code == 201, registered.text
    claimers = [await bank.log_in(f"claimer-{i}") for i in range(CALLERS)]
    accounts = [await bank.account(h) for h in claimers]

    opened = await asyncio.gather(
        *(
            bank.at(i).post(
                "/v1/pix/claims",
                json={
                    "account_id": accounts[i],
                    "claim_type": "OWNERSHIP",
                    "key_type": "EMAIL",
                    "key": EMAIL,
                },
                headers=claimers[i],
            )
            for i in range(CALLERS)
        )
    )
    assert statuses(opened) == [201] + [409] * (CALLERS - 1), [r.text for r in opened]
    [winner] = [i for i, r in enumerate(opened) if r.status_code == 201]
    assert {r.json()["code"] for r in opened if r.status_code == 409} == {
        "pix_key_claim_already_open"
    }
    claim_id = opened[winner].json()["id"]
    path = f"/v1/pix/claims/{claim_id}"

    confirmed = await asyncio.gather(
        *(bank.at(i).post(f"{path}/confirm", headers=alice) for i in range(CALLERS))
    )
    assert statuses(confirmed) == [200] * CALLERS, [r.text for r in confirmed]
    assert {r.json()["status"] for r in confirmed} == {"CONFIRMED"}
    completed = await asyncio.gather(
        *(bank.at(i).post(f"{path}/complete", headers=claimers[winner]) for i in range(CALLERS))
    )
    assert statuses(completed) == [200] * CALLERS, [r.text for r in completed]
    assert {r.json()["status"] for r in completed} == {"COMPLETED"}

    assert (await bank.client.get("/v1/pix/keys", headers=alice)).json() == []
    [key] = (await bank.client.get("/v1/pix/keys", headers=claimers[winner])).json()
    assert (key["key"], key["account_id"]) == (EMAIL, accounts[winner])
    for i, headers in enumerate(claimers):
        if i != winner:
            assert (await bank.client.get("/v1/pix/keys", headers=headers)).json() == []
    if bank.pool is not None:
        assert await bank.outbox(claim_id, "pix.key_claim") == {
            "pix.key_claim_opened": 1,
            "pix.key_claim_waiting_resolution": 1,
            "pix.key_claim_confirmed": 1,
            "pix.key_claim_completed": 1,
        }


async def check_a_portability_claim_silence_lapses_it_at_the_resolution_end(bank: Bank) -> None:
    """The claimer is the first to look after the end; the donor is refused after it."""
    doc = "52998224725"
    alice = await bank.log_in("alice")
    opened = await bank.client.post(
        "/v1/accounts", json={"holder_name": "Alice", "holder_document": doc}, headers=alice
    )
    assert opened.status_code == 201, opened.text
    first = opened.json()["id"]
    second_opened = await bank.client.post(
        "/v1/accounts", json={"holder_name": "Alice", "holder_document": doc}, headers=alice
    )
    second = second_opened.json()["id"]
    body = {"account_id": first, "key_type": "EMAIL", "key": EMAIL}
    assert (await bank.client.post("/v1/pix/keys", json=body, headers=alice)).status_code == 201
    claim = await bank.client.post(
        "/v1/pix/claims",
        json={"account_id": second, "claim_type": "PORTABILITY", "key_type": "EMAIL", "key": EMAIL},
        headers=alice,
    )
    assert claim.status_code == 201, claim.text
    assert claim.json()["status"] == "WAITING_RESOLUTION"
    path = f"/v1/pix/claims/{claim.json()['id']}"
    bank.clock.set(datetime.fromisoformat(claim.json()["resolution_ends_at"]))
    alice = await bank.log_in("alice")
    seen = await bank.client.get(path, headers=alice)
    assert seen.json()["status"] == "CANCELLED", seen.text
    [key] = (await bank.client.get("/v1/pix/keys", headers=alice)).json()
    assert key["account_id"] == first


async def check_a_confirmed_claim_not_completed_ends_at_the_completion_end(bank: Bank) -> None:
    alice = await bank.log_in("alice")
    alice_account = await bank.account(alice)
    body = {"account_id": alice_account, "key_type": "EMAIL", "key": EMAIL}
    assert (await bank.client.post("/v1/pix/keys", json=body, headers=alice)).status_code == 201
    bob = await bank.log_in("bob")
    bob_account = await bank.account(bob)
    claim = await bank.client.post(
        "/v1/pix/claims",
        json={
            "account_id": bob_account,
            "claim_type": "OWNERSHIP",
            "key_type": "EMAIL",
            "key": EMAIL,
        },
        headers=bob,
    )
    assert claim.status_code == 201, claim.text
    path = f"/v1/pix/claims/{claim.json()['id']}"
    confirmed = await bank.client.post(f"{path}/confirm", headers=alice)
    assert confirmed.status_code == 200, confirmed.text
    end = datetime.fromisoformat(confirmed.json()["completion_ends_at"])

    bank.clock.set(end - timedelta(microseconds=1))
    still = await bank.client.get(path, headers=await bank.log_in("alice"))  # donor reads first
    assert still.json()["status"] == "CONFIRMED", still.text
    bank.clock.set(end)
    bob = await bank.log_in("bob")
    late = await bank.client.post(f"{path}/complete", headers=bob)
    assert late.status_code == 422, late.text
    assert late.json()["code"] == "pix_key_claim_period_ended"
    seen = await bank.client.get(path, headers=bob)
    assert seen.json()["status"] == "CANCELLED"
    [key] = (await bank.client.get("/v1/pix/keys", headers=await bank.log_in("alice"))).json()
    assert key["account_id"] == alice_account
    assert (await bank.client.get("/v1/pix/keys", headers=bob)).json() == []


async def check_the_donor_confirming_and_cancelling_at_once_gets_one_outcome(bank: Bank) -> None:
    alice = await bank.log_in("alice")
    alice_account = await bank.account(alice)
    body = {"account_id": alice_account, "key_type": "EMAIL", "key": EMAIL}
    assert (await bank.client.post("/v1/pix/keys", json=body, headers=alice)).status_code == 201
    bob = await bank.log_in("bob")
    bob_account = await bank.account(bob)
    claim = await bank.client.post(
        "/v1/pix/claims",
        json={
            "account_id": bob_account,
            "claim_type": "OWNERSHIP",
            "key_type": "EMAIL",
            "key": EMAIL,
        },
        headers=bob,
    )
    assert claim.status_code == 201, claim.text
    path = f"/v1/pix/claims/{claim.json()['id']}"
    steps = await asyncio.gather(
        *(
            bank.at(i).post(f"{path}/confirm", headers=alice)
            if i % 2
            else bank.at(i).post(f"{path}/cancel", json={}, headers=alice)
            for i in range(CALLERS)
        )
    )
    final = (await bank.client.get(path, headers=alice)).json()["status"]
    assert final in ("CONFIRMED", "CANCELLED")
    for i, step in enumerate(steps):
        mine = "CONFIRMED" if i % 2 else "CANCELLED"
        if mine == final:
            assert step.status_code == 200, step.text
        else:
            assert step.status_code in (409, 422), step.text
    completed = await bank.client.post(f"{path}/complete", headers=bob)
    holder = bob if final == "CONFIRMED" else alice
    assert completed.status_code == (200 if final == "CONFIRMED" else 409), completed.text
    [key] = (await bank.client.get("/v1/pix/keys", headers=holder)).json()
    assert key["key"] == EMAIL
    other = alice if holder is bob else bob
    assert (await bank.client.get("/v1/pix/keys", headers=other)).json() == []


# --- MED -------------------------------------------------------------------------------------


async def _fraud(bank: Bank, amount: str = "300.00") -> tuple[dict[str, str], str, str, str]:
    """Victim pays a mule here: (victim headers, victim account, mule account, e2e)."""
    victim = await bank.log_in("victim")
    source = await bank.account(victim, deposit="500.00")
    mule = await bank.log_in("mule")
    target = await bank.account(mule)
    e2e = await bank.pay(victim, source, mule, target, amount)
    return victim, source, target, e2e


async def check_concurrent_contestations_of_one_payment_open_one_case(bank: Bank) -> None:
    victim, _source, _target, e2e = await _fraud(bank)
    answers = await asyncio.gather(
        *(
            bank.at(i).post(
                f"/v1/pix/payments/{e2e}/contestations", json={"situation": "SCAM"}, headers=victim
            )
            for i in range(CALLERS)
        )
    )
    # the same customer contesting again is a replay: answered like the first, one case
    assert statuses(answers) == [201] * CALLERS, [r.text for r in answers]
    assert len({r.json()["report_id"] for r in answers}) == 1
    med = await bank.client.get(f"/v1/pix/payments/{e2e}/med", headers=victim)
    assert med.json()["case"]["status"] == "OPEN"
    if bank.pool is not None:
        assert await bank.outbox(e2e, "pix.med.") == {med_events.REPORT_OPENED: 1}


async def check_concurrent_refund_requests_return_the_money_once(bank: Bank) -> None:
    victim, source, target, e2e = await _fraud(bank)
    analyst = await bank.log_in("analyst", role=ANALYST_ROLE)
    contested = await bank.client.post(
        f"/v1/pix/payments/{e2e}/contestations", json={"situation": "SCAM"}, headers=victim
    )
    assert contested.status_code == 201, contested.text
    agreed = await asyncio.gather(
        *(
            bank.at(i).post(
                f"{BACK_OFFICE}/payments/{e2e}/med/analysis",
                json={"decision": "AGREED"},
                headers=analyst,
            )
            for i in range(CALLERS)
        )
    )
    assert statuses(agreed) == [200] * CALLERS, [r.text for r in agreed]

    requests = await asyncio.gather(
        *(
            bank.at(i).post(
                f"{BACK_OFFICE}/payments/{e2e}/med/refund-request",
                json={"requested_by": "analyst"},
                headers=analyst,
            )
            for i in range(CALLERS)
        )
    )
    assert {r.status_code for r in requests} <= {200, 409}, [r.text for r in requests]
    assert any(r.status_code == 200 for r in requests)
    # whoever is left in progress is finished by the back office's retry
    finish = await bank.client.post(f"{BACK_OFFICE}/payments/{e2e}/med/returns", headers=analyst)
    assert finish.status_code == 200, finish.text
    assert finish.json()["case"]["status"] == "CLOSED"
    assert await bank.available(victim, source) == Decimal("500.00")
    mule = await bank.log_in("mule")
    assert await bank.available(mule, target) == Decimal("0.00")
    seen = (await bank.client.get(f"/v1/pix/payments/{e2e}", headers=victim)).json()
    assert [r["amount"] for r in seen["refunds"]] == ["300.00"]
    assert seen["med"]["case"]["returned_amount"] == "300.00"
    if bank.pool is not None:
        assert await bank.outbox(e2e, "pix.med.") == {
            med_events.REPORT_OPENED: 1,
            med_events.REPORT_ANALYSED: 1,
            med_events.FUNDS_BLOCKED: 1,
            med_events.REFUND_REQUESTED: 1,
            med_events.RETURN_COMPLETED: 1,
        }


async def check_a_partial_return_then_never_more_than_remains(bank: Bank) -> None:
    victim, source, target, e2e = await _fraud(bank)
    analyst = await bank.log_in("analyst", role=ANALYST_ROLE)
    await bank.client.post(
        f"/v1/pix/payments/{e2e}/contestations", json={"situation": "SCAM"}, headers=victim
    )
    agreed = await bank.client.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/analysis", json={"decision": "AGREED"}, headers=analyst
    )
    assert agreed.status_code == 200, agreed.text
    too_much = await bank.client.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/refund-request",
        json={"requested_by": "analyst", "amount": "300.01"},
        headers=analyst,
    )
    assert too_much.status_code == 422, too_much.text
    assert (too_much.json()["code"], too_much.json()["field"]) == ("med_not_allowed", "amount")
    assert await bank.available(victim, source) == Decimal("200.00")  # nothing half-written

    partial = await bank.client.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/refund-request",
        json={"requested_by": "analyst", "amount": "120.00"},
        headers=analyst,
    )
    assert partial.status_code == 200, partial.text
    assert partial.json()["case"]["returned_amount"] == "120.00"
    assert await bank.available(victim, source) == Decimal("320.00")
    mule = await bank.log_in("mule")
    # posting less than the hold releases the rest to the mule
    assert await bank.available(mule, target) == Decimal("180.00")
    again = await bank.client.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/refund-request",
        json={"requested_by": "analyst", "amount": "200.00"},
        headers=analyst,
    )
    # the case closed with its partial return: another amount is refused, naming it
    assert again.status_code == 409, again.text
    assert (again.json()["code"], again.json()["field"]) == (
        "med_refund_already_requested",
        "amount",
    )
    same = await bank.client.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/refund-request",
        json={"requested_by": "analyst", "amount": "120.00"},
        headers=analyst,
    )
    # the amount first asked is answered like the first
    assert same.status_code == 200, same.text
    assert (same.json()["case"]["status"], same.json()["case"]["returned_amount"]) == (
        "CLOSED",
        "120.00",
    )
    assert await bank.available(victim, source) == Decimal("320.00")
    seen = (await bank.client.get(f"/v1/pix/payments/{e2e}", headers=victim)).json()
    assert [r["amount"] for r in seen["refunds"]] == ["120.00"]
    assert await bank.available(victim, source) + await bank.available(mule, target) == Decimal(
        "500.00"
    )


async def check_the_refund_request_deadline_lapses_the_case_for_its_first_reader(
    bank: Bank,
) -> None:
    victim, source, target, e2e = await _fraud(bank)
    analyst = await bank.log_in("analyst", role=ANALYST_ROLE)
    await bank.client.post(
        f"/v1/pix/payments/{e2e}/contestations", json={"situation": "SCAM"}, headers=victim
    )
    agreed = await bank.client.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/analysis", json={"decision": "AGREED"}, headers=analyst
    )
    assert agreed.status_code == 200, agreed.text
    deadline = datetime.fromisoformat(agreed.json()["case"]["refund_deadline"])
    bank.clock.set(deadline)  # exactly at: still in time, and not lapsed for a reader
    mule = await bank.log_in("mule")
    at = await bank.client.get(f"/v1/pix/payments/{e2e}/med", headers=mule)
    assert at.json()["case"]["status"] == "AGREED", at.text
    assert await bank.available(mule, target) == Decimal("0.00")

    bank.clock.set(deadline + timedelta(microseconds=1))
    first = await bank.client.get(f"/v1/pix/payments/{e2e}/med", headers=mule)  # payee first
    assert first.json()["case"]["status"] == "LAPSED", first.text
    assert await bank.available(mule, target) == Decimal("300.00")
    analyst = await bank.log_in("analyst")
    late = await bank.client.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/refund-request",
        json={"requested_by": "analyst"},
        headers=analyst,
    )
    assert late.status_code == 422, late.text
    assert late.json()["code"] == "med_deadline_passed"
    assert late.json()["deadline"] == "refund_request"
    assert await bank.available(await bank.log_in("victim"), source) == Decimal("200.00")


async def check_the_report_window_ends_80_days_after_the_payment(bank: Bank) -> None:
    victim, _source, _target, e2e = await _fraud(bank)
    second = await bank.pay(
        victim, _source, await bank.log_in("mule"), _target, "10.00"
    )  # same instant
    bank.clock.set(START + timedelta(days=80))
    victim = await bank.log_in("victim")
    at = await bank.client.post(
        f"/v1/pix/payments/{e2e}/contestations", json={"situation": "SCAM"}, headers=victim
    )
    assert at.status_code == 201, at.text
    bank.clock.set(START + timedelta(days=80, microseconds=1))
    after = await bank.client.post(
        f"/v1/pix/payments/{second}/contestations", json={"situation": "SCAM"}, headers=victim
    )
    assert after.status_code == 422, after.text
    assert after.json()["code"] == "med_deadline_passed"
    assert after.json()["deadline"] == "report_window"
    med = await bank.client.get(f"/v1/pix/payments/{second}/med", headers=victim)
    assert med.status_code in (200, 404)
    if med.status_code == 200:
        assert med.json()["case"] is None


async def check_a_precautionary_block_kept_for_med_survives_its_72_hours(bank: Bank) -> None:
    victim, source, target, e2e = await _fraud(bank)
    analyst = await bank.log_in("analyst", role=ANALYST_ROLE)
    placed = await bank.client.post(
        f"{BACK_OFFICE}/payments/{e2e}/precautionary-block", json={}, headers=analyst
    )
    assert placed.status_code == 201, placed.text
    mule = await bank.log_in("mule")
    assert await bank.available(mule, target) == Decimal("0.00")
    contested = await bank.client.post(
        f"/v1/pix/payments/{e2e}/contestations", json={"situation": "SCAM"}, headers=victim
    )
    assert contested.status_code == 201, contested.text
    agreed = await bank.client.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/analysis", json={"decision": "AGREED"}, headers=analyst
    )
    assert agreed.status_code == 200, agreed.text
    bank.clock.set(START + timedelta(hours=72))  # the block's end; the request's last instant
    mule = await bank.log_in("mule")
    assert await bank.available(mule, target) == Decimal("0.00")  # kept for MED
    seen = await bank.client.get(f"/v1/pix/payments/{e2e}/med", headers=mule)
    assert seen.json()["block"]["status"] != "RELEASED", seen.text
    analyst = await bank.log_in("analyst")
    returned = await bank.client.post(
        f"{BACK_OFFICE}/payments/{e2e}/med/refund-request",
        json={"requested_by": "analyst"},
        headers=analyst,
    )
    assert returned.status_code == 200, returned.text
    victim = await bank.log_in("victim")
    assert await bank.available(victim, source) == Decimal("500.00")
    assert await bank.available(mule, target) == Decimal("0.00")


async def check_a_precautionary_block_released_at_72_hours_by_its_first_reader(bank: Bank) -> None:
    _victim, _source, target, e2e = await _fraud(bank)
    analyst = await bank.log_in("analyst", role=ANALYST_ROLE)
    placed = await bank.client.post(
        f"{BACK_OFFICE}/payments/{e2e}/precautionary-block", json={}, headers=analyst
    )
    assert placed.status_code == 201, placed.text
    expires = datetime.fromisoformat(placed.json()["expires_at"])
    assert expires == START + timedelta(hours=72)
    bank.clock.set(expires - timedelta(microseconds=1))
    mule = await bank.log_in("mule")
    before = await bank.client.get(f"/v1/pix/payments/{e2e}", headers=mule)
    assert before.json()["med"]["block"]["status"] == "ACTIVE", before.text
    assert await bank.available(mule, target) == Decimal("0.00")
    bank.clock.set(expires)
    readers = await asyncio.gather(
        *(bank.at(i).get(f"/v1/pix/payments/{e2e}/med", headers=mule) for i in range(CALLERS))
    )
    assert {r.json()["block"]["status"] for r in readers} == {"RELEASED"}
    assert await bank.available(mule, target) == Decimal("300.00")
    if bank.pool is not None:
        events = await bank.outbox(e2e, "pix.med.block")
        assert events == {med_events.BLOCK_PLACED: 1, med_events.BLOCK_RELEASED: 1}


async def check_the_analysis_is_in_time_at_7_days_and_refused_after(bank: Bank) -> None:
    victim = await bank.log_in("victim")
    source = await bank.account(victim, deposit="100.00")
    mule = await bank.log_in("mule")
    target = await bank.account(mule)
    first = await bank.pay(victim, source, mule, target, "30.00")
    second = await bank.pay(victim, source, mule, target, "20.00")
    for e2e in (first, second):
        contested = await bank.client.post(
            f"/v1/pix/payments/{e2e}/contestations", json={"situation": "SCAM"}, headers=victim
        )
        assert contested.status_code == 201, contested.text
    deadline = datetime.fromisoformat(contested.json()["analysis_deadline"])
    assert deadline == START + timedelta(days=7)
    await bank.log_in("analyst", role=ANALYST_ROLE)
    bank.clock.set(deadline)
    analyst = await bank.log_in("analyst")
    at = await bank.client.post(
        f"{BACK_OFFICE}/payments/{first}/med/analysis",
        json={"decision": "AGREED"},
        headers=analyst,
    )
    assert at.status_code == 200, at.text
    bank.clock.set(deadline + timedelta(microseconds=1))
    after = await bank.client.post(
        f"{BACK_OFFICE}/payments/{second}/med/analysis",
        json={"decision": "AGREED"},
        headers=analyst,
    )
    assert after.status_code == 422, after.text
    assert (after.json()["code"], after.json()["deadline"]) == ("med_deadline_passed", "analysis")
    mule = await bank.log_in("mule")
    assert await bank.available(mule, target) == Decimal("20.00")  # only the first is held


async def check_a_block_is_placed_only_within_72_hours_of_the_payment(bank: Bank) -> None:
    _victim, _source, target, e2e = await _fraud(bank)
    await bank.log_in("analyst", role=ANALYST_ROLE)
    bank.clock.set(START + timedelta(hours=72, microseconds=1))
    analyst = await bank.log_in("analyst")
    late = await bank.client.post(
        f"{BACK_OFFICE}/payments/{e2e}/precautionary-block", headers=analyst
    )
    assert late.status_code == 422, late.text
    assert (late.json()["code"], late.json()["deadline"]) == (
        "med_deadline_passed",
        "precautionary_block",
    )
    mule = await bank.log_in("mule")
    assert await bank.available(mule, target) == Decimal("300.00")


async def check_analysts_deciding_at_once_record_one_decision(bank: Bank) -> None:
    victim, _source, target, e2e = await _fraud(bank)
    analyst = await bank.log_in("analyst", role=ANALYST_ROLE)
    contested = await bank.client.post(
        f"/v1/pix/payments/{e2e}/contestations", json={"situation": "SCAM"}, headers=victim
    )
    assert contested.status_code == 201, contested.text
    decisions = ["AGREED" if i % 2 else "DISAGREED" for i in range(CALLERS)]
    answers = await asyncio.gather(
        *(
            bank.at(i).post(
                f"{BACK_OFFICE}/payments/{e2e}/med/analysis",
                json={"decision": decisions[i]},
                headers=analyst,
            )
            for i in range(CALLERS)
        )
    )
    winners = {decisions[i] for i, r in enumerate(answers) if r.status_code == 200}
    assert len(winners) == 1, [r.text for r in answers]
    [winner] = winners
    for i, answer in enumerate(answers):
        if decisions[i] == winner:
            assert answer.status_code == 200, answer.text
        else:
            assert answer.status_code == 409, answer.text
            assert answer.json()["code"] == "med_already_decided"
    mule = await bank.log_in("mule")
    held = Decimal("0.00") if winner == "AGREED" else Decimal("300.00")
    assert await bank.available(mule, target) == held
    if bank.pool is not None:
        events = await bank.outbox(e2e, "pix.med.")
        assert events[med_events.REPORT_ANALYSED] == 1
        assert events.get(med_events.FUNDS_BLOCKED, 0) == (1 if winner == "AGREED" else 0)


async def check_payments_made_at_once_are_each_listed_once(bank: Bank) -> None:
    """Many payments in the same instant (one clock), paged two at a time: none lost or twice."""
    payer = await bank.log_in("payer")
    source = await bank.account(payer, deposit="100.00")
    payee = await bank.log_in("payee")
    target = await bank.account(payee)
    key = await bank.client.post(
        "/v1/pix/keys", json={"account_id": target, "key_type": "EVP"}, headers=payee
    )
    paid = await asyncio.gather(
        *(
            bank.at(i).post(
                "/v1/pix/payments",
                json={"account_id": source, "key": key.json()["key"], "amount": "1.00"},
                headers={**payer, "Idempotency-Key": f"at-once-{i}"},
            )
            for i in range(CALLERS)
        )
    )
    assert statuses(paid) == [201] * CALLERS, [r.text for r in paid]
    made = sorted(r.json()["end_to_end_id"] for r in paid)
    for headers, account, direction in ((payer, source, "SENT"), (payee, target, "RECEIVED")):
        seen: list[str] = []
        query: dict[str, Any] = {"account_id": account, "limit": 2, "direction": direction}
        while True:
            page = await bank.client.get("/v1/pix/payments", params=query, headers=headers)
            assert page.status_code == 200, page.text
            seen.extend(p["end_to_end_id"] for p in page.json()["items"])
            if page.json()["next_cursor"] is None:
                break
            query["cursor"] = page.json()["next_cursor"]
        assert sorted(seen) == made
    bad = await bank.client.get(
        "/v1/pix/payments", params={"account_id": source, "cursor": "not-a-cursor"}, headers=payer
    )
    assert bad.status_code == 400, bad.text
    assert bad.json()["field"] == "cursor"


# --- limits: the night period -----------------------------------------------------------------


async def check_the_night_limit_starts_at_20h_in_brasilia(bank: Bank) -> None:
    """An individual's night figure (R$ 1,000.00 a transaction) applies from 20:00 local time
    (23:00 UTC) exactly; a microsecond before, the day's figure does."""
    payer = await bank.log_in("payer")
    source = await bank.account(payer, deposit="5000.00")
    payee = await bank.log_in("payee")
    target = await bank.account(payee)
    night = datetime(2026, 5, 4, 23, 0, tzinfo=UTC)
    bank.clock.set(night - timedelta(microseconds=1))
    payer, payee = await bank.log_in("payer"), await bank.log_in("payee")
    await bank.pay(payer, source, payee, target, "1500.00")
    bank.clock.set(night)
    key = await bank.client.post(
        "/v1/pix/keys", json={"account_id": target, "key_type": "EVP"}, headers=payee
    )
    refused = await bank.client.post(
        "/v1/pix/payments",
        json={"account_id": source, "key": key.json()["key"], "amount": "1500.00"},
        headers={**payer, "Idempotency-Key": secrets.token_hex(8)},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "pix_limit_exceeded"
    assert await bank.available(payer, source) == Decimal("3500.00")  # nothing half-written
    await bank.pay(payer, source, payee, target, "1000.00")  # at the night figure: allowed
    assert await bank.available(payee, target) == Decimal("2500.00")


# --- claims with another institution, through the library --------------------------------


@asynccontextmanager
async def library_bank(profile: str, clock: FakeClock) -> AsyncIterator[Bank_]:
    if profile == "memory":
        async with open_bank(profile="memory", clock=clock) as bank:
            yield bank
        return
    require_postgres()
    async with isolated_schema() as (_pool, schema), open_test_redis() as (_redis, prefix):
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
        async with open_bank(settings, clock=clock) as bank:
            yield bank


async def _our_key(bank: Bank_, owner: str, email: str) -> uuid.UUID:
    account = await bank.accounts.open(OpenAccountCommand(owner_id=owner, holder_name="Ana"))
    await bank.pix.register_key(
        RegisterPixKeyCommand(
            owner_id=owner, account_id=account.id, key_type=PixKeyType.EMAIL, key=email
        )
    )
    return account.id


async def test_a_peer_banks_ownership_claim_at_each_edge_of_the_resolution_period(
    profile: str,
) -> None:
    """We are the donor: our customer may contest until the last microsecond; at the end,
    silence gives the key up, and the peer's completion (the first to touch it) moves it."""
    clock = FakeClock(START)
    async with library_bank(profile, clock) as bank:
        peer = bank.settings.pix.sandbox_peer_ispb
        kept = await _our_key(bank, "ana", "kept@example.com")
        await _our_key(bank, "bia", "given@example.com")
        contested = await bank.pix.claims.simulate_incoming_claim(
            claim_type=ClaimType.OWNERSHIP,
            key=PixKey.parse("kept@example.com"),
            from_ispb=peer,
            from_account_number=PEER_ACCOUNT_NUMBER,
        )
        silent = await bank.pix.claims.simulate_incoming_claim(
            claim_type=ClaimType.OWNERSHIP,
            key=PixKey.parse("given@example.com"),
            from_ispb=peer,
            from_account_number=PEER_ACCOUNT_NUMBER,
        )
        clock.set(contested.resolution_ends_at - timedelta(microseconds=1))
        cancelled = await bank.pix.claims.cancel(
            CancelKeyClaimCommand(owner_id="ana", claim_id=contested.id)
        )
        assert (cancelled.status, cancelled.cancelled_by) == (
            ClaimStatus.CANCELLED,
            ClaimParty.DONOR,
        )
        [key] = await bank.pix.list_keys(ListPixKeysQuery(owner_id="ana"))
        assert key.account_id == kept

        clock.set(silent.resolution_ends_at)
        with pytest.raises(KeyClaimPeriodEnded):
            await bank.pix.claims.cancel(CancelKeyClaimCommand(owner_id="bia", claim_id=silent.id))
        done = await bank.pix.claims.simulate_peer_completion(silent.id)
        assert (done.status, done.confirmed_by) == (ClaimStatus.COMPLETED, ClaimParty.DIRECTORY)
        assert await bank.pix.list_keys(ListPixKeysQuery(owner_id="bia")) == []


async def test_our_portability_claim_at_a_silent_or_refusing_donor(profile: str) -> None:
    """We are the claimer: a refusal cancels at once; silence cancels at the resolution end
    (read first by the claimer), and the key never comes here."""
    clock = FakeClock(START)
    async with library_bank(profile, clock) as bank:
        carla = await bank.accounts.open(
            OpenAccountCommand(owner_id="carla", holder_name="Carla", holder_document=CARLA_CPF)
        )
        claim = await bank.pix.claims.open(
            OpenKeyClaimCommand(
                owner_id="carla",
                account_id=carla.id,
                claim_type=ClaimType.PORTABILITY,
                key_type=PixKeyType.EMAIL,
                key=PEER_KEY_EMAIL,
            )
        )
        await bank.pix.claims.simulate_donor_answer(claim.id, None)
        query = GetKeyClaimQuery(owner_id="carla", claim_id=claim.id)
        clock.set(claim.resolution_ends_at - timedelta(microseconds=1))
        assert (await bank.pix.claims.get(query)).status is ClaimStatus.WAITING_RESOLUTION
        clock.set(claim.resolution_ends_at)
        ended = await bank.pix.claims.get(query)
        assert (ended.status, ended.cancel_reason) == (
            ClaimStatus.CANCELLED,
            CancelReason.DEFAULT_OPERATION,
        )
        with pytest.raises(KeyClaimError):
            await bank.pix.claims.complete(
                CompleteKeyClaimCommand(owner_id="carla", claim_id=claim.id)
            )
        assert await bank.pix.list_keys(ListPixKeysQuery(owner_id="carla")) == []

        again = await bank.pix.claims.open(
            OpenKeyClaimCommand(
                owner_id="carla",
                account_id=carla.id,
                claim_type=ClaimType.PORTABILITY,
                key_type=PixKeyType.EMAIL,
                key=PEER_KEY_EMAIL,
            )
        )
        await bank.pix.claims.simulate_donor_answer(again.id, "CANCEL")
        refused = await bank.pix.claims.get(GetKeyClaimQuery(owner_id="carla", claim_id=again.id))
        assert (refused.status, refused.cancelled_by) == (ClaimStatus.CANCELLED, ClaimParty.DONOR)
        assert await bank.pix.list_keys(ListPixKeysQuery(owner_id="carla")) == []


test_many_claims_on_one_key_at_once_leave_it_on_one_account = over_http(
    check_many_claims_on_one_key_at_once_leave_it_on_one_account
)
test_a_portability_claim_silence_lapses_it_at_the_resolution_end = over_http(
    check_a_portability_claim_silence_lapses_it_at_the_resolution_end
)
test_a_confirmed_claim_not_completed_ends_at_the_completion_end = over_http(
    check_a_confirmed_claim_not_completed_ends_at_the_completion_end
)
test_concurrent_contestations_of_one_payment_open_one_case = over_http(
    check_concurrent_contestations_of_one_payment_open_one_case
)
test_concurrent_refund_requests_return_the_money_once = over_http(
    check_concurrent_refund_requests_return_the_money_once
)
test_a_partial_return_then_never_more_than_remains = over_http(
    check_a_partial_return_then_never_more_than_remains
)
test_the_refund_request_deadline_lapses_the_case_for_its_first_reader = over_http(
    check_the_refund_request_deadline_lapses_the_case_for_its_first_reader
)
test_the_report_window_ends_80_days_after_the_payment = over_http(
    check_the_report_window_ends_80_days_after_the_payment
)
test_a_precautionary_block_kept_for_med_survives_its_72_hours = over_http(
    check_a_precautionary_block_kept_for_med_survives_its_72_hours
)
test_a_precautionary_block_released_at_72_hours_by_its_first_reader = over_http(
    check_a_precautionary_block_released_at_72_hours_by_its_first_reader
)
test_the_analysis_is_in_time_at_7_days_and_refused_after = over_http(
    check_the_analysis_is_in_time_at_7_days_and_refused_after
)
test_a_block_is_placed_only_within_72_hours_of_the_payment = over_http(
    check_a_block_is_placed_only_within_72_hours_of_the_payment
)
test_the_night_limit_starts_at_20h_in_brasilia = over_http(
    check_the_night_limit_starts_at_20h_in_brasilia
)
test_analysts_deciding_at_once_record_one_decision = over_http(
    check_analysts_deciding_at_once_record_one_decision
)
test_payments_made_at_once_are_each_listed_once = over_http(
    check_payments_made_at_once_are_each_listed_once
)
test_the_donor_confirming_and_cancelling_at_once_gets_one_outcome = over_http(
    check_the_donor_confirming_and_cancelling_at_once_gets_one_outcome
)
