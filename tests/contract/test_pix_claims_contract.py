"""Key claims and key look-up buckets: the contracts, run against every adapter.

* ``KeyClaimStore`` (memory, PostgreSQL, DynamoDB) with the directory's key
  move (``ClaimableKeyDirectory.transfer``) beside it: versioned updates,
  one active claim per key, and the whole claim flow driven by the core's use
  cases on each backend, with a fake clock moved across every deadline and
  concurrent claims on one key (the key ends on exactly one account).
* ``LookupBuckets`` (memory, Redis, PostgreSQL): the token bucket rule and
  concurrent takes that never spend the same tokens twice.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from finbank_adapters.aws.dynamo_key_claims import DynamoKeyClaimStore
from finbank_adapters.aws.dynamo_pix_directory import DynamoKeyDirectory
from finbank_adapters.memory import FakeClock, InMemoryAccountRepository, InMemoryEventPublisher
from finbank_adapters.memory.ids import SequentialIdGenerator
from finbank_adapters.memory.pix import InMemoryKeyDirectory
from finbank_adapters.memory.pix_claims import InMemoryKeyClaimStore, InMemoryLookupBuckets
from finbank_adapters.postgres.pix_claims import (
    PostgresClaimableKeyDirectory,
    PostgresKeyClaimStore,
    PostgresLookupBuckets,
)
from finbank_adapters.redis.lookup_buckets import RedisLookupBuckets
from finbank_adapters.sandbox.claims import SimulatedDictClaims
from finbank_core.accounts.model import AccountKind, AccountStatus, CustomerAccount, HolderType
from finbank_core.pix.claims import (
    BucketPolicy,
    CancelReason,
    ClaimableKeyDirectory,
    ClaimAccount,
    ClaimParty,
    ClaimStatus,
    ClaimType,
    IllegalKeyClaimTransition,
    KeyClaim,
    KeyClaimAlreadyOpen,
    KeyClaimNotAllowed,
    KeyClaimNotFound,
    KeyClaimPeriodEnded,
    KeyClaimStore,
    KeyClaimVersionConflict,
    LookupBuckets,
)
from finbank_core.pix.claims.events import KEY_CLAIM_COMPLETED, KEY_CLAIM_CONFIRMED
from finbank_core.pix.claims.use_cases import (
    CancelKeyClaim,
    CancelKeyClaimCommand,
    ClaimSteps,
    CompleteKeyClaim,
    CompleteKeyClaimCommand,
    ConfirmKeyClaim,
    ConfirmKeyClaimCommand,
    GetKeyClaim,
    GetKeyClaimQuery,
    ListKeyClaims,
    ListKeyClaimsQuery,
    OpenKeyClaim,
    OpenKeyClaimCommand,
    ReceiveKeyClaim,
    ReceiveKeyClaimCommand,
)
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.directory import KeyRegistration, NewKeyRegistration
from finbank_core.pix.errors import PixKeyNotFound
from finbank_core.pix.ledger_steps import PixEvents
from finbank_core.shared.errors import ServiceUnavailable
from tests.integration.dynamo_support import dynamodb_client, new_table, serial_moto_endpoint
from tests.postgres_support import isolated_schema
from tests.support_redis import open_test_redis

__all__ = ["serial_moto_endpoint"]  # fixture
CLAIM_BACKENDS = ["memory", "postgres", "dynamodb"]
BUCKET_BACKENDS = ["memory", "redis", "postgres"]
OURS = "99999999"
PEER = "88888888"
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)
ANA_CPF = "52998224725"
BIA_CPF = "11144477735"
PHONE = PixKey.parse("+5511988887777")


@dataclass
class Stores:
    claims: KeyClaimStore
    directory: ClaimableKeyDirectory


@pytest.fixture(params=CLAIM_BACKENDS)
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    if request.param == "memory":
        yield Stores(InMemoryKeyClaimStore(), InMemoryKeyDirectory(random.Random(5)))
    elif request.param == "postgres":
        dsn: str = request.getfixturevalue("postgres_dsn")
        async with isolated_schema(dsn, max_size=8) as (pool, _):
            yield Stores(PostgresKeyClaimStore(pool), PostgresClaimableKeyDirectory(pool))
    elif request.param == "dynamodb":
        # moto's threaded server does not isolate concurrent transactions as DynamoDB
        # does; the serial one does (one request at a time), like the other suites
        endpoint: str = request.getfixturevalue("serial_moto_endpoint")
        async with dynamodb_client(endpoint) as client, new_table(client) as table:
            yield Stores(DynamoKeyClaimStore(client, table), DynamoKeyDirectory(client, table))
    else:  # pragma: no cover - each backend adds its branch
        raise AssertionError(request.param)


@pytest.fixture(params=BUCKET_BACKENDS)
async def buckets(request: pytest.FixtureRequest) -> AsyncIterator[LookupBuckets]:
    if request.param == "memory":
        yield InMemoryLookupBuckets()
    elif request.param == "redis":
        async with open_test_redis() as (client, prefix):
            yield RedisLookupBuckets(client, prefix)
    elif request.param == "postgres":
        dsn: str = request.getfixturevalue("postgres_dsn")
        async with isolated_schema(dsn, max_size=8) as (pool, _):
            yield PostgresLookupBuckets(pool)
    else:  # pragma: no cover
        raise AssertionError(request.param)


# -- a small world over the stores under test -------------------------------------------


@dataclass
class World:
    clock: FakeClock
    stores: Stores
    accounts: InMemoryAccountRepository
    network: SimulatedDictClaims
    publisher: InMemoryEventPublisher
    steps: ClaimSteps
    ids: SequentialIdGenerator

    async def account(self, owner: str, document: str, number: str) -> CustomerAccount:
        account = CustomerAccount(
            id=uuid.uuid5(uuid.NAMESPACE_OID, number),
            owner_id=owner,
            holder_name=owner.title(),
            holder_type=HolderType.INDIVIDUAL,
            branch="0001",
            number=number,
            kind=AccountKind.PAYMENT,
            status=AccountStatus.ACTIVE,
            created_at=T0,
            holder_document=document,
        )
        await self.accounts.add(account)
        return account

    async def give_key(
        self, key: PixKey, *, account: CustomerAccount | None = None, ispb: str = OURS
    ) -> KeyRegistration:
        """Bind ``key`` to one of our accounts, or (``account=None``) to a peer's account."""
        return await self.stores.directory.register(
            NewKeyRegistration(
                id=uuid.uuid4(),
                key_type=key.type,
                key=key,
                ispb=ispb,
                branch="0001",
                account_number=account.number if account else "55555-5",
                account_kind=AccountKind.PAYMENT,
                holder_type=HolderType.INDIVIDUAL,
                holder_name=account.holder_name if account else "Peer Holder",
                holder_document=account.holder_document if account else BIA_CPF,
                created_at=self.clock.now(),
                account_id=account.id if account else None,
                owner_id=account.owner_id if account else None,
            ),
            max_keys_per_account=5,
        )

    async def holders(self, key: PixKey) -> KeyRegistration:
        return await self.stores.directory.get(key)

    def event_types(self) -> list[str]:
        return [e.type for e in self.publisher.published]


@pytest.fixture
def world(stores: Stores) -> World:
    clock = FakeClock(T0)
    network = SimulatedDictClaims()
    publisher = InMemoryEventPublisher()
    ids = SequentialIdGenerator()
    steps = ClaimSteps(
        ispb=OURS,
        store=stores.claims,
        directory=stores.directory,
        network=network,
        events=PixEvents(publisher=publisher, clock=clock, ids=ids),
        clock=clock,
    )
    return World(
        clock,
        stores,
        InMemoryAccountRepository(),
        network,
        publisher,
        steps,
        SequentialIdGenerator(),
    )


def opener(world: World) -> OpenKeyClaim:
    # one id generator per world: concurrent claims get distinct ids and clash on the key only
    return OpenKeyClaim(steps=world.steps, accounts=world.accounts, ids=world.ids)


def claim_cmd(owner: str, account: CustomerAccount, claim_type: ClaimType) -> OpenKeyClaimCommand:
    return OpenKeyClaimCommand(
        owner_id=owner,
        account_id=account.id,
        claim_type=claim_type,
        key_type=PHONE.type,
        key=PHONE.value,
    )


def sample_claim(*, key: PixKey = PHONE, claim_id: uuid.UUID | None = None) -> KeyClaim:
    side = ClaimAccount(
        ispb=OURS,
        branch="0001",
        account_number="1-1",
        account_kind=AccountKind.PAYMENT,
        holder_type=HolderType.INDIVIDUAL,
        holder_name="Ana",
        holder_document=ANA_CPF,
        account_id=uuid.uuid4(),
        owner_id="ana",
    )
    return KeyClaim(
        id=claim_id or uuid.uuid4(),
        claim_type=ClaimType.OWNERSHIP,
        key=key,
        status=ClaimStatus.OPEN,
        claimer=side,
        donor=msgspec.structs.replace(side, owner_id="bia", account_id=uuid.uuid4()),
        donor_key_id=uuid.uuid4(),
        opened_at=T0,
        resolution_ends_at=T0 + timedelta(days=7),
        completion_ends_at=T0 + timedelta(days=37),
        updated_at=T0,
    )


# -- the store ---------------------------------------------------------------------------


async def test_a_claim_is_stored_read_and_listed_for_both_sides(stores: Stores) -> None:
    claim = await stores.claims.add(sample_claim())
    assert claim.version == 1
    assert await stores.claims.get(claim.id) == claim
    assert await stores.claims.active_for_key(PHONE) == claim
    assert [c.id for c in await stores.claims.list_by_owner("ana")] == [claim.id]
    assert [c.id for c in await stores.claims.list_by_owner("bia")] == [claim.id]
    assert await stores.claims.list_by_owner("carla") == []
    with pytest.raises(KeyClaimNotFound):
        await stores.claims.get(uuid.uuid4())


async def test_a_key_has_one_active_claim_until_it_ends(stores: Stores) -> None:
    first = await stores.claims.add(sample_claim())
    with pytest.raises(KeyClaimAlreadyOpen):
        await stores.claims.add(sample_claim())
    ended = msgspec.structs.replace(first, status=ClaimStatus.CANCELLED)
    stored = await stores.claims.update(ended, expected_version=1)
    assert stored.version == 2
    assert stored.status is ClaimStatus.CANCELLED
    assert await stores.claims.active_for_key(PHONE) is None
    second = await stores.claims.add(sample_claim())
    assert await stores.claims.active_for_key(PHONE) == second


async def test_updates_are_versioned(stores: Stores) -> None:
    claim = await stores.claims.add(sample_claim())
    waiting = msgspec.structs.replace(claim, status=ClaimStatus.WAITING_RESOLUTION)
    assert (await stores.claims.update(waiting, 1)).version == 2
    with pytest.raises(KeyClaimVersionConflict):
        await stores.claims.update(waiting, 1)
    with pytest.raises(KeyClaimNotFound):
        await stores.claims.update(sample_claim(key=PixKey.parse("x@example.com")), 1)


async def test_concurrent_claims_on_one_key_store_exactly_one(stores: Stores) -> None:
    results = await asyncio.gather(
        *(stores.claims.add(sample_claim()) for _ in range(8)), return_exceptions=True
    )
    stored = [r for r in results if isinstance(r, KeyClaim)]
    assert len(stored) == 1
    assert all(isinstance(r, KeyClaimAlreadyOpen) for r in results if r not in stored)
    assert await stores.claims.active_for_key(PHONE) == stored[0]


async def test_concurrent_updates_of_one_version_let_exactly_one_win(stores: Stores) -> None:
    claim = await stores.claims.add(sample_claim())
    steps = [
        msgspec.structs.replace(claim, status=s)
        for s in (ClaimStatus.CONFIRMED, ClaimStatus.CANCELLED) * 4
    ]
    results = await asyncio.gather(
        *(stores.claims.update(s, 1) for s in steps), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, KeyClaim)]
    assert len(won) == 1
    assert (await stores.claims.get(claim.id)) == won[0]


# -- the directory's key move --------------------------------------------------------------


async def test_transfer_moves_the_key_once_and_answers_a_replay(world: World) -> None:
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    donor = await world.give_key(PHONE, account=bia)
    target = NewKeyRegistration(
        id=uuid.uuid4(),
        key_type=PHONE.type,
        key=PHONE,
        ispb=OURS,
        branch="0001",
        account_number=ana.number,
        account_kind=AccountKind.PAYMENT,
        holder_type=HolderType.INDIVIDUAL,
        holder_name="Ana",
        holder_document=ANA_CPF,
        created_at=T0,
        account_id=ana.id,
        owner_id="ana",
    )
    directory = world.stores.directory
    moved = await directory.transfer(donor.id, target, max_keys_per_account=5)
    assert moved.account_id == ana.id
    assert (await world.holders(PHONE)).id == target.id
    assert await directory.list_by_account(bia.id) == []
    assert [r.id for r in await directory.list_by_account(ana.id)] == [target.id]
    again = await directory.transfer(donor.id, target, max_keys_per_account=5)
    assert again.id == target.id
    other = msgspec.structs.replace(target, id=uuid.uuid4())
    with pytest.raises(PixKeyNotFound):
        await directory.transfer(donor.id, other, max_keys_per_account=5)


async def test_concurrent_transfers_to_different_accounts_bind_the_key_once(world: World) -> None:
    bia = await world.account("bia", BIA_CPF, "200-2")
    donor = await world.give_key(PHONE, account=bia)
    targets = []
    for i in range(6):
        account = await world.account(f"c{i}", ANA_CPF, f"30{i}-0")
        targets.append(
            NewKeyRegistration(
                id=uuid.uuid4(),
                key_type=PHONE.type,
                key=PHONE,
                ispb=OURS,
                branch="0001",
                account_number=account.number,
                account_kind=AccountKind.PAYMENT,
                holder_type=HolderType.INDIVIDUAL,
                holder_name="C",
                holder_document=ANA_CPF,
                created_at=T0,
                account_id=account.id,
                owner_id=account.owner_id,
            )
        )
    results = await asyncio.gather(
        *(world.stores.directory.transfer(donor.id, t, max_keys_per_account=5) for t in targets),
        return_exceptions=True,
    )
    moved = [r for r in results if isinstance(r, KeyRegistration)]
    assert len(moved) == 1
    assert all(isinstance(r, PixKeyNotFound) for r in results if r not in moved)
    holder = await world.holders(PHONE)
    assert holder.id == moved[0].id
    on_accounts = [
        len(await world.stores.directory.list_by_account(t.account_id))  # type: ignore[arg-type]
        for t in targets
    ]
    assert sorted(on_accounts) == [0] * 5 + [1]
    assert await world.stores.directory.list_by_account(bia.id) == []


# -- the flows on each backend ----------------------------------------------------------------


async def test_ownership_claim_between_two_customers_of_ours(world: World) -> None:
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    await world.give_key(PHONE, account=bia)
    claim = await opener(world)(claim_cmd("ana", ana, ClaimType.OWNERSHIP))
    assert claim.status is ClaimStatus.WAITING_RESOLUTION
    assert (await world.holders(PHONE)).account_id == bia.id  # the key stays with the donor
    confirmed = await ConfirmKeyClaim(steps=world.steps)(
        ConfirmKeyClaimCommand(owner_id="bia", claim_id=claim.id)
    )
    assert confirmed.status is ClaimStatus.CONFIRMED
    assert confirmed.confirmed_by is ClaimParty.DONOR
    assert (await world.holders(PHONE)).account_id == bia.id  # until the claimer completes
    done = await CompleteKeyClaim(steps=world.steps)(
        CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id)
    )
    assert done.status is ClaimStatus.COMPLETED
    assert (await world.holders(PHONE)).account_id == ana.id
    assert await world.stores.directory.list_by_account(bia.id) == []
    assert world.event_types() == [
        "pix.key_claim_opened",
        "pix.key_claim_waiting_resolution",
        KEY_CLAIM_CONFIRMED,
        KEY_CLAIM_COMPLETED,
    ]
    # a replay of the completion answers the same claim and moves nothing again
    again = await CompleteKeyClaim(steps=world.steps)(
        CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id)
    )
    assert again.status is ClaimStatus.COMPLETED
    assert (await world.holders(PHONE)).id == claim.id


async def test_resolution_period_edges_for_the_donor(world: World) -> None:
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    await world.give_key(PHONE, account=bia)
    claim = await opener(world)(claim_cmd("ana", ana, ClaimType.OWNERSHIP))
    world.clock.set(claim.resolution_ends_at - timedelta(microseconds=1))
    seen = await GetKeyClaim(steps=world.steps)(GetKeyClaimQuery(owner_id="bia", claim_id=claim.id))
    assert seen.status is ClaimStatus.WAITING_RESOLUTION
    world.clock.set(claim.resolution_ends_at)  # exactly at the end: the period is over
    with pytest.raises(KeyClaimPeriodEnded):
        await CancelKeyClaim(steps=world.steps)(
            CancelKeyClaimCommand(owner_id="bia", claim_id=claim.id)
        )
    # ownership not contested in time: the directory confirms it
    seen = await GetKeyClaim(steps=world.steps)(GetKeyClaimQuery(owner_id="ana", claim_id=claim.id))
    assert seen.status is ClaimStatus.CONFIRMED
    assert seen.confirmed_by is ClaimParty.DIRECTORY


async def test_a_donor_cancels_within_the_period_and_keeps_the_key(world: World) -> None:
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    await world.give_key(PHONE, account=bia)
    claim = await opener(world)(claim_cmd("ana", ana, ClaimType.OWNERSHIP))
    world.clock.set(claim.resolution_ends_at - timedelta(microseconds=1))
    cancelled = await CancelKeyClaim(steps=world.steps)(
        CancelKeyClaimCommand(owner_id="bia", claim_id=claim.id)
    )
    assert cancelled.status is ClaimStatus.CANCELLED
    assert cancelled.cancelled_by is ClaimParty.DONOR
    assert (await world.holders(PHONE)).account_id == bia.id
    with pytest.raises(IllegalKeyClaimTransition):
        await CompleteKeyClaim(steps=world.steps)(
            CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id)
        )


async def test_completion_period_edges(world: World) -> None:
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    await world.give_key(PHONE, account=bia)
    claim = await opener(world)(claim_cmd("ana", ana, ClaimType.OWNERSHIP))
    await ConfirmKeyClaim(steps=world.steps)(
        ConfirmKeyClaimCommand(owner_id="bia", claim_id=claim.id)
    )
    world.clock.set(claim.completion_ends_at)  # exactly at the end: too late
    with pytest.raises(KeyClaimPeriodEnded):
        await CompleteKeyClaim(steps=world.steps)(
            CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id)
        )
    assert (await world.holders(PHONE)).account_id == bia.id
    listed = await ListKeyClaims(steps=world.steps)(ListKeyClaimsQuery(owner_id="ana"))
    assert [(c.status, c.cancel_reason) for c in listed] == [
        (ClaimStatus.CANCELLED, CancelReason.DEFAULT_OPERATION)
    ]


async def test_completion_just_before_the_end_moves_the_key(world: World) -> None:
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    await world.give_key(PHONE, account=bia)
    claim = await opener(world)(claim_cmd("ana", ana, ClaimType.OWNERSHIP))
    await ConfirmKeyClaim(steps=world.steps)(
        ConfirmKeyClaimCommand(owner_id="bia", claim_id=claim.id)
    )
    world.clock.set(claim.completion_ends_at - timedelta(microseconds=1))
    done = await CompleteKeyClaim(steps=world.steps)(
        CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id)
    )
    assert done.status is ClaimStatus.COMPLETED
    assert (await world.holders(PHONE)).account_id == ana.id


async def test_portability_of_a_key_held_elsewhere(world: World) -> None:
    ana = await world.account("ana", BIA_CPF, "100-1")  # the same holder as the peer's key
    await world.give_key(PHONE, ispb=PEER)
    claim = await opener(world)(claim_cmd("ana", ana, ClaimType.PORTABILITY))
    assert [c.id for c in world.network.opened] == [claim.id]
    assert claim.status is ClaimStatus.WAITING_RESOLUTION
    world.network.answer(claim.id, "CONFIRM")
    seen = await GetKeyClaim(steps=world.steps)(GetKeyClaimQuery(owner_id="ana", claim_id=claim.id))
    assert seen.status is ClaimStatus.CONFIRMED
    assert seen.confirmed_by is ClaimParty.DONOR
    await CompleteKeyClaim(steps=world.steps)(
        CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id)
    )
    holder = await world.holders(PHONE)
    assert (holder.ispb, holder.account_id) == (OURS, ana.id)


async def test_silent_portability_lapses_at_the_end_of_the_resolution_period(world: World) -> None:
    ana = await world.account("ana", BIA_CPF, "100-1")
    await world.give_key(PHONE, ispb=PEER)
    claim = await opener(world)(claim_cmd("ana", ana, ClaimType.PORTABILITY))
    world.clock.set(claim.resolution_ends_at)
    seen = await GetKeyClaim(steps=world.steps)(GetKeyClaimQuery(owner_id="ana", claim_id=claim.id))
    assert seen.status is ClaimStatus.CANCELLED
    assert seen.cancel_reason is CancelReason.DEFAULT_OPERATION
    assert (await world.holders(PHONE)).ispb == PEER


async def test_a_claim_from_another_institution_on_our_customers_key(world: World) -> None:
    bia = await world.account("bia", BIA_CPF, "200-2")
    await world.give_key(PHONE, account=bia)
    command = ReceiveKeyClaimCommand(
        claim_id=uuid.uuid4(),
        claim_type=ClaimType.OWNERSHIP,
        key=PHONE,
        claimer=ClaimAccount(
            ispb=PEER,
            branch="0001",
            account_number="777-7",
            account_kind=AccountKind.PAYMENT,
            holder_type=HolderType.INDIVIDUAL,
            holder_name="Peer Claimer",
            holder_document=ANA_CPF,
        ),
    )
    received = await ReceiveKeyClaim(steps=world.steps)(command)
    assert received.status is ClaimStatus.WAITING_RESOLUTION
    assert (await ReceiveKeyClaim(steps=world.steps)(command)).id == received.id  # replay
    await ConfirmKeyClaim(steps=world.steps)(
        ConfirmKeyClaimCommand(owner_id="bia", claim_id=received.id)
    )
    with pytest.raises(KeyClaimNotAllowed):  # the peer completes, not the donor
        await CompleteKeyClaim(steps=world.steps)(
            CompleteKeyClaimCommand(owner_id="bia", claim_id=received.id)
        )
    done = await CompleteKeyClaim(steps=world.steps)(CompleteKeyClaimCommand(claim_id=received.id))
    assert done.status is ClaimStatus.COMPLETED
    holder = await world.holders(PHONE)
    assert (holder.ispb, holder.account_number, holder.account_id) == (PEER, "777-7", None)
    assert await world.stores.directory.list_by_account(bia.id) == []
    assert (received.id, ClaimStatus.COMPLETED) in world.network.changes


async def test_claims_the_rules_refuse(world: World) -> None:
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    await world.give_key(PHONE, account=bia)
    with pytest.raises(KeyClaimNotAllowed) as refused:  # another holder: ownership, not portability
        await opener(world)(claim_cmd("ana", ana, ClaimType.PORTABILITY))
    assert refused.value.details["field"] == "claim_type"
    with pytest.raises(KeyClaimNotAllowed):  # the key is already there
        await opener(world)(claim_cmd("bia", bia, ClaimType.OWNERSHIP))
    cpf_key = PixKey.parse(BIA_CPF, PixKeyType.CPF)
    await world.give_key(cpf_key, account=bia)
    with pytest.raises(KeyClaimNotAllowed) as refused:
        await opener(world)(
            OpenKeyClaimCommand(
                owner_id="ana",
                account_id=ana.id,
                claim_type=ClaimType.OWNERSHIP,
                key_type=PixKeyType.CPF,
                key=BIA_CPF,
            )
        )
    assert refused.value.details["field"] == "key_type"
    assert world.event_types() == []  # nothing half-written


async def test_concurrent_claims_on_one_key_leave_it_on_one_account(world: World) -> None:
    bia = await world.account("bia", BIA_CPF, "200-2")
    await world.give_key(PHONE, account=bia)
    claimers = [await world.account(f"c{i}", ANA_CPF, f"40{i}-0") for i in range(6)]
    results = await asyncio.gather(
        *(opener(world)(claim_cmd(a.owner_id, a, ClaimType.OWNERSHIP)) for a in claimers),
        return_exceptions=True,
    )
    opened = [r for r in results if isinstance(r, KeyClaim)]
    assert len(opened) == 1
    assert all(isinstance(r, KeyClaimAlreadyOpen) for r in results if r not in opened)
    claim = opened[0]
    # the donor's confirmation and the claimer's completion, each raced by many callers
    confirms = await asyncio.gather(
        *(
            ConfirmKeyClaim(steps=world.steps)(
                ConfirmKeyClaimCommand(owner_id="bia", claim_id=claim.id)
            )
            for _ in range(5)
        ),
        return_exceptions=True,
    )
    assert all(isinstance(c, KeyClaim) and c.status is ClaimStatus.CONFIRMED for c in confirms)
    completes = await asyncio.gather(
        *(
            CompleteKeyClaim(steps=world.steps)(
                CompleteKeyClaimCommand(owner_id=claim.claimer.owner_id, claim_id=claim.id)
            )
            for _ in range(5)
        ),
        return_exceptions=True,
    )
    assert all(isinstance(c, KeyClaim) and c.status is ClaimStatus.COMPLETED for c in completes)
    holding = [a.id for a in [bia, *claimers] if await world.stores.directory.list_by_account(a.id)]
    assert holding == [claim.claimer.account_id]
    assert world.event_types().count(KEY_CLAIM_COMPLETED) == 1
    assert world.event_types().count(KEY_CLAIM_CONFIRMED) == 1


# -- look-up buckets -----------------------------------------------------------------------------

POLICY = BucketPolicy(capacity=100, refill_per_minute=2)


async def test_a_new_bucket_is_full_and_a_take_removes_its_cost(buckets: LookupBuckets) -> None:
    first = await buckets.take("ana", 1, POLICY, T0)
    assert first.allowed
    assert first.tokens == pytest.approx(99)
    miss = await buckets.take("ana", 20, POLICY, T0)
    assert miss.allowed
    assert miss.tokens == pytest.approx(79)
    other = await buckets.take("bia", 1, POLICY, T0)
    assert other.tokens == pytest.approx(99)


async def test_an_empty_bucket_refuses_until_a_token_is_back(buckets: LookupBuckets) -> None:
    for _ in range(5):  # 5 misses of 20 empty a bucket of 100
        assert (await buckets.take("ana", 20, POLICY, T0)).allowed
    refused = await buckets.take("ana", 1, POLICY, T0)
    assert not refused.allowed
    assert refused.retry_after_seconds == 30
    just_before = T0 + timedelta(seconds=29, microseconds=999_000)
    assert not (await buckets.take("ana", 1, POLICY, just_before)).allowed
    back = await buckets.take("ana", 1, POLICY, T0 + timedelta(seconds=30))
    assert back.allowed
    assert back.tokens == pytest.approx(0)


async def test_a_bucket_refills_up_to_its_capacity(buckets: LookupBuckets) -> None:
    await buckets.take("ana", 50, POLICY, T0)
    later = await buckets.take("ana", 1, POLICY, T0 + timedelta(minutes=10))
    assert later.tokens == pytest.approx(50 + 20 - 1)
    much_later = await buckets.take("ana", 1, POLICY, T0 + timedelta(days=1))
    assert much_later.tokens == pytest.approx(99)


async def test_concurrent_takes_never_spend_the_same_tokens_twice(buckets: LookupBuckets) -> None:
    small = BucketPolicy(capacity=10, refill_per_minute=0.0001)
    results = await asyncio.gather(*(buckets.take("ana", 1, small, T0) for _ in range(25)))
    assert sum(r.allowed for r in results) == 10
    assert min(r.tokens for r in results if r.allowed) == pytest.approx(0)


async def test_a_claim_the_network_did_not_take_is_withdrawn(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana = await world.account("ana", BIA_CPF, "100-1")
    await world.give_key(PHONE, ispb=PEER)

    async def down(claim: KeyClaim) -> None:
        raise ServiceUnavailable("the directory is unavailable")

    monkeypatch.setattr(world.network, "open_claim", down)
    with pytest.raises(ServiceUnavailable):
        await opener(world)(claim_cmd("ana", ana, ClaimType.PORTABILITY))
    assert await world.stores.claims.active_for_key(PHONE) is None
    [withdrawn] = await world.stores.claims.list_by_owner("ana")
    assert withdrawn.status is ClaimStatus.CANCELLED
    monkeypatch.undo()
    again = await opener(world)(claim_cmd("ana", ana, ClaimType.PORTABILITY))
    assert again.status is ClaimStatus.WAITING_RESOLUTION
