"""Stateful property test: random ledger operations checked against a simple model.

The model keeps plain balances and applies each batch on a copy, committing
the copy only for transfers (or whole linked chains) that succeed. After
every step the ledger must agree with the model, and the global invariants
must hold: debits equal credits (posted and pending), no customer account
exceeds its credits, replays change nothing.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from finbank_adapters.memory import FakeClock, InMemoryLedger
from finbank_core.accounts.ledger import (
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    NewAccount,
    Transfer,
    TransferFlags,
)

R = CreateTransferResult
CUSTOMER = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS


@dataclass
class ModelAccount:
    limited: bool
    dp: int = 0  # debits pending
    dpo: int = 0  # debits posted
    cp: int = 0
    cpo: int = 0


@dataclass
class ModelPending:
    debit: uuid.UUID
    credit: uuid.UUID
    amount: int
    expires_at: datetime | None
    state: str = "pending"  # pending | posted | voided | expired


@dataclass
class Model:
    accounts: dict[uuid.UUID, ModelAccount] = field(default_factory=dict)
    transfers: dict[uuid.UUID, Transfer] = field(default_factory=dict)
    pendings: dict[uuid.UUID, ModelPending] = field(default_factory=dict)

    def expire(self, now: datetime) -> None:
        for p in self.pendings.values():
            if p.state == "pending" and p.expires_at is not None and p.expires_at <= now:
                p.state = "expired"
                self.accounts[p.debit].dp -= p.amount
                self.accounts[p.credit].cp -= p.amount

    def apply(self, t: Transfer, now: datetime) -> CreateTransferResult:
        """The expected result of one transfer; mutates the model when ok."""
        if t.id in self.transfers:
            return R.EXISTS if self.transfers[t.id] == t else R.EXISTS_WITH_DIFFERENT_FIELDS
        if t.flags & (TransferFlags.POST_PENDING_TRANSFER | TransferFlags.VOID_PENDING_TRANSFER):
            assert t.pending_id is not None
            p = self.pendings.get(t.pending_id)
            if p is None:
                return R.PENDING_TRANSFER_NOT_FOUND
            if p.state != "pending":
                return {
                    "posted": R.PENDING_TRANSFER_ALREADY_POSTED,
                    "voided": R.PENDING_TRANSFER_ALREADY_VOIDED,
                    "expired": R.PENDING_TRANSFER_EXPIRED,
                }[p.state]
            amount = t.amount or p.amount
            if t.flags & TransferFlags.POST_PENDING_TRANSFER and amount > p.amount:
                return R.EXCEEDS_PENDING_TRANSFER_AMOUNT
            d, c = self.accounts[p.debit], self.accounts[p.credit]
            d.dp -= p.amount
            c.cp -= p.amount
            if t.flags & TransferFlags.POST_PENDING_TRANSFER:
                d.dpo += amount
                c.cpo += amount
                p.state = "posted"
            else:
                p.state = "voided"
            self.transfers[t.id] = t
            return R.OK
        assert t.debit_account_id is not None
        assert t.credit_account_id is not None
        if t.debit_account_id == t.credit_account_id:
            return R.ACCOUNTS_MUST_BE_DIFFERENT
        d, c = self.accounts[t.debit_account_id], self.accounts[t.credit_account_id]
        if d.limited and d.dp + d.dpo + t.amount > d.cpo:
            return R.EXCEEDS_CREDITS
        if t.flags & TransferFlags.PENDING:
            d.dp += t.amount
            c.cp += t.amount
            expires = now + timedelta(seconds=t.timeout_seconds) if t.timeout_seconds else None
            self.pendings[t.id] = ModelPending(
                t.debit_account_id, t.credit_account_id, t.amount, expires
            )
        else:
            d.dpo += t.amount
            c.cpo += t.amount
        self.transfers[t.id] = t
        return R.OK

    def apply_batch(self, batch: list[Transfer], now: datetime) -> list[CreateTransferResult]:
        results: list[CreateTransferResult] = []
        i = 0
        while i < len(batch):
            j = i
            while j < len(batch) - 1 and batch[j].flags & TransferFlags.LINKED:
                j += 1
            chain = batch[i : j + 1]
            if len(chain) == 1 and not chain[0].flags & TransferFlags.LINKED:
                results.append(self.apply(chain[0], now))
            else:
                trial = copy.deepcopy(self)
                chain_results = []
                for k, t in enumerate(chain):
                    if k == len(chain) - 1 and t.flags & TransferFlags.LINKED:
                        chain_results.append(R.LINKED_EVENT_CHAIN_OPEN)
                        break
                    res = trial.apply(t, now)
                    chain_results.append(res)
                    if res is not R.OK:
                        break
                if all(r is R.OK for r in chain_results) and len(chain_results) == len(chain):
                    self.accounts, self.transfers, self.pendings = (
                        trial.accounts,
                        trial.transfers,
                        trial.pendings,
                    )
                    results.extend(chain_results)
                else:
                    failed_at = len(chain_results) - 1
                    results.extend(
                        chain_results[failed_at] if k == failed_at else R.LINKED_EVENT_FAILED
                        for k in range(len(chain))
                    )
            i = j + 1
        return results


class LedgerMachine(RuleBasedStateMachine):
    accounts = Bundle("accounts")
    submitted = Bundle("submitted")
    pendings = Bundle("pendings")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.ledger = InMemoryLedger(self.clock)
        self.model = Model()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.loop.close()

    @initialize(target=accounts)
    def bank(self) -> uuid.UUID:
        return self._open(limited=False)

    def _open(self, limited: bool) -> uuid.UUID:
        account_id = uuid.uuid4()
        flags = CUSTOMER if limited else AccountFlags.NONE
        [res] = self.run(
            self.ledger.create_accounts([NewAccount(id=account_id, code=1, flags=flags)])
        )
        assert res is CreateAccountResult.OK
        self.model.accounts[account_id] = ModelAccount(limited=limited)
        return account_id

    @rule(target=accounts, limited=st.booleans())
    def open_account(self, limited: bool) -> uuid.UUID:
        return self._open(limited)

    def _submit(self, batch: list[Transfer]) -> list[CreateTransferResult]:
        now = self.clock.now()
        self.model.expire(now)
        expected = self.model.apply_batch(batch, now)
        actual = self.run(self.ledger.create_transfers(batch))
        assert actual == expected
        return list(actual)

    @rule(
        target=submitted,
        legs=st.lists(
            st.tuples(
                accounts,
                accounts,
                st.integers(min_value=1, max_value=50_00),
                st.booleans(),
                st.sampled_from([0, 0, 30, 120]),
            ),
            min_size=1,
            max_size=4,
        ),
        linked=st.booleans(),
        open_chain=st.booleans(),
    )
    def transfer_batch(
        self,
        legs: list[tuple[uuid.UUID, uuid.UUID, int, bool, int]],
        linked: bool,
        open_chain: bool,
    ) -> Transfer:
        batch = []
        for n, (debit, credit, amount, pending, timeout) in enumerate(legs):
            flags = TransferFlags.PENDING if pending else TransferFlags.NONE
            last = n == len(legs) - 1
            if linked and (not last or open_chain):
                flags |= TransferFlags.LINKED
            batch.append(
                Transfer(
                    id=uuid.uuid4(),
                    debit_account_id=debit,
                    credit_account_id=credit,
                    amount=amount,
                    code=3,
                    flags=flags,
                    timeout_seconds=timeout if pending else 0,
                )
            )
        self._submit(batch)
        return batch[0]

    @rule(target=pendings, bank=accounts, customer=accounts, amount=st.integers(1, 20_00))
    def hold(self, bank: uuid.UUID, customer: uuid.UUID, amount: int) -> uuid.UUID:
        transfer_id = uuid.uuid4()
        if bank != customer:
            self._submit(
                [
                    Transfer(
                        id=transfer_id,
                        debit_account_id=bank,
                        credit_account_id=customer,
                        amount=amount,
                        code=3,
                        flags=TransferFlags.PENDING,
                        timeout_seconds=60,
                    )
                ]
            )
        return transfer_id

    @rule(pending=pendings, fraction=st.sampled_from([0, 1, 2]), void=st.booleans())
    def resolve(self, pending: uuid.UUID, fraction: int, void: bool) -> None:
        if void:
            transfer = Transfer.void(uuid.uuid4(), pending)
        else:
            p = self.model.pendings.get(pending)
            amount = 0 if p is None or fraction == 0 else max(1, p.amount // fraction)
            transfer = Transfer.post(uuid.uuid4(), pending, amount=amount)
        self._submit([transfer])

    @rule(transfer=submitted)
    def replay(self, transfer: Transfer) -> None:
        applied_before = transfer.id in self.model.transfers
        before = self.balances()
        results = self._submit([transfer])
        if applied_before:
            # A refused transfer was never stored, so only an applied one is a replay.
            assert results in ([R.EXISTS], [R.LINKED_EVENT_CHAIN_OPEN])
            assert self.balances() == before

    @rule(transfer=consumes(submitted), amount_delta=st.integers(1, 5))
    def replay_with_other_amount(self, transfer: Transfer, amount_delta: int) -> None:
        if transfer.id not in self.model.transfers:
            return
        changed = Transfer(
            id=transfer.id,
            debit_account_id=transfer.debit_account_id,
            credit_account_id=transfer.credit_account_id,
            amount=transfer.amount + amount_delta,
            code=transfer.code,
            flags=transfer.flags & ~TransferFlags.LINKED,
            timeout_seconds=transfer.timeout_seconds,
        )
        before = self.balances()
        assert self._submit([changed]) == [R.EXISTS_WITH_DIFFERENT_FIELDS]
        assert self.balances() == before

    @rule(seconds=st.sampled_from([1, 29, 31, 61, 121]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)

    def balances(self) -> dict[uuid.UUID, tuple[int, int, int, int]]:
        found = self.run(self.ledger.lookup_accounts(list(self.model.accounts)))
        return {
            a.id: (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
            for a in found
        }

    @invariant()
    def agrees_with_the_model_and_balances(self) -> None:
        self.model.expire(self.clock.now())
        balances = self.balances()
        assert balances == {i: (m.dp, m.dpo, m.cp, m.cpo) for i, m in self.model.accounts.items()}
        assert sum(b[1] for b in balances.values()) == sum(b[3] for b in balances.values())
        assert sum(b[0] for b in balances.values()) == sum(b[2] for b in balances.values())
        for account_id, (dp, dpo, _, cpo) in balances.items():
            if self.model.accounts[account_id].limited:
                assert dp + dpo <= cpo


LedgerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestLedgerAgainstModel = LedgerMachine.TestCase
