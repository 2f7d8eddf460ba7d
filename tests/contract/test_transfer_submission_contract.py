"""The ports a money movement reads and writes in two round trips, on every backend.

``Ledger.submit_transfer`` answers one transfer with the timestamp the
ledger stored (so a receipt needs no look-up after an ``OK``), and
``AccountRepository.get_many`` reads several accounts at once. Each is held
to the same answers on the memory and PostgreSQL adapters, alone and with
many callers on the same ids at once (final state checked: money moved once,
events recorded once, every ``OK`` timestamp the stored one).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from finbank_adapters.memory import FakeClock, InMemoryEventPublisher, InMemoryLedger
from finbank_core.accounts.events import INTERNAL_TRANSFER_MADE, make_event
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateTransferResult,
    NewAccount,
    SubmittedTransfer,
    Transfer,
)
from finbank_core.accounts.model import (
    AccountKind,
    AccountStatus,
    CustomerAccount,
    HolderType,
    format_account_number,
)
from finbank_core.accounts.ports import AccountRepository
from finbank_core.shared.events import EventEnvelope, decode_event
from tests.contract.conftest import (
    LEDGER_BACKENDS,
    POSTGRES_LEDGERS,
    LedgerHarness,
    postgres_ledger,
)
from tests.med_support import as_ledger
from tests.postgres_support import isolated_schema

R = CreateTransferResult
CALLERS = 24
POOL_SIZE = 8
ROUNDS = 3
FUNDS = 1_000


@pytest.fixture(params=LEDGER_BACKENDS)
async def harness(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[LedgerHarness]:
    """A ledger with a pool big enough for the callers to really interleave."""
    if request.param == "memory":
        publisher = InMemoryEventPublisher()

        async def recorded() -> list[EventEnvelope]:
            return list(publisher.published)

        yield LedgerHarness(as_ledger(InMemoryLedger(clock, publisher)), clock, recorded)
    elif request.param in POSTGRES_LEDGERS:
        dsn = request.getfixturevalue("postgres_dsn")
        async with isolated_schema(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE) as (pool, _):

            async def from_outbox() -> list[EventEnvelope]:
                rows = await pool.fetch("SELECT envelope FROM outbox ORDER BY id")
                return [decode_event(row["envelope"]) for row in rows]

            yield LedgerHarness(
                as_ledger(postgres_ledger(request.param, pool, clock)), clock, from_outbox
            )
    else:  # pragma: no cover
        raise AssertionError(request.param)


async def funded_accounts(harness: LedgerHarness, count: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A bank account and ``count`` customer accounts holding :data:`FUNDS` each."""
    bank = uuid.uuid4()
    customers = [uuid.uuid4() for _ in range(count)]
    await harness.ledger.create_accounts(
        [NewAccount(id=bank, code=100)]
        + [
            NewAccount(id=a, code=1, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
            for a in customers
        ]
    )
    results = await harness.ledger.create_transfers(
        [
            Transfer(
                id=uuid.uuid4(), debit_account_id=bank, credit_account_id=a, amount=FUNDS, code=1
            )
            for a in customers
        ]
    )
    assert set(results) == {R.OK}
    return bank, customers


def event_for(transfer: Transfer, clock: FakeClock) -> EventEnvelope:
    return make_event(
        event_id=uuid.uuid4(),
        type=INTERNAL_TRANSFER_MADE,
        occurred_at=clock.now(),
        aggregate_id=transfer.debit_account_id or uuid.uuid4(),
        payload={"transfer_id": str(transfer.id)},
    )


async def posted(harness: LedgerHarness, account_id: uuid.UUID) -> int:
    [account] = await harness.ledger.lookup_accounts([account_id])
    return account.credits_posted - account.debits_posted


# -- one caller ------------------------------------------------------------------------------


async def test_ok_answers_the_timestamp_a_look_up_reads(harness: LedgerHarness) -> None:
    _, (ana, bia) = await funded_accounts(harness, 2)
    harness.clock.advance(seconds=90)
    moved = Transfer(id=uuid.uuid4(), debit_account_id=ana, credit_account_id=bia, amount=7, code=3)

    submitted = await harness.ledger.submit_transfer(moved)

    [record] = await harness.ledger.lookup_transfers([moved.id])
    assert submitted == SubmittedTransfer(result=R.OK, timestamp=record.timestamp)
    assert record.timestamp == harness.clock.now()
    assert (await posted(harness, ana), await posted(harness, bia)) == (FUNDS - 7, FUNDS + 7)


async def test_exists_and_refusals_carry_no_timestamp_and_move_nothing(
    harness: LedgerHarness,
) -> None:
    _, (ana, bia) = await funded_accounts(harness, 2)
    moved = Transfer(id=uuid.uuid4(), debit_account_id=ana, credit_account_id=bia, amount=5, code=3)
    first = await harness.ledger.submit_transfer(moved, events=[event_for(moved, harness.clock)])
    harness.clock.advance(seconds=1)

    again = await harness.ledger.submit_transfer(moved, events=[event_for(moved, harness.clock)])
    other_body = await harness.ledger.submit_transfer(
        Transfer(id=moved.id, debit_account_id=ana, credit_account_id=bia, amount=6, code=3)
    )
    too_much = await harness.ledger.submit_transfer(
        Transfer(id=uuid.uuid4(), debit_account_id=ana, credit_account_id=bia, amount=FUNDS, code=3)
    )

    assert first.result is R.OK
    assert first.timestamp is not None
    assert again == SubmittedTransfer(result=R.EXISTS)
    assert other_body == SubmittedTransfer(result=R.EXISTS_WITH_DIFFERENT_FIELDS)
    assert too_much == SubmittedTransfer(result=R.EXCEEDS_CREDITS)
    assert (await posted(harness, ana), await posted(harness, bia)) == (FUNDS - 5, FUNDS + 5)
    events = await harness.recorded_events()
    assert [e.payload["transfer_id"] for e in events] == [str(moved.id)]  # the OK call's only


async def test_a_refusal_before_the_store_is_answered_as_create_transfers_does(
    harness: LedgerHarness,
) -> None:
    _, (ana,) = await funded_accounts(harness, 1)
    same_sides = Transfer(
        id=uuid.uuid4(), debit_account_id=ana, credit_account_id=ana, amount=1, code=3
    )
    zero_id = Transfer(
        id=uuid.UUID(int=0), debit_account_id=ana, credit_account_id=uuid.uuid4(), amount=1, code=3
    )

    assert await harness.ledger.submit_transfer(same_sides) == SubmittedTransfer(
        result=R.ACCOUNTS_MUST_BE_DIFFERENT
    )
    assert await harness.ledger.submit_transfer(zero_id) == SubmittedTransfer(
        result=R.ID_MUST_NOT_BE_ZERO
    )


# -- many callers at once --------------------------------------------------------------------


async def test_the_same_transfer_submitted_at_once_is_applied_once(
    harness: LedgerHarness,
) -> None:
    for _ in range(ROUNDS):
        _, (ana, bia) = await funded_accounts(harness, 2)
        moved = Transfer(
            id=uuid.uuid4(), debit_account_id=ana, credit_account_id=bia, amount=FUNDS, code=3
        )
        before = len(await harness.recorded_events())

        answers = await asyncio.gather(
            *(
                harness.ledger.submit_transfer(moved, events=[event_for(moved, harness.clock)])
                for _ in range(CALLERS)
            )
        )

        oks = [a for a in answers if a.result is R.OK]
        assert len(oks) == 1, answers
        # the losers saw it stored, or (checked before it committed) the balance it took
        assert {a.result for a in answers} - {R.OK} <= {R.EXISTS, R.EXCEEDS_CREDITS}
        assert all(a.timestamp is None for a in answers if a.result is not R.OK)
        [record] = await harness.ledger.lookup_transfers([moved.id])
        assert oks[0].timestamp == record.timestamp
        assert (await posted(harness, ana), await posted(harness, bia)) == (0, 2 * FUNDS)
        assert len(await harness.recorded_events()) == before + 1


async def test_callers_draining_one_account_conserve_money(harness: LedgerHarness) -> None:
    _, customers = await funded_accounts(harness, 4)
    source, targets = customers[0], customers[1:]
    transfers = [
        Transfer(
            id=uuid.uuid4(),
            debit_account_id=source,
            credit_account_id=targets[n % len(targets)],
            amount=FUNDS // 10,
            code=3,
        )
        for n in range(CALLERS)
    ]

    answers = await asyncio.gather(*(harness.ledger.submit_transfer(t) for t in transfers))

    applied = [t for t, a in zip(transfers, answers, strict=True) if a.result is R.OK]
    assert len(applied) == 10  # exactly the funds, never more
    assert {a.result for a in answers} == {R.OK, R.EXCEEDS_CREDITS}
    records = {r.id: r for r in await harness.ledger.lookup_transfers([t.id for t in transfers])}
    assert set(records) == {t.id for t in applied}
    for transfer, answer in zip(transfers, answers, strict=True):
        if answer.result is R.OK:
            assert answer.timestamp == records[transfer.id].timestamp
    balances = [await posted(harness, a) for a in customers]
    assert balances[0] == 0
    assert sum(balances) == 4 * FUNDS


# -- AccountRepository.get_many ----------------------------------------------------------------

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


async def stored_account(repo: AccountRepository, owner: str, minutes: int) -> CustomerAccount:
    account = CustomerAccount(
        id=uuid.uuid4(),
        owner_id=owner,
        holder_name="Maria da Silva",
        holder_type=HolderType.INDIVIDUAL,
        holder_document=None,
        branch="0001",
        number=format_account_number(await repo.next_account_number()),
        kind=AccountKind.PAYMENT,
        status=AccountStatus.ACTIVE,
        created_at=T0 + timedelta(minutes=minutes),
    )
    await repo.add(account)
    return account


async def test_get_many_answers_the_known_accounts_in_the_order_asked(
    account_repository: AccountRepository,
) -> None:
    first = await stored_account(account_repository, "ana", 1)
    second = await stored_account(account_repository, "bia", 2)
    unknown = uuid.uuid4()

    assert await account_repository.get_many([second.id, unknown, first.id]) == [second, first]
    assert await account_repository.get_many([unknown]) == []
    assert await account_repository.get_many([]) == []


async def test_get_many_beside_status_changes_reads_each_account_whole(
    account_repository: AccountRepository,
) -> None:
    accounts = [await stored_account(account_repository, "ana", n) for n in range(4)]
    ids = [a.id for a in accounts]

    async def flip(account: CustomerAccount) -> None:
        for status in (AccountStatus.BLOCKED, AccountStatus.ACTIVE) * 3:
            await account_repository.set_status(account.id, status)

    reading = asyncio.gather(*(account_repository.get_many(ids) for _ in range(CALLERS)))
    await asyncio.gather(reading, *(flip(a) for a in accounts))
    reads = reading.result()

    for read in reads:
        assert [a.id for a in read] == ids
        for got, stored in zip(read, accounts, strict=True):
            assert got.status in (AccountStatus.ACTIVE, AccountStatus.BLOCKED)
            assert (got.owner_id, got.number) == (stored.owner_id, stored.number)
    assert await account_repository.get_many(ids) == accounts  # every flip ends ACTIVE
