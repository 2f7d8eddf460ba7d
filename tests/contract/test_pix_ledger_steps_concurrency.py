"""``PixLedgerSteps`` under concurrency, on every Ledger adapter.

The PIX use cases move money only through :class:`PixLedgerSteps`, whose
steps have ids derived from the EndToEndId (or rtrId). Many callers repeating
the same step at once (retries, two workers, a redelivered message) must
apply it once and all be answered alike; a post and a void of the same
reservation exclude each other; reservations that do not fit are refused
with ``InsufficientFunds`` and never overdraw. Each test checks the final
state as a whole: money conserved over every account, nothing negative.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from finbank_adapters.memory import FakeClock, InMemoryEventPublisher, InMemoryLedger
from finbank_core.accounts import InsufficientFunds
from finbank_core.accounts.ledger import (
    AccountCode,
    AccountFlags,
    NewAccount,
    PendingStatus,
    Transfer,
    TransferCode,
)
from finbank_core.accounts.ports import Ledger
from finbank_core.accounts.use_cases import BankAccounts, EnsureBankAccounts
from finbank_core.pix.ledger_steps import PixLedgerSteps
from finbank_core.shared.errors import TransferRejected
from finbank_core.shared.money import Money
from tests.contract.conftest import LEDGER_BACKENDS, POSTGRES_LEDGERS, postgres_ledger
from tests.postgres_support import isolated_schema

CALLERS = 32
POOL_SIZE = 10
E2E = "E9999999920260105120000000000001"


@pytest.fixture(params=LEDGER_BACKENDS)
async def ledger(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Ledger]:
    if request.param == "memory":
        yield InMemoryLedger(clock, InMemoryEventPublisher())
    elif request.param in POSTGRES_LEDGERS:
        dsn = request.getfixturevalue("postgres_dsn")
        async with isolated_schema(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE) as (pool, _):
            yield postgres_ledger(request.param, pool, clock)
    else:  # pragma: no cover
        raise AssertionError(request.param)


async def _customers(ledger: Ledger, *funded_cents: int) -> list[uuid.UUID]:
    """Customer accounts (no overdraft), each funded from the bank's cash account."""
    await EnsureBankAccounts(ledger)()
    ids = [uuid.uuid4() for _ in funded_cents]
    await ledger.create_accounts(
        [
            NewAccount(
                id=i, code=AccountCode.CUSTOMER, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
            )
            for i in ids
        ]
    )
    funding = [
        Transfer(
            id=uuid.uuid4(),
            debit_account_id=BankAccounts.CASH,
            credit_account_id=account,
            amount=cents,
            code=TransferCode.DEPOSIT,
        )
        for account, cents in zip(ids, funded_cents, strict=True)
        if cents
    ]
    if funding:
        await ledger.create_transfers(funding)
    return ids


async def _assert_conserved(ledger: Ledger, accounts: list[uuid.UUID]) -> None:
    ids = [a.id for a in BankAccounts.all()] + accounts
    found = await ledger.lookup_accounts(ids)
    assert len(found) == len(ids)
    assert sum(a.debits_posted for a in found) == sum(a.credits_posted for a in found)
    assert sum(a.debits_pending for a in found) == sum(a.credits_pending for a in found)
    for account in found:
        if account.id in accounts:
            assert account.balance_available >= 0
            assert account.balance_posted >= 0


async def test_the_same_reservation_at_once_reserves_once(ledger: Ledger) -> None:
    [alice] = await _customers(ledger, 100_00)
    steps = PixLedgerSteps(ledger)

    await asyncio.gather(
        *(
            steps.reserve(E2E, alice, Money(30_00), TransferCode.PIX_OUT, f"PIX enviado {E2E}")
            for _ in range(CALLERS)
        )
    )

    [account] = await ledger.lookup_accounts([alice])
    assert account.debits_pending == 30_00
    assert account.balance_available == 70_00
    assert await steps.pending_status(E2E) is PendingStatus.PENDING
    await _assert_conserved(ledger, [alice])


async def test_reservations_that_do_not_fit_are_refused_and_never_overdraw(ledger: Ledger) -> None:
    [alice] = await _customers(ledger, 100_00)
    steps = PixLedgerSteps(ledger)
    ids = [f"E99999999202601051200{n:011d}" for n in range(CALLERS)]

    results = await asyncio.gather(
        *(steps.reserve(i, alice, Money(10_00), TransferCode.PIX_OUT, i) for i in ids),
        return_exceptions=True,
    )

    assert sum(r is None for r in results) == 10
    assert all(r is None or isinstance(r, InsufficientFunds) for r in results)
    [account] = await ledger.lookup_accounts([alice])
    assert account.debits_pending == 100_00
    assert account.balance_available == 0
    await _assert_conserved(ledger, [alice])


async def test_posts_and_voids_of_one_reservation_exclude_each_other(ledger: Ledger) -> None:
    alice, bob = await _customers(ledger, 100_00, 0)
    steps = PixLedgerSteps(ledger)
    await steps.reserve(E2E, alice, Money(30_00), TransferCode.PIX_OUT, E2E)

    async def post() -> str:
        await steps.post(E2E, TransferCode.PIX_OUT, E2E, then_credit=bob)
        return "posted"

    async def void() -> str:
        await steps.void(E2E, TransferCode.PIX_OUT)
        return "voided"

    calls = [post() if n % 2 else void() for n in range(CALLERS)]
    results = await asyncio.gather(*calls, return_exceptions=True)

    outcome = await steps.pending_status(E2E)
    assert outcome in (PendingStatus.POSTED, PendingStatus.VOIDED)
    winner = "posted" if outcome is PendingStatus.POSTED else "voided"
    # every caller of the winning step is answered alike; the others are refused
    assert all(r == winner or isinstance(r, TransferRejected) for r in results)
    assert sum(r == winner for r in results) == CALLERS // 2
    alice_after, bob_after = await ledger.lookup_accounts([alice, bob])
    assert alice_after.debits_pending == 0
    moved = 30_00 if outcome is PendingStatus.POSTED else 0
    assert alice_after.balance_posted == 100_00 - moved
    assert bob_after.balance_posted == moved
    await _assert_conserved(ledger, [alice, bob])


async def test_the_same_credit_at_once_credits_once(ledger: Ledger) -> None:
    [alice] = await _customers(ledger, 0)
    steps = PixLedgerSteps(ledger)
    # money that arrived from the network: the settlement account holds it first
    await ledger.create_transfers(
        [
            Transfer(
                id=uuid.uuid4(),
                debit_account_id=BankAccounts.CASH,
                credit_account_id=BankAccounts.PIX_SETTLEMENT,
                amount=50_00,
                code=TransferCode.DEPOSIT,
            )
        ]
    )

    await asyncio.gather(
        *(
            steps.credit_from_settlement(E2E, alice, Money(25_00), TransferCode.PIX_IN, E2E)
            for _ in range(CALLERS)
        )
    )

    [account] = await ledger.lookup_accounts([alice])
    assert account.balance_posted == 25_00
    await _assert_conserved(ledger, [alice])
