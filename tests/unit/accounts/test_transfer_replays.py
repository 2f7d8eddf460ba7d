"""Replays of a money movement racing its first submission answer as a replay.

The ledger transfer id derives from the idempotency key. A replay whose
ledger call was refused (``exceeds_credits``: its balance check saw the
first submission's debit) while the id exists by then is the same request
applied once: it gets the first receipt, never ``InsufficientFunds``. That
is what the PostgreSQL ledger answered before it learned to re-check the id
after locking the accounts; :class:`StaleCheckLedger` answers the same, so
the use case is proven against any ledger that does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import msgspec
import pytest

from finbank_adapters.memory import (
    FakeClock,
    InMemoryAccountRepository,
    InMemoryEventPublisher,
    InMemoryLedger,
    SequentialIdGenerator,
)
from finbank_core.accounts.errors import InsufficientFunds
from finbank_core.accounts.ledger import CreateTransferResult, Transfer
from finbank_core.accounts.use_cases import (
    Deposit,
    EnsureBankAccounts,
    InternalTransfer,
    InternalTransferCommand,
    MoveCashCommand,
    OpenAccount,
    OpenAccountCommand,
    TransferReceipt,
)
from finbank_core.shared.errors import IdempotencyKeyReused
from finbank_core.shared.events import EventEnvelope
from finbank_core.shared.money import Money


class StaleCheckLedger(InMemoryLedger):
    """With ``stale`` on, a transfer whose id is stored is refused ``exceeds_credits``.

    As a ledger does whose replay checked the id before the first submission
    committed and the balance after.
    """

    stale = False

    async def create_transfers(
        self, transfers: Sequence[Transfer], *, events: Sequence[EventEnvelope] = ()
    ) -> list[CreateTransferResult]:
        if self.stale and await self.lookup_transfers([transfers[0].id]):
            return [CreateTransferResult.EXCEEDS_CREDITS]
        return await super().create_transfers(transfers, events=events)


class Bank:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.publisher = InMemoryEventPublisher()
        self.ledger = StaleCheckLedger(self.clock, self.publisher)
        self.accounts = InMemoryAccountRepository()
        self.ids = SequentialIdGenerator()
        self.transfer = InternalTransfer(self.ledger, self.accounts, self.clock, self.ids)

    async def open(self, owner: str, cents: int = 0) -> uuid.UUID:
        account = await OpenAccount(
            self.ledger, self.accounts, self.publisher, self.clock, self.ids
        )(OpenAccountCommand(owner_id=owner, holder_name=owner))
        if cents:
            await Deposit(self.ledger, self.accounts, self.clock, self.ids)(
                MoveCashCommand(
                    account_id=account.id,
                    amount=Money(cents),
                    idempotency_key=f"seed-{account.id}",
                    operator_id="teller",
                )
            )
        return account.id

    async def posted(self, account_id: uuid.UUID) -> int:
        [account] = await self.ledger.lookup_accounts([account_id])
        return account.balance_posted


@pytest.fixture
async def bank() -> Bank:
    bank = Bank()
    await EnsureBankAccounts(bank.ledger)()
    return bank


def move(source: uuid.UUID, target: uuid.UUID, cents: int, key: str) -> InternalTransferCommand:
    return InternalTransferCommand(
        owner_id="ana",
        from_account_id=source,
        to_account_id=target,
        amount=Money(cents),
        idempotency_key=key,
    )


async def test_a_replay_refused_after_the_first_committed_answers_as_a_replay(bank: Bank) -> None:
    source, target = await bank.open("ana", 100_00), await bank.open("bia")
    first = await bank.transfer(move(source, target, 100_00, "rent"))
    bank.ledger.stale = True

    again = await bank.transfer(move(source, target, 100_00, "rent"))

    assert again == msgspec.structs.replace(first, replayed=True)
    assert (await bank.posted(source), await bank.posted(target)) == (0, 100_00)


async def test_another_body_under_the_key_is_still_a_reused_key(bank: Bank) -> None:
    source, target = await bank.open("ana", 100_00), await bank.open("bia")
    await bank.transfer(move(source, target, 100_00, "rent"))
    bank.ledger.stale = True

    with pytest.raises(IdempotencyKeyReused):
        await bank.transfer(move(source, target, 99_00, "rent"))


async def test_a_real_refusal_stays_a_refusal(bank: Bank) -> None:
    source, target = await bank.open("ana", 100_00), await bank.open("bia")
    await bank.transfer(move(source, target, 100_00, "rent"))
    with pytest.raises(InsufficientFunds):
        await bank.transfer(move(source, target, 1, "another"))  # a new key: nothing stored


async def test_many_concurrent_identical_transfers_apply_once(bank: Bank) -> None:
    source, target = await bank.open("ana", 100_00), await bank.open("bia")

    receipts = await asyncio.gather(
        *(bank.transfer(move(source, target, 100_00, "rent")) for _ in range(32))
    )

    assert len({_without_replayed(r) for r in receipts}) == 1
    assert sum(not r.replayed for r in receipts) == 1
    assert (await bank.posted(source), await bank.posted(target)) == (0, 100_00)


def _fields(receipt: TransferReceipt) -> dict[str, object]:
    return {name: getattr(receipt, name) for name in receipt.__struct_fields__}


def _without_replayed(receipt: TransferReceipt) -> tuple[object, ...]:
    return tuple(v for k, v in _fields(receipt).items() if k != "replayed")
