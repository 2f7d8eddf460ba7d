"""``PostgresRequestClaims.claim_unless_recorded``: a PIX request's lookup and claim at once
(and ``add_announced_releasing``: its record releasing the claim).

The ``ClaimingLookup`` that ``SendPix`` uses on PostgreSQL (migration
``0023``, ``pix_claim_request``) must answer as the three calls it replaces
(the lookup, ``acquire``, the lookup under the claim): a record is returned
without claiming; otherwise the claim is taken as ``acquire`` takes it; and
a record committed while the claim was being taken is seen by the lookup
under the claim, so its request is replayed and not run again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from finbank_adapters.postgres.pix_payments import PostgresPixPaymentRepository
from finbank_adapters.postgres.pix_request_claims import PostgresRequestClaims
from finbank_core.accounts.events import make_event
from finbank_core.pix.errors import PixPaymentAlreadyExists
from finbank_core.pix.events import PAYMENT_REQUESTED, payment_payload
from finbank_core.pix.payments import Initiation, PaymentStatus, PixFlow, PixParty, PixPayment
from finbank_core.pix.use_cases.send import ClaimingLookup, ClaimReleasingRecorder
from finbank_core.shared.events import EventEnvelope
from finbank_core.shared.idempotency import claim_id_for
from finbank_core.shared.money import Money
from tests.postgres_support import isolated_schema

pytestmark = pytest.mark.services

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
ANA = uuid.UUID("00000000-0000-0000-0000-00000000a0a0")
OWNER = "owner-ana"
CLAIM = claim_id_for("pix-send", OWNER, "pay-1")


@pytest.fixture
async def stores(
    postgres_dsn: str,
) -> AsyncIterator[tuple[PostgresRequestClaims, PostgresPixPaymentRepository, asyncpg.Pool]]:
    async with isolated_schema(postgres_dsn, max_size=4) as (pool, _):
        yield PostgresRequestClaims(pool), PostgresPixPaymentRepository(pool), pool


def payment(n: int = 1, key: str = "pay-1") -> PixPayment:
    return PixPayment(
        end_to_end_id=f"E99999999202601051200{n:011d}",
        flow=PixFlow.OUTGOING,
        status=PaymentStatus.PENDING,
        amount=Money(10_00),
        payer=PixParty(ispb="99999999", account_id=ANA, owner_id=OWNER),
        payee=PixParty(ispb="88888888"),
        initiation=Initiation.KEY,
        created_at=T0,
        idempotency_key=key,
        request_fingerprint="fp",
    )


async def claim(
    claims: PostgresRequestClaims, token: str, at: datetime = T0, key: str = "pay-1"
) -> tuple[PixPayment | None, bool]:
    return await claims.claim_unless_recorded(
        OWNER, key, claim_id_for("pix-send", OWNER, key), token, now=at, until=at + LEASE
    )


async def claim_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT claim_id, token FROM pix_request_claims")


async def test_it_is_the_claiming_lookup_send_pix_uses(
    stores: tuple[PostgresRequestClaims, PostgresPixPaymentRepository, asyncpg.Pool],
) -> None:
    assert isinstance(stores[0], ClaimingLookup)


async def test_without_a_record_one_holder_until_it_releases_or_its_lease_ends(
    stores: tuple[PostgresRequestClaims, PostgresPixPaymentRepository, asyncpg.Pool],
) -> None:
    claims, _, _ = stores
    assert await claim(claims, "a") == (None, True)
    assert await claim(claims, "b") == (None, False)
    await claims.release(CLAIM, "a")
    assert await claim(claims, "b") == (None, True)
    # b's lease ends: the next caller takes the claim over
    assert await claim(claims, "c", at=T0 + LEASE) == (None, True)
    assert not await claims.acquire(CLAIM, "d", now=T0 + LEASE, until=T0 + 2 * LEASE)


async def test_a_recorded_payment_comes_back_without_a_claim_whoever_holds_it(
    stores: tuple[PostgresRequestClaims, PostgresPixPaymentRepository, asyncpg.Pool],
) -> None:
    claims, payments, pool = stores
    stored = await payments.add(payment())
    assert await claim(claims, "a") == (stored, False)
    assert await claim_rows(pool) == []  # nothing claimed
    assert await claims.acquire(CLAIM, "holder", now=T0, until=T0 + LEASE)
    assert await claim(claims, "b") == (stored, False)  # held or not: the record
    assert await claim(claims, "a", key="pay-2") == (None, True)  # another key


async def test_a_record_committed_while_the_claim_is_taken_is_seen_under_the_claim(
    stores: tuple[PostgresRequestClaims, PostgresPixPaymentRepository, asyncpg.Pool],
) -> None:
    """The first request records and releases while this one waits on the claim's row:
    the lookup under the claim sees the record (a fresh snapshot), as the lookup after
    ``acquire`` did, so the request is replayed and not run a second time."""
    claims, _, pool = stores
    async with pool.acquire() as first, first.transaction():
        # the first request holds the claim's row (taken, not yet committed)
        await first.execute(
            "INSERT INTO pix_request_claims (claim_id, token, lease_until) VALUES ($1, 'a', $2)",
            CLAIM,
            T0 + LEASE,
        )
        second = asyncio.create_task(claim(claims, "b"))
        # the second has looked (no record) and now waits on the claim's row
        async with asyncio.timeout(10):
            while not await pool.fetchval(  # noqa: ASYNC110 - polls the server's lock waits
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                first.get_server_pid(),
            ):
                await asyncio.sleep(0.01)
        stored = await PostgresPixPaymentRepository(first).add(  # type: ignore[arg-type]
            payment()
        )
        await first.execute("DELETE FROM pix_request_claims WHERE claim_id = $1", CLAIM)
    found, taken = await second
    assert (found, taken) == (stored, True)
    await claims.release(CLAIM, "b")
    assert await claim_rows(pool) == []


def requested(p: PixPayment) -> EventEnvelope:
    return make_event(
        event_id=uuid.uuid4(),
        type=PAYMENT_REQUESTED,
        occurred_at=T0,
        aggregate_id=p.end_to_end_id,
        payload=payment_payload(p),
    )


async def test_the_record_releases_its_requests_claim_when_it_goes_in(
    stores: tuple[PostgresRequestClaims, PostgresPixPaymentRepository, asyncpg.Pool],
) -> None:
    """``add_announced_releasing``: the record, its event, and the claim dropped, at once;
    a clash stores nothing and leaves the claim to its holder."""
    claims, payments, pool = stores
    assert isinstance(payments, ClaimReleasingRecorder)
    assert await claim(claims, "a") == (None, True)
    first = payment(1)
    stored = await payments.add_announced_releasing(first, requested(first), CLAIM, "a")
    assert await claim_rows(pool) == []
    assert await claim(claims, "b") == (stored, False)  # replayed from the record

    other = claim_id_for("pix-send", OWNER, "pay-2")
    assert await claim(claims, "c", key="pay-2") == (None, True)
    clash = payment(1, key="pay-2")  # the same EndToEndId
    with pytest.raises(PixPaymentAlreadyExists):
        await payments.add_announced_releasing(clash, requested(clash), other, "c")
    assert [r["token"] for r in await claim_rows(pool)] == ["c"]
    # another holder's token drops nothing
    second = payment(2, key="pay-2")
    await payments.add_announced_releasing(second, requested(second), other, "not-c")
    assert [r["token"] for r in await claim_rows(pool)] == ["c"]
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 2
