"""TigerBeetle parity: precedence of result codes, type limits, and the features
after TigerBeetle (closing, balancing, history, queries, imported events, user
data). Every adapter of the ``Ledger`` port must pass it unchanged; the rules
themselves are ``finbank_core.accounts.ledger_rules``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from finbank_core.accounts.ledger import (
    INT_MAX_ID,
    MAX_AMOUNT,
    MAX_U16,
    MAX_U32,
    MAX_U64,
    MAX_U128,
    ZERO_ID,
    AccountFilter,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    InvalidLedgerFilter,
    LedgerAccount,
    NewAccount,
    PendingStatus,
    QueryFilter,
    Transfer,
    TransferFlags,
)
from finbank_core.accounts.ports import Ledger
from finbank_core.shared.errors import InvalidInput
from tests.contract.conftest import LedgerHarness

R = CreateTransferResult
A = CreateAccountResult
F = TransferFlags
CUSTOMER = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
LEDGER = 986


def new_id() -> uuid.UUID:
    return uuid.uuid4()


async def open_accounts(
    ledger: Ledger, *flags: AccountFlags, ledger_id: int = LEDGER
) -> list[uuid.UUID]:
    ids = [new_id() for _ in flags]
    results = await ledger.create_accounts(
        [
            NewAccount(id=i, code=1, flags=f, ledger=ledger_id)
            for i, f in zip(ids, flags, strict=True)
        ]
    )
    assert results == [A.OK] * len(flags)
    return ids


async def account(ledger: Ledger, account_id: uuid.UUID) -> LedgerAccount:
    [found] = await ledger.lookup_accounts([account_id])
    return found


async def balances(ledger: Ledger, account_id: uuid.UUID) -> tuple[int, int, int, int]:
    a = await account(ledger, account_id)
    return a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted


def move(
    debit: uuid.UUID | None,
    credit: uuid.UUID | None,
    amount: int,
    *,
    id: uuid.UUID | None = None,
    flags: TransferFlags = F.NONE,
    timeout_seconds: int = 0,
    code: int = 3,
    ledger: int = LEDGER,
    pending_id: uuid.UUID | None = None,
    user_data: str | None = None,
    user_data_128: int = 0,
    user_data_64: int = 0,
    user_data_32: int = 0,
    timestamp: datetime | None = None,
) -> Transfer:
    return Transfer(
        id=id or new_id(),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        code=code,
        flags=flags,
        pending_id=pending_id,
        timeout_seconds=timeout_seconds,
        ledger=ledger,
        user_data=user_data,
        user_data_128=user_data_128,
        user_data_64=user_data_64,
        user_data_32=user_data_32,
        timestamp=timestamp,
    )


def resolve(
    pending_id: uuid.UUID | None,
    *,
    void: bool = False,
    amount: int = 0,
    code: int = 0,
    ledger: int = 0,
    debit: uuid.UUID | None = None,
    credit: uuid.UUID | None = None,
    flags: TransferFlags = F.NONE,
    timeout_seconds: int = 0,
    id: uuid.UUID | None = None,
    user_data: str | None = None,
    user_data_128: int = 0,
    timestamp: datetime | None = None,
) -> Transfer:
    """A post (or void) that leaves ledger and code 0: they are inherited."""
    return move(
        debit,
        credit,
        amount,
        id=id,
        flags=flags | (F.VOID_PENDING_TRANSFER if void else F.POST_PENDING_TRANSFER),
        pending_id=pending_id,
        code=code,
        ledger=ledger,
        timeout_seconds=timeout_seconds,
        user_data=user_data,
        user_data_128=user_data_128,
        timestamp=timestamp,
    )


@pytest.fixture
def ledger(ledger_harness: LedgerHarness) -> Ledger:
    return ledger_harness.ledger


@pytest.fixture
async def funded(ledger: Ledger) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """(bank, alice, bob): alice holds 100_00 from the bank, bob holds nothing."""
    bank, alice, bob = await open_accounts(ledger, AccountFlags.NONE, CUSTOMER, CUSTOMER)
    assert await ledger.create_transfers([move(bank, alice, 100_00)]) == [R.OK]
    return bank, alice, bob


Funded = tuple[uuid.UUID, uuid.UUID, uuid.UUID]


# -- precedence: one test per ordering rule -----------------------------------------


async def test_exists_comes_before_every_flag_and_field_check(
    ledger: Ledger, funded: Funded
) -> None:
    _, alice, bob = funded
    done = move(alice, bob, 10_00)
    assert await ledger.create_transfers([done]) == [R.OK]
    for changed in (
        move(alice, bob, 10_00, id=done.id, flags=F.PENDING | F.POST_PENDING_TRANSFER),
        move(alice, alice, 10_00, id=done.id),
        move(None, bob, 10_00, id=done.id),
        move(alice, bob, 0, id=done.id),
        move(alice, bob, 10_00, id=done.id, ledger=0),
        move(alice, bob, 10_00, id=done.id, timeout_seconds=5),
        move(alice, bob, 10_00, id=done.id, flags=F.CLOSING_DEBIT),
    ):
        assert await ledger.create_transfers([changed]) == [R.EXISTS_WITH_DIFFERENT_FIELDS]
    # the replay is recognised although it would now exceed alice's credits
    assert await ledger.create_transfers([move(alice, bob, 90_00)]) == [R.OK]
    assert await ledger.create_transfers([done]) == [R.EXISTS]
    assert await balances(ledger, bob) == (0, 0, 0, 100_00)


async def test_reserved_flag_comes_before_ids_and_exists(ledger: Ledger, funded: Funded) -> None:
    _, alice, bob = funded
    done = move(alice, bob, 1)
    await ledger.create_transfers([done])
    reserved = TransferFlags(1 << 9)
    assert await ledger.create_transfers(
        [
            move(alice, bob, 1, id=ZERO_ID, flags=reserved),
            move(alice, bob, 1, id=done.id, flags=reserved),
        ]
    ) == [R.RESERVED_FLAG, R.RESERVED_FLAG]


async def test_out_of_range_values_come_before_ids_in_their_order(
    ledger: Ledger, funded: Funded
) -> None:
    _, alice, bob = funded
    assert await ledger.create_transfers(
        [
            move(alice, bob, -1, id=ZERO_ID, ledger=-1),
            move(alice, bob, MAX_AMOUNT + 1, id=ZERO_ID, ledger=-1),
            move(alice, bob, 1, id=ZERO_ID, ledger=MAX_U32 + 1, code=MAX_U16 + 1),
            move(alice, bob, 1, id=ZERO_ID, code=MAX_U16 + 1, timeout_seconds=-1),
            move(alice, bob, 1, id=ZERO_ID, timeout_seconds=-1, user_data_128=-1),
            move(alice, bob, 1, id=ZERO_ID, timeout_seconds=MAX_U32 + 1, user_data_128=-1),
            move(alice, bob, 1, id=ZERO_ID, user_data_128=MAX_U128 + 1, user_data_64=-1),
            move(alice, bob, 1, id=ZERO_ID, user_data_64=MAX_U64 + 1, user_data_32=-1),
            move(alice, bob, 1, id=ZERO_ID, user_data_32=MAX_U32 + 1),
        ]
    ) == [
        R.AMOUNT_MUST_NOT_BE_NEGATIVE,
        R.AMOUNT_OUT_OF_RANGE,
        R.LEDGER_OUT_OF_RANGE,
        R.CODE_OUT_OF_RANGE,
        R.TIMEOUT_MUST_NOT_BE_NEGATIVE,
        R.TIMEOUT_OUT_OF_RANGE,
        R.USER_DATA_128_OUT_OF_RANGE,
        R.USER_DATA_64_OUT_OF_RANGE,
        R.USER_DATA_32_OUT_OF_RANGE,
    ]
    assert await balances(ledger, alice) == (0, 0, 0, 100_00)


async def test_reserved_ids_are_refused_before_the_flags(ledger: Ledger, funded: Funded) -> None:
    _, alice, bob = funded
    both = F.PENDING | F.VOID_PENDING_TRANSFER
    assert await ledger.create_transfers(
        [
            move(alice, bob, 1, id=ZERO_ID, flags=both),
            move(alice, bob, 1, id=INT_MAX_ID, flags=both),
        ]
    ) == [R.ID_MUST_NOT_BE_ZERO, R.ID_MUST_NOT_BE_INT_MAX]
    assert await ledger.lookup_transfers([ZERO_ID, INT_MAX_ID]) == []


async def test_missing_account_ids_come_before_pending_id_and_timeout(
    ledger: Ledger, funded: Funded
) -> None:
    _, alice, bob = funded
    other = new_id()
    kw: dict[str, object] = {"pending_id": other, "timeout_seconds": 5}
    assert await ledger.create_transfers(
        [
            move(None, bob, 1, **kw),  # type: ignore[arg-type]
            move(ZERO_ID, bob, 1, **kw),  # type: ignore[arg-type]
            move(INT_MAX_ID, bob, 1, **kw),  # type: ignore[arg-type]
            move(alice, None, 1, **kw),  # type: ignore[arg-type]
            move(alice, ZERO_ID, 1, **kw),  # type: ignore[arg-type]
            move(alice, INT_MAX_ID, 1, **kw),  # type: ignore[arg-type]
            move(alice, alice, 1, **kw),  # type: ignore[arg-type]
        ]
    ) == [
        R.DEBIT_ACCOUNT_ID_REQUIRED,
        R.DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO,
        R.DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX,
        R.CREDIT_ACCOUNT_ID_REQUIRED,
        R.CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO,
        R.CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX,
        R.ACCOUNTS_MUST_BE_DIFFERENT,
    ]


async def test_pending_id_checks_come_before_timeout(ledger: Ledger, funded: Funded) -> None:
    _, alice, bob = funded
    hold = move(alice, bob, 1_00, flags=F.PENDING)
    await ledger.create_transfers([hold])
    same = new_id()
    assert await ledger.create_transfers(
        [
            move(alice, bob, 1, pending_id=new_id(), timeout_seconds=5),
            resolve(None, timeout_seconds=5),
            resolve(ZERO_ID, timeout_seconds=5),
            resolve(INT_MAX_ID, timeout_seconds=5),
            resolve(same, id=same, timeout_seconds=5),
            resolve(hold.id, timeout_seconds=5),
            resolve(new_id(), timeout_seconds=5),
        ]
    ) == [
        R.PENDING_ID_MUST_BE_ZERO,
        R.PENDING_ID_REQUIRED,
        R.PENDING_ID_MUST_NOT_BE_ZERO,
        R.PENDING_ID_MUST_NOT_BE_INT_MAX,
        R.PENDING_ID_MUST_BE_DIFFERENT,
        R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER,
        R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER,
    ]
    [record] = await ledger.lookup_transfers([hold.id])
    assert record.status is PendingStatus.PENDING


async def test_timeout_then_closing_then_zero_fields_before_account_lookup(
    ledger: Ledger, funded: Funded
) -> None:
    _, alice, _ = funded
    ghost = new_id()
    assert await ledger.create_transfers(
        [
            move(alice, ghost, 1, timeout_seconds=5, flags=F.CLOSING_DEBIT),
            move(alice, ghost, 1, flags=F.CLOSING_DEBIT, ledger=0),
            move(alice, ghost, 0, ledger=0),
            move(alice, ghost, 1, ledger=0, code=0),
            move(alice, ghost, 1, code=0),
            move(new_id(), ghost, 1),
            move(alice, ghost, 1),
        ]
    ) == [
        R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER,
        R.CLOSING_TRANSFER_MUST_BE_PENDING,
        R.AMOUNT_MUST_NOT_BE_ZERO,
        R.LEDGER_MUST_NOT_BE_ZERO,
        R.CODE_MUST_NOT_BE_ZERO,
        R.DEBIT_ACCOUNT_NOT_FOUND,
        R.CREDIT_ACCOUNT_NOT_FOUND,
    ]


async def test_ledgers_are_checked_before_limits(ledger: Ledger, funded: Funded) -> None:
    _, alice, bob = funded
    [foreign] = await open_accounts(ledger, CUSTOMER, ledger_id=840)
    assert await ledger.create_transfers(
        [
            move(alice, foreign, 500_00),
            move(alice, bob, 500_00, ledger=840),
            move(alice, bob, 500_00),
        ]
    ) == [
        R.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER,
        R.TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS,
        R.EXCEEDS_CREDITS,
    ]


async def test_closed_account_comes_before_overflow_and_limits(ledger: Ledger) -> None:
    [source, closed] = await open_accounts(
        ledger, AccountFlags.NONE, CUSTOMER | AccountFlags.CLOSED
    )
    assert await ledger.create_transfers(
        [move(closed, source, MAX_AMOUNT), move(source, closed, 1)]
    ) == [R.DEBIT_ACCOUNT_ALREADY_CLOSED, R.CREDIT_ACCOUNT_ALREADY_CLOSED]


async def test_overflow_comes_before_exceeding_credits(ledger: Ledger) -> None:
    bank, customer, other = await open_accounts(
        ledger, AccountFlags.NONE, CUSTOMER, AccountFlags.NONE
    )
    assert await ledger.create_transfers([move(bank, other, MAX_AMOUNT)]) == [R.OK]
    # customer has no credits (exceeds_credits) and other's credits are full (overflows)
    assert await ledger.create_transfers([move(customer, other, 1)]) == [R.OVERFLOWS]
    assert await ledger.create_transfers([move(customer, bank, 1)]) == [R.EXCEEDS_CREDITS]


async def test_post_or_void_checks_in_order(ledger: Ledger, funded: Funded) -> None:
    bank, alice, bob = funded
    plain = move(alice, bob, 1_00)
    hold = move(alice, bob, 10_00, flags=F.PENDING, code=7)
    assert await ledger.create_transfers([plain, hold]) == [R.OK, R.OK]
    assert await ledger.create_transfers(
        [
            resolve(None, flags=F.PENDING | F.BALANCING_DEBIT),
            resolve(hold.id, flags=F.BALANCING_CREDIT),
            resolve(hold.id, void=True, flags=F.CLOSING_DEBIT),
            resolve(hold.id, flags=F.VOID_PENDING_TRANSFER),
            resolve(new_id(), debit=bank),
            resolve(plain.id, debit=bank),
            resolve(hold.id, debit=bank, ledger=1),
            resolve(hold.id, credit=bank, ledger=1),
            resolve(hold.id, ledger=1, code=8),
            resolve(hold.id, code=8, amount=10_01),
            resolve(hold.id, amount=10_01),
            resolve(hold.id, void=True, amount=10_01),
            resolve(hold.id, void=True, amount=9_99),
        ]
    ) == [
        R.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        R.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        R.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        R.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        R.PENDING_TRANSFER_NOT_FOUND,
        R.PENDING_TRANSFER_NOT_PENDING,
        R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID,
        R.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID,
        R.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER,
        R.PENDING_TRANSFER_HAS_DIFFERENT_CODE,
        R.EXCEEDS_PENDING_TRANSFER_AMOUNT,
        R.EXCEEDS_PENDING_TRANSFER_AMOUNT,
        R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT,
    ]
    assert await balances(ledger, alice) == (10_00, 1_00, 0, 100_00)


async def test_amount_checks_come_before_already_resolved(ledger: Ledger, funded: Funded) -> None:
    _, alice, bob = funded
    hold = move(alice, bob, 10_00, flags=F.PENDING)
    await ledger.create_transfers([hold])
    assert await ledger.create_transfers([resolve(hold.id, amount=4_00)]) == [R.OK]
    assert await ledger.create_transfers(
        [
            resolve(hold.id, amount=10_01),
            resolve(hold.id, void=True, amount=1),
            resolve(hold.id, amount=10_00),
            resolve(hold.id, void=True),
        ]
    ) == [
        R.EXCEEDS_PENDING_TRANSFER_AMOUNT,
        R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT,
        R.PENDING_TRANSFER_ALREADY_POSTED,
        R.PENDING_TRANSFER_ALREADY_POSTED,
    ]


async def test_batch_rules_come_before_a_transfers_own_checks(
    ledger_harness: LedgerHarness, funded: Funded
) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    _, alice, bob = funded
    bad = TransferFlags(1 << 12)
    past = clock.now() - timedelta(hours=1)
    assert await ledger.create_transfers(
        [move(alice, bob, 1, id=ZERO_ID, flags=bad | F.LINKED)]
    ) == [R.LINKED_EVENT_CHAIN_OPEN]
    assert await ledger.create_transfers(
        [move(alice, bob, 1, id=ZERO_ID, flags=bad, timestamp=past)]
    ) == [R.TIMESTAMP_MUST_BE_ZERO]
    assert await ledger.create_transfers(
        [
            move(alice, bob, 1, flags=F.IMPORTED, timestamp=past),
            move(alice, bob, 1, id=ZERO_ID, flags=bad),
            move(alice, bob, 1, id=ZERO_ID, flags=F.IMPORTED | bad),
            move(
                alice,
                bob,
                1,
                id=ZERO_ID,
                flags=F.IMPORTED | bad,
                timestamp=past.replace(tzinfo=None),
            ),
            move(
                alice,
                bob,
                1,
                id=ZERO_ID,
                flags=F.IMPORTED | bad,
                timestamp=clock.now() + timedelta(seconds=1),
            ),
        ]
    ) == [
        R.IMPORTED_EVENT_TIMESTAMP_MUST_NOT_REGRESS,
        R.IMPORTED_EVENT_EXPECTED,
        R.IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE,
        R.IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE,
        R.IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE,
    ]
    assert await ledger.create_transfers(
        [move(alice, bob, 1), move(alice, bob, 1, flags=F.IMPORTED, timestamp=past)]
    ) == [R.OK, R.IMPORTED_EVENT_NOT_EXPECTED]


async def test_create_accounts_checks_in_order(ledger_harness: LedgerHarness) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    done = NewAccount(id=new_id(), code=1)
    assert await ledger.create_accounts([done]) == [A.OK]
    both = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
    reserved = AccountFlags(1 << 7)
    assert await ledger.create_accounts(
        [
            NewAccount(id=ZERO_ID, code=1, flags=reserved, ledger=-1),
            NewAccount(id=ZERO_ID, code=1, ledger=MAX_U32 + 1),
            NewAccount(id=ZERO_ID, code=MAX_U16 + 1),
            NewAccount(id=ZERO_ID, code=1, user_data_128=MAX_U128 + 1),
            NewAccount(id=ZERO_ID, code=1, user_data_64=-1),
            NewAccount(id=ZERO_ID, code=1, user_data_32=MAX_U32 + 1),
            NewAccount(id=ZERO_ID, code=0, ledger=0, flags=both),
            NewAccount(id=INT_MAX_ID, code=0, ledger=0, flags=both),
            NewAccount(id=done.id, code=0, ledger=0, flags=both),
            NewAccount(id=new_id(), code=0, ledger=0, flags=both),
            NewAccount(id=new_id(), code=0, ledger=0),
            NewAccount(id=new_id(), code=0),
            NewAccount(id=new_id(), code=1, timestamp=clock.now()),
        ]
    ) == [
        A.RESERVED_FLAG,
        A.LEDGER_OUT_OF_RANGE,
        A.CODE_OUT_OF_RANGE,
        A.USER_DATA_128_OUT_OF_RANGE,
        A.USER_DATA_64_OUT_OF_RANGE,
        A.USER_DATA_32_OUT_OF_RANGE,
        A.ID_MUST_NOT_BE_ZERO,
        A.ID_MUST_NOT_BE_INT_MAX,
        A.EXISTS_WITH_DIFFERENT_FIELDS,
        A.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        A.LEDGER_MUST_NOT_BE_ZERO,
        A.CODE_MUST_NOT_BE_ZERO,
        A.TIMESTAMP_MUST_BE_ZERO,
    ]
    assert await ledger.lookup_accounts([ZERO_ID, INT_MAX_ID]) == []


# -- type limits ---------------------------------------------------------------------


async def test_values_at_their_type_limits_are_accepted(ledger: Ledger) -> None:
    source, sink = new_id(), new_id()
    assert await ledger.create_accounts(
        [
            NewAccount(
                id=source,
                code=MAX_U16,
                ledger=MAX_U32,
                user_data_128=MAX_U128,
                user_data_64=MAX_U64,
                user_data_32=MAX_U32,
            ),
            NewAccount(id=sink, code=1, ledger=MAX_U32),
        ]
    ) == [A.OK, A.OK]
    [found] = await ledger.lookup_accounts([source])
    assert (
        found.code,
        found.ledger,
        found.user_data_128,
        found.user_data_64,
        found.user_data_32,
    ) == (
        MAX_U16,
        MAX_U32,
        MAX_U128,
        MAX_U64,
        MAX_U32,
    )
    hold = move(
        source,
        sink,
        MAX_AMOUNT,
        flags=F.PENDING,
        timeout_seconds=MAX_U32,
        code=MAX_U16,
        ledger=MAX_U32,
        user_data_128=MAX_U128,
        user_data_64=MAX_U64,
        user_data_32=MAX_U32,
    )
    assert await ledger.create_transfers([hold]) == [R.OK]
    [record] = await ledger.lookup_transfers([hold.id])
    assert record.request == hold
    assert (record.amount, record.code, record.ledger, record.user_data_128) == (
        MAX_AMOUNT,
        MAX_U16,
        MAX_U32,
        MAX_U128,
    )
    assert await ledger.create_transfers([move(source, sink, 1, ledger=MAX_U32)]) == [R.OVERFLOWS]
    assert await ledger.create_transfers([resolve(hold.id)]) == [R.OK]
    assert await balances(ledger, sink) == (0, 0, 0, MAX_AMOUNT)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("amount", MAX_AMOUNT + 1, R.AMOUNT_OUT_OF_RANGE),
        ("amount", 1 << 200, R.AMOUNT_OUT_OF_RANGE),
        ("amount", -(1 << 70), R.AMOUNT_MUST_NOT_BE_NEGATIVE),
        ("ledger", MAX_U32 + 1, R.LEDGER_OUT_OF_RANGE),
        ("ledger", -1, R.LEDGER_OUT_OF_RANGE),
        ("code", MAX_U16 + 1, R.CODE_OUT_OF_RANGE),
        ("code", -1, R.CODE_OUT_OF_RANGE),
        ("code", 0, R.CODE_MUST_NOT_BE_ZERO),
        ("timeout_seconds", MAX_U32 + 1, R.TIMEOUT_OUT_OF_RANGE),
        ("timeout_seconds", -1, R.TIMEOUT_MUST_NOT_BE_NEGATIVE),
        ("user_data_128", MAX_U128 + 1, R.USER_DATA_128_OUT_OF_RANGE),
        ("user_data_64", MAX_U64 + 1, R.USER_DATA_64_OUT_OF_RANGE),
        ("user_data_64", -1, R.USER_DATA_64_OUT_OF_RANGE),
        ("user_data_32", MAX_U32 + 1, R.USER_DATA_32_OUT_OF_RANGE),
    ],
)
async def test_values_beyond_their_type_get_a_result_code(
    ledger: Ledger, funded: Funded, field: str, value: int, expected: CreateTransferResult
) -> None:
    _, alice, bob = funded
    fields: dict[str, int] = {"amount": 1, "code": 3, "ledger": LEDGER, "timeout_seconds": 0}
    fields[field] = value
    transfer = Transfer(
        id=new_id(),
        debit_account_id=alice,
        credit_account_id=bob,
        flags=F.PENDING,
        **fields,  # type: ignore[arg-type]
    )
    assert await ledger.create_transfers([transfer]) == [expected]
    assert await ledger.lookup_transfers([transfer.id]) == []
    assert await balances(ledger, alice) == (0, 0, 0, 100_00)
    # nothing half-written: the ledger still works
    assert await ledger.create_transfers([move(alice, bob, 1)]) == [R.OK]


async def test_reserved_ids_anywhere_in_a_post(ledger: Ledger, funded: Funded) -> None:
    _, alice, bob = funded
    hold = move(alice, bob, 1_00, flags=F.PENDING)
    await ledger.create_transfers([hold])
    assert await ledger.create_transfers(
        [
            resolve(hold.id, id=ZERO_ID),
            resolve(hold.id, id=INT_MAX_ID),
            resolve(INT_MAX_ID),
            resolve(hold.id, debit=INT_MAX_ID),
            resolve(hold.id, credit=INT_MAX_ID),
            # 0 account ids mean "the pending transfer's", like None
            resolve(hold.id, debit=ZERO_ID, credit=ZERO_ID),
        ]
    ) == [
        R.ID_MUST_NOT_BE_ZERO,
        R.ID_MUST_NOT_BE_INT_MAX,
        R.PENDING_ID_MUST_NOT_BE_INT_MAX,
        R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID,
        R.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID,
        R.OK,
    ]


# -- post/void inheritance and resolution ------------------------------------------


async def test_post_and_void_inherit_code_ledger_and_user_data(
    ledger: Ledger, funded: Funded
) -> None:
    _, alice, bob = funded
    hold = move(
        alice,
        bob,
        10_00,
        flags=F.PENDING,
        code=7,
        user_data="order-1",
        user_data_128=128,
        user_data_64=64,
        user_data_32=32,
    )
    other = move(alice, bob, 5_00, flags=F.PENDING, code=9, user_data="order-2")
    assert await ledger.create_transfers([hold, other]) == [R.OK, R.OK]
    post = resolve(hold.id, amount=6_00)
    void = resolve(
        other.id, void=True, code=9, ledger=LEDGER, user_data="cancelled", user_data_128=5
    )
    assert await ledger.create_transfers([post, void]) == [R.OK, R.OK]
    [p, v] = await ledger.lookup_transfers([post.id, void.id])
    assert p.request == post
    assert (p.code, p.ledger, p.user_data, p.user_data_128, p.user_data_64, p.user_data_32) == (
        7,
        LEDGER,
        "order-1",
        128,
        64,
        32,
    )
    assert (p.debit_account_id, p.credit_account_id, p.amount) == (alice, bob, 6_00)
    assert p.flags == F.POST_PENDING_TRANSFER
    assert (v.code, v.ledger, v.user_data, v.user_data_128, v.amount) == (
        9,
        LEDGER,
        "cancelled",
        5,
        5_00,
    )
    # the posted entry keeps the pending transfer's code and reference
    entries = (await ledger.get_account_entries(bob)).entries
    assert [(e.transfer_id, e.code, e.user_data, e.amount) for e in entries] == [
        (post.id, 7, "order-1", 6_00)
    ]
    assert await balances(ledger, alice) == (0, 6_00, 0, 100_00)


async def test_a_resolved_pending_transfer_answers_as_documented(
    ledger_harness: LedgerHarness, funded: Funded
) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    _, alice, bob = funded
    posted = move(alice, bob, 1_00, flags=F.PENDING)
    voided = move(alice, bob, 1_00, flags=F.PENDING)
    expiring = move(alice, bob, 1_00, flags=F.PENDING, timeout_seconds=10)
    await ledger.create_transfers([posted, voided, expiring])
    post, void = resolve(posted.id), resolve(voided.id, void=True)
    assert await ledger.create_transfers([post, void]) == [R.OK, R.OK]
    clock.advance(10)
    assert await ledger.create_transfers(
        [
            post,
            void,
            resolve(posted.id),
            resolve(posted.id, void=True),
            resolve(voided.id),
            resolve(voided.id, void=True),
            resolve(expiring.id),
            resolve(expiring.id, void=True),
        ]
    ) == [
        R.EXISTS,
        R.EXISTS,
        R.PENDING_TRANSFER_ALREADY_POSTED,
        R.PENDING_TRANSFER_ALREADY_POSTED,
        R.PENDING_TRANSFER_ALREADY_VOIDED,
        R.PENDING_TRANSFER_ALREADY_VOIDED,
        R.PENDING_TRANSFER_EXPIRED,
        R.PENDING_TRANSFER_EXPIRED,
    ]
    assert await balances(ledger, alice) == (0, 1_00, 0, 100_00)
    statuses = [
        r.status for r in await ledger.lookup_transfers([posted.id, voided.id, expiring.id])
    ]
    assert statuses == [PendingStatus.POSTED, PendingStatus.VOIDED, PendingStatus.EXPIRED]


# -- closing accounts ----------------------------------------------------------------


async def test_a_closing_transfer_closes_and_its_void_reopens(
    ledger: Ledger, funded: Funded
) -> None:
    bank, alice, bob = funded
    hold = move(alice, bank, 10_00, flags=F.PENDING)
    close = move(alice, bank, 0, flags=F.PENDING | F.CLOSING_DEBIT)
    assert await ledger.create_transfers([hold, close]) == [R.OK, R.OK]
    assert AccountFlags.CLOSED in (await account(ledger, alice)).flags
    assert AccountFlags.CLOSED not in (await account(ledger, bank)).flags
    assert await ledger.create_transfers(
        [
            move(alice, bob, 1),
            move(bob, alice, 1),
            resolve(hold.id),
            resolve(close.id),
            resolve(hold.id, void=True),  # voiding is the one movement a closed account allows
        ]
    ) == [
        R.DEBIT_ACCOUNT_ALREADY_CLOSED,
        R.CREDIT_ACCOUNT_ALREADY_CLOSED,
        R.DEBIT_ACCOUNT_ALREADY_CLOSED,
        R.DEBIT_ACCOUNT_ALREADY_CLOSED,
        R.OK,
    ]
    assert await ledger.create_transfers([resolve(close.id, void=True)]) == [R.OK]
    assert AccountFlags.CLOSED not in (await account(ledger, alice)).flags
    assert await ledger.create_transfers([move(alice, bob, 1)]) == [R.OK]
    # the account's creation replays as it was created, closed or not
    assert await ledger.create_accounts([NewAccount(id=alice, code=1, flags=CUSTOMER)]) == [
        A.EXISTS
    ]


async def test_closing_credit_and_expiry_reopens_once(
    ledger_harness: LedgerHarness, funded: Funded
) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    _, alice, bob = funded
    close = move(alice, bob, 1_00, flags=F.PENDING | F.CLOSING_CREDIT, timeout_seconds=30)
    assert await ledger.create_transfers([close]) == [R.OK]
    assert AccountFlags.CLOSED in (await account(ledger, bob)).flags
    assert await ledger.create_transfers([move(alice, bob, 1)]) == [R.CREDIT_ACCOUNT_ALREADY_CLOSED]
    clock.advance(30)
    assert AccountFlags.CLOSED not in (await account(ledger, bob)).flags
    assert await ledger.expire_pending_transfers() == 0
    assert await balances(ledger, alice) == (0, 0, 0, 100_00)
    assert await ledger.create_transfers([move(alice, bob, 1)]) == [R.OK]


async def test_a_closed_chain_member_rolls_the_closing_back(ledger: Ledger, funded: Funded) -> None:
    _, alice, bob = funded
    close = move(alice, bob, 0, flags=F.PENDING | F.CLOSING_DEBIT | F.LINKED)
    assert await ledger.create_transfers([close, move(bob, alice, 1)]) == [
        R.LINKED_EVENT_FAILED,
        R.CREDIT_ACCOUNT_ALREADY_CLOSED,
    ]
    assert AccountFlags.CLOSED not in (await account(ledger, alice)).flags
    assert await ledger.lookup_transfers([close.id]) == []


# -- balancing transfers -------------------------------------------------------------


async def test_balancing_debit_moves_what_there_is(ledger: Ledger, funded: Funded) -> None:
    bank, alice, bob = funded
    hold = move(alice, bank, 30_00, flags=F.PENDING)
    sweep = move(alice, bob, MAX_AMOUNT, flags=F.BALANCING_DEBIT)
    assert await ledger.create_transfers([hold, sweep]) == [R.OK, R.OK]
    [record] = await ledger.lookup_transfers([sweep.id])
    assert (record.amount, record.request.amount) == (70_00, MAX_AMOUNT)
    assert await balances(ledger, alice) == (30_00, 70_00, 0, 100_00)
    assert await ledger.create_transfers([sweep]) == [R.EXISTS]
    assert await ledger.create_transfers([move(alice, bob, 1, flags=F.BALANCING_DEBIT)]) == [
        R.EXCEEDS_CREDITS
    ]
    # a smaller limit moves at most the limit
    assert await ledger.create_transfers([resolve(hold.id, void=True)]) == [R.OK]
    capped = move(alice, bob, 10_00, flags=F.BALANCING_DEBIT | F.PENDING)
    assert await ledger.create_transfers([capped]) == [R.OK]
    assert (await ledger.lookup_transfers([capped.id]))[0].amount == 10_00


async def test_balancing_credit_fills_up_to_the_debits(ledger: Ledger) -> None:
    source, limited, other = await open_accounts(
        ledger, AccountFlags.NONE, AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS, AccountFlags.NONE
    )
    assert await ledger.create_transfers([move(limited, other, 25_00)]) == [R.OK]
    fill = move(source, limited, 100_00, flags=F.BALANCING_CREDIT)
    assert await ledger.create_transfers([fill]) == [R.OK]
    assert (await ledger.lookup_transfers([fill.id]))[0].amount == 25_00
    assert await balances(ledger, limited) == (0, 25_00, 0, 25_00)
    assert await ledger.create_transfers([move(source, limited, 1, flags=F.BALANCING_CREDIT)]) == [
        R.EXCEEDS_DEBITS
    ]


# -- balance history -----------------------------------------------------------------


async def test_history_accounts_keep_their_balances_after_each_transfer(
    ledger_harness: LedgerHarness,
) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    bank, saver, plain = await open_accounts(
        ledger, AccountFlags.NONE, CUSTOMER | AccountFlags.HISTORY, CUSTOMER
    )
    fund = move(bank, saver, 100_00, code=1)
    clock.advance(1)
    assert await ledger.create_transfers([fund, move(bank, plain, 1_00)]) == [R.OK, R.OK]
    clock.advance(1)
    hold = move(saver, bank, 30_00, flags=F.PENDING, code=2)
    assert await ledger.create_transfers([hold]) == [R.OK]
    clock.advance(1)
    post = resolve(hold.id, amount=20_00)
    assert await ledger.create_transfers([post]) == [R.OK]
    points = await ledger.get_account_balances(AccountFilter(account_id=saver))
    assert [
        (p.transfer_id, p.debits_pending, p.debits_posted, p.credits_pending, p.credits_posted)
        for p in points
    ] == [
        (fund.id, 0, 0, 0, 100_00),
        (hold.id, 30_00, 0, 0, 100_00),
        (post.id, 0, 20_00, 0, 100_00),
    ]
    assert [p.timestamp for p in points] == sorted(p.timestamp for p in points)
    newest = await ledger.get_account_balances(
        AccountFilter(account_id=saver, reversed=True, limit=1)
    )
    assert [p.transfer_id for p in newest] == [post.id]
    credits = await ledger.get_account_balances(AccountFilter(account_id=saver, debits=False))
    assert [p.transfer_id for p in credits] == [fund.id]
    coded = await ledger.get_account_balances(AccountFilter(account_id=saver, code=2))
    assert [p.transfer_id for p in coded] == [hold.id, post.id]  # a post inherits code 2
    assert await ledger.get_account_balances(AccountFilter(account_id=plain)) == []
    assert await ledger.get_account_balances(AccountFilter(account_id=new_id())) == []


# -- queries -------------------------------------------------------------------------


async def test_query_transfers_filters_and_orders(ledger_harness: LedgerHarness) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    bank, alice, bob = await open_accounts(ledger, AccountFlags.NONE, CUSTOMER, CUSTOMER)
    [dollars_a, dollars_b] = await open_accounts(
        ledger, AccountFlags.NONE, AccountFlags.NONE, ledger_id=840
    )
    start = clock.now()
    tagged = []
    for n in range(4):
        clock.advance(10)
        t = move(
            bank,
            alice,
            1_00 + n,
            code=5 if n % 2 else 6,
            user_data_128=77,
            user_data_64=n,
            user_data_32=9,
        )
        tagged.append(t)
        assert await ledger.create_transfers([t, move(bank, bob, 1, user_data_128=78)]) == [
            R.OK,
            R.OK,
        ]
    usd = move(dollars_a, dollars_b, 1, ledger=840, user_data_128=77)
    assert await ledger.create_transfers([usd]) == [R.OK]

    async def ids(**kw: object) -> list[uuid.UUID]:
        return [r.id for r in await ledger.query_transfers(QueryFilter(**kw))]  # type: ignore[arg-type]

    assert await ids(user_data_128=77) == [t.id for t in tagged] + [usd.id]
    assert await ids(user_data_128=77, ledger=LEDGER) == [t.id for t in tagged]
    assert await ids(user_data_128=77, code=5) == [tagged[1].id, tagged[3].id]
    assert await ids(user_data_64=2, user_data_32=9) == [tagged[2].id]
    assert await ids(user_data_128=77, reversed=True, limit=2) == [usd.id, tagged[3].id]
    assert await ids(
        user_data_128=77,
        timestamp_min=start + timedelta(seconds=20),
        timestamp_max=start + timedelta(seconds=30),
    ) == [tagged[1].id, tagged[2].id]
    assert await ids(user_data_32=10) == []
    assert len(await ids(limit=3)) == 3


async def test_get_account_transfers_by_direction(ledger_harness: LedgerHarness) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    bank, alice, bob = await open_accounts(ledger, AccountFlags.NONE, CUSTOMER, CUSTOMER)
    fund = move(bank, alice, 50_00, code=1)
    clock.advance(1)
    await ledger.create_transfers([fund])
    clock.advance(1)
    out = move(alice, bob, 10_00, code=2, user_data_64=4)
    hold = move(alice, bob, 5_00, flags=F.PENDING, code=2)
    await ledger.create_transfers([out, hold])
    clock.advance(1)
    void = resolve(hold.id, void=True)
    await ledger.create_transfers([void, move(bank, bob, 1)])

    async def ids(**kw: object) -> list[uuid.UUID]:
        found = await ledger.get_account_transfers(AccountFilter(account_id=alice, **kw))  # type: ignore[arg-type]
        return [r.id for r in found]

    assert await ids() == [fund.id, out.id, hold.id, void.id]
    assert await ids(credits=False) == [out.id, hold.id, void.id]
    assert await ids(debits=False) == [fund.id]
    assert await ids(reversed=True, limit=2) == [void.id, hold.id]
    assert await ids(code=2) == [out.id, hold.id, void.id]
    assert await ids(user_data_64=4) == [out.id]
    assert await ids(timestamp_min=clock.now()) == [void.id]
    assert await ids(timestamp_max=clock.now() - timedelta(seconds=1)) == [fund.id, out.id, hold.id]
    [record] = await ledger.get_account_transfers(
        AccountFilter(account_id=alice, reversed=True, limit=1)
    )
    assert (record.debit_account_id, record.amount, record.code) == (alice, 5_00, 2)
    assert await ledger.get_account_transfers(AccountFilter(account_id=new_id())) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"limit": 0},
        {"limit": 8191},
        {"code": MAX_U16 + 1},
        {"user_data_128": -1},
        {"user_data_64": MAX_U64 + 1},
        {"user_data_32": MAX_U32 + 1},
        {"debits": False, "credits": False},
        {
            "timestamp_min": datetime(2026, 2, 1, tzinfo=UTC),
            "timestamp_max": datetime(2026, 1, 1, tzinfo=UTC),
        },
        {"timestamp_min": datetime(2026, 1, 1)},  # noqa: DTZ001 - the naive value is the point
    ],
)
async def test_an_invalid_filter_is_a_core_error(ledger: Ledger, bad: dict[str, object]) -> None:
    with pytest.raises(InvalidLedgerFilter) as raised:
        await ledger.get_account_transfers(AccountFilter(account_id=new_id(), **bad))  # type: ignore[arg-type]
    assert raised.value.code == "invalid_ledger_filter"
    with pytest.raises(InvalidLedgerFilter):
        await ledger.get_account_balances(AccountFilter(account_id=new_id(), **bad))  # type: ignore[arg-type]
    query_bad = {k: v for k, v in bad.items() if k not in ("debits", "credits")}
    if query_bad:
        with pytest.raises(InvalidLedgerFilter):
            await ledger.query_transfers(QueryFilter(**query_bad))  # type: ignore[arg-type]


async def test_query_transfers_refuses_an_out_of_range_ledger(ledger: Ledger) -> None:
    with pytest.raises(InvalidLedgerFilter):
        await ledger.query_transfers(QueryFilter(ledger=MAX_U32 + 1))


# -- imported events -----------------------------------------------------------------


async def test_imported_accounts_and_transfers_keep_their_timestamps(
    ledger_harness: LedgerHarness,
) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    t0 = clock.now() - timedelta(days=30)
    bank, alice = new_id(), new_id()
    assert await ledger.create_accounts(
        [
            NewAccount(id=bank, code=100, flags=AccountFlags.IMPORTED, timestamp=t0),
            NewAccount(
                id=alice,
                code=1,
                flags=CUSTOMER | AccountFlags.IMPORTED,
                timestamp=t0 + timedelta(seconds=1),
                user_data_64=42,
            ),
        ]
    ) == [A.OK, A.OK]
    a = await account(ledger, alice)
    assert (a.timestamp, a.user_data_64) == (t0 + timedelta(seconds=1), 42)
    history = [
        move(bank, alice, 50_00, flags=F.IMPORTED, timestamp=t0 + timedelta(days=1)),
        move(alice, bank, 5_00, flags=F.IMPORTED | F.PENDING, timestamp=t0 + timedelta(days=2)),
    ]
    assert await ledger.create_transfers(history) == [R.OK, R.OK]
    post = resolve(history[1].id, flags=F.IMPORTED, timestamp=t0 + timedelta(days=3))
    assert await ledger.create_transfers([post]) == [R.OK]
    records = await ledger.lookup_transfers([t.id for t in history] + [post.id])
    assert [r.timestamp for r in records] == [t0 + timedelta(days=d) for d in (1, 2, 3)]
    entries = (await ledger.get_account_entries(alice)).entries
    assert [e.timestamp for e in entries] == [t0 + timedelta(days=1), t0 + timedelta(days=3)]
    assert await balances(ledger, alice) == (0, 5_00, 0, 50_00)
    # replays are recognised before the timestamp rules
    assert await ledger.create_transfers(history) == [R.EXISTS, R.EXISTS]


async def test_imported_events_answer_their_result_codes(ledger_harness: LedgerHarness) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    t0 = clock.now() - timedelta(days=10)
    old, young = new_id(), new_id()
    assert await ledger.create_accounts(
        [
            NewAccount(id=old, code=1, flags=AccountFlags.IMPORTED, timestamp=t0),
            NewAccount(
                id=young, code=1, flags=AccountFlags.IMPORTED, timestamp=t0 + timedelta(days=5)
            ),
        ]
    ) == [A.OK, A.OK]
    assert await ledger.create_accounts(
        [
            NewAccount(
                id=new_id(), code=1, flags=AccountFlags.IMPORTED, timestamp=t0 + timedelta(days=1)
            )
        ]
    ) == [A.IMPORTED_EVENT_TIMESTAMP_MUST_NOT_REGRESS]
    assert await ledger.create_accounts(
        [
            NewAccount(
                id=new_id(), code=1, flags=AccountFlags.IMPORTED, timestamp=t0 + timedelta(days=6)
            ),
            NewAccount(id=new_id(), code=1),
        ]
    ) == [A.OK, A.IMPORTED_EVENT_EXPECTED]
    assert await ledger.create_accounts(
        [
            NewAccount(id=new_id(), code=1),
            NewAccount(id=new_id(), code=1, flags=AccountFlags.IMPORTED, timestamp=t0),
        ]
    ) == [A.OK, A.IMPORTED_EVENT_NOT_EXPECTED]
    assert await ledger.create_accounts(
        [NewAccount(id=new_id(), code=1, flags=AccountFlags.IMPORTED)]
    ) == [A.IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE]
    assert await ledger.create_accounts(
        [
            NewAccount(
                id=new_id(),
                code=1,
                flags=AccountFlags.IMPORTED,
                timestamp=clock.now() + timedelta(seconds=1),
            )
        ]
    ) == [A.IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE]

    def imported(
        debit: uuid.UUID,
        credit: uuid.UUID,
        days: int,
        flags: TransferFlags = F.NONE,
        timeout: int = 0,
    ) -> Transfer:
        at = t0 + timedelta(days=days)
        return move(
            debit, credit, 1, flags=F.IMPORTED | flags, timestamp=at, timeout_seconds=timeout
        )

    assert await ledger.create_transfers(
        [
            imported(young, old, 4),
            imported(old, young, 4),
            imported(old, young, 7, F.PENDING, timeout=10),
            imported(old, young, 7),
            imported(young, old, 7),
            imported(old, young, 8),
        ]
    ) == [
        R.IMPORTED_EVENT_TIMESTAMP_MUST_POSTDATE_DEBIT_ACCOUNT,
        R.IMPORTED_EVENT_TIMESTAMP_MUST_POSTDATE_CREDIT_ACCOUNT,
        R.IMPORTED_EVENT_TIMEOUT_MUST_BE_ZERO,
        R.OK,
        R.IMPORTED_EVENT_TIMESTAMP_MUST_NOT_REGRESS,
        R.OK,
    ]


# -- user data -------------------------------------------------------------------------


async def test_user_data_is_kept_on_accounts_and_transfers(ledger: Ledger) -> None:
    acc = NewAccount(
        id=new_id(), code=1, user_data_128=1 << 100, user_data_64=1 << 40, user_data_32=7
    )
    other = NewAccount(id=new_id(), code=1)
    assert await ledger.create_accounts([acc, other]) == [A.OK, A.OK]
    found = await account(ledger, acc.id)
    assert (found.user_data_128, found.user_data_64, found.user_data_32) == (1 << 100, 1 << 40, 7)
    assert await ledger.create_accounts([acc]) == [A.EXISTS]
    for changed in (
        NewAccount(id=acc.id, code=1, user_data_128=1, user_data_64=1 << 40, user_data_32=7),
        NewAccount(id=acc.id, code=1, user_data_128=1 << 100, user_data_64=0, user_data_32=7),
        NewAccount(id=acc.id, code=1, user_data_128=1 << 100, user_data_64=1 << 40, user_data_32=8),
        NewAccount(
            id=acc.id,
            code=1,
            user_data_128=1 << 100,
            user_data_64=1 << 40,
            user_data_32=7,
            ledger=1,
        ),
    ):
        assert await ledger.create_accounts([changed]) == [A.EXISTS_WITH_DIFFERENT_FIELDS]
    t = move(acc.id, other.id, 1, user_data_128=MAX_U128, user_data_64=3, user_data_32=4)
    assert await ledger.create_transfers([t]) == [R.OK]
    [record] = await ledger.lookup_transfers([t.id])
    assert (record.user_data_128, record.user_data_64, record.user_data_32) == (MAX_U128, 3, 4)
    assert record.request == t
    changed_t = move(
        acc.id, other.id, 1, id=t.id, user_data_128=MAX_U128, user_data_64=3, user_data_32=5
    )
    assert await ledger.create_transfers([changed_t]) == [R.EXISTS_WITH_DIFFERENT_FIELDS]


async def test_linked_accounts_are_created_all_or_nothing(ledger: Ledger) -> None:
    first, second, third = new_id(), new_id(), new_id()
    assert await ledger.create_accounts(
        [
            NewAccount(id=first, code=1, flags=AccountFlags.LINKED),
            NewAccount(id=second, code=0),
            NewAccount(id=third, code=1, flags=AccountFlags.LINKED),
        ]
    ) == [A.LINKED_EVENT_FAILED, A.CODE_MUST_NOT_BE_ZERO, A.LINKED_EVENT_CHAIN_OPEN]
    assert await ledger.lookup_accounts([first, second, third]) == []
    assert await ledger.create_accounts(
        [NewAccount(id=first, code=1, flags=AccountFlags.LINKED), NewAccount(id=second, code=1)]
    ) == [A.OK, A.OK]


# -- expiry: whichever call comes first releases once ------------------------------------


FirstCall = Callable[[Ledger, uuid.UUID, uuid.UUID], Awaitable[object]]

FIRST_CALLS: dict[str, FirstCall] = {
    # 51 fits only if the expiry is not applied first (100 credits, 50 reserved after it)
    "create_transfers": lambda lg, a, b: lg.create_transfers([move(a, b, 51)]),
    "create_accounts": lambda lg, a, b: lg.create_accounts([NewAccount(id=new_id(), code=1)]),
    "lookup_accounts": lambda lg, a, b: lg.lookup_accounts([a, b]),
    "lookup_transfers": lambda lg, a, b: lg.lookup_transfers([new_id()]),
    "get_account_entries": lambda lg, a, b: lg.get_account_entries(a),
    "expire_pending_transfers": lambda lg, a, b: lg.expire_pending_transfers(),
    "query_transfers": lambda lg, a, b: lg.query_transfers(QueryFilter()),
    "get_account_transfers": lambda lg, a, b: lg.get_account_transfers(AccountFilter(account_id=a)),
    "get_account_balances": lambda lg, a, b: lg.get_account_balances(AccountFilter(account_id=a)),
}


@pytest.mark.parametrize("first", list(FIRST_CALLS))
async def test_an_expiry_releases_once_whichever_call_comes_first(
    ledger_harness: LedgerHarness, first: str
) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    bank, customer = await open_accounts(ledger, AccountFlags.NONE, CUSTOMER | AccountFlags.HISTORY)
    assert await ledger.create_transfers([move(bank, customer, 100)]) == [R.OK]
    p1 = move(customer, bank, 10, flags=F.PENDING | F.CLOSING_CREDIT, timeout_seconds=60)
    p2 = move(customer, bank, 50, flags=F.PENDING)
    assert await ledger.create_transfers([p2, p1]) == [R.OK, R.OK]
    assert await balances(ledger, customer) == (60, 0, 0, 100)
    clock.advance(60)
    await FIRST_CALLS[first](ledger, customer, bank)
    for _ in range(2):
        assert await balances(ledger, customer) == (50, 0, 0, 100)
        assert await balances(ledger, bank) == (0, 100, 50, 0)
        assert AccountFlags.CLOSED not in (await account(ledger, bank)).flags
    statuses = [r.status for r in await ledger.lookup_transfers([p1.id, p2.id])]
    assert statuses == [PendingStatus.EXPIRED, PendingStatus.PENDING]
    assert await ledger.expire_pending_transfers() == 0
    assert await ledger.create_transfers([move(customer, bank, 51)]) == [R.EXCEEDS_CREDITS]
    assert await ledger.create_transfers([move(customer, bank, 50)]) == [R.OK]
    assert await balances(ledger, customer) == (50, 50, 0, 100)


async def test_a_timeout_beyond_the_calendar_overflows(ledger_harness: LedgerHarness) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    bank, customer = await open_accounts(ledger, AccountFlags.NONE, AccountFlags.NONE)
    clock.set(datetime(9999, 12, 1, tzinfo=UTC))
    far = move(bank, customer, 1, flags=F.PENDING, timeout_seconds=MAX_U32)
    near = move(bank, customer, 1, flags=F.PENDING, timeout_seconds=3600)
    assert await ledger.create_transfers([far, near]) == [R.OVERFLOWS_TIMEOUT, R.OK]
    assert await balances(ledger, customer) == (0, 0, 1, 0)
    clock.advance(3600)
    assert await balances(ledger, customer) == (0, 0, 0, 0)


# -- inputs both stores must refuse alike ----------------------------------------------


@pytest.mark.parametrize(
    ("user_data", "alone"),
    [("ref\x00", False), ("ref\ud800", False), ("\udfffref", True), ("ref\x00", True)],
    ids=["nul", "surrogate", "surrogate-alone", "nul-alone"],
)
async def test_unstorable_user_data_refuses_the_whole_batch_with_a_core_error(
    ledger_harness: LedgerHarness, user_data: str, alone: bool
) -> None:
    # PostgreSQL text holds neither a NUL nor an unpaired surrogate (memory stored the
    # surrogate, the driver refused the batch): both refuse it before anything applies,
    # in a batch and alone (PostgreSQL's path for one plain transfer)
    ledger = ledger_harness.ledger
    debit, credit = await open_accounts(ledger, AccountFlags.NONE, AccountFlags.NONE)
    fine = Transfer(id=new_id(), debit_account_id=debit, credit_account_id=credit, amount=5, code=1)
    bad = Transfer(
        id=new_id(),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=7,
        code=1,
        user_data=user_data,
    )
    with pytest.raises(InvalidInput) as caught:
        await ledger.create_transfers([bad] if alone else [fine, bad])
    assert caught.value.details["field"] == "user_data"
    storable = msgspec.structs.replace(bad, id=new_id(), user_data="référence ✓")
    assert await ledger.create_transfers([storable]) == [CreateTransferResult.OK]
    assert [t.user_data for t in await ledger.lookup_transfers([storable.id])] == ["référence ✓"]
    # nothing of the batch was applied, not even the valid first transfer
    assert await ledger.lookup_transfers([fine.id, bad.id]) == []
    accounts = await ledger.lookup_accounts([debit, credit])
    assert [a.debits_posted + a.credits_posted for a in accounts] == [7, 7]  # the storable one


@pytest.mark.parametrize("bound", ["since", "until"])
async def test_a_statement_bound_without_a_time_zone_is_refused(
    ledger_harness: LedgerHarness, bound: str
) -> None:
    ledger = ledger_harness.ledger
    (account,) = await open_accounts(ledger, AccountFlags.NONE)
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - the naive value is what is under test
    with pytest.raises(InvalidLedgerFilter) as caught:
        await ledger.get_account_entries(account, **{bound: naive})  # type: ignore[arg-type]
    assert caught.value.details["field"] == bound
    aware = await ledger.get_account_entries(account, **{bound: naive.replace(tzinfo=UTC)})  # type: ignore[arg-type]
    assert aware.entries == []
