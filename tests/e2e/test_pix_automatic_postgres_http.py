"""Pix Automático over HTTP on PostgreSQL, with two scheduler instances running at once.

The service runs on PostgreSQL (ledger, accounts, users, outbox and PIX
stores, as on the local profile) in a schema of its own, on a fake clock. The
receiver creates a recurrence with no fixed amount and schedules charges; the
payers read the composite code, authorise with a maximum of their own; the
clock moves to the due date; then two scheduler instances, each with its own
container and pool as two ``finbank worker pix-automatic`` processes would
have, run their loops at once. The funded payer is debited exactly once; the
payer short of funds gets one failed attempt (not one per instance) and the
charge stays open for the retries the policy allows; a charge over the
payer's maximum is recorded as refused and never debited; then the receiver
cancels one recurrence (its charge in retry is cancelled, not attempted, in
the next window) and the payer the other.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from finbank.bank import configure
from finbank_adapters.containers import (
    BankContainer,
    build_container,
    close_container,
    open_container,
    resolve,
)
from finbank_adapters.memory import FakeClock
from finbank_adapters.settings import (
    JwtOptions,
    Settings,
)
from finbank_adapters.workers.pix_automatic import PixAutomaticWorker
from finbank_core.pix.automatic import BRASILIA, RunDueDebits
from finbank_core.pix.codes.brcode_reader import read_brcode
from finbank_http import create_app
from tests.postgres_support import (
    all_postgres_settings,
    isolated_schema,
    require_postgres,
)

pytestmark = pytest.mark.services

START = datetime(2026, 3, 2, 9, 0, tzinfo=BRASILIA)
DUE = date(2026, 3, 5)
CPF = "52998224725"


@dataclass
class Member:
    username: str
    password: str
    headers: dict[str, str]


@pytest.fixture
async def settings() -> AsyncIterator[Settings]:
    require_postgres()
    async with isolated_schema() as (_, schema):
        yield all_postgres_settings(schema, jwt=JwtOptions(secret=secrets.token_hex(32)))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def client(settings: Settings, clock: FakeClock) -> AsyncIterator[AsyncTestClient[Litestar]]:
    container = build_container(settings)
    configure(container, clock=clock)
    async with AsyncTestClient(create_app(container)) as test_client:
        yield test_client


async def log_in(client: AsyncTestClient[Litestar], member: Member) -> None:
    """Tokens expire on the bank's clock: log in again after moving it."""
    answer = await client.post(
        "/v1/auth/login", json={"username": member.username, "password": member.password}
    )
    assert answer.status_code == 200, answer.text
    member.headers = {"Authorization": f"Bearer {answer.json()['tokens']['access_token']}"}


async def join(client: AsyncTestClient[Litestar], username: str) -> Member:
    password = f"pw-{secrets.token_hex(8)}"
    signed = await client.post("/v1/auth/signup", json={"username": username, "password": password})
    assert signed.status_code == 201, signed.text
    member = Member(username, password, {})
    await log_in(client, member)
    return member


async def open_account(
    client: AsyncTestClient[Litestar], member: Member, name: str, cash: str | None = None
) -> str:
    opened = await client.post("/v1/accounts", json={"holder_name": name}, headers=member.headers)
    assert opened.status_code == 201, opened.text
    account_id: str = opened.json()["id"]
    if cash is not None:
        put = await client.post(
            "/v1/sandbox/deposits",
            json={"account_id": account_id, "amount": cash},
            headers=member.headers,
        )
        assert put.status_code == 201, put.text
    return account_id


async def posted(client: AsyncTestClient[Litestar], member: Member, account_id: str) -> str:
    body = (await client.get(f"/v1/accounts/{account_id}", headers=member.headers)).json()
    value: str = body["balance"]["posted"]
    return value


async def recurrence_for(
    client: AsyncTestClient[Litestar], gym: Member, shop: str, payer: str
) -> tuple[str, str]:
    """A recurrence with no fixed amount (the payer sets a maximum) and its code."""
    created = await client.post(
        "/v1/pix/automatic/recurrences",
        json={
            "account_id": shop,
            "contract": f"PLANO-{payer}",
            "purpose": "Mensalidade academia",
            "debtor_name": payer.title(),
            "debtor_document": CPF,
            "periodicity": "MENSAL",
            "start": DUE.isoformat(),
            "retry_policy": "PERMITE_3R_7D",
        },
        headers=gym.headers,
    )
    assert created.status_code == 201, created.text
    rec_id: str = created.json()["recurrence_id"]
    code = await client.post(
        f"/v1/pix/automatic/recurrences/{rec_id}/codes", json={}, headers=gym.headers
    )
    assert code.status_code in (200, 201), code.text
    brcode: str = code.json()["brcode"]
    return rec_id, brcode


async def two_schedulers_until_final(
    settings: Settings,
    clock: FakeClock,
    client: AsyncTestClient[Litestar],
    gym: Member,
    txids: list[str],
) -> None:
    """Two instances, each with its own container and pool, loop at once until each
    charge has had its attempt of the day (final, or failed and waiting)."""
    instances: list[tuple[BankContainer, PixAutomaticWorker]] = []
    for name in ("instance-1", "instance-2"):
        container = build_container(settings)
        configure(container, clock=clock)
        await open_container(container)
        run_due: RunDueDebits = await resolve(container.pix_automatic().run_due_debits())
        instances.append(
            (
                container,
                PixAutomaticWorker(run_due=run_due, holder=name, limit=1, interval_seconds=0.01),
            )
        )
    stop = asyncio.Event()

    async def until_attempted() -> None:
        while True:
            charges = [
                (await client.get(f"/v1/pix/automatic/charges/{t}", headers=gym.headers)).json()
                for t in txids
            ]
            if all(c["attempts"] for c in charges):
                await asyncio.sleep(0.2)  # let a second instance try (and find nothing) too
                stop.set()
                return
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(
            asyncio.gather(*(worker.run(stop) for _, worker in instances), until_attempted()),
            timeout=120,
        )
    finally:
        for container, _ in instances:
            await close_container(container)


async def test_two_schedulers_at_once_over_http_on_postgres(
    settings: Settings, clock: FakeClock, client: AsyncTestClient[Litestar]
) -> None:
    gym, ana, bia = [await join(client, name) for name in ("gym", "ana", "bia")]
    shop = await open_account(client, gym, "Academia Forte Ltda")
    ana_wallet = await open_account(client, ana, "Ana Souza", "100.00")
    bia_wallet = await open_account(client, bia, "Bia Lima", "10.00")

    records: dict[str, str] = {}
    for payer, wallet in ((ana, ana_wallet), (bia, bia_wallet)):
        rec_id, brcode = await recurrence_for(client, gym, shop, payer.username)
        reading = read_brcode(brcode)  # the composite code, as a payer's app reads it
        assert (reading.kind, reading.deviations) == ("recurrence", ())
        assert reading.recurrence_url is not None
        assert "/rec/" in reading.recurrence_url
        authorised = await client.post(
            "/v1/pix/automatic/authorisations",
            json={"account_id": wallet, "br_code": brcode, "max_amount": "50.00"},
            headers=payer.headers,
        )
        assert authorised.status_code == 201, authorised.text
        assert authorised.json()["status"] == "APROVADA"
        records[payer.username] = rec_id

    over = await client.post(
        f"/v1/pix/automatic/recurrences/{records['ana']}/charges",
        json={"amount": "50.01", "due_date": DUE.isoformat()},
        headers=gym.headers,
    )
    assert over.status_code == 201, over.text  # recorded, and refused by the payer's side
    assert (over.json()["status"], over.json()["reason"], over.json()["attempts"]) == (
        "REJEITADA",
        "amount_over_payer_maximum",
        [],
    )
    txids = []
    for name in ("ana", "bia"):
        scheduled = await client.post(
            f"/v1/pix/automatic/recurrences/{records[name]}/charges",
            json={"amount": "30.00", "due_date": DUE.isoformat()},
            headers=gym.headers,
        )
        assert scheduled.status_code == 201, scheduled.text
        txids.append(scheduled.json()["txid"])

    clock.set(datetime(2026, 3, 5, 0, 1, tzinfo=BRASILIA))
    for member in (gym, ana, bia):
        await log_in(client, member)
    await two_schedulers_until_final(settings, clock, client, gym, txids)

    paid, short = [
        (await client.get(f"/v1/pix/automatic/charges/{t}", headers=gym.headers)).json()
        for t in txids
    ]
    assert (paid["status"], [a["status"] for a in paid["attempts"]]) == (
        "CONCLUIDA",
        ["SETTLED"],
    )
    assert short["status"] == "ATIVA"  # retried later, as PERMITE_3R_7D allows
    assert len(short["attempts"]) == 1  # one attempt in the window, not one per instance
    assert short["next_attempt_on"] is not None
    assert await posted(client, ana, ana_wallet) == "70.00"
    assert await posted(client, bia, bia_wallet) == "10.00"
    assert await posted(client, gym, shop) == "30.00"

    by_receiver = await client.post(
        f"/v1/pix/automatic/recurrences/{records['bia']}/cancel",
        json={"reason": "inadimplencia"},
        headers=gym.headers,
    )
    assert by_receiver.status_code == 200, by_receiver.text
    assert (by_receiver.json()["status"], by_receiver.json()["ended_by"]) == (
        "CANCELADA",
        "USUARIO_RECEBEDOR",
    )
    by_payer = await client.post(
        f"/v1/pix/automatic/recurrences/{records['ana']}/cancel", json={}, headers=ana.headers
    )
    assert (by_payer.status_code, by_payer.json()["ended_by"]) == (200, "USUARIO_PAGADOR")

    # the charge waiting for its retry is cancelled with its recurrence, at once
    closed = (await client.get(f"/v1/pix/automatic/charges/{txids[1]}", headers=gym.headers)).json()
    assert (closed["status"], closed["reason"]) == ("CANCELADA", "recurrence_cancelada")
    assert [a["status"] for a in closed["attempts"]] == ["FAILED"]
    # the next day's window: nothing is attempted for a cancelled recurrence
    clock.set(datetime(2026, 3, 6, 0, 1, tzinfo=BRASILIA))
    await log_in(client, gym)
    ran = await client.post("/v1/sandbox/pix/automatic/run-due", headers=gym.headers)
    assert ran.status_code == 200, ran.text
    assert ran.json()["charges"] == []
    await log_in(client, bia)
    assert await posted(client, bia, bia_wallet) == "10.00"
