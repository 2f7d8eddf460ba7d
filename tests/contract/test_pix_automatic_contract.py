"""Pix Automático on every backend: the ``RecurrenceStore`` contract and the flows over it.

Each backend runs with its own ledger and account repository (memory with
memory, PostgreSQL with PostgreSQL), so the debit layer also proves the
ledger steps on that backend. Three layers:

* the store's contract (versions, one charge per cycle, leases);
* the flows with a fake clock moved across each deadline (the 2-10 day
  window, the due date at 00:00 Brasília, the retry days, the journey-1
  request's expiry);
* concurrency: many callers on the same ids at once, then the final state
  checked as a whole (exactly one debit, money conserved, replays answered
  like the first).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest

from finbank_adapters.memory import (
    FakeClock,
    InMemoryAccountRepository,
    InMemoryEventPublisher,
    InMemoryLedger,
)
from finbank_adapters.memory.ids import SequentialIdGenerator
from finbank_adapters.memory.pix import InMemoryAccountLimitsStore, InMemoryChargeRepository
from finbank_adapters.memory.pix_automatic import InMemoryRecurrenceStore
from finbank_adapters.postgres import PostgresAccountRepository, PostgresLedger
from finbank_adapters.postgres.pix_automatic import PostgresRecurrenceStore
from finbank_adapters.postgres.pix_records import PostgresAccountLimitsStore
from finbank_adapters.sandbox import PEER_ACCOUNT_NUMBER, SimulatedSpi, sandbox_peer
from finbank_adapters.sandbox.recurrences import SandboxRecurrenceNetwork
from finbank_core.accounts.ledger import Transfer, TransferCode
from finbank_core.accounts.model import CustomerAccount
from finbank_core.accounts.ports import AccountRepository, Ledger
from finbank_core.accounts.use_cases import (
    BankAccounts,
    EnsureBankAccounts,
    OpenAccount,
    OpenAccountCommand,
)
from finbank_core.pix.automatic import (
    AttemptStatus,
    AuthoriseRecurrence,
    AuthoriseRecurrenceCommand,
    CancelRecurrence,
    CancelRecurrenceCommand,
    CancelRecurringCharge,
    CancelRecurringChargeCommand,
    ChargeNotCancellable,
    ChargeOutsideWindow,
    ChargeStatus,
    CreateRecurrence,
    CreateRecurrenceCommand,
    DuplicateRecurringCharge,
    ExecuteDebitCommand,
    ExecuteDueDebit,
    IssueRecurrenceCode,
    Journey,
    Party,
    Periodicity,
    RecordRecurrenceAnswer,
    Recurrence,
    RecurrenceClerk,
    RecurrenceCodeQuery,
    RecurrenceNotActive,
    RecurrenceNotFound,
    RecurrenceRequestExpired,
    RecurrenceStatus,
    RecurrenceStore,
    RecurringCharge,
    RecurringChargeNotFound,
    RejectRecurrence,
    RejectRecurrenceCommand,
    RequestAuthorisation,
    RequestAuthorisationCommand,
    RetryPolicy,
    RunDueDebits,
    RunDueDebitsCommand,
    ScheduleCharge,
    ScheduleChargeCommand,
    StaleAutomaticRecord,
)
from finbank_core.pix.automatic import events as automatic_events
from finbank_core.pix.automatic.model import BRASILIA, StatusChange
from finbank_core.pix.ledger_steps import PixEvents, PixLedgerSteps
from finbank_core.pix.ports import AccountLimitsStore
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.money import Money
from tests.postgres_support import isolated_schema

BACKENDS = ["memory", "postgres"]
CALLERS = 24
POOL_SIZE = 10
ISPB = "99999999"
PEER_ISPB = "88888888"
BASE = "pix.finbank.example/v2"
CPF = "52998224725"
# FakeClock starts 2026-01-05 12:00 UTC (09:00 in Brasília, a Monday)
TODAY = date(2026, 1, 5)


def brasilia(day: date, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=BRASILIA)


@dataclass
class World:
    store: RecurrenceStore
    ledger: Ledger
    accounts: AccountRepository
    clock: FakeClock
    usage: AccountLimitsStore = field(default_factory=InMemoryAccountLimitsStore)
    publisher: InMemoryEventPublisher = field(default_factory=InMemoryEventPublisher)
    ids: SequentialIdGenerator = field(default_factory=SequentialIdGenerator)

    def __post_init__(self) -> None:
        self.events = PixEvents(self.publisher, self.clock, self.ids)
        self.steps = PixLedgerSteps(self.ledger)
        self.create = CreateRecurrence(
            store=self.store,
            accounts=self.accounts,
            events=self.events,
            clock=self.clock,
            ids=self.ids,
            ispb=ISPB,
            location_base_url=BASE,
        )
        self.request = RequestAuthorisation(
            store=self.store,
            accounts=self.accounts,
            events=self.events,
            clock=self.clock,
            ids=self.ids,
            ispb=ISPB,
        )
        self.authorise = AuthoriseRecurrence(
            store=self.store,
            accounts=self.accounts,
            events=self.events,
            clock=self.clock,
            location_base_url=BASE,
        )
        self.reject = RejectRecurrence(
            store=self.store, events=self.events, clock=self.clock, location_base_url=BASE
        )
        self.cancel = CancelRecurrence(store=self.store, events=self.events, clock=self.clock)
        self.schedule = ScheduleCharge(
            store=self.store, events=self.events, clock=self.clock, ids=self.ids
        )
        self.execute = ExecuteDueDebit(
            store=self.store,
            steps=self.steps,
            events=self.events,
            clock=self.clock,
            ispb=ISPB,
            usage=self.usage,
        )
        self.run_due = RunDueDebits(store=self.store, execute=self.execute, clock=self.clock)

    async def customer(self, owner: str, cents: int = 0) -> CustomerAccount:
        await EnsureBankAccounts(self.ledger)()
        account = await OpenAccount(
            ledger=self.ledger,
            accounts=self.accounts,
            publisher=self.publisher,
            clock=self.clock,
            ids=self.ids,
        )(OpenAccountCommand(owner_id=owner, holder_name=f"{owner.title()} Ltda"))
        if cents:
            await self.fund(account.id, cents)
        return account

    async def fund(self, account_id: uuid.UUID, cents: int) -> None:
        await self.ledger.create_transfers(
            [
                Transfer(
                    id=uuid.uuid4(),
                    debit_account_id=BankAccounts.CASH,
                    credit_account_id=account_id,
                    amount=cents,
                    code=TransferCode.DEPOSIT,
                )
            ]
        )

    async def available(self, account_id: uuid.UUID) -> int:
        [account] = await self.ledger.lookup_accounts([account_id])
        return account.balance_available

    async def assert_conserved(self, *accounts: uuid.UUID) -> None:
        ids = [a.id for a in BankAccounts.all()] + list(accounts)
        found = await self.ledger.lookup_accounts(ids)
        assert sum(a.debits_posted for a in found) == sum(a.credits_posted for a in found)
        assert sum(a.debits_pending for a in found) == sum(a.credits_pending for a in found)
        for account in found:
            if account.id in accounts:
                assert account.balance_available >= 0

    def types(self) -> list[str]:
        return [e.type for e in self.publisher.published if e.type.startswith("pix.automatic.")]

    async def recurrence(
        self,
        receiver: CustomerAccount,
        *,
        fixed: int | None = 50_00,
        minimum: int | None = None,
        retry: RetryPolicy = RetryPolicy.PERMITE_3R_7D,
        periodicity: Periodicity = Periodicity.MENSAL,
        start: date = TODAY,
        end: date | None = None,
    ) -> Recurrence:
        return await self.create(
            CreateRecurrenceCommand(
                owner_id=receiver.owner_id,
                account_id=receiver.id,
                contract="CT-2026-001",
                purpose="Mensalidade",
                debtor_name="Ana Souza",
                debtor_document=CPF,
                periodicity=periodicity,
                start=start,
                end=end,
                retry_policy=retry,
                fixed_amount=None if fixed is None else Money(fixed),
                min_amount=None if minimum is None else Money(minimum),
            )
        )

    async def approved(
        self,
        receiver: CustomerAccount,
        payer: CustomerAccount,
        *,
        max_amount: int | None = None,
        **terms: object,
    ) -> Recurrence:
        recurrence = await self.recurrence(receiver, **terms)  # type: ignore[arg-type]
        code = await IssueRecurrenceCode(
            store=self.store, charges=InMemoryChargeRepository(), location_base_url=BASE
        )(RecurrenceCodeQuery(owner_id=receiver.owner_id, recurrence_id=recurrence.recurrence_id))
        return await self.authorise(
            AuthoriseRecurrenceCommand(
                owner_id=payer.owner_id,
                account_id=payer.id,
                br_code=code.br_code,
                max_amount=None if max_amount is None else Money(max_amount),
            )
        )

    async def charge(
        self,
        recurrence: Recurrence,
        *,
        due: date,
        cents: int = 50_00,
        txid: str | None = None,
    ) -> RecurringCharge:
        result = await self.schedule(
            ScheduleChargeCommand(
                owner_id=recurrence.receiver_owner_id,
                recurrence_id=recurrence.recurrence_id,
                amount=Money(cents),
                due_date=due,
                txid=txid,
            )
        )
        return result.charge

    async def run(self, txid: str) -> RecurringCharge:
        return await self.execute(ExecuteDebitCommand(txid=txid))


@pytest.fixture(params=BACKENDS)
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    clock = FakeClock()
    if request.param == "memory":
        yield World(
            InMemoryRecurrenceStore(),
            InMemoryLedger(clock, InMemoryEventPublisher()),
            InMemoryAccountRepository(),
            clock,
            InMemoryAccountLimitsStore(),
        )
    elif request.param == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
        async with isolated_schema(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE) as (pool, _):
            yield World(
                PostgresRecurrenceStore(pool),
                PostgresLedger(pool, clock),
                PostgresAccountRepository(pool),
                clock,
                PostgresAccountLimitsStore(pool),
            )
    else:  # pragma: no cover
        raise AssertionError(request.param)


@pytest.fixture
async def parties(world: World) -> tuple[CustomerAccount, CustomerAccount]:
    receiver = await world.customer("gym")
    payer = await world.customer("ana", 200_00)
    return receiver, payer


# -- the store's contract ----------------------------------------------------------


async def test_recurrences_are_versioned_and_a_stale_write_changes_nothing(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, _ = parties
    created = await world.recurrence(receiver)
    assert created.version == 1
    assert await world.store.get_recurrence(created.recurrence_id) == created
    assert await world.store.get_recurrence("RR9999999920260105nothere0000") is None

    moved = await world.store.update_recurrence(
        created.cancelled(world.clock.now(), Party.USUARIO_RECEBEDOR, "test")
    )
    assert moved.version == 2
    with pytest.raises(StaleAutomaticRecord):
        await world.store.update_recurrence(
            created.cancelled(world.clock.now(), Party.USUARIO_RECEBEDOR, "late")
        )
    stored = await world.store.get_recurrence(created.recurrence_id)
    assert stored is not None
    assert stored.end_reason == "test"
    assert stored.version == 2
    with pytest.raises(StaleAutomaticRecord):
        await world.store.add_recurrence(created)
    ghost = msgspec.structs.replace(created, recurrence_id="RN9999999920260105ghost000000")
    with pytest.raises(RecurrenceNotFound):
        await world.store.update_recurrence(ghost)


async def test_recurrences_are_listed_by_receiver_and_by_payer(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    first = await world.approved(receiver, payer, fixed=None)
    world.clock.advance(seconds=1)
    second = await world.recurrence(receiver)

    by_receiver = await world.store.list_recurrences(receiver_owner_id=receiver.owner_id)
    assert [r.recurrence_id for r in by_receiver] == [first.recurrence_id, second.recurrence_id]
    by_payer = await world.store.list_recurrences(payer_owner_id=payer.owner_id)
    assert [r.recurrence_id for r in by_payer] == [first.recurrence_id]
    assert await world.store.list_recurrences(payer_owner_id=receiver.owner_id) == []


async def test_one_live_charge_per_cycle_and_txids_are_unique(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer, fixed=None, max_amount=80_00)
    due = TODAY + timedelta(days=5)
    first = await world.charge(recurrence, due=due, cents=50_00)
    assert first.status is ChargeStatus.ATIVA
    assert first.version == 1

    with pytest.raises(DuplicateRecurringCharge) as period:
        await world.charge(recurrence, due=due + timedelta(days=1), cents=50_00)
    assert period.value.details["field"] == "due_date"
    clash = msgspec.structs.replace(first, recurrence_id=first.recurrence_id, cycle=first.cycle + 1)
    with pytest.raises(DuplicateRecurringCharge) as taken:
        await world.store.add_charge(clash)
    assert taken.value.details["field"] == "txid"
    assert [c.txid for c in await world.store.list_charges(recurrence.recurrence_id)] == [
        first.txid
    ]

    # cancelled, it frees its period for another charge
    cancelled = await world.store.update_charge(
        first.moved(ChargeStatus.CANCELADA, world.clock.now(), next_attempt_on=None)
    )
    assert cancelled.version == 2
    again = await world.charge(recurrence, due=due + timedelta(days=1), cents=50_00)
    assert again.cycle == first.cycle
    with pytest.raises(StaleAutomaticRecord):
        await world.store.update_charge(first)  # version 1 is stale


async def test_a_lease_hands_each_due_charge_to_one_holder_until_it_runs_out(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(
        receiver, payer, periodicity=Periodicity.SEMANAL, end=TODAY + timedelta(days=60)
    )
    a = await world.charge(recurrence, due=TODAY + timedelta(days=3))
    b = await world.charge(recurrence, due=TODAY + timedelta(days=10))
    now = brasilia(TODAY + timedelta(days=3), 1)

    async def lease(holder: str, at: datetime, day: date) -> list[str]:
        return await world.store.lease_due_charges(
            today=day, now=at, lease_until=at + timedelta(seconds=60), holder=holder, limit=10
        )

    assert await lease("w1", now, TODAY + timedelta(days=2)) == []  # nothing due yet
    assert await lease("w1", now, TODAY + timedelta(days=3)) == [a.txid]
    assert await lease("w2", now, TODAY + timedelta(days=3)) == []  # leased to w1
    at_expiry = now + timedelta(seconds=60)
    assert await lease("w2", at_expiry, TODAY + timedelta(days=10)) == [a.txid, b.txid]
    assert await world.store.get_charge(a.txid) == a  # a lease changes no record


# -- the flows, on the clock --------------------------------------------------------------


async def test_a_recurrence_from_qr_to_debit_on_its_due_date(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer)
    assert (recurrence.status, recurrence.journey) == (RecurrenceStatus.APROVADA, Journey.JORNADA_2)
    assert recurrence.authorisation is not None
    assert recurrence.authorisation.payer_account_id == payer.id
    due = TODAY + timedelta(days=4)
    charge = await world.charge(recurrence, due=due)
    assert (charge.status, charge.next_attempt_on) == (ChargeStatus.ATIVA, due)

    world.clock.set(brasilia(due) - timedelta(seconds=1))  # 23:59:59 the day before
    assert (await world.run(charge.txid)).status is ChargeStatus.ATIVA
    assert await world.available(payer.id) == 200_00

    world.clock.set(brasilia(due))  # 00:00 on the due date
    done = await world.run(charge.txid)
    assert done.status is ChargeStatus.CONCLUIDA
    assert [a.status for a in done.attempts] == [AttemptStatus.SETTLED]
    assert await world.available(payer.id) == 150_00
    assert await world.available(receiver.id) == 50_00
    assert (await world.run(charge.txid)) == done  # again: nothing moves
    assert await world.available(payer.id) == 150_00
    await world.assert_conserved(payer.id, receiver.id)
    assert world.types() == [
        automatic_events.RECURRENCE_CREATED,
        automatic_events.RECURRENCE_APPROVED,
        automatic_events.CHARGE_SCHEDULED,
        automatic_events.CHARGE_CONCLUDED,
        automatic_events.CHARGE_CONCLUDED,  # republished under the same id
    ]
    concluded = [
        e for e in world.publisher.published if e.type == automatic_events.CHARGE_CONCLUDED
    ]
    assert concluded[0].event_id == concluded[1].event_id


@pytest.mark.parametrize(("ahead", "allowed"), [(1, False), (2, True), (10, True), (11, False)])
async def test_a_charge_is_sent_two_to_ten_days_before_its_due_date(
    world: World, parties: tuple[CustomerAccount, CustomerAccount], ahead: int, allowed: bool
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer)
    due = TODAY + timedelta(days=ahead)
    if allowed:
        assert (await world.charge(recurrence, due=due)).due_date == due
    else:
        with pytest.raises(ChargeOutsideWindow) as refused:
            await world.charge(recurrence, due=due)
        assert refused.value.details["field"] == "due_date"
        assert await world.store.list_charges(recurrence.recurrence_id) == []


async def test_the_window_counts_brasilia_days(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer, periodicity=Periodicity.SEMANAL)
    # 02:59:59 UTC on the 6th is still the 5th in Brasília: the 16th is 11 days ahead
    world.clock.set(datetime(2026, 1, 6, 2, 59, 59, tzinfo=UTC))
    with pytest.raises(ChargeOutsideWindow):
        await world.charge(recurrence, due=date(2026, 1, 16))
    assert (await world.charge(recurrence, due=date(2026, 1, 7))).due_date == date(2026, 1, 7)
    world.clock.set(datetime(2026, 1, 6, 3, 0, tzinfo=UTC))  # 00:00 on the 6th in Brasília
    assert (await world.charge(recurrence, due=date(2026, 1, 16))).due_date == date(2026, 1, 16)


async def test_short_funds_are_retried_three_times_in_seven_days_then_the_charge_expires(
    world: World,
) -> None:
    receiver = await world.customer("gym")
    payer = await world.customer("ana", 10_00)
    recurrence = await world.approved(receiver, payer, retry=RetryPolicy.PERMITE_3R_7D)
    due = TODAY + timedelta(days=3)
    charge = await world.charge(recurrence, due=due)

    days = []
    for offset in range(10):
        world.clock.set(brasilia(due + timedelta(days=offset), 1))
        charge = await world.run(charge.txid)
        days.append((offset, len(charge.attempts), charge.status))
    # the scheduler runs at 01:00 only, so each day's same-day retry (18:00) is missed
    assert days[:5] == [
        (0, 1, ChargeStatus.ATIVA),
        (1, 2, ChargeStatus.ATIVA),
        (2, 3, ChargeStatus.ATIVA),
        (3, 4, ChargeStatus.ATIVA),
        (4, 4, ChargeStatus.EXPIRADA),
    ]
    assert all(n == 4 and s is ChargeStatus.EXPIRADA for _, n, s in days[4:])
    assert [a.status for a in charge.attempts] == [AttemptStatus.FAILED] * 4
    assert {a.reason for a in charge.attempts} == {"insufficient_funds"}
    assert len({a.end_to_end_id for a in charge.attempts}) == 4
    assert await world.available(payer.id) == 10_00
    assert world.types().count(automatic_events.DEBIT_FAILED) == 4
    assert world.types().count(automatic_events.CHARGE_EXPIRED) >= 1
    await world.assert_conserved(payer.id, receiver.id)


async def test_without_retries_one_short_attempt_expires_the_charge(world: World) -> None:
    receiver = await world.customer("gym")
    payer = await world.customer("ana", 10_00)
    recurrence = await world.approved(receiver, payer, retry=RetryPolicy.NAO_PERMITE)
    assert recurrence.recurrence_id.startswith("RN")
    charge = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    world.clock.set(brasilia(charge.due_date, 1))
    charge = await world.run(charge.txid)
    # the same-day retry (18:00-21:00) is not one of the policy's retries
    assert (charge.status, len(charge.attempts)) == (ChargeStatus.ATIVA, 1)
    assert charge.next_attempt_at == brasilia(charge.due_date, 18)
    world.clock.set(brasilia(charge.due_date, 18))
    charge = await world.run(charge.txid)
    assert (charge.status, len(charge.attempts)) == (ChargeStatus.EXPIRADA, 2)
    await world.fund(payer.id, 100_00)
    world.clock.advance(days=1)
    assert (await world.run(charge.txid)).attempts == charge.attempts
    assert await world.available(payer.id) == 110_00


async def test_a_retry_after_the_payer_is_funded_settles(world: World) -> None:
    receiver = await world.customer("gym")
    payer = await world.customer("ana", 10_00)
    recurrence = await world.approved(receiver, payer)
    charge = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    world.clock.set(brasilia(charge.due_date, 1))
    charge = await world.run(charge.txid)
    assert (charge.next_attempt_on, charge.next_attempt_at) == (
        charge.due_date,
        brasilia(charge.due_date, 18),
    )
    await world.fund(payer.id, 100_00)
    world.clock.set(brasilia(charge.due_date, 23, 59, 59))  # its same-day window has closed
    assert len((await world.run(charge.txid)).attempts) == 1
    world.clock.set(brasilia(charge.due_date + timedelta(days=1)))
    done = await world.run(charge.txid)
    assert done.status is ChargeStatus.CONCLUIDA
    assert [a.status for a in done.attempts] == [AttemptStatus.FAILED, AttemptStatus.SETTLED]
    assert await world.available(payer.id) == 60_00
    assert await world.available(receiver.id) == 50_00


async def test_an_attempt_runs_until_the_last_retry_day_and_not_after(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(
        receiver, payer, periodicity=Periodicity.SEMANAL, retry=RetryPolicy.PERMITE_3R_7D
    )
    first = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    second = await world.charge(recurrence, due=TODAY + timedelta(days=9))
    world.clock.set(brasilia(first.due_date + timedelta(days=7), 21))  # its last day, 21:00
    assert (await world.run(first.txid)).attempts == ()  # outside the day's windows
    world.clock.set(brasilia(first.due_date + timedelta(days=7), 20, 59, 59))
    assert (await world.run(first.txid)).status is ChargeStatus.CONCLUIDA
    world.clock.set(brasilia(second.due_date + timedelta(days=8)))  # the day after its last
    late = await world.run(second.txid)
    assert (late.status, late.reason, late.attempts) == (
        ChargeStatus.EXPIRADA,
        "not_run_in_time",
        (),
    )
    assert await world.available(payer.id) == 150_00
    await world.assert_conserved(payer.id, receiver.id)


@pytest.mark.parametrize(
    ("hour", "minute", "second", "runs"),
    [
        (0, 0, 0, True),
        (7, 59, 59, True),
        (8, 0, 0, False),
        (17, 59, 59, False),
        (18, 0, 0, True),
        (20, 59, 59, True),
        (21, 0, 0, False),
    ],
)
async def test_the_first_attempt_starts_only_in_the_days_windows(
    world: World,
    parties: tuple[CustomerAccount, CustomerAccount],
    hour: int,
    minute: int,
    second: int,
    runs: bool,
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer)
    charge = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    world.clock.set(brasilia(charge.due_date, hour, minute, second))
    after = await world.run(charge.txid)
    assert (after.status is ChargeStatus.CONCLUIDA) is runs
    assert await world.available(payer.id) == (150_00 if runs else 200_00)


async def test_a_failed_morning_attempt_is_retried_once_from_18_the_same_day(
    world: World,
) -> None:
    receiver = await world.customer("gym")
    payer = await world.customer("ana", 10_00)
    recurrence = await world.approved(receiver, payer, retry=RetryPolicy.PERMITE_3R_7D)
    charge = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    due = charge.due_date
    world.clock.set(brasilia(due, 7, 59, 59))
    assert len((await world.run(charge.txid)).attempts) == 1
    await world.fund(payer.id, 100_00)
    world.clock.set(brasilia(due, 17, 59, 59))  # just before the evening window
    assert len((await world.run(charge.txid)).attempts) == 1
    world.clock.set(brasilia(due, 18))  # exactly when it opens
    done = await world.run(charge.txid)
    assert done.status is ChargeStatus.CONCLUIDA
    assert [(a.on, a.status) for a in done.attempts] == [
        (due, AttemptStatus.FAILED),
        (due, AttemptStatus.SETTLED),
    ]
    assert await world.available(payer.id) == 60_00


async def test_the_same_day_retry_does_not_use_one_of_the_three_retry_days(
    world: World,
) -> None:
    receiver = await world.customer("gym")
    payer = await world.customer("ana", 10_00)
    recurrence = await world.approved(receiver, payer, retry=RetryPolicy.PERMITE_3R_7D)
    charge = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    seen = []
    for offset in range(5):
        for hour in (1, 19):
            world.clock.set(brasilia(charge.due_date + timedelta(days=offset), hour))
            charge = await world.run(charge.txid)
            seen.append((offset, hour, len(charge.attempts), charge.status))
    # two a day (morning, evening) on the due date and on each of the 3 retry days
    assert seen[-3] == (3, 19, 8, ChargeStatus.EXPIRADA)
    assert seen[5] == (2, 19, 6, ChargeStatus.ATIVA)
    assert len({a.on for a in charge.attempts}) == 4
    assert await world.available(payer.id) == 10_00
    await world.assert_conserved(payer.id, receiver.id)


async def test_a_charge_over_the_payers_maximum_is_rejected(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer, fixed=None, minimum=10_00, max_amount=60_00)
    over = await world.charge(recurrence, due=TODAY + timedelta(days=3), cents=60_01)
    assert (over.status, over.reason, over.next_attempt_on) == (
        ChargeStatus.REJEITADA,
        "amount_over_payer_maximum",
        None,
    )
    at_max = await world.charge(recurrence, due=TODAY + timedelta(days=3), cents=60_00)
    assert at_max.status is ChargeStatus.ATIVA  # the rejected one freed its period
    world.clock.set(brasilia(at_max.due_date, 2))
    assert (await world.run(over.txid)).status is ChargeStatus.REJEITADA
    assert (await world.run(at_max.txid)).status is ChargeStatus.CONCLUIDA
    assert await world.available(payer.id) == 140_00
    assert automatic_events.CHARGE_REJECTED in world.types()


async def test_the_payer_cancels_and_charges_not_run_are_cancelled(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer)
    charge = await world.charge(recurrence, due=TODAY + timedelta(days=3))
    with pytest.raises(RecurrenceNotFound):  # a stranger
        await world.cancel(
            CancelRecurrenceCommand(owner_id="eve", recurrence_id=charge.recurrence_id)
        )
    cancelled = await world.cancel(
        CancelRecurrenceCommand(owner_id=payer.owner_id, recurrence_id=recurrence.recurrence_id)
    )
    assert (cancelled.status, cancelled.ended_by) == (
        RecurrenceStatus.CANCELADA,
        Party.USUARIO_PAGADOR,
    )
    stored = await world.store.get_charge(charge.txid)
    assert stored is not None
    assert stored.status is ChargeStatus.CANCELADA
    world.clock.set(brasilia(charge.due_date, 1))
    assert (await world.run(charge.txid)).status is ChargeStatus.CANCELADA
    assert await world.available(payer.id) == 200_00
    with pytest.raises(RecurrenceNotActive):
        await world.charge(recurrence, due=charge.due_date + timedelta(days=1))
    with pytest.raises(RecurrenceNotActive):  # cancelling twice
        await world.cancel(
            CancelRecurrenceCommand(
                owner_id=receiver.owner_id, recurrence_id=recurrence.recurrence_id
            )
        )


async def test_the_payer_rejects_a_code_and_it_can_no_longer_be_authorised(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.recurrence(receiver)
    code = await IssueRecurrenceCode(
        store=world.store, charges=InMemoryChargeRepository(), location_base_url=BASE
    )(RecurrenceCodeQuery(owner_id=receiver.owner_id, recurrence_id=recurrence.recurrence_id))
    rejected = await world.reject(
        RejectRecurrenceCommand(owner_id=payer.owner_id, br_code=code.br_code)
    )
    assert rejected.status is RecurrenceStatus.REJEITADA
    with pytest.raises(RecurrenceNotActive):
        await world.authorise(
            AuthoriseRecurrenceCommand(
                owner_id=payer.owner_id, account_id=payer.id, br_code=code.br_code
            )
        )


async def request_of(
    world: World, recurrence: Recurrence, payer: CustomerAccount, deadline: datetime
) -> Recurrence:
    """Journey 1: the receiver asks ``payer`` to authorise ``recurrence`` by ``deadline``."""
    return await world.request(
        RequestAuthorisationCommand(
            owner_id=recurrence.receiver_owner_id,
            recurrence_id=recurrence.recurrence_id,
            payer_branch=payer.branch,
            payer_account_number=payer.number,
            expires_at=deadline,
        )
    )


async def test_a_journey_one_request_lapses_exactly_at_its_deadline(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    first = await world.recurrence(receiver)
    second = await world.recurrence(receiver)
    deadline = world.clock.now() + timedelta(days=3)
    for recurrence in (first, second):
        requested = await request_of(world, recurrence, payer, deadline)
        assert requested.journey is Journey.JORNADA_1
    assert len(await world.store.list_recurrences(payer_owner_id=payer.owner_id)) == 2
    with pytest.raises(RecurrenceNotFound):  # addressed to ana only
        await world.authorise(
            AuthoriseRecurrenceCommand(
                owner_id=receiver.owner_id,
                account_id=receiver.id,
                recurrence_id=first.recurrence_id,
            )
        )

    world.clock.set(deadline - timedelta(microseconds=1))
    ok = await world.authorise(
        AuthoriseRecurrenceCommand(
            owner_id=payer.owner_id, account_id=payer.id, recurrence_id=first.recurrence_id
        )
    )
    assert (ok.status, ok.journey) == (RecurrenceStatus.APROVADA, Journey.JORNADA_1)
    world.clock.set(deadline)
    with pytest.raises(RecurrenceRequestExpired):
        await world.authorise(
            AuthoriseRecurrenceCommand(
                owner_id=payer.owner_id, account_id=payer.id, recurrence_id=second.recurrence_id
            )
        )
    lapsed = await world.store.get_recurrence(second.recurrence_id)
    assert lapsed is not None
    assert lapsed.status is RecurrenceStatus.EXPIRADA
    assert automatic_events.RECURRENCE_EXPIRED in world.types()


async def test_a_journey_one_request_rejected_at_its_deadline_has_lapsed_instead(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    # The payer's refusal is an answer too: at or after the deadline the request has
    # lapsed (EXPIRADA, recurrence_expired), as an authorisation then finds it.
    receiver, payer = parties
    deadline = world.clock.now() + timedelta(days=3)
    in_time, at_deadline, later = [
        await request_of(world, await world.recurrence(receiver), payer, deadline) for _ in range(3)
    ]

    world.clock.set(deadline - timedelta(microseconds=1))
    refused = await world.reject(
        RejectRecurrenceCommand(owner_id=payer.owner_id, recurrence_id=in_time.recurrence_id)
    )
    assert refused.status is RecurrenceStatus.REJEITADA
    for recurrence, at in ((at_deadline, deadline), (later, deadline + timedelta(days=1))):
        world.clock.set(at)
        with pytest.raises(RecurrenceRequestExpired):
            await world.reject(
                RejectRecurrenceCommand(
                    owner_id=payer.owner_id, recurrence_id=recurrence.recurrence_id
                )
            )
        lapsed = await world.store.get_recurrence(recurrence.recurrence_id)
        assert lapsed is not None
        assert lapsed.status is RecurrenceStatus.EXPIRADA
    assert world.types().count(automatic_events.RECURRENCE_REJECTED) == 1
    assert world.types().count(automatic_events.RECURRENCE_EXPIRED) == 2


# -- concurrency ----------------------------------------------------------------------------


async def test_the_same_due_debit_run_by_many_callers_debits_once(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer)
    charge = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    world.clock.set(brasilia(charge.due_date, 0, 5))

    results = await asyncio.gather(*(world.run(charge.txid) for _ in range(CALLERS)))

    assert {r.status for r in results} == {ChargeStatus.CONCLUIDA}
    assert {r.attempts for r in results} == {results[0].attempts}
    assert len(results[0].attempts) == 1
    assert await world.available(payer.id) == 150_00
    assert await world.available(receiver.id) == 50_00
    await world.assert_conserved(payer.id, receiver.id)
    concluded = {
        e.event_id for e in world.publisher.published if e.type == automatic_events.CHARGE_CONCLUDED
    }
    assert len(concluded) == 1


async def test_many_short_runs_at_once_record_one_failed_attempt_a_day(world: World) -> None:
    receiver = await world.customer("gym")
    payer = await world.customer("ana", 10_00)
    recurrence = await world.approved(receiver, payer)
    charge = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    world.clock.set(brasilia(charge.due_date, 1))

    results = await asyncio.gather(*(world.run(charge.txid) for _ in range(CALLERS)))

    final = await world.store.get_charge(charge.txid)
    assert final is not None
    assert [a.status for a in final.attempts] == [AttemptStatus.FAILED]
    assert {len(r.attempts) for r in results} == {1}
    assert await world.available(payer.id) == 10_00
    await world.assert_conserved(payer.id, receiver.id)


async def test_authorising_and_cancelling_the_same_recurrence_at_once(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.recurrence(receiver)
    code = await IssueRecurrenceCode(
        store=world.store, charges=InMemoryChargeRepository(), location_base_url=BASE
    )(RecurrenceCodeQuery(owner_id=receiver.owner_id, recurrence_id=recurrence.recurrence_id))

    async def authorise() -> str:
        try:
            await world.authorise(
                AuthoriseRecurrenceCommand(
                    owner_id=payer.owner_id, account_id=payer.id, br_code=code.br_code
                )
            )
            return "approved"
        except RecurrenceNotActive:
            return "refused"

    async def cancel() -> str:
        try:
            await world.cancel(
                CancelRecurrenceCommand(
                    owner_id=receiver.owner_id, recurrence_id=recurrence.recurrence_id
                )
            )
            return "cancelled"
        except RecurrenceNotActive:
            return "refused"

    outcomes = await asyncio.gather(*(authorise() if n % 2 else cancel() for n in range(CALLERS)))

    final = await world.store.get_recurrence(recurrence.recurrence_id)
    assert final is not None
    assert final.status is RecurrenceStatus.CANCELADA
    assert outcomes.count("cancelled") == 1
    assert outcomes.count("approved") <= 1
    statuses = [change.status for change in final.history]
    assert statuses in (["CANCELADA"], ["APROVADA", "CANCELADA"])
    assert world.types().count(automatic_events.RECURRENCE_CANCELLED) == 1
    assert world.types().count(automatic_events.RECURRENCE_APPROVED) == outcomes.count("approved")


async def test_the_same_charge_scheduled_at_once_is_stored_once_and_replayed(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer)
    txid = "a" * 30
    command = ScheduleChargeCommand(
        owner_id=receiver.owner_id,
        recurrence_id=recurrence.recurrence_id,
        amount=Money(50_00),
        due_date=TODAY + timedelta(days=5),
        txid=txid,
    )

    results = await asyncio.gather(*(world.schedule(command) for _ in range(CALLERS)))

    assert [r.replayed for r in results].count(False) == 1
    assert {r.charge.txid for r in results} == {txid}
    assert len(await world.store.list_charges(recurrence.recurrence_id)) == 1
    with pytest.raises(DuplicateRecurringCharge):
        await world.schedule(msgspec.structs.replace(command, amount=Money(49_00)))


async def test_a_cancellation_racing_the_debit_moves_the_money_once_or_not_at_all(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer)
    charge = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    world.clock.set(brasilia(charge.due_date, 0, 1))

    async def cancel() -> None:
        with contextlib.suppress(RecurrenceNotActive):
            await world.cancel(
                CancelRecurrenceCommand(
                    owner_id=payer.owner_id, recurrence_id=recurrence.recurrence_id
                )
            )

    await asyncio.gather(*(world.run(charge.txid) if n % 3 else cancel() for n in range(CALLERS)))

    final = await world.store.get_charge(charge.txid)
    assert final is not None
    moved = 200_00 - await world.available(payer.id)
    if final.status is ChargeStatus.CONCLUIDA:
        assert moved == 50_00
        assert await world.available(receiver.id) == 50_00
    else:
        assert final.status is ChargeStatus.CANCELADA
        assert moved == 0
        assert await world.available(receiver.id) == 0
    await world.assert_conserved(payer.id, receiver.id)


async def test_two_schedulers_at_once_run_every_due_charge_once(world: World) -> None:
    receiver = await world.customer("gym")
    payers = [await world.customer(f"payer{n}", 100_00) for n in range(8)]
    charges = []
    for payer in payers:
        recurrence = await world.approved(receiver, payer)
        charges.append(await world.charge(recurrence, due=TODAY + timedelta(days=2)))
    world.clock.set(brasilia(TODAY + timedelta(days=2), 0, 30))

    rounds = await asyncio.gather(
        *(world.run_due(RunDueDebitsCommand(holder=f"w{n}", limit=3)) for n in range(4))
    )
    while True:  # the rest, round after round
        more = await world.run_due(RunDueDebitsCommand(holder="w0", limit=3))
        if not more.charges:
            break

    leased = [c.txid for r in rounds for c in r.charges]
    assert len(leased) == len(set(leased))  # no charge handed to two schedulers
    for charge in charges:
        final = await world.store.get_charge(charge.txid)
        assert final is not None
        assert final.status is ChargeStatus.CONCLUIDA
        assert len(final.attempts) == 1
    assert await world.available(receiver.id) == 8 * 50_00
    for payer in payers:
        assert await world.available(payer.id) == 50_00
    await world.assert_conserved(receiver.id, *(p.id for p in payers))


def test_status_changes_are_kept_in_order() -> None:
    change = StatusChange("APROVADA", datetime(2026, 1, 5, tzinfo=UTC))
    assert msgspec.json.decode(msgspec.json.encode(change), type=StatusChange) == change


async def test_a_reservation_that_timed_out_before_its_post_fails_the_attempt(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer)
    charge = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    world.clock.set(brasilia(charge.due_date, 1))
    # a runner claims the attempt and reserves with a 60 s timeout, then dies before the post
    steps = PixLedgerSteps(world.ledger, pending_timeout_seconds=60)
    stuck = ExecuteDueDebit(
        store=world.store, steps=steps, events=world.events, clock=world.clock, ispb=ISPB
    )
    loaded = await world.store.get_charge(charge.txid)
    assert loaded is not None
    running = await stuck._start(loaded)
    assert running is not None
    attempt = running.current_attempt
    assert attempt is not None
    reserved = await stuck._reserve(running, attempt)
    assert [a.status for a in reserved.attempts] == [AttemptStatus.RESERVED]
    assert await world.available(payer.id) == 150_00

    world.clock.advance(seconds=61)  # the reservation expires
    after = await world.run(charge.txid)
    assert [(a.status, a.reason) for a in after.attempts] == [
        (AttemptStatus.FAILED, "reservation_expired")
    ]
    assert (after.status, after.next_attempt_at) == (
        ChargeStatus.ATIVA,
        brasilia(charge.due_date, 18),  # the same-day retry
    )
    assert await world.available(payer.id) == 200_00
    assert await world.available(receiver.id) == 0
    world.clock.set(brasilia(charge.due_date + timedelta(days=1)))
    assert (await world.run(charge.txid)).status is ChargeStatus.CONCLUIDA
    assert await world.available(receiver.id) == 50_00
    await world.assert_conserved(payer.id, receiver.id)


async def test_a_post_the_ledger_refuses_voids_the_reservation_and_fails_the_charge(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer, periodicity=Periodicity.SEMANAL)
    good = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    # a charge whose receiving account is gone from the ledger: its post cannot apply
    broken = await world.store.add_charge(
        msgspec.structs.replace(
            good,
            txid="b" * 32,
            cycle=good.cycle + 1,
            receiver_account_id=uuid.uuid4(),
            version=0,
        )
    )
    world.clock.set(brasilia(good.due_date, 1))

    result = await world.run_due(RunDueDebitsCommand(holder="w1"))

    by_txid = {c.txid: c for c in result.charges}
    assert result.failed == []
    assert by_txid[good.txid].status is ChargeStatus.CONCLUIDA
    failed = by_txid[broken.txid]
    assert (failed.status, failed.reason, failed.next_attempt_on) == (
        ChargeStatus.EXPIRADA,
        "receiver_account_unavailable",
        None,
    )
    [attempt] = failed.attempts
    assert (attempt.status, attempt.reason) == (
        AttemptStatus.FAILED,
        "receiver_account_unavailable",
    )
    # the payer paid the good charge only; nothing of the broken one stays held
    assert await world.available(payer.id) == 150_00
    [payer_ledger] = await world.ledger.lookup_accounts([payer.id])
    assert payer_ledger.debits_pending == 0
    assert await world.available(receiver.id) == 50_00
    failures = [
        e.payload
        for e in world.publisher.published
        if e.type == automatic_events.DEBIT_FAILED and e.payload["txid"] == broken.txid
    ]
    assert [f["attempt_reason"] for f in failures] == ["receiver_account_unavailable"]
    assert automatic_events.CHARGE_EXPIRED in world.types()
    # run again (a replay, another scheduler): nothing moves, the outcome is the same
    again = await world.run(broken.txid)
    assert (again.status, again.version) == (failed.status, failed.version)
    assert await world.available(payer.id) == 150_00
    await world.assert_conserved(payer.id, receiver.id)


async def test_many_runners_of_a_refused_post_void_once_and_fail_once(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer)
    good = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    broken = await world.store.add_charge(
        msgspec.structs.replace(
            good, txid="c" * 32, cycle=good.cycle + 1, receiver_account_id=uuid.uuid4(), version=0
        )
    )
    world.clock.set(brasilia(good.due_date, 1))

    outcomes = await asyncio.gather(
        *(world.run(broken.txid) for _ in range(CALLERS)), return_exceptions=True
    )

    charges = [o for o in outcomes if isinstance(o, RecurringCharge)]
    assert charges, outcomes
    assert {(c.status, c.reason) for c in charges} == {
        (ChargeStatus.EXPIRADA, "receiver_account_unavailable")
    }
    final = await world.run(broken.txid)
    assert [a.status for a in final.attempts] == [AttemptStatus.FAILED]
    assert await world.available(payer.id) == 200_00
    await world.assert_conserved(payer.id, receiver.id)


async def test_one_charge_that_cannot_run_does_not_hold_the_round_back(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer, periodicity=Periodicity.SEMANAL)
    good = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    other = await world.charge(recurrence, due=TODAY + timedelta(days=9))
    world.clock.set(brasilia(other.due_date, 1))

    async def execute(cmd: ExecuteDebitCommand) -> RecurringCharge:
        if cmd.txid == good.txid:
            raise RecurrenceNotActive("stands for any refusal", status="CRIADA")
        return await world.execute(cmd)

    round_ = RunDueDebits(store=world.store, execute=execute, clock=world.clock)  # type: ignore[arg-type]
    result = await round_(RunDueDebitsCommand(holder="w1"))

    assert [c.txid for c in result.charges] == [other.txid]
    assert result.charges[0].status is ChargeStatus.CONCLUIDA
    assert result.failed == [(good.txid, "pix_recurrence_not_active")]
    await world.assert_conserved(payer.id, receiver.id)


async def test_a_single_charge_is_cancelled_until_the_day_before_it_is_due(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer, periodicity=Periodicity.SEMANAL)
    first = await world.charge(recurrence, due=TODAY + timedelta(days=3))
    second = await world.charge(recurrence, due=TODAY + timedelta(days=10))
    cancel = CancelRecurringCharge(store=world.store, events=world.events, clock=world.clock)

    with pytest.raises(RecurringChargeNotFound):
        await cancel(CancelRecurringChargeCommand(owner_id="eve", txid=first.txid))
    world.clock.set(brasilia(first.due_date) - timedelta(microseconds=1))
    done = await cancel(CancelRecurringChargeCommand(owner_id=payer.owner_id, txid=first.txid))
    assert (done.status, done.reason) == (ChargeStatus.CANCELADA, "cancelled_by_payer")
    again = await cancel(CancelRecurringChargeCommand(owner_id=payer.owner_id, txid=first.txid))
    assert again == done
    world.clock.set(brasilia(second.due_date))
    with pytest.raises(ChargeNotCancellable):
        await cancel(CancelRecurringChargeCommand(owner_id=payer.owner_id, txid=second.txid))
    assert (await world.run(first.txid)).status is ChargeStatus.CANCELADA
    assert (await world.run(second.txid)).status is ChargeStatus.CONCLUIDA
    assert await world.available(payer.id) == 150_00
    assert automatic_events.CHARGE_CANCELLED in world.types()
    stored = await world.store.get_recurrence(recurrence.recurrence_id)
    assert stored is not None
    assert stored.status is RecurrenceStatus.APROVADA


async def test_the_same_charge_cancelled_by_many_at_once_is_cancelled_once(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    recurrence = await world.approved(receiver, payer)
    charge = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    world.clock.set(brasilia(charge.due_date) - timedelta(microseconds=1))
    cancel = CancelRecurringCharge(store=world.store, events=world.events, clock=world.clock)

    outcomes = await asyncio.gather(
        *(
            cancel(CancelRecurringChargeCommand(owner_id=payer.owner_id, txid=charge.txid))
            for _ in range(CALLERS)
        ),
        return_exceptions=True,
    )

    assert all(not isinstance(o, BaseException) for o in outcomes)
    assert {o.status for o in outcomes if isinstance(o, RecurringCharge)} == {
        ChargeStatus.CANCELADA
    }
    assert world.types().count(automatic_events.CHARGE_CANCELLED) >= 1
    cancelled_ids = {
        e.event_id for e in world.publisher.published if e.type == automatic_events.CHARGE_CANCELLED
    }
    assert len(cancelled_ids) == 1
    world.clock.set(brasilia(charge.due_date, 1))
    assert (await world.run(charge.txid)).status is ChargeStatus.CANCELADA
    assert await world.available(payer.id) == 200_00


# -- with another institution ------------------------------------------------------


def _peer_network(world: World) -> SandboxRecurrenceNetwork:
    spi = SimulatedSpi(world.clock, institutions=(sandbox_peer(PEER_ISPB),))
    return SandboxRecurrenceNetwork(spi, world.clock)


async def test_a_peer_recurrence_authorised_by_many_at_once_is_stored_and_answered_once(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    _, payer = parties
    network = _peer_network(world)
    served, code = network.offer(
        ispb=PEER_ISPB,
        account_number=PEER_ACCOUNT_NUMBER,
        contract="LUZ",
        debtor_name="Ana",
        periodicity=Periodicity.MENSAL,
        start=TODAY,
        fixed_amount=Money(40_00),
    )
    clerk = RecurrenceClerk(network=network, clock=world.clock, ispb=ISPB)
    authorise = AuthoriseRecurrence(
        store=world.store,
        accounts=world.accounts,
        events=world.events,
        clock=world.clock,
        location_base_url=BASE,
        elsewhere=clerk,
    )
    command = AuthoriseRecurrenceCommand(owner_id=payer.owner_id, account_id=payer.id, br_code=code)

    outcomes = await asyncio.gather(
        *(authorise(command) for _ in range(CALLERS)), return_exceptions=True
    )

    approved = [o for o in outcomes if isinstance(o, Recurrence)]
    assert approved, outcomes
    assert all(isinstance(o, Recurrence | RecurrenceNotActive) for o in outcomes), outcomes
    stored = await world.store.get_recurrence(served.recurrence_id)
    assert stored is not None
    assert stored.status is RecurrenceStatus.APROVADA
    assert stored.receiver_party is not None
    assert stored.receiver_party.account_number == PEER_ACCOUNT_NUMBER
    assert [
        r.recurrence_id for r in await world.store.list_recurrences(payer_owner_id=payer.owner_id)
    ] == [served.recurrence_id]
    assert [(a.recurrence_id, a.status) for a in network.answers] == [
        (served.recurrence_id, RecurrenceStatus.APROVADA)
    ]
    approvals = {
        e.event_id
        for e in world.publisher.published
        if e.type == automatic_events.RECURRENCE_APPROVED
    }
    assert len(approvals) == 1


async def test_answers_from_a_payer_elsewhere_are_recorded_once_and_checked(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, _ = parties
    network = _peer_network(world)
    recurrence = await world.recurrence(receiver)
    record = RecordRecurrenceAnswer(
        store=world.store, events=world.events, clock=world.clock, ispb=ISPB
    )
    answer = network.peer_answer(
        recurrence_id=recurrence.recurrence_id,
        receiver_ispb=ISPB,
        ispb=PEER_ISPB,
        account_number=PEER_ACCOUNT_NUMBER,
    )
    with pytest.raises(InvalidInput):  # addressed to another institution
        await record(msgspec.structs.replace(answer, receiver_ispb=PEER_ISPB))
    with pytest.raises(RecurrenceNotFound):
        await record(msgspec.structs.replace(answer, recurrence_id="RR" + "0" * 27))

    outcomes = await asyncio.gather(*(record(answer) for _ in range(CALLERS)))

    assert {(o.status, o.version) for o in outcomes} == {
        (RecurrenceStatus.APROVADA, outcomes[0].version)
    }
    stored = await world.store.get_recurrence(recurrence.recurrence_id)
    assert stored is not None
    assert stored.authorisation is not None
    assert stored.authorisation.payer_party is not None
    assert stored.authorisation.payer_party.ispb == PEER_ISPB
    # nobody here is its payer
    assert await world.store.list_recurrences(payer_owner_id="") == []
    cancelled = await record(msgspec.structs.replace(answer, status=RecurrenceStatus.CANCELADA))
    assert (cancelled.status, cancelled.ended_by) == (
        RecurrenceStatus.CANCELADA,
        Party.PSP_PAGADOR,
    )


# -- the payer's own daily Pix Automático limit ----------------------------------------


@pytest.mark.parametrize("runners", [2, CALLERS])
async def test_short_runs_at_once_give_the_failed_attempts_share_of_the_limit_back(
    world: World, runners: int
) -> None:
    # One runner fails the attempt and releases its usage hold; another that read the
    # attempt RUNNING used to take the hold again (the store keeps no mark of a released
    # one) and lose its own FAILED write, so the day's limit stayed used by a debit that
    # never happened and the 18:00 retry was refused automatic_limit_exceeded.
    receiver = await world.customer("gym")
    payer = await world.customer("ana", 10_00)
    await world.store.set_payer_limit(payer.id, Money(50_00))  # the charge's amount
    recurrence = await world.approved(receiver, payer, retry=RetryPolicy.PERMITE_3R_7D)
    charge = await world.charge(recurrence, due=TODAY + timedelta(days=2))
    due = charge.due_date
    world.clock.set(brasilia(due, 0, 1))

    await asyncio.gather(*(world.run(charge.txid) for _ in range(runners)))

    failed = await world.store.get_charge(charge.txid)
    assert failed is not None
    assert [(a.status, a.reason) for a in failed.attempts] == [
        (AttemptStatus.FAILED, "insufficient_funds")
    ]
    assert await world.usage.used(payer.id, f"automatic:{due.isoformat()}") == 0
    await world.fund(payer.id, 100_00)
    world.clock.set(brasilia(due, 18, 1))
    done = await world.run(charge.txid)
    assert done.status is ChargeStatus.CONCLUIDA
    assert await world.usage.used(payer.id, f"automatic:{due.isoformat()}") == 50_00
    assert await world.available(payer.id) == 60_00
    await world.assert_conserved(payer.id, receiver.id)


async def test_the_payers_daily_limit_is_stored_per_account(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    _, payer = parties
    assert await world.store.get_payer_limit(payer.id) is None
    await world.store.set_payer_limit(payer.id, Money(70_00))
    await world.store.set_payer_limit(payer.id, Money(80_00))
    assert await world.store.get_payer_limit(payer.id) == Money(80_00)
    await world.store.set_payer_limit(payer.id, None)
    assert await world.store.get_payer_limit(payer.id) is None


async def test_debits_past_the_payers_daily_limit_fail_and_are_retried_the_next_day(
    world: World, parties: tuple[CustomerAccount, CustomerAccount]
) -> None:
    receiver, payer = parties
    await world.store.set_payer_limit(payer.id, Money(80_00))  # one R$ 50,00 debit a day
    gym = await world.approved(receiver, payer, periodicity=Periodicity.SEMANAL)
    other = await world.customer("school")
    school = await world.approved(other, payer, periodicity=Periodicity.SEMANAL)
    due = TODAY + timedelta(days=2)
    charges = [await world.charge(gym, due=due), await world.charge(school, due=due)]
    world.clock.set(brasilia(due, 1))

    outcomes = await asyncio.gather(
        *(world.run(c.txid) for c in charges for _ in range(CALLERS // 2))
    )

    final = {c.txid: await world.store.get_charge(c.txid) for c in charges}
    statuses = sorted(c.status.value for c in final.values() if c is not None)
    assert statuses == ["ATIVA", "CONCLUIDA"], outcomes
    [blocked] = [c for c in final.values() if c is not None and c.status is ChargeStatus.ATIVA]
    assert [(a.status, a.reason) for a in blocked.attempts] == [
        (AttemptStatus.FAILED, "automatic_limit_exceeded")
    ]
    assert await world.available(payer.id) == 150_00  # one debit only
    # the next day's usage starts from nothing: the retry fits
    world.clock.set(brasilia(due + timedelta(days=1), 1))
    assert (await world.run(blocked.txid)).status is ChargeStatus.CONCLUIDA
    assert await world.available(payer.id) == 100_00
    assert await world.usage.used(payer.id, f"automatic:{due.isoformat()}") == 50_00
    await world.assert_conserved(payer.id, receiver.id, other.id)
