"""The Ledger contract: every adapter must pass this suite unchanged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    EntrySide,
    LedgerAccount,
    NewAccount,
    PendingStatus,
    Transfer,
    TransferFlags,
)
from finbank_core.accounts.ports import Ledger
from finbank_core.shared.events import EventEnvelope
from tests.contract.conftest import LedgerHarness

R = CreateTransferResult
CUSTOMER = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS


def new_id() -> uuid.UUID:
    return uuid.uuid4()


async def open_accounts(ledger: Ledger, *flags: AccountFlags) -> list[uuid.UUID]:
    ids = [new_id() for _ in flags]
    results = await ledger.create_accounts(
        [NewAccount(id=i, code=1, flags=f) for i, f in zip(ids, flags, strict=True)]
    )
    assert results == [CreateAccountResult.OK] * len(flags)
    return ids


async def account(ledger: Ledger, account_id: uuid.UUID) -> LedgerAccount:
    [found] = await ledger.lookup_accounts([account_id])
    return found


def move(
    debit: uuid.UUID | None,
    credit: uuid.UUID | None,
    amount: int,
    *,
    id: uuid.UUID | None = None,
    flags: TransferFlags = TransferFlags.NONE,
    timeout_seconds: int = 0,
    user_data: str | None = None,
) -> Transfer:
    return Transfer(
        id=id or new_id(),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        code=3,
        flags=flags,
        timeout_seconds=timeout_seconds,
        user_data=user_data,
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


# -- accounts -------------------------------------------------------------------


async def test_new_account_starts_with_zero_balances(ledger: Ledger) -> None:
    [acc_id] = await open_accounts(ledger, CUSTOMER)
    acc = await account(ledger, acc_id)
    assert (acc.debits_pending, acc.debits_posted, acc.credits_pending, acc.credits_posted) == (
        0,
        0,
        0,
        0,
    )
    assert acc.flags == CUSTOMER


async def test_creating_an_account_twice_reports_exists(ledger: Ledger) -> None:
    acc = NewAccount(id=new_id(), code=1, flags=CUSTOMER)
    assert await ledger.create_accounts([acc]) == [CreateAccountResult.OK]
    assert await ledger.create_accounts([acc]) == [CreateAccountResult.EXISTS]
    other = NewAccount(id=acc.id, code=2, flags=CUSTOMER)
    assert await ledger.create_accounts([other]) == [
        CreateAccountResult.EXISTS_WITH_DIFFERENT_FIELDS
    ]


async def test_account_with_both_balance_limits_is_refused(ledger: Ledger) -> None:
    both = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
    acc = NewAccount(id=new_id(), code=1, flags=both)
    assert await ledger.create_accounts([acc]) == [CreateAccountResult.FLAGS_ARE_MUTUALLY_EXCLUSIVE]
    assert await ledger.lookup_accounts([acc.id]) == []


async def test_lookup_skips_unknown_accounts_and_keeps_order(ledger: Ledger) -> None:
    a, b = await open_accounts(ledger, CUSTOMER, CUSTOMER)
    found = await ledger.lookup_accounts([b, new_id(), a])
    assert [x.id for x in found] == [b, a]


# -- single-phase transfers ---------------------------------------------------------


async def test_transfer_moves_money_between_accounts(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    bank, alice, bob = funded
    assert await ledger.create_transfers([move(alice, bob, 30_00)]) == [R.OK]
    a, b, k = await ledger.lookup_accounts([alice, bob, bank])
    assert a.balance_posted == 70_00
    assert b.balance_posted == 30_00
    assert k.debits_posted == 100_00


async def test_customer_account_cannot_go_below_zero(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    assert await ledger.create_transfers([move(alice, bob, 100_01)]) == [R.EXCEEDS_CREDITS]
    assert (await account(ledger, alice)).balance_posted == 100_00
    assert await ledger.create_transfers([move(alice, bob, 100_00)]) == [R.OK]
    assert (await account(ledger, alice)).balance_posted == 0


async def test_credit_limited_account_refuses_credits_beyond_debits(ledger: Ledger) -> None:
    source, limited = await open_accounts(
        ledger, AccountFlags.NONE, AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
    )
    assert await ledger.create_transfers([move(source, limited, 1)]) == [R.EXCEEDS_DEBITS]


@pytest.mark.parametrize(
    ("amount", "same", "expected"),
    [
        (0, False, R.AMOUNT_MUST_NOT_BE_ZERO),
        (-5, False, R.AMOUNT_MUST_NOT_BE_NEGATIVE),
        (1, True, R.ACCOUNTS_MUST_BE_DIFFERENT),
    ],
)
async def test_malformed_transfers_are_refused(
    ledger: Ledger,
    funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID],
    amount: int,
    same: bool,
    expected: CreateTransferResult,
) -> None:
    _, alice, bob = funded
    assert await ledger.create_transfers([move(alice, alice if same else bob, amount)]) == [
        expected
    ]
    assert (await account(ledger, alice)).balance_posted == 100_00


async def test_unknown_accounts_are_reported(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, _ = funded
    assert await ledger.create_transfers([move(new_id(), alice, 1)]) == [R.DEBIT_ACCOUNT_NOT_FOUND]
    assert await ledger.create_transfers([move(alice, new_id(), 1)]) == [R.CREDIT_ACCOUNT_NOT_FOUND]
    assert await ledger.create_transfers([move(None, alice, 1)]) == [R.DEBIT_ACCOUNT_ID_REQUIRED]


async def test_timeout_is_only_for_pending_transfers(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    assert await ledger.create_transfers([move(alice, bob, 1, timeout_seconds=10)]) == [
        R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
    ]


# -- idempotency --------------------------------------------------------------------


async def test_replayed_transfer_reports_exists_and_moves_nothing(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    transfer = move(alice, bob, 10_00, user_data="rent")
    assert await ledger.create_transfers([transfer]) == [R.OK]
    assert await ledger.create_transfers([transfer]) == [R.EXISTS]
    assert await ledger.create_transfers([transfer, transfer]) == [R.EXISTS, R.EXISTS]
    assert (await account(ledger, bob)).balance_posted == 10_00


async def test_same_id_with_other_fields_is_refused(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    first = move(alice, bob, 10_00)
    assert await ledger.create_transfers([first]) == [R.OK]
    for changed in (
        move(alice, bob, 10_01, id=first.id),
        move(bob, alice, 10_00, id=first.id),
        move(alice, bob, 10_00, id=first.id, user_data="other"),
    ):
        assert await ledger.create_transfers([changed]) == [R.EXISTS_WITH_DIFFERENT_FIELDS]
    assert (await account(ledger, bob)).balance_posted == 10_00


async def test_duplicate_id_within_one_batch_is_applied_once(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    transfer = move(alice, bob, 1_00)
    assert await ledger.create_transfers([transfer, transfer]) == [R.OK, R.EXISTS]
    assert (await account(ledger, bob)).balance_posted == 1_00


async def test_failed_transfer_id_can_be_used_again(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    """A refused transfer is not stored, so the client may retry it once funds arrive."""
    bank, alice, bob = funded
    transfer = move(alice, bob, 150_00)
    assert await ledger.create_transfers([transfer]) == [R.EXCEEDS_CREDITS]
    assert await ledger.create_transfers([move(bank, alice, 50_00)]) == [R.OK]
    assert await ledger.create_transfers([transfer]) == [R.OK]


async def test_lookup_transfers_returns_the_request_and_resolution(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    transfer = move(alice, bob, 5_00, user_data="coffee")
    await ledger.create_transfers([transfer])
    [record] = await ledger.lookup_transfers([transfer.id])
    assert record.request == transfer
    assert (record.debit_account_id, record.credit_account_id, record.amount) == (
        alice,
        bob,
        5_00,
    )
    assert record.status is PendingStatus.NONE
    assert await ledger.lookup_transfers([new_id()]) == []


# -- batches and linked chains ------------------------------------------------------


async def test_results_are_per_transfer_and_in_order(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    results = await ledger.create_transfers(
        [move(alice, bob, 60_00), move(alice, bob, 60_00), move(alice, bob, 40_00)]
    )
    assert results == [R.OK, R.EXCEEDS_CREDITS, R.OK]
    assert (await account(ledger, alice)).balance_posted == 0


async def test_linked_chain_fails_as_a_whole(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    bank, alice, bob = funded
    chain = [
        move(alice, bob, 50_00, flags=TransferFlags.LINKED),
        move(bob, bank, 10_00, flags=TransferFlags.LINKED),
        move(alice, bob, 60_00),  # fails: alice has only 50_00 left inside the chain
    ]
    after = move(alice, bob, 1_00)
    results = await ledger.create_transfers([*chain, after])
    assert results == [R.LINKED_EVENT_FAILED, R.LINKED_EVENT_FAILED, R.EXCEEDS_CREDITS, R.OK]
    a, b = await ledger.lookup_accounts([alice, bob])
    assert (a.balance_posted, b.balance_posted) == (99_00, 1_00)
    assert await ledger.lookup_transfers([t.id for t in chain]) == []
    page = await ledger.get_account_entries(bob)
    assert [e.transfer_id for e in page.entries] == [after.id]


async def test_linked_chain_succeeds_as_a_whole(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    bank, alice, bob = funded
    chain = [
        move(alice, bob, 50_00, flags=TransferFlags.LINKED),
        move(bob, bank, 50_00),
    ]
    assert await ledger.create_transfers(chain) == [R.OK, R.OK]
    assert (await account(ledger, bob)).balance_posted == 0


async def test_members_after_a_failure_in_the_chain_fail_too(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    chain = [
        move(alice, bob, 500_00, flags=TransferFlags.LINKED),
        move(alice, bob, 1_00, flags=TransferFlags.LINKED),
        move(alice, bob, 1_00),
    ]
    assert await ledger.create_transfers(chain) == [
        R.EXCEEDS_CREDITS,
        R.LINKED_EVENT_FAILED,
        R.LINKED_EVENT_FAILED,
    ]
    assert (await account(ledger, bob)).balance_posted == 0


async def test_chain_left_open_at_the_end_of_the_batch_fails(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    chain = [
        move(alice, bob, 1_00, flags=TransferFlags.LINKED),
        move(alice, bob, 1_00, flags=TransferFlags.LINKED),
    ]
    assert await ledger.create_transfers(chain) == [
        R.LINKED_EVENT_FAILED,
        R.LINKED_EVENT_CHAIN_OPEN,
    ]
    assert (await account(ledger, bob)).balance_posted == 0


async def test_chain_with_a_replayed_member_fails(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    done = move(alice, bob, 1_00)
    await ledger.create_transfers([done])
    fresh = move(alice, bob, 2_00, flags=TransferFlags.LINKED)
    assert await ledger.create_transfers([fresh, done]) == [R.LINKED_EVENT_FAILED, R.EXISTS]
    assert (await account(ledger, bob)).balance_posted == 1_00


# -- two-phase transfers -------------------------------------------------------------


def pending(debit: uuid.UUID, credit: uuid.UUID, amount: int, timeout: int = 0) -> Transfer:
    return move(debit, credit, amount, flags=TransferFlags.PENDING, timeout_seconds=timeout)


async def test_pending_transfer_reserves_funds(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    hold = pending(alice, bob, 70_00)
    assert await ledger.create_transfers([hold]) == [R.OK]
    a, b = await ledger.lookup_accounts([alice, bob])
    assert (a.debits_pending, a.balance_posted, a.balance_available) == (70_00, 100_00, 30_00)
    assert (b.credits_pending, b.balance_posted) == (70_00, 0)
    assert await ledger.create_transfers([move(alice, bob, 30_01)]) == [R.EXCEEDS_CREDITS]
    assert await ledger.create_transfers([pending(alice, bob, 30_01)]) == [R.EXCEEDS_CREDITS]


async def test_posting_a_pending_transfer_in_full(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    hold = pending(alice, bob, 70_00)
    await ledger.create_transfers([hold])
    post = Transfer.post(new_id(), hold.id)
    assert await ledger.create_transfers([post]) == [R.OK]
    a, b = await ledger.lookup_accounts([alice, bob])
    assert (a.debits_pending, a.balance_posted) == (0, 30_00)
    assert (b.credits_pending, b.balance_posted) == (0, 70_00)
    [hold_record, post_record] = await ledger.lookup_transfers([hold.id, post.id])
    assert hold_record.status is PendingStatus.POSTED
    assert post_record.amount == 70_00
    assert post_record.debit_account_id == alice


async def test_posting_part_of_a_pending_transfer_releases_the_rest(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    hold = pending(alice, bob, 70_00)
    await ledger.create_transfers([hold])
    assert await ledger.create_transfers([Transfer.post(new_id(), hold.id, amount=20_00)]) == [R.OK]
    a, b = await ledger.lookup_accounts([alice, bob])
    assert (a.debits_pending, a.balance_posted, a.balance_available) == (0, 80_00, 80_00)
    assert b.balance_posted == 20_00


async def test_post_cannot_exceed_the_pending_amount(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    hold = pending(alice, bob, 10_00)
    await ledger.create_transfers([hold])
    assert await ledger.create_transfers([Transfer.post(new_id(), hold.id, amount=10_01)]) == [
        R.EXCEEDS_PENDING_TRANSFER_AMOUNT
    ]
    assert (await account(ledger, alice)).debits_pending == 10_00


async def test_voiding_a_pending_transfer_releases_it(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    hold = pending(alice, bob, 70_00)
    await ledger.create_transfers([hold])
    assert await ledger.create_transfers([Transfer.void(new_id(), hold.id)]) == [R.OK]
    a, b = await ledger.lookup_accounts([alice, bob])
    assert (a.debits_pending, a.balance_posted) == (0, 100_00)
    assert (b.credits_pending, b.balance_posted) == (0, 0)
    [record] = await ledger.lookup_transfers([hold.id])
    assert record.status is PendingStatus.VOIDED


async def test_a_pending_transfer_resolves_only_once(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    posted, voided = pending(alice, bob, 10_00), pending(alice, bob, 10_00)
    await ledger.create_transfers([posted, voided])
    await ledger.create_transfers(
        [Transfer.post(new_id(), posted.id), Transfer.void(new_id(), voided.id)]
    )
    assert await ledger.create_transfers(
        [
            Transfer.post(new_id(), posted.id),
            Transfer.void(new_id(), posted.id),
            Transfer.post(new_id(), voided.id),
        ]
    ) == [
        R.PENDING_TRANSFER_ALREADY_POSTED,
        R.PENDING_TRANSFER_ALREADY_POSTED,
        R.PENDING_TRANSFER_ALREADY_VOIDED,
    ]
    assert (await account(ledger, bob)).balance_posted == 10_00


async def test_replayed_post_reports_exists(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    hold = pending(alice, bob, 10_00)
    await ledger.create_transfers([hold])
    post = Transfer.post(new_id(), hold.id)
    assert await ledger.create_transfers([post]) == [R.OK]
    assert await ledger.create_transfers([post]) == [R.EXISTS]
    assert (await account(ledger, bob)).balance_posted == 10_00


async def test_resolving_needs_an_existing_pending_transfer(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    plain = move(alice, bob, 1_00)
    await ledger.create_transfers([plain])
    missing = Transfer.post(new_id(), new_id())
    no_pending_id = Transfer(
        id=new_id(),
        debit_account_id=None,
        credit_account_id=None,
        amount=0,
        code=3,
        flags=TransferFlags.VOID_PENDING_TRANSFER,
    )
    assert await ledger.create_transfers(
        [missing, Transfer.post(new_id(), plain.id), no_pending_id]
    ) == [R.PENDING_TRANSFER_NOT_FOUND, R.PENDING_TRANSFER_NOT_PENDING, R.PENDING_ID_REQUIRED]


async def test_post_naming_other_accounts_is_refused(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    bank, alice, bob = funded
    hold = pending(alice, bob, 1_00)
    await ledger.create_transfers([hold])
    wrong_debit = Transfer(
        id=new_id(),
        debit_account_id=bank,
        credit_account_id=bob,
        amount=0,
        code=3,
        flags=TransferFlags.POST_PENDING_TRANSFER,
        pending_id=hold.id,
    )
    assert await ledger.create_transfers([wrong_debit]) == [
        R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID
    ]


async def test_void_with_another_amount_is_refused(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    hold = pending(alice, bob, 10_00)
    await ledger.create_transfers([hold])
    void = Transfer(
        id=new_id(),
        debit_account_id=None,
        credit_account_id=None,
        amount=5_00,
        code=3,
        flags=TransferFlags.VOID_PENDING_TRANSFER,
        pending_id=hold.id,
    )
    assert await ledger.create_transfers([void]) == [R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT]


async def test_pending_and_post_flags_together_are_refused(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    both = move(alice, bob, 1_00, flags=TransferFlags.PENDING | TransferFlags.POST_PENDING_TRANSFER)
    assert await ledger.create_transfers([both]) == [R.FLAGS_ARE_MUTUALLY_EXCLUSIVE]


async def test_pending_transfer_expires_after_its_timeout(
    ledger_harness: LedgerHarness, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    _, alice, bob = funded
    hold = pending(alice, bob, 60_00, timeout=60)
    await ledger.create_transfers([hold])
    clock.advance(59)
    assert (await account(ledger, alice)).debits_pending == 60_00
    clock.advance(1)
    a = await account(ledger, alice)
    assert (a.debits_pending, a.balance_available) == (0, 100_00)
    assert await ledger.create_transfers([Transfer.post(new_id(), hold.id)]) == [
        R.PENDING_TRANSFER_EXPIRED
    ]
    [record] = await ledger.lookup_transfers([hold.id])
    assert record.status is PendingStatus.EXPIRED
    assert (await account(ledger, bob)).balance_posted == 0


async def test_expire_pending_transfers_counts_what_it_voided(
    ledger_harness: LedgerHarness, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    _, alice, bob = funded
    await ledger.create_transfers(
        [pending(alice, bob, 1_00, timeout=10), pending(alice, bob, 1_00, timeout=100)]
    )
    await ledger.create_transfers([pending(alice, bob, 1_00)])  # no timeout: never expires
    clock.advance(30)
    assert await ledger.expire_pending_transfers() == 1
    assert await ledger.expire_pending_transfers() == 0
    clock.advance(days=365)
    assert await ledger.expire_pending_transfers() == 1
    assert (await account(ledger, alice)).debits_pending == 1_00


async def test_post_before_timeout_succeeds(
    ledger_harness: LedgerHarness, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    _, alice, bob = funded
    hold = pending(alice, bob, 10_00, timeout=60)
    await ledger.create_transfers([hold])
    clock.advance(59)
    assert await ledger.create_transfers([Transfer.post(new_id(), hold.id)]) == [R.OK]
    clock.advance(3600)
    assert await ledger.expire_pending_transfers() == 0
    assert (await account(ledger, bob)).balance_posted == 10_00


async def test_linked_pending_and_post_roll_back_together(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    hold = pending(alice, bob, 10_00)
    await ledger.create_transfers([hold])
    post = Transfer(
        id=new_id(),
        debit_account_id=None,
        credit_account_id=None,
        amount=0,
        code=3,
        flags=TransferFlags.POST_PENDING_TRANSFER | TransferFlags.LINKED,
        pending_id=hold.id,
    )
    assert await ledger.create_transfers([post, move(alice, bob, 500_00)]) == [
        R.LINKED_EVENT_FAILED,
        R.EXCEEDS_CREDITS,
    ]
    a = await account(ledger, alice)
    assert (a.debits_pending, a.balance_posted) == (10_00, 100_00)
    [record] = await ledger.lookup_transfers([hold.id])
    assert record.status is PendingStatus.PENDING


# -- statements ---------------------------------------------------------------------


async def test_entries_carry_the_running_balance(
    ledger_harness: LedgerHarness, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    bank, alice, bob = funded
    clock.advance(1)
    await ledger.create_transfers([move(alice, bob, 30_00, user_data="dinner")])
    clock.advance(1)
    await ledger.create_transfers([move(bob, alice, 5_00)])
    page = await ledger.get_account_entries(alice)
    assert [(e.side, e.amount, e.balance_after) for e in page.entries] == [
        (EntrySide.CREDIT, 100_00, 100_00),
        (EntrySide.DEBIT, 30_00, 70_00),
        (EntrySide.CREDIT, 5_00, 75_00),
    ]
    assert page.entries[1].user_data == "dinner"
    assert page.next_after_sequence is None
    bank_entries = (await ledger.get_account_entries(bank)).entries
    assert [e.balance_after for e in bank_entries] == [-100_00]


async def test_pending_transfers_create_entries_only_when_posted(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    hold = pending(alice, bob, 10_00)
    await ledger.create_transfers([hold])
    assert (await ledger.get_account_entries(bob)).entries == []
    post = Transfer.post(new_id(), hold.id, amount=4_00)
    await ledger.create_transfers([post])
    [entry] = (await ledger.get_account_entries(bob)).entries
    assert (entry.transfer_id, entry.amount, entry.balance_after) == (post.id, 4_00, 4_00)


async def test_entries_are_paged_by_cursor(
    ledger: Ledger, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, alice, bob = funded
    for _ in range(5):
        await ledger.create_transfers([move(alice, bob, 1_00)])
    first = await ledger.get_account_entries(bob, limit=2)
    assert [e.balance_after for e in first.entries] == [1_00, 2_00]
    assert first.next_after_sequence is not None
    second = await ledger.get_account_entries(
        bob, limit=2, after_sequence=first.next_after_sequence
    )
    third = await ledger.get_account_entries(
        bob, limit=2, after_sequence=second.next_after_sequence
    )
    assert [e.balance_after for e in second.entries] == [3_00, 4_00]
    assert [e.balance_after for e in third.entries] == [5_00]
    assert third.next_after_sequence is None


async def test_entries_are_bounded_by_date(
    ledger_harness: LedgerHarness, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    ledger, clock = ledger_harness.ledger, ledger_harness.clock
    _, alice, bob = funded
    clock.set(datetime(2026, 3, 1, 10, tzinfo=UTC))
    await ledger.create_transfers([move(alice, bob, 1_00)])
    clock.set(datetime(2026, 3, 2, 10, tzinfo=UTC))
    await ledger.create_transfers([move(alice, bob, 2_00)])
    clock.set(datetime(2026, 3, 3, 10, tzinfo=UTC))
    await ledger.create_transfers([move(alice, bob, 3_00)])
    page = await ledger.get_account_entries(
        bob,
        since=datetime(2026, 3, 2, tzinfo=UTC),
        until=datetime(2026, 3, 3, 10, tzinfo=UTC),
    )
    assert [(e.amount, e.balance_after) for e in page.entries] == [(2_00, 3_00)]
    assert page.entries[0].timestamp == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert page.entries[0].timestamp - timedelta(hours=10) == datetime(2026, 3, 2, tzinfo=UTC)


async def test_entries_of_an_unknown_account_are_empty(ledger: Ledger) -> None:
    page = await ledger.get_account_entries(new_id())
    assert page.entries == []
    assert page.next_after_sequence is None


# -- events recorded with batches -----------------------------------------------------


def event(aggregate: uuid.UUID, clock_now: datetime) -> EventEnvelope:
    return EventEnvelope(
        event_id=new_id(),
        type="ledger.test_event",
        version=1,
        occurred_at=clock_now,
        aggregate_id=str(aggregate),
        payload={"n": 1},
    )


async def test_events_are_recorded_once_with_a_successful_batch(
    ledger_harness: LedgerHarness, funded: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    ledger = ledger_harness.ledger
    _, alice, bob = funded
    transfer = move(alice, bob, 1_00)
    evt = event(alice, ledger_harness.clock.now())
    assert await ledger.create_transfers([transfer], events=[evt]) == [R.OK]
    replay_evt = event(alice, ledger_harness.clock.now())
    assert await ledger.create_transfers([transfer], events=[replay_evt]) == [R.EXISTS]
    failed_evt = event(alice, ledger_harness.clock.now())
    assert await ledger.create_transfers([move(alice, bob, 1_000_00)], events=[failed_evt]) == [
        R.EXCEEDS_CREDITS
    ]
    recorded = [e.event_id for e in await ledger_harness.recorded_events()]
    assert evt.event_id in recorded
    assert replay_evt.event_id not in recorded
    assert failed_evt.event_id not in recorded
    [stored] = [e for e in await ledger_harness.recorded_events() if e.event_id == evt.event_id]
    assert stored == evt
