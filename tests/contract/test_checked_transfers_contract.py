"""``CheckedTransfers``: an internal transfer's account checks and its submission, as one.

The composed implementation (``ComposedCheckedTransfers`` over the memory
account repository and ledger: two steps, as ``InternalTransfer`` always
did) and the fused PostgreSQL one (``PostgresCheckedTransfers``: the checks
in the ledger's own call and transaction, migration 0026; alone, and with
group commit so that concurrent callers share one call) are held to the same
answers, error classes and messages: every refusal, replays after a block,
a reused key, a refusal by the ledger; nothing written by a refused call; and
many callers on the same accounts and keys at once, while an account is
blocked, with the final state checked. On PostgreSQL, a block waited for by
the check is seen by it (the rows are locked FOR SHARE).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import pytest

from finbank_adapters.memory import (
    FakeClock,
    InMemoryAccountRepository,
    InMemoryEventPublisher,
    InMemoryLedger,
)
from finbank_adapters.memory.ids import SequentialIdGenerator
from finbank_adapters.postgres import PostgresAccountRepository, PostgresLedger
from finbank_adapters.postgres import ledger as postgres_ledger
from finbank_adapters.postgres.ledger import PostgresCheckedTransfers
from finbank_core.accounts.access import ComposedCheckedTransfers
from finbank_core.accounts.errors import InsufficientFunds
from finbank_core.accounts.events import INTERNAL_TRANSFER_MADE, make_event
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateTransferResult,
    NewAccount,
    SubmittedTransfer,
    Transfer,
    TransferCode,
    TransferFlags,
)
from finbank_core.accounts.model import (
    AccountKind,
    AccountStatus,
    CustomerAccount,
    HolderType,
    format_account_number,
)
from finbank_core.accounts.ports import AccountRepository, CheckedTransfers, Ledger
from finbank_core.accounts.use_cases import (
    InternalTransfer,
    InternalTransferCommand,
    TransferReceipt,
    transfer_id_for,
)
from finbank_core.shared.errors import (
    AccountNotActive,
    AccountNotFound,
    DomainError,
    IdempotencyKeyReused,
)
from finbank_core.shared.events import EventEnvelope, decode_event
from finbank_core.shared.money import Money
from tests.med_support import as_ledger
from tests.postgres_support import isolated_schema

R = CreateTransferResult
BACKENDS = ["memory", "postgres", "postgres_grouped"]
FUNDS = 100
OWNER = "owner-ana"
OTHER = "owner-bia"
POOL_SIZE = 8


@dataclass
class Stores:
    port: CheckedTransfers
    ledger: Ledger
    accounts: AccountRepository
    clock: FakeClock
    #: the events recorded with transfers (publisher or outbox), in order
    events: Callable[[], Awaitable[list[EventEnvelope]]]
    pool: asyncpg.Pool | None = None
    #: PostgreSQL with group commit (one call in flight)
    grouped: bool = False


@pytest.fixture(params=BACKENDS)
async def s(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    clock = FakeClock()
    if request.param == "memory":
        publisher = InMemoryEventPublisher()
        ledger = as_ledger(InMemoryLedger(clock, publisher))
        accounts = InMemoryAccountRepository()

        async def published() -> list[EventEnvelope]:
            return list(publisher.published)

        yield Stores(ComposedCheckedTransfers(accounts, ledger), ledger, accounts, clock, published)
        return
    dsn = request.getfixturevalue("postgres_dsn")
    async with isolated_schema(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE) as (pool, _):
        grouped = request.param == "postgres_grouped"
        pg_ledger = PostgresLedger(pool, clock, group_max_in_flight=1 if grouped else 0)
        pg_accounts = PostgresAccountRepository(pool, read_max_in_flight=1)

        async def outbox() -> list[EventEnvelope]:
            rows = await pool.fetch("SELECT envelope FROM outbox ORDER BY id")
            return [decode_event(row["envelope"]) for row in rows]

        yield Stores(
            PostgresCheckedTransfers(pg_ledger, pg_accounts),
            as_ledger(pg_ledger),
            pg_accounts,
            clock,
            outbox,
            pool,
            grouped,
        )


async def open_accounts(
    s: Stores, *owners: str, funds: int = FUNDS
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A bank account and one customer account per owner, each holding ``funds``."""
    bank = uuid.uuid4()
    ids = [uuid.uuid4() for _ in owners]
    await s.ledger.create_accounts(
        [NewAccount(id=bank, code=100)]
        + [NewAccount(id=a, code=1, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS) for a in ids]
    )
    funded = await s.ledger.create_transfers(
        [
            Transfer(
                id=uuid.uuid4(), debit_account_id=bank, credit_account_id=a, amount=funds, code=1
            )
            for a in ids
        ]
    )
    assert set(funded) == {R.OK}
    for account_id, owner in zip(ids, owners, strict=True):
        await s.accounts.add(
            CustomerAccount(
                id=account_id,
                owner_id=owner,
                holder_name="Holder",
                holder_type=HolderType.INDIVIDUAL,
                branch="0001",
                number=format_account_number(await s.accounts.next_account_number()),
                kind=AccountKind.PAYMENT,
                status=AccountStatus.ACTIVE,
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    return bank, ids


def internal(
    source: uuid.UUID, target: uuid.UUID, amount: int, key: str, owner: str = OWNER
) -> Transfer:
    return Transfer(
        id=transfer_id_for("internal", owner, key),
        debit_account_id=source,
        credit_account_id=target,
        amount=amount,
        code=TransferCode.INTERNAL_TRANSFER,
        user_data=f"memo {key}",
    )


def event_for(transfer: Transfer) -> EventEnvelope:
    return make_event(
        event_id=uuid.uuid4(),
        type=INTERNAL_TRANSFER_MADE,
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        aggregate_id=transfer.debit_account_id or uuid.uuid4(),
        payload={"transfer_id": str(transfer.id)},
    )


async def submit(s: Stores, transfer: Transfer, owner: str = OWNER) -> SubmittedTransfer:
    return await s.port.submit_internal(transfer, owner_id=owner, events=[event_for(transfer)])


async def balance(s: Stores, account_id: uuid.UUID) -> int:
    [account] = await s.ledger.lookup_accounts([account_id])
    return account.credits_posted - account.debits_posted


async def refused(s: Stores, transfer: Transfer, owner: str = OWNER) -> DomainError:
    """The core error ``transfer`` is refused with; checks that it wrote nothing."""
    before = len(await s.events())
    with pytest.raises(DomainError) as caught:
        await submit(s, transfer, owner)
    assert len(await s.events()) == before
    return caught.value


def same_error(error: DomainError, expected: DomainError) -> bool:
    return type(error) is type(expected) and str(error) == str(expected)


# -- one caller ------------------------------------------------------------------------------


async def test_an_ok_transfer_moves_the_money_with_its_event_and_stored_time(s: Stores) -> None:
    _, (ana, bia) = await open_accounts(s, OWNER, OTHER)
    s.clock.advance(seconds=30)
    moved = internal(ana, bia, 40, "k1")

    submitted = await submit(s, moved)

    [record] = await s.ledger.lookup_transfers([moved.id])
    assert submitted == SubmittedTransfer(result=R.OK, timestamp=record.timestamp)
    assert record.timestamp == s.clock.now()
    assert (await balance(s, ana), await balance(s, bia)) == (FUNDS - 40, FUNDS + 40)
    assert [e.payload["transfer_id"] for e in await s.events()] == [str(moved.id)]


async def test_a_source_that_is_missing_or_not_the_callers_is_not_found_always(s: Stores) -> None:
    _, (ana, bia) = await open_accounts(s, OWNER, OTHER)
    # bia's account, asked for by ana: not found (no leak), nothing stored
    assert same_error(await refused(s, internal(bia, ana, 1, "theirs")), AccountNotFound())
    assert not await s.ledger.lookup_transfers([internal(bia, ana, 1, "theirs").id])
    assert same_error(
        await refused(s, internal(uuid.uuid4(), ana, 1, "nowhere")), AccountNotFound()
    )
    # even when the transfer id is stored: its owner made it, another owner is not told
    made = internal(ana, bia, 5, "made")
    assert (await submit(s, made)).result is R.OK
    assert same_error(await refused(s, made, owner=OTHER), AccountNotFound())
    assert (await balance(s, ana), await balance(s, bia)) == (FUNDS - 5, FUNDS + 5)


async def test_a_missing_target_is_not_found(s: Stores) -> None:
    _, (ana,) = await open_accounts(s, OWNER)
    lost = internal(ana, uuid.uuid4(), 1, "lost")
    assert same_error(await refused(s, lost), AccountNotFound())
    assert not await s.ledger.lookup_transfers([lost.id])
    assert await balance(s, ana) == FUNDS


@pytest.mark.parametrize("status", [AccountStatus.BLOCKED, AccountStatus.CLOSED])
@pytest.mark.parametrize("side", ["source", "target"])
async def test_an_account_not_active_refuses_a_new_transfer_naming_its_status(
    s: Stores, status: AccountStatus, side: str
) -> None:
    _, (ana, bia) = await open_accounts(s, OWNER, OTHER)
    await s.accounts.set_status(ana if side == "source" else bia, status)
    moved = internal(ana, bia, 1, f"{side}-{status}")

    error = await refused(s, moved)

    assert same_error(error, AccountNotActive(f"the account is {status.value}"))
    assert not await s.ledger.lookup_transfers([moved.id])
    assert (await balance(s, ana), await balance(s, bia)) == (FUNDS, FUNDS)


async def test_the_source_status_is_reported_before_a_missing_or_inactive_target(
    s: Stores,
) -> None:
    _, (ana, bia) = await open_accounts(s, OWNER, OTHER)
    await s.accounts.set_status(ana, AccountStatus.CLOSED)
    await s.accounts.set_status(bia, AccountStatus.BLOCKED)
    closed = AccountNotActive("the account is closed")
    assert same_error(await refused(s, internal(ana, uuid.uuid4(), 1, "a")), closed)
    assert same_error(await refused(s, internal(ana, bia, 1, "b")), closed)


async def test_a_replay_after_a_block_is_answered_by_the_ledger_as_the_first(s: Stores) -> None:
    _, (ana, bia) = await open_accounts(s, OWNER, OTHER)
    moved = internal(ana, bia, 30, "rent")
    assert (await submit(s, moved)).result is R.OK
    await s.accounts.set_status(ana, AccountStatus.BLOCKED)
    await s.accounts.set_status(bia, AccountStatus.CLOSED)

    again = await submit(s, moved)
    other_body = await submit(s, internal(ana, bia, 31, "rent"))

    assert again == SubmittedTransfer(result=R.EXISTS)
    assert other_body == SubmittedTransfer(result=R.EXISTS_WITH_DIFFERENT_FIELDS)
    assert (await balance(s, ana), await balance(s, bia)) == (FUNDS - 30, FUNDS + 30)
    assert [e.payload["transfer_id"] for e in await s.events()] == [str(moved.id)]


#: amounts at the edges of the ledger's range, in the order sent, and the answer of each
#: (the same on every backend): above the stored range; the largest stored amount, which
#: overflows the source's debits; one more than the balance; zero; the whole balance; one
#: more from the emptied account
EDGE_AMOUNTS = [
    (2**128 - 1, R.AMOUNT_OUT_OF_RANGE),
    (2**64, R.AMOUNT_OUT_OF_RANGE),
    (2**63, R.AMOUNT_OUT_OF_RANGE),
    (2**63 - 1, R.OVERFLOWS),
    (FUNDS + 1, R.EXCEEDS_CREDITS),
    (0, R.AMOUNT_MUST_NOT_BE_ZERO),
    (FUNDS, R.OK),
    (1, R.EXCEEDS_CREDITS),
]


async def test_amounts_at_the_edges_of_the_range_are_answered_alike(s: Stores) -> None:
    _, (source, target) = await open_accounts(s, OWNER, OTHER)
    answers = []
    for n, (amount, _) in enumerate(EDGE_AMOUNTS):
        before = len(await s.events())
        submitted = await submit(s, internal(source, target, amount, f"edge-{n}"))
        answers.append(submitted.result)
        # an event only with the one transfer applied
        assert len(await s.events()) == before + (submitted.result is R.OK)
    assert answers == [expected for _, expected in EDGE_AMOUNTS]
    assert await balance(s, source) == 0
    assert await balance(s, target) == 2 * FUNDS
    # a replay of each is answered as the first: the applied one as stored, the others
    # refused again (nothing was stored under their ids)
    for n, (amount, expected) in enumerate(EDGE_AMOUNTS):
        again = await submit(s, internal(source, target, amount, f"edge-{n}"))
        assert again.result is (R.EXISTS if expected is R.OK else expected)


async def test_the_ledgers_own_refusal_is_answered_and_writes_nothing(s: Stores) -> None:
    _, (ana, bia) = await open_accounts(s, OWNER, OTHER)
    too_much = internal(ana, bia, FUNDS + 1, "too-much")

    assert await submit(s, too_much) == SubmittedTransfer(result=R.EXCEEDS_CREDITS)

    assert not await s.ledger.lookup_transfers([too_much.id])
    assert await s.events() == []


async def test_the_use_case_answers_alike_through_the_port(s: Stores) -> None:
    """``InternalTransfer`` on this port: receipts, replays and errors (messages too)."""
    _, (ana, bia) = await open_accounts(s, OWNER, OTHER)
    use_case = InternalTransfer(s.ledger, s.accounts, s.clock, SequentialIdGenerator(), s.port)

    def command(
        key: str, cents: int, source: uuid.UUID = ana, target: uuid.UUID = bia
    ) -> InternalTransferCommand:
        return InternalTransferCommand(
            owner_id=OWNER,
            from_account_id=source,
            to_account_id=target,
            amount=Money(cents),
            idempotency_key=key,
        )

    first = await use_case(command("k", 25))
    await s.accounts.set_status(ana, AccountStatus.BLOCKED)
    replay = await use_case(command("k", 25))
    with pytest.raises(IdempotencyKeyReused) as reused:
        await use_case(command("k", 26))
    with pytest.raises(AccountNotActive) as blocked:
        await use_case(command("new", 25))
    await s.accounts.set_status(ana, AccountStatus.ACTIVE)
    with pytest.raises(InsufficientFunds) as poor:
        await use_case(command("big", FUNDS))
    with pytest.raises(AccountNotFound):
        await use_case(command("x", 1, source=bia, target=ana))

    assert replay == msgspec.structs.replace(first, replayed=True)
    assert str(reused.value) == "this idempotency key was already used for a different request"
    assert str(blocked.value) == "the account is blocked"
    assert str(poor.value) == "the account does not have enough available balance"
    assert (await balance(s, ana), await balance(s, bia)) == (FUNDS - 25, FUNDS + 25)
    assert len(await s.events()) == 1


# -- many callers at once --------------------------------------------------------------------

ACCOUNTS = 4
KEYS = 12
CALLERS_PER_KEY = 4


async def test_many_callers_on_the_same_accounts_and_keys_while_one_is_blocked(
    s: Stores,
) -> None:
    """Every key sent by several callers at once (some with another body), on four
    accounts that each can pay only part of what is asked, while one account is
    blocked half-way; final state: each key applied at most once with one of its
    bodies, answered to one caller as new and to the others as that replay, every
    refused caller wrote nothing, money conserved, no negative balance."""
    bank, ids = await open_accounts(s, *([OWNER] * ACCOUNTS))
    use_case = InternalTransfer(s.ledger, s.accounts, s.clock, SequentialIdGenerator(), s.port)
    bodies: dict[str, list[InternalTransferCommand]] = {}
    calls: list[tuple[str, InternalTransferCommand]] = []
    for k in range(KEYS):
        key = f"key-{k}"
        source, target = ids[k % ACCOUNTS], ids[(k + 1) % ACCOUNTS]
        first = InternalTransferCommand(
            owner_id=OWNER,
            from_account_id=source,
            to_account_id=target,
            amount=Money(30 + k),
            idempotency_key=key,
        )
        other = InternalTransferCommand(
            owner_id=OWNER,
            from_account_id=source,
            to_account_id=target,
            amount=Money(31 + k),
            idempotency_key=key,
        )
        bodies[key] = [first, other]
        calls.extend((key, first) for _ in range(CALLERS_PER_KEY))
        if k % 3 == 0:
            calls.append((key, other))
    blocked = ids[1]

    async def block_half_way() -> None:
        for _ in range(len(calls) // 2):
            await asyncio.sleep(0)
        await s.accounts.set_status(blocked, AccountStatus.BLOCKED)

    async def call(cmd: InternalTransferCommand) -> TransferReceipt | DomainError:
        try:
            return await use_case(cmd)
        except DomainError as exc:
            return exc

    answers, _ = await asyncio.gather(
        asyncio.gather(*(call(cmd) for _, cmd in calls)), block_half_way()
    )

    stored = {
        key: await s.ledger.lookup_transfers([transfer_id_for("internal", OWNER, key)])
        for key in bodies
    }
    applied = {key: found[0] for key, found in stored.items() if found}
    for key, body_list in bodies.items():
        mine = [a for (k, _), a in zip(calls, answers, strict=True) if k == key]
        receipts = [a for a in mine if isinstance(a, TransferReceipt)]
        errors = [a for a in mine if not isinstance(a, TransferReceipt)]
        assert all(
            isinstance(e, AccountNotActive | InsufficientFunds | IdempotencyKeyReused)
            for e in errors
        ), errors
        record = applied.get(key)
        if record is None:
            assert not receipts, (key, receipts)
            continue
        # applied once, with one of its bodies; one caller told it is new, the rest replays
        assert record.amount in {b.amount.cents for b in body_list}
        assert [r.replayed for r in receipts].count(False) == 1, (key, receipts)
        for r in receipts:
            assert (r.transfer_id, r.debit_account_id, r.credit_account_id) == (
                record.id,
                record.debit_account_id,
                record.credit_account_id,
            )
            assert (r.amount.cents, r.created_at) == (record.amount, record.timestamp)
        for e in errors:  # a reused key names a body other than the one applied
            if isinstance(e, IdempotencyKeyReused):
                assert str(e) == "this idempotency key was already used for a different request"
    # refused callers wrote nothing: one event per applied transfer, no other
    events = [e.payload["transfer_id"] for e in await s.events()]
    assert sorted(events) == sorted(str(r.id) for r in applied.values())
    balances = [await balance(s, a) for a in ids]
    assert all(b >= 0 for b in balances), balances
    assert sum(balances) == FUNDS * ACCOUNTS == -(await balance(s, bank))
    if isinstance(s.ledger, PostgresLedger) and s.grouped:  # callers shared calls
        assert s.ledger.grouped_members > s.ledger.grouped_calls >= 1
    for account_id, got in zip(ids, balances, strict=True):
        moved = sum(
            r.amount * ((r.credit_account_id == account_id) - (r.debit_account_id == account_id))
            for r in applied.values()
        )
        assert got == FUNDS + moved
    # once the block has returned, a new transfer touching the account is refused
    for source, target in ((blocked, ids[0]), (ids[0], blocked)):
        late = internal(source, target, 1, f"late-{source}")
        assert same_error(await refused(s, late), AccountNotActive("the account is blocked"))


async def test_a_pending_transfer_due_to_expire_is_voided_before_the_check(s: Stores) -> None:
    """A reservation whose timeout has passed no longer holds the money: the checked
    call expires it first (PostgreSQL: the fused call answers NULL, the adapter
    expires as of the call's time and sends it again) and the transfer fits."""
    _, (ana, bia) = await open_accounts(s, OWNER, OTHER)
    hold = Transfer(
        id=uuid.uuid4(),
        debit_account_id=ana,
        credit_account_id=bia,
        amount=90,
        code=2,
        flags=TransferFlags.PENDING,
        timeout_seconds=1,
    )
    assert (await s.ledger.submit_transfer(hold)).result is R.OK
    assert await submit(s, internal(ana, bia, 50, "early")) == SubmittedTransfer(
        result=R.EXCEEDS_CREDITS
    )
    s.clock.advance(seconds=2)

    moved = internal(ana, bia, 50, "after")
    submitted = await submit(s, moved)

    [record] = await s.ledger.lookup_transfers([moved.id])
    assert submitted == SubmittedTransfer(result=R.OK, timestamp=record.timestamp)
    [voided] = await s.ledger.lookup_accounts([ana])
    assert voided.debits_pending == 0
    assert (await balance(s, ana), await balance(s, bia)) == (FUNDS - 50, FUNDS + 50)
    if isinstance(s.ledger, PostgresLedger):  # "early" once, "after" answered NULL, then ok
        assert s.ledger.checked_group_calls == 3


async def test_checked_transfers_share_a_group_with_plain_and_pending_ones(s: Stores) -> None:
    """Checked transfers (some refused) sent at once with others' plain and pending
    transfers: with group commit they go in shared calls; each is answered as alone."""
    bank, ids = await open_accounts(s, *([OWNER] * 4))
    await s.accounts.set_status(ids[3], AccountStatus.BLOCKED)
    checked = [internal(ids[i % 3], ids[(i + 1) % 3], 5, f"c{i}") for i in range(6)]
    refused_ = [internal(ids[3], ids[0], 5, f"r{i}") for i in range(3)]
    plain = [
        Transfer(id=uuid.uuid4(), debit_account_id=bank, credit_account_id=a, amount=7, code=2)
        for a in ids
    ]
    pending = [
        Transfer(
            id=uuid.uuid4(),
            debit_account_id=bank,
            credit_account_id=ids[0],
            amount=3,
            code=2,
            flags=TransferFlags.PENDING,
        )
        for _ in range(2)
    ]

    async def refusal(t: Transfer) -> DomainError | SubmittedTransfer:
        try:
            return await submit(s, t)
        except DomainError as exc:
            return exc

    answers = await asyncio.gather(
        *(submit(s, t) for t in checked),
        *(refusal(t) for t in refused_),
        *(s.ledger.submit_transfer(t) for t in plain),
        *(s.ledger.submit_transfer(t) for t in pending),
    )

    n = len(checked)
    assert all(isinstance(a, SubmittedTransfer) and a.result is R.OK for a in answers[:n])
    for a in answers[n : n + len(refused_)]:
        assert isinstance(a, DomainError)
        assert same_error(a, AccountNotActive("the account is blocked"))
    assert all(
        isinstance(a, SubmittedTransfer) and a.result is R.OK for a in answers[n + len(refused_) :]
    )
    assert not await s.ledger.lookup_transfers([t.id for t in refused_])
    assert sorted(e.payload["transfer_id"] for e in await s.events()) == sorted(
        str(t.id) for t in checked
    )
    # checked transfers move 5 around a ring of three: each account as funded, plus plain
    assert [await balance(s, a) for a in ids] == [FUNDS + 7] * 4
    if isinstance(s.ledger, PostgresLedger) and s.grouped:
        assert s.ledger.grouped_calls >= 1
        assert s.ledger.grouped_members > s.ledger.grouped_calls
        assert s.ledger.checked_group_calls >= 1


# -- PostgreSQL: the rows are locked ------------------------------------------------------------


async def until_waiting_for(pool: asyncpg.Pool, holder_pid: int, task: asyncio.Future[Any]) -> None:
    """Until a backend waits for a lock the backend ``holder_pid`` holds, or ``task`` ended
    (which the caller's assertion then reports), polling at most about 10 s."""
    for _ in range(10_000):
        if task.done() or await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))",
            holder_pid,
        ):
            return
        await asyncio.sleep(0.001)


async def test_a_block_the_check_waited_for_refuses_the_transfer(s: Stores) -> None:
    """A status change in flight when the transfer's call reads the account: the call
    waits for it (FOR SHARE) and, once it commits, refuses; a plain read would have
    seen the old status and applied the transfer."""
    if s.pool is None:
        pytest.skip("row locks are PostgreSQL's")
    _, (ana, bia) = await open_accounts(s, OWNER, OTHER)
    moved = internal(ana, bia, 10, "raced")
    async with s.pool.acquire() as blocker:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("UPDATE customer_accounts SET status = 'blocked' WHERE id = $1", ana)
        task = asyncio.ensure_future(submit(s, moved))
        await until_waiting_for(s.pool, blocker.get_server_pid(), task)
        assert not task.done(), task  # it waits for the block
        await tx.commit()
    with pytest.raises(AccountNotActive) as caught:
        await task
    assert str(caught.value) == "the account is blocked"
    assert not await s.ledger.lookup_transfers([moved.id])
    assert await s.events() == []
    assert (await balance(s, ana), await balance(s, bia)) == (FUNDS, FUNDS)


async def test_a_block_waits_for_the_transfer_whose_check_read_the_account(s: Stores) -> None:
    """The other direction: a transfer's check has read the source as active and its
    transaction is still open; a block started then waits (FOR SHARE is a row lock that
    UPDATE waits for) and applies only once the transfer has committed, so the transfer
    is never applied after the block. A plain read would not hold the block back."""
    if s.pool is None:
        pytest.skip("row locks are PostgreSQL's")
    _, (ana, bia) = await open_accounts(s, OWNER, OTHER)
    moved = internal(ana, bia, 10, "before-block")
    # the statement the ledger sends for one checked member, in a transaction held open
    member = postgres_ledger._Member(
        (moved,),
        postgres_ledger._ONE_UNCHECKED,
        s.clock.now(),
        [event_for(moved)],
        plain=True,
        owner=OWNER,
    )
    arguments = postgres_ledger._plain_group_arguments([member])
    async with s.pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        assert await holder.fetchval(
            postgres_ledger._CREATE_CHECKED_TRANSFER_GROUP, *arguments
        ) == ["ok"]
        block = asyncio.ensure_future(s.accounts.set_status(ana, AccountStatus.BLOCKED))
        await until_waiting_for(s.pool, holder.get_server_pid(), block)
        assert not block.done(), block  # it waits for the transfer
        assert (await s.accounts.get(ana)).status is AccountStatus.ACTIVE  # nothing applied yet
        await tx.commit()
    blocked = await block
    assert blocked.status is AccountStatus.BLOCKED
    # the transfer committed first: applied once, its event written; the block stands after
    assert [t.id for t in await s.ledger.lookup_transfers([moved.id])] == [moved.id]
    assert (await balance(s, ana), await balance(s, bia)) == (FUNDS - 10, FUNDS + 10)
    assert [e.payload["transfer_id"] for e in await s.events()] == [str(moved.id)]
    with pytest.raises(AccountNotActive):
        await submit(s, internal(ana, bia, 10, "after-block"))
    assert (await balance(s, ana), await balance(s, bia)) == (FUNDS - 10, FUNDS + 10)
