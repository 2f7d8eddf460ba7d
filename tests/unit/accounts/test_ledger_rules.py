"""The core ledger rules as a pure function, driven by generated batches.

Batches mix every flag bit (reserved ones too), ids at 0 and 2^128-1, values
at and beyond their type limits, linked chains, closing and balancing
transfers, imported timestamps and a moving clock. Whatever comes in, the
rules answer with result codes (never an exception) and keep the ledger's
invariants: money is conserved, no limited account goes beyond its limit,
pending balances are exactly the live reservations, a chain is applied whole
or not at all, a batch with no ``ok`` changes nothing, and a replay of an
applied transfer answers ``exists``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finbank_core.accounts import ledger_rules as rules
from finbank_core.accounts.ledger import (
    INT_MAX_ID,
    MAX_AMOUNT,
    MAX_U16,
    MAX_U32,
    MAX_U64,
    MAX_U128,
    ZERO_ID,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    NewAccount,
    PendingStatus,
    Transfer,
    TransferFlags,
)

R = CreateTransferResult
START = datetime(2026, 1, 5, 12, tzinfo=UTC)
ACCOUNTS = [uuid.UUID(int=n) for n in range(1, 7)]
FLAGS = [
    AccountFlags.NONE,
    AccountFlags.NONE,
    AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS,
    AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags.HISTORY,
    AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS,
    AccountFlags.HISTORY,
]
TRANSFER_IDS = [uuid.UUID(int=1000 + n) for n in range(40)]
PENDING_IDS = TRANSFER_IDS[:6]  # pending transfers take these ids, posts and voids name them


def fresh_state() -> rules.LedgerState:
    state = rules.LedgerState()
    results = rules.create_accounts(
        state,
        [NewAccount(id=i, code=1, flags=f) for i, f in zip(ACCOUNTS, FLAGS, strict=True)],
        START,
    )
    assert results == [CreateAccountResult.OK] * len(ACCOUNTS)
    # fund the limited accounts so that debits can succeed
    funding = [
        Transfer(
            id=uuid.UUID(int=900 + n),
            debit_account_id=ACCOUNTS[0],
            credit_account_id=a,
            amount=1_000,
            code=1,
        )
        for n, a in enumerate(ACCOUNTS[2:4])
    ]
    # and reserve some amounts, so that posts and voids find pending transfers
    holds = [
        Transfer(
            id=PENDING_IDS[n],
            debit_account_id=ACCOUNTS[n % 2 * 3],
            credit_account_id=ACCOUNTS[1 + n],
            amount=100,
            code=3,
            flags=TransferFlags.PENDING,
            timeout_seconds=30 * n,
        )
        for n in range(3)
    ]
    assert rules.apply_batch(state, funding + holds, START) == [R.OK] * 5
    return state


F = TransferFlags
usual_flags = st.lists(
    st.sampled_from(
        [
            F.LINKED,
            F.PENDING,
            F.PENDING,
            F.POST_PENDING_TRANSFER,
            F.VOID_PENDING_TRANSFER,
            F.BALANCING_DEBIT,
            F.BALANCING_CREDIT,
            F.CLOSING_DEBIT,
            F.CLOSING_CREDIT,
        ]
    ),
    max_size=2,
).map(lambda bits: sum(bits, F.NONE))


def edge_or(
    edge: bool, usual: st.SearchStrategy[object], edges: list[object]
) -> st.SearchStrategy[object]:
    return st.sampled_from(edges) if edge else usual


@st.composite
def transfers(draw: st.DrawFn) -> Transfer:
    """Mostly well-formed transfers; one field in ten is at or beyond an edge."""
    flags = draw(usual_flags)
    if flags & (F.POST_PENDING_TRANSFER | F.VOID_PENDING_TRANSFER) and draw(st.booleans()):
        flags &= F.POST_PENDING_TRANSFER | F.VOID_PENDING_TRANSFER | F.LINKED
    edge = draw(st.integers(0, 19))
    if edge == 9:
        flags |= draw(st.sampled_from([F.IMPORTED, TransferFlags(1 << 9), TransferFlags(1 << 15)]))
    post_or_void = flags & (F.POST_PENDING_TRANSFER | F.VOID_PENDING_TRANSFER)
    pending_ids = st.sampled_from(PENDING_IDS)
    ids = pending_ids if flags & F.PENDING else st.sampled_from(TRANSFER_IDS[6:])
    amounts = st.sampled_from([1, 5, 100, 999, 1_000, MAX_AMOUNT, 0])
    post_amounts = st.sampled_from([0, 0, 1, 50, 100, 101])
    timeouts = st.sampled_from([0, 10, 60]) if flags & F.PENDING else st.just(0)
    return Transfer(
        id=draw(edge_or(edge == 0, ids, [ZERO_ID, INT_MAX_ID])),  # type: ignore[arg-type]
        debit_account_id=None
        if post_or_void and draw(st.integers(0, 3))
        else draw(
            edge_or(
                edge == 1, st.sampled_from(ACCOUNTS), [None, ZERO_ID, INT_MAX_ID, uuid.UUID(int=77)]
            )
        ),  # type: ignore[arg-type]
        credit_account_id=None
        if post_or_void and draw(st.integers(0, 3))
        else draw(edge_or(edge == 12, st.sampled_from(ACCOUNTS), [None, ZERO_ID, INT_MAX_ID])),  # type: ignore[arg-type]
        amount=draw(
            edge_or(
                edge == 2,
                post_amounts if post_or_void else amounts,
                [0, -1, MAX_AMOUNT + 1],
            )
        ),  # type: ignore[arg-type]
        code=0
        if post_or_void and draw(st.integers(0, 3))
        else draw(edge_or(edge == 3, st.just(3), [0, MAX_U16, MAX_U16 + 1, -1])),  # type: ignore[arg-type]
        flags=flags,
        pending_id=draw(pending_ids)
        if post_or_void
        else draw(edge_or(edge == 4, st.none(), [ZERO_ID, INT_MAX_ID, TRANSFER_IDS[0]])),  # type: ignore[arg-type]
        timeout_seconds=draw(edge_or(edge == 5, timeouts, [-1, MAX_U32, MAX_U32 + 1])),  # type: ignore[arg-type]
        ledger=0
        if post_or_void and draw(st.integers(0, 3))
        else draw(edge_or(edge == 6, st.just(986), [0, 840, MAX_U32 + 1, -1])),  # type: ignore[arg-type]
        user_data_128=draw(edge_or(edge == 7, st.just(0), [1, MAX_U128, MAX_U128 + 1])),  # type: ignore[arg-type]
        user_data_64=draw(edge_or(edge == 8, st.just(0), [MAX_U64, MAX_U64 + 1, -1])),  # type: ignore[arg-type]
        user_data_32=draw(edge_or(edge == 10, st.just(0), [MAX_U32, MAX_U32 + 1])),  # type: ignore[arg-type]
        timestamp=draw(
            edge_or(
                edge == 9 or edge == 11,
                st.none(),
                [
                    None,
                    START - timedelta(days=1),
                    START + timedelta(minutes=3),
                    START + timedelta(days=1),
                ],
            )
        ),  # type: ignore[arg-type]
    )


def snapshot(state: rules.LedgerState) -> object:
    return (
        {
            k: (
                a.debits_pending,
                a.debits_posted,
                a.credits_pending,
                a.credits_posted,
                a.flags,
                len(a.entries),
                None if a.history is None else len(a.history),
            )
            for k, a in state.accounts.items()
        },
        {k: (t.request, t.amount, t.status) for k, t in state.transfers.items()},
        state.sequence,
    )


def check_invariants(state: rules.LedgerState) -> None:
    accounts = state.accounts.values()
    assert sum(a.debits_posted for a in accounts) == sum(a.credits_posted for a in accounts)
    assert sum(a.debits_pending for a in accounts) == sum(a.credits_pending for a in accounts)
    live: dict[int, list[int]] = {k: [0, 0] for k in state.accounts}
    for stored in state.transfers.values():
        if stored.status is PendingStatus.PENDING:
            live[stored.debit.id.int][0] += stored.amount
            live[stored.credit.id.int][1] += stored.amount
    for key, account in state.accounts.items():
        assert [account.debits_pending, account.credits_pending] == live[key]
        total_debits = account.debits_pending + account.debits_posted
        total_credits = account.credits_pending + account.credits_posted
        assert 0 <= total_debits <= MAX_AMOUNT
        assert 0 <= total_credits <= MAX_AMOUNT
        if account.flags & AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS:
            assert total_debits <= account.credits_posted
        if account.flags & AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS:
            assert total_credits <= account.debits_posted
        assert account.credits_posted - account.debits_posted == (
            account.entries[-1][4] if account.entries else 0
        )


def chains(batch: list[Transfer]) -> list[list[int]]:
    """Indexes of each linked chain of the batch (closed ones only)."""
    found: list[list[int]] = []
    current: list[int] = []
    for i, t in enumerate(batch):
        if t.flags & TransferFlags.LINKED or current:
            current.append(i)
            if not t.flags & TransferFlags.LINKED:
                found.append(current)
                current = []
    return found


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    batches=st.lists(st.lists(transfers(), min_size=1, max_size=6), min_size=1, max_size=6),
    steps=st.lists(st.sampled_from([0, 0, 5, 30, 61]), min_size=6, max_size=6),
)
def test_generated_batches_keep_every_invariant(
    batches: list[list[Transfer]], steps: list[int]
) -> None:
    state = fresh_state()
    now = START
    for batch, step in zip(batches, steps, strict=False):
        now += timedelta(seconds=step)
        rules.expire(state, now)
        before = snapshot(state)
        results = rules.apply_batch(state, batch, now)
        assert len(results) == len(batch)
        assert all(isinstance(r, CreateTransferResult) for r in results)
        check_invariants(state)
        if R.OK not in results:
            assert snapshot(state) == before
        for chain in chains(batch):
            outcomes = {results[i] is R.OK for i in chain}
            assert len(outcomes) == 1, [results[i] for i in chain]
        applied = [t for t, r in zip(batch, results, strict=True) if r is R.OK]
        for t in applied:
            stored = state.transfers[t.id.int]
            assert stored.request == t
            record = stored.record()
            assert 0 <= record.amount <= MAX_AMOUNT
        if applied and not any(t.flags & TransferFlags.LINKED for t in applied):
            after = snapshot(state)
            assert rules.apply_batch(state, applied, now) == [R.EXISTS] * len(applied)
            assert snapshot(state) == after


def test_a_failed_chain_restores_closing_history_and_watermarks() -> None:
    state = fresh_state()
    customer, saver = ACCOUNTS[2], ACCOUNTS[3]
    later = START + timedelta(hours=2)
    assert rules.expire(state, later) == 2  # the holds of fresh_state() with a timeout
    before = snapshot(state)
    watermark = state.transfer_watermark
    chain = [
        Transfer(
            id=TRANSFER_IDS[10],
            debit_account_id=customer,
            credit_account_id=saver,
            amount=0,
            code=3,
            flags=TransferFlags.PENDING | TransferFlags.CLOSING_DEBIT | TransferFlags.LINKED,
            timeout_seconds=60,
        ),
        Transfer(
            id=TRANSFER_IDS[11],
            debit_account_id=saver,
            credit_account_id=ACCOUNTS[0],
            amount=1,
            code=3,
            flags=TransferFlags.BALANCING_DEBIT | TransferFlags.LINKED,
        ),
        Transfer(
            id=TRANSFER_IDS[12],
            debit_account_id=customer,
            credit_account_id=saver,
            amount=1,
            code=0,
        ),
    ]
    assert rules.apply_batch(state, chain, later) == [
        R.LINKED_EVENT_FAILED,
        R.LINKED_EVENT_FAILED,
        R.CODE_MUST_NOT_BE_ZERO,
    ]
    assert snapshot(state) == before
    assert state.transfer_watermark == watermark
    # the stale expiry left by the rolled-back pending transfer releases nothing
    assert rules.expire(state, later + timedelta(hours=1)) == 0
    assert snapshot(state) == before
