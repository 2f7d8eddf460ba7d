"""Key claims when a step fails half-way, on every backend (memory, PostgreSQL, DynamoDB).

* A step and its event are exactly-once: on PostgreSQL with the outbox in the
  same database the claim and its outbox row are one transaction (an outbox
  that fails leaves the claim as it was); elsewhere a publisher that fails
  after the write leaves the claim marked unannounced, and the next touch
  publishes the event under its id: one event, never none.
* Completion moves the key *before* the claim says ``COMPLETED``: a move that
  fails leaves the claim ``CONFIRMED`` (a transient failure: ``completing``,
  finished by the next touch; a refusal: back to plain ``CONFIRMED``).
* A key with an active claim cannot be deleted (``PixKeyUnderClaim``).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from finbank_adapters.aws.dynamo_key_claims import DynamoKeyClaimStore
from finbank_adapters.aws.dynamo_pix_directory import DynamoKeyDirectory
from finbank_adapters.memory import FakeClock, InMemoryAccountRepository, InMemoryEventPublisher
from finbank_adapters.memory.ids import SequentialIdGenerator
from finbank_adapters.memory.pix import InMemoryKeyDirectory
from finbank_adapters.memory.pix_claims import InMemoryKeyClaimStore
from finbank_adapters.postgres.pix_claims import (
    PostgresClaimableKeyDirectory,
    PostgresKeyClaimStore,
)
from finbank_adapters.sandbox.claims import SimulatedDictClaims
from finbank_core.accounts.model import AccountKind, AccountStatus, CustomerAccount, HolderType
from finbank_core.pix.claims import (
    CancelReason,
    ClaimableKeyDirectory,
    ClaimStatus,
    ClaimType,
    IllegalKeyClaimTransition,
    KeyClaim,
    KeyClaimStore,
    PixKeyUnderClaim,
)
from finbank_core.pix.claims.events import (
    KEY_CLAIM_CANCELLED,
    KEY_CLAIM_COMPLETED,
    KEY_CLAIM_CONFIRMED,
    KEY_CLAIM_OPENED,
    KEY_CLAIM_WAITING_RESOLUTION,
)
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
    OpenKeyClaim,
    OpenKeyClaimCommand,
)
from finbank_core.pix.claims.use_cases.steps import ANNOUNCE_GRACE
from finbank_core.pix.codes.keys import PixKey
from finbank_core.pix.directory import DirectoryEntry, KeyRegistration, NewKeyRegistration
from finbank_core.pix.errors import PixKeyLimitReached, PixKeyNotFound
from finbank_core.pix.events import outcome_event_id
from finbank_core.pix.ledger_steps import PixEvents
from finbank_core.pix.use_cases import DeletePixKey, DeletePixKeyCommand, ListPixKeysQuery
from finbank_core.pix.use_cases.keys import ListPixKeys
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.events import EventEnvelope, decode_event
from tests.integration.dynamo_support import dynamodb_client, new_table, serial_moto_endpoint
from tests.postgres_support import isolated_schema

__all__ = ["serial_moto_endpoint"]  # fixture
#: ``postgres`` publishes after the write; ``postgres_outbox`` writes both in one transaction
BACKENDS = ["memory", "postgres", "postgres_outbox", "dynamodb"]
OURS = "99999999"
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)
ANA_CPF = "52998224725"
BIA_CPF = "11144477735"
PHONE = PixKey.parse("+5511988887777")


class FlakyPublisher(InMemoryEventPublisher):
    """Records events; refuses the next ``fail`` publications of the types in ``failing``."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: set[str] = set()

    async def publish(self, events: Sequence[EventEnvelope]) -> None:
        if any(event.type in self.failing for event in events):
            self.failing -= {event.type for event in events}
            raise ServiceUnavailable("the event bus did not take it")
        await super().publish(events)


@dataclass
class FlakyDirectory:
    """A claimable directory whose next transfers fail as told (or fail after moving)."""

    inner: ClaimableKeyDirectory
    #: raised by the next transfers, before the move
    fail_before: list[Exception] = field(default_factory=list)
    #: raised by the next transfers, after the move (a crash before the claim is marked)
    fail_after: list[Exception] = field(default_factory=list)

    async def register(
        self, registration: NewKeyRegistration, *, max_keys_per_account: int
    ) -> KeyRegistration:
        return await self.inner.register(registration, max_keys_per_account=max_keys_per_account)

    async def delete(self, key_id: uuid.UUID, owner_id: str) -> KeyRegistration:
        return await self.inner.delete(key_id, owner_id)

    async def lookup(self, key: PixKey) -> DirectoryEntry:
        return await self.inner.lookup(key)

    async def get(self, key: PixKey) -> KeyRegistration:
        return await self.inner.get(key)

    async def list_by_account(self, account_id: uuid.UUID) -> list[KeyRegistration]:
        return await self.inner.list_by_account(account_id)

    async def transfer(
        self, from_key_id: uuid.UUID, to: NewKeyRegistration, *, max_keys_per_account: int
    ) -> KeyRegistration:
        if self.fail_before:
            raise self.fail_before.pop(0)
        moved = await self.inner.transfer(
            from_key_id, to, max_keys_per_account=max_keys_per_account
        )
        if self.fail_after:
            raise self.fail_after.pop(0)
        return moved


@dataclass
class World:
    backend: str
    clock: FakeClock
    claims: KeyClaimStore
    directory: FlakyDirectory
    accounts: InMemoryAccountRepository
    publisher: FlakyPublisher
    steps: ClaimSteps
    pool: asyncpg.Pool | None = None

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

    async def give_key(self, key: PixKey, account: CustomerAccount) -> KeyRegistration:
        return await self.directory.register(
            NewKeyRegistration(
                id=uuid.uuid4(),
                key_type=key.type,
                key=key,
                ispb=OURS,
                branch="0001",
                account_number=account.number,
                account_kind=AccountKind.PAYMENT,
                holder_type=HolderType.INDIVIDUAL,
                holder_name=account.holder_name,
                holder_document=account.holder_document,
                created_at=self.clock.now(),
                account_id=account.id,
                owner_id=account.owner_id,
            ),
            max_keys_per_account=5,
        )

    async def events(self, type: str) -> list[EventEnvelope]:
        """The distinct events of ``type`` (by id) wherever this backend puts them."""
        found = list(self.publisher.applied(type))
        if self.pool is not None:
            rows = await self.pool.fetch("SELECT envelope FROM outbox WHERE type = $1", type)
            found += [decode_event(row["envelope"]) for row in rows]
        return list({event.event_id: event for event in found}.values())

    async def open_claim(self, claimer: CustomerAccount) -> KeyClaim:
        return await OpenKeyClaim(
            steps=self.steps, accounts=self.accounts, ids=SequentialIdGenerator()
        )(
            OpenKeyClaimCommand(
                owner_id=claimer.owner_id,
                account_id=claimer.id,
                claim_type=ClaimType.OWNERSHIP,
                key_type=PHONE.type,
                key=PHONE.value,
            )
        )

    async def holder(self) -> uuid.UUID | None:
        return (await self.directory.get(PHONE)).account_id


@pytest.fixture(params=BACKENDS)
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    clock = FakeClock(T0)
    publisher = FlakyPublisher()

    def build(
        claims: KeyClaimStore, inner: ClaimableKeyDirectory, pool: asyncpg.Pool | None
    ) -> World:
        directory = FlakyDirectory(inner)
        steps = ClaimSteps(
            ispb=OURS,
            store=claims,
            directory=directory,
            network=SimulatedDictClaims(),
            events=PixEvents(publisher=publisher, clock=clock, ids=SequentialIdGenerator()),
            clock=clock,
        )
        accounts = InMemoryAccountRepository()
        return World(request.param, clock, claims, directory, accounts, publisher, steps, pool)

    if request.param == "memory":
        yield build(InMemoryKeyClaimStore(), InMemoryKeyDirectory(random.Random(5)), None)
    elif request.param in ("postgres", "postgres_outbox"):
        dsn: str = request.getfixturevalue("postgres_dsn")
        async with isolated_schema(dsn, max_size=8) as (pool, _):
            outbox = request.param == "postgres_outbox"
            store = PostgresKeyClaimStore(pool, outbox=outbox)
            yield build(store, PostgresClaimableKeyDirectory(pool), pool if outbox else None)
    elif request.param == "dynamodb":
        endpoint: str = request.getfixturevalue("serial_moto_endpoint")
        async with dynamodb_client(endpoint) as client, new_table(client) as table:
            yield build(DynamoKeyClaimStore(client, table), DynamoKeyDirectory(client, table), None)
    else:  # pragma: no cover - each backend adds its branch
        raise AssertionError(request.param)


async def confirmed_claim(world: World) -> tuple[KeyClaim, CustomerAccount, CustomerAccount]:
    """Bia holds the phone key, Ana claims it, Bia confirms."""
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    await world.give_key(PHONE, bia)
    claim = await world.open_claim(ana)
    confirmed = await ConfirmKeyClaim(steps=world.steps)(
        ConfirmKeyClaimCommand(owner_id="bia", claim_id=claim.id)
    )
    assert confirmed.status is ClaimStatus.CONFIRMED
    return confirmed, bia, ana


def complete(world: World, claim: KeyClaim) -> CompleteKeyClaim:
    del claim
    return CompleteKeyClaim(steps=world.steps)


# -- 1. a step and its event, exactly once ------------------------------------------------


async def test_every_step_of_a_flow_has_exactly_one_event_under_its_derived_id(
    world: World,
) -> None:
    claim, _bia, ana = await confirmed_claim(world)
    done = await complete(world, claim)(CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id))
    assert done.status is ClaimStatus.COMPLETED
    assert await world.holder() == ana.id
    for type in (
        KEY_CLAIM_OPENED,
        KEY_CLAIM_WAITING_RESOLUTION,
        KEY_CLAIM_CONFIRMED,
        KEY_CLAIM_COMPLETED,
    ):
        [event] = await world.events(type)
        assert event.event_id == outcome_event_id(type, str(claim.id))
    if world.backend == "postgres_outbox":
        assert world.publisher.published == []  # every claim event went with its write
    stored = await world.claims.get(claim.id)
    assert stored.announced


async def test_a_publish_that_fails_after_the_write_is_made_good_by_the_next_touch(
    world: World,
) -> None:
    if world.backend == "postgres_outbox":
        pytest.skip("the event is written with the claim: the publisher is never called")
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    await world.give_key(PHONE, bia)
    claim = await world.open_claim(ana)
    world.publisher.failing = {KEY_CLAIM_CONFIRMED}
    confirm = ConfirmKeyClaim(steps=world.steps)
    command = ConfirmKeyClaimCommand(owner_id="bia", claim_id=claim.id)
    with pytest.raises(ServiceUnavailable):
        await confirm(command)  # stored, then the bus refused the event ("a crash in between")
    stored = await world.claims.get(claim.id)
    assert stored.status is ClaimStatus.CONFIRMED
    assert not stored.announced
    assert await world.events(KEY_CLAIM_CONFIRMED) == []
    # within the grace the writer may still be publishing: a touch leaves it to the writer
    world.clock.advance(seconds=ANNOUNCE_GRACE.total_seconds() - 1)
    await GetKeyClaim(steps=world.steps)(GetKeyClaimQuery(owner_id="ana", claim_id=claim.id))
    assert await world.events(KEY_CLAIM_CONFIRMED) == []
    world.clock.advance(seconds=1)  # exactly at the grace
    replay = await confirm(command)  # the retry answers the claim and publishes its event
    assert replay.status is ClaimStatus.CONFIRMED
    assert replay.announced
    [event] = await world.events(KEY_CLAIM_CONFIRMED)
    assert event.event_id == outcome_event_id(KEY_CLAIM_CONFIRMED, str(claim.id))
    for _ in range(3):  # later touches publish nothing more
        await GetKeyClaim(steps=world.steps)(GetKeyClaimQuery(owner_id="bia", claim_id=claim.id))
    assert len(world.publisher.of_type(KEY_CLAIM_CONFIRMED)) == 1


async def test_a_step_taken_over_a_lost_event_publishes_that_event_first(world: World) -> None:
    if world.backend == "postgres_outbox":
        pytest.skip("the event is written with the claim: the publisher is never called")
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    await world.give_key(PHONE, bia)
    claim = await world.open_claim(ana)
    world.publisher.failing = {KEY_CLAIM_CONFIRMED}
    with pytest.raises(ServiceUnavailable):
        await ConfirmKeyClaim(steps=world.steps)(
            ConfirmKeyClaimCommand(owner_id="bia", claim_id=claim.id)
        )
    # at once (within the grace), the claimer completes: the confirmation's event is not lost
    done = await complete(world, claim)(CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id))
    assert done.status is ClaimStatus.COMPLETED
    assert len(await world.events(KEY_CLAIM_CONFIRMED)) == 1
    assert len(await world.events(KEY_CLAIM_COMPLETED)) == 1


async def test_concurrent_touches_after_a_lost_event_publish_it_once(world: World) -> None:
    if world.backend == "postgres_outbox":
        pytest.skip("the event is written with the claim: the publisher is never called")
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    await world.give_key(PHONE, bia)
    claim = await world.open_claim(ana)
    world.publisher.failing = {KEY_CLAIM_CANCELLED}
    with pytest.raises(ServiceUnavailable):
        await CancelKeyClaim(steps=world.steps)(
            CancelKeyClaimCommand(owner_id="bia", claim_id=claim.id)
        )
    world.clock.advance(seconds=ANNOUNCE_GRACE.total_seconds())
    get = GetKeyClaim(steps=world.steps)
    seen = await asyncio.gather(
        *(get(GetKeyClaimQuery(owner_id="ana", claim_id=claim.id)) for _ in range(6))
    )
    assert {c.status for c in seen} == {ClaimStatus.CANCELLED}
    [event] = await world.events(KEY_CLAIM_CANCELLED)  # one id, however many touched it
    assert event.payload["status"] == "CANCELLED"
    assert (await world.claims.get(claim.id)).announced


async def test_on_postgres_an_outbox_that_fails_leaves_the_claim_as_it_was(
    world: World,
) -> None:
    if world.backend != "postgres_outbox":
        pytest.skip("the claim and its outbox row are one transaction on PostgreSQL only")
    assert world.pool is not None
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    await world.give_key(PHONE, bia)
    claim = await world.open_claim(ana)
    await world.pool.execute(
        """
        CREATE FUNCTION refuse_confirmed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.type = 'pix.key_claim_confirmed' THEN
                RAISE EXCEPTION 'outbox down';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_confirmed BEFORE INSERT ON outbox
            FOR EACH ROW EXECUTE FUNCTION refuse_confirmed();
        """
    )
    confirm = ConfirmKeyClaim(steps=world.steps)
    command = ConfirmKeyClaimCommand(owner_id="bia", claim_id=claim.id)
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the driver raises
        await confirm(command)
    kept = await world.claims.get(claim.id)
    assert kept.status is ClaimStatus.WAITING_RESOLUTION  # nothing half-written
    assert kept.version == claim.version
    assert await world.events(KEY_CLAIM_CONFIRMED) == []
    await world.pool.execute("DROP TRIGGER refuse_confirmed ON outbox")
    assert (await confirm(command)).status is ClaimStatus.CONFIRMED
    assert len(await world.events(KEY_CLAIM_CONFIRMED)) == 1


# -- 2. completion: the key moves, then the claim says so ---------------------------------------


async def test_a_move_that_fails_leaves_the_claim_confirmed_and_the_next_touch_finishes_it(
    world: World,
) -> None:
    claim, bia, ana = await confirmed_claim(world)
    world.directory.fail_before = [ServiceUnavailable("directory down")]
    with pytest.raises(ServiceUnavailable):
        await complete(world, claim)(CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id))
    stored = await world.claims.get(claim.id)
    assert stored.status is ClaimStatus.CONFIRMED  # never COMPLETED while the key has not moved
    assert stored.completing
    assert await world.holder() == bia.id
    assert await world.events(KEY_CLAIM_COMPLETED) == []
    with pytest.raises(IllegalKeyClaimTransition):  # a completion under way is not withdrawn
        await CancelKeyClaim(steps=world.steps)(
            CancelKeyClaimCommand(owner_id="ana", claim_id=claim.id, reason=CancelReason.FRAUD)
        )
    # the next touch (any read) moves the key and then marks the claim
    seen = await GetKeyClaim(steps=world.steps)(GetKeyClaimQuery(owner_id="bia", claim_id=claim.id))
    assert seen.status is ClaimStatus.COMPLETED
    assert not seen.completing
    assert await world.holder() == ana.id
    assert len(await world.events(KEY_CLAIM_COMPLETED)) == 1
    again = await complete(world, claim)(CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id))
    assert again.status is ClaimStatus.COMPLETED
    assert len(await world.events(KEY_CLAIM_COMPLETED)) == 1


async def test_a_crash_after_the_move_is_finished_by_the_next_touch_with_the_key_moved_once(
    world: World,
) -> None:
    claim, bia, ana = await confirmed_claim(world)
    world.directory.fail_after = [ServiceUnavailable("crashed before marking")]
    with pytest.raises(ServiceUnavailable):
        await complete(world, claim)(CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id))
    stored = await world.claims.get(claim.id)
    assert (stored.status, stored.completing) == (ClaimStatus.CONFIRMED, True)
    assert await world.holder() == ana.id  # moved; the claim says "completing", not "completed"
    # the completion period ends meanwhile: a completion under way is finished, not cancelled
    world.clock.set(claim.completion_ends_at + timedelta(days=1))
    done = await complete(world, claim)(CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id))
    assert done.status is ClaimStatus.COMPLETED
    assert [r.account_id for r in await world.directory.list_by_account(ana.id)] == [ana.id]
    assert await world.directory.list_by_account(bia.id) == []
    assert len(await world.events(KEY_CLAIM_COMPLETED)) == 1


async def test_a_move_the_directory_refuses_puts_the_claim_back_to_confirmed(world: World) -> None:
    claim, bia, _ana = await confirmed_claim(world)
    world.directory.fail_before = [PixKeyLimitReached("full", max_keys=5)]
    with pytest.raises(PixKeyLimitReached):
        await complete(world, claim)(CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id))
    stored = await world.claims.get(claim.id)
    assert (stored.status, stored.completing) == (ClaimStatus.CONFIRMED, False)
    assert await world.holder() == bia.id
    # the claimer may still withdraw it (fraud), or complete once there is room
    done = await complete(world, claim)(CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id))
    assert done.status is ClaimStatus.COMPLETED


async def test_concurrent_completions_with_a_failing_first_move_end_completed_once(
    world: World,
) -> None:
    claim, _bia, ana = await confirmed_claim(world)
    world.directory.fail_before = [ServiceUnavailable("blip")]
    results = await asyncio.gather(
        *(
            complete(world, claim)(CompleteKeyClaimCommand(owner_id="ana", claim_id=claim.id))
            for _ in range(5)
        ),
        return_exceptions=True,
    )
    assert any(isinstance(r, KeyClaim) for r in results) or all(
        isinstance(r, ServiceUnavailable) for r in results
    )
    final = await GetKeyClaim(steps=world.steps)(
        GetKeyClaimQuery(owner_id="ana", claim_id=claim.id)
    )
    assert final.status is ClaimStatus.COMPLETED
    assert await world.holder() == ana.id
    assert len(await world.events(KEY_CLAIM_COMPLETED)) == 1


# -- 3. a key under an active claim is not deleted ---------------------------------------------


def deleter(world: World) -> DeletePixKey:
    return DeletePixKey(
        directory=world.directory,
        events=PixEvents(publisher=world.publisher, clock=world.clock, ids=SequentialIdGenerator()),
        accounts=world.accounts,
        claims=world.claims,
    )


async def test_a_key_with_an_active_claim_is_not_deleted_until_the_claim_ends(
    world: World,
) -> None:
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    key = await world.give_key(PHONE, bia)
    claim = await world.open_claim(ana)
    delete = deleter(world)
    command = DeletePixKeyCommand(owner_id="bia", key_id=key.id)
    for status in ("waiting", "confirmed"):
        with pytest.raises(PixKeyUnderClaim) as refused:
            await delete(command)
        assert refused.value.details["field"] == "key_id"
        assert refused.value.details["claim_id"] == str(claim.id)
        assert PHONE.value not in str(refused.value)  # never the key in the message
        assert await world.holder() == bia.id, status
        if status == "waiting":
            await ConfirmKeyClaim(steps=world.steps)(
                ConfirmKeyClaimCommand(owner_id="bia", claim_id=claim.id)
            )
    # once the claim ends (here: the claimer withdraws for fraud) the key can go
    await CancelKeyClaim(steps=world.steps)(
        CancelKeyClaimCommand(owner_id="ana", claim_id=claim.id, reason=CancelReason.FRAUD)
    )
    removed = await delete(command)
    assert removed.id == key.id
    listed = await ListPixKeys(world.accounts, world.directory)(ListPixKeysQuery(owner_id="bia"))
    assert listed == []


async def test_deleting_an_unclaimed_key_and_someone_elses_key_behave_as_before(
    world: World,
) -> None:
    bia = await world.account("bia", BIA_CPF, "200-2")
    await world.account("ana", ANA_CPF, "100-1")
    key = await world.give_key(PHONE, bia)
    with pytest.raises(PixKeyNotFound):
        await deleter(world)(DeletePixKeyCommand(owner_id="ana", key_id=key.id))
    assert (await deleter(world)(DeletePixKeyCommand(owner_id="bia", key_id=key.id))).id == key.id


async def test_concurrent_deletions_under_a_claim_all_refused(world: World) -> None:
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    key = await world.give_key(PHONE, bia)
    await world.open_claim(ana)
    results = await asyncio.gather(
        *(deleter(world)(DeletePixKeyCommand(owner_id="bia", key_id=key.id)) for _ in range(6)),
        return_exceptions=True,
    )
    assert all(isinstance(r, PixKeyUnderClaim) for r in results)
    assert await world.holder() == bia.id


async def test_the_directory_itself_refuses_to_delete_a_key_with_an_active_claim(
    world: World,
) -> None:
    """The guard inside the deletion's own transaction (PostgreSQL, DynamoDB), not just the
    use case's look beforehand: a claim stored between that look and the delete still wins."""
    if world.backend == "memory":
        pytest.skip("in memory the use case's look and the delete are one step of the loop")
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    key = await world.give_key(PHONE, bia)
    claim = await world.open_claim(ana)
    with pytest.raises(PixKeyUnderClaim) as refused:
        await world.directory.inner.delete(key.id, "bia")  # no use case in front
    assert refused.value.details["field"] == "key_id"
    assert await world.holder() == bia.id
    await CancelKeyClaim(steps=world.steps)(
        CancelKeyClaimCommand(owner_id="bia", claim_id=claim.id)
    )
    assert (await world.directory.inner.delete(key.id, "bia")).id == key.id


async def test_a_claim_and_a_deletion_at_once_never_leave_a_claimed_key_deleted(
    world: World,
) -> None:
    bia = await world.account("bia", BIA_CPF, "200-2")
    ana = await world.account("ana", ANA_CPF, "100-1")
    key = await world.give_key(PHONE, bia)
    opened, deleted = await asyncio.gather(
        world.open_claim(ana),
        deleter(world)(DeletePixKeyCommand(owner_id="bia", key_id=key.id)),
        return_exceptions=True,
    )
    if isinstance(deleted, BaseException):
        assert isinstance(deleted, PixKeyUnderClaim)  # the claim came first: the key stays
        assert isinstance(opened, KeyClaim)
        assert await world.holder() == bia.id
    else:  # the deletion came first: the claim was refused, or opened on a key now free
        assert deleted.id == key.id
        if isinstance(opened, KeyClaim):
            done = await ConfirmKeyClaim(steps=world.steps)(
                ConfirmKeyClaimCommand(owner_id="bia", claim_id=opened.id)
            )
            finished = await complete(world, done)(
                CompleteKeyClaimCommand(owner_id="ana", claim_id=opened.id)
            )
            assert finished.status is ClaimStatus.COMPLETED
            assert await world.holder() == ana.id  # bound once, to the claimer
