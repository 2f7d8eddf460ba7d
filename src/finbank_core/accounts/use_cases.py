"""Use cases of the accounts context: open, deposit, withdraw, transfer, balance, statement.

Each is one class taking its ports in ``__init__`` and doing its work in
``__call__``. Ownership is checked here, not in the delivery mechanism: an
account that is not the caller's is reported as not found (no BOLA, no leak).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from finbank_core.accounts.access import (
    ComposedCheckedTransfers,
    active_account,
    owned_account,
)
from finbank_core.accounts.errors import InsufficientFunds
from finbank_core.accounts.events import (
    ACCOUNT_OPENED,
    DEPOSIT_MADE,
    INTERNAL_TRANSFER_MADE,
    WITHDRAWAL_MADE,
    make_event,
)
from finbank_core.accounts.ledger import (
    AccountCode,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    Entry,
    EntrySide,
    NewAccount,
    SubmittedTransfer,
    Transfer,
    TransferCode,
)
from finbank_core.accounts.model import (
    DEFAULT_BRANCH,
    AccountKind,
    AccountStatus,
    CustomerAccount,
    HolderType,
    format_account_number,
    validate_holder,
)
from finbank_core.accounts.ports import AccountRepository, CheckedTransfers, Ledger
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import (
    AccountNotFound,
    DuplicateAccount,
    IdempotencyKeyReused,
    InvalidInput,
    SameAccount,
    TransferRejected,
)
from finbank_core.shared.events import EventEnvelope, EventPublisher
from finbank_core.shared.ids import IdGenerator, uuid5_of
from finbank_core.shared.inputs import (
    IdempotencyKey,
    Memo,
    check_idempotency_key,
    check_memo,
    check_text,
    checked_enums,
)
from finbank_core.shared.money import Money
from finbank_core.shared.privacy import masked_repr

#: Namespace for ids derived from names and client idempotency keys.
FINBANK_NAMESPACE = uuid.UUID("8d7c1f9e-3b7a-5e52-9a55-6c0f1d6a2b10")


class BankAccounts:
    """The bank's own ledger accounts; fixed ids so creating them is idempotent."""

    CASH = uuid.uuid5(FINBANK_NAMESPACE, "bank:cash")
    PIX_SETTLEMENT = uuid.uuid5(FINBANK_NAMESPACE, "bank:pix-settlement")
    FEES = uuid.uuid5(FINBANK_NAMESPACE, "bank:fees")
    SUSPENSE = uuid.uuid5(FINBANK_NAMESPACE, "bank:suspense")

    @classmethod
    def all(cls) -> list[NewAccount]:
        return [
            NewAccount(id=cls.CASH, code=AccountCode.BANK_CASH),
            NewAccount(id=cls.PIX_SETTLEMENT, code=AccountCode.PIX_SETTLEMENT),
            NewAccount(id=cls.FEES, code=AccountCode.FEES),
            NewAccount(id=cls.SUSPENSE, code=AccountCode.SUSPENSE),
        ]


#: ``uuid.uuid5(FINBANK_NAMESPACE, name)``, bit for bit, faster (see ``uuid5_of``)
_uuid5 = uuid5_of(FINBANK_NAMESPACE)


def transfer_id_for(
    scope: str, owner_id: str, idempotency_key: str, *, owner_field: str = "owner_id"
) -> uuid.UUID:
    """The ledger transfer id for a client's idempotency key, stable across retries:
    ``uuid.uuid5(FINBANK_NAMESPACE, f"{scope}\\x1f{owner_id}\\x1f{idempotency_key}")``.

    ``owner_field`` names the command's field ``owner_id`` came from in a refusal.
    """
    check_idempotency_key(idempotency_key)
    check_text(owner_id, field=owner_field, name=owner_field.replace("_", " "))
    return _uuid5(f"{scope}\x1f{owner_id}\x1f{idempotency_key}")


def raise_for_transfer_result(result: CreateTransferResult) -> None:
    """Turn a ledger refusal into the core error a caller can act on."""
    match result:
        case CreateTransferResult.OK | CreateTransferResult.EXISTS:
            return
        case CreateTransferResult.EXCEEDS_CREDITS:
            raise InsufficientFunds("the account does not have enough available balance")
        case CreateTransferResult.EXISTS_WITH_DIFFERENT_FIELDS:
            raise IdempotencyKeyReused(
                "this idempotency key was already used for a different request"
            )
        case (
            CreateTransferResult.DEBIT_ACCOUNT_NOT_FOUND
            | CreateTransferResult.CREDIT_ACCOUNT_NOT_FOUND
        ):
            raise AccountNotFound()
        case _:
            raise TransferRejected(
                f"the ledger refused the transfer: {result.value}", reason=result.value
            )


# -- results --------------------------------------------------------------------


class TransferReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """What a money movement returns; rebuilt identically on a replay."""

    transfer_id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: Money
    description: str | None
    created_at: datetime
    replayed: bool = False


class BalanceResult(msgspec.Struct, frozen=True, kw_only=True):
    """What :class:`GetBalance` answers: the account and its balances."""

    account: CustomerAccount
    posted: Money
    available: Money
    pending_debits: Money
    pending_credits: Money


class StatementLine(msgspec.Struct, frozen=True, kw_only=True):
    sequence: int
    transfer_id: uuid.UUID
    timestamp: datetime
    amount: Money  # signed: negative when money left the account
    balance_after: Money
    code: int
    description: str | None


class Statement(msgspec.Struct, frozen=True, kw_only=True):
    account: CustomerAccount
    since: datetime | None
    until: datetime | None
    lines: list[StatementLine]
    next_cursor: int | None


def _line(entry: Entry) -> StatementLine:
    signed = entry.amount if entry.side is EntrySide.CREDIT else -entry.amount
    return StatementLine(
        sequence=entry.sequence,
        transfer_id=entry.transfer_id,
        timestamp=entry.timestamp,
        amount=Money(signed),
        balance_after=Money(entry.balance_after),
        code=entry.code,
        description=entry.user_data,
    )


# -- commands and queries -------------------------------------------------------------------


class OpenAccountCommand(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    holder_name: str
    holder_type: HolderType = HolderType.INDIVIDUAL
    holder_document: str | None = None
    kind: AccountKind = AccountKind.PAYMENT

    __repr__ = masked_repr("holder_document", "holder_name")


class MoveCashCommand(msgspec.Struct, frozen=True, kw_only=True):
    """A deposit or withdrawal made by an operator at the bank's cash account."""

    account_id: uuid.UUID
    amount: Money
    idempotency_key: IdempotencyKey
    operator_id: str
    description: Memo | None = None


class InternalTransferCommand(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    from_account_id: uuid.UUID
    to_account_id: uuid.UUID
    amount: Money
    idempotency_key: IdempotencyKey
    description: Memo | None = None
    correlation_id: str | None = None


class GetAccountQuery(msgspec.Struct, frozen=True, kw_only=True):
    """One of the caller's accounts, by id."""

    owner_id: str
    account_id: uuid.UUID


class ListAccountsQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Every account of the caller."""

    owner_id: str


class GetBalanceQuery(msgspec.Struct, frozen=True, kw_only=True):
    """The balances of one of the caller's accounts, by id."""

    owner_id: str
    account_id: uuid.UUID


class GetStatementQuery(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    account_id: uuid.UUID
    since: datetime | None = None
    until: datetime | None = None
    after_sequence: int | None = None
    limit: int = 50


# -- use cases --------------------------------------------------------------------


class EnsureBankAccounts:
    """Create the bank's own ledger accounts if missing (run at startup)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def __call__(self) -> None:
        results = await self._ledger.create_accounts(BankAccounts.all())
        bad = [r for r in results if r not in (CreateAccountResult.OK, CreateAccountResult.EXISTS)]
        if bad:
            raise DuplicateAccount(f"bank accounts clash with existing ones: {bad[0].value}")


class OpenAccount:
    """Open a customer account: a ledger account with no overdraft, then its record."""

    def __init__(
        self,
        ledger: Ledger,
        accounts: AccountRepository,
        publisher: EventPublisher,
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._ledger = ledger
        self._accounts = accounts
        self._publisher = publisher
        self._clock = clock
        self._ids = ids

    async def __call__(self, cmd: OpenAccountCommand) -> CustomerAccount:
        # Nothing is written before the owner and the holder are valid: no ledger account
        # left behind by a record that could not be stored.
        check_text(cmd.owner_id, field="owner_id", name="owner id")
        cmd = checked_enums(cmd)  # the holder type: stored, and the PIX tier it falls in
        holder = validate_holder(cmd.holder_name, cmd.holder_type, cmd.holder_document)
        account_id = self._ids.new_id()
        [result] = await self._ledger.create_accounts(
            [
                NewAccount(
                    id=account_id,
                    code=AccountCode.CUSTOMER,
                    flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS,
                )
            ]
        )
        if result is not CreateAccountResult.OK:
            raise DuplicateAccount(f"ledger account could not be created: {result.value}")
        now = self._clock.now()
        account = CustomerAccount(
            id=account_id,
            owner_id=cmd.owner_id,
            holder_name=holder.name,
            holder_type=holder.type,
            holder_document=holder.document,
            branch=DEFAULT_BRANCH,
            number=format_account_number(await self._accounts.next_account_number()),
            kind=cmd.kind,
            status=AccountStatus.ACTIVE,
            created_at=now,
        )
        # If this fails the ledger account stays behind with a zero balance and
        # no record pointing at it: harmless, and never reused.
        await self._accounts.add(account)
        await self._publisher.publish(
            [
                make_event(
                    event_id=self._ids.new_id(),
                    type=ACCOUNT_OPENED,
                    occurred_at=now,
                    aggregate_id=account.id,
                    payload={
                        "account_id": str(account.id),
                        "owner_id": account.owner_id,
                        "branch": account.branch,
                        "number": account.number,
                        "kind": account.kind.value,
                    },
                )
            ]
        )
        return account


class _MoneyMovement:
    """Shared plumbing: submit one transfer idempotently and build its receipt."""

    def __init__(self, ledger: Ledger, clock: Clock, ids: IdGenerator) -> None:
        self._ledger = ledger
        self._clock = clock
        self._ids = ids

    async def _submit(
        self,
        transfer: Transfer,
        *,
        event_type: str,
        aggregate_id: uuid.UUID,
        payload: dict[str, object],
        correlation_id: str | None,
    ) -> TransferReceipt:
        event = self._event(
            transfer,
            event_type=event_type,
            aggregate_id=aggregate_id,
            payload=payload,
            correlation_id=correlation_id,
        )
        submitted = await self._ledger.submit_transfer(transfer, events=[event])
        return await self._receipt(transfer, submitted)

    def _event(
        self,
        transfer: Transfer,
        *,
        event_type: str,
        aggregate_id: uuid.UUID,
        payload: dict[str, object],
        correlation_id: str | None,
    ) -> EventEnvelope:
        return make_event(
            event_id=self._ids.new_id(),
            type=event_type,
            occurred_at=self._clock.now(),
            aggregate_id=aggregate_id,
            correlation_id=correlation_id,
            payload={"transfer_id": str(transfer.id), "amount_cents": transfer.amount, **payload},
        )

    async def _receipt(self, transfer: Transfer, submitted: SubmittedTransfer) -> TransferReceipt:
        """The receipt of the ledger's answer to ``transfer`` (a replay's read back)."""
        result = submitted.result
        debit, credit = transfer.debit_account_id, transfer.credit_account_id
        if result is CreateTransferResult.OK and submitted.timestamp and debit and credit:
            # built from what the ledger applied: a replay's look-up reads the same
            return TransferReceipt(
                transfer_id=transfer.id,
                debit_account_id=debit,
                credit_account_id=credit,
                amount=Money(transfer.amount),
                description=transfer.user_data,
                created_at=submitted.timestamp,
            )
        if result not in (CreateTransferResult.OK, CreateTransferResult.EXISTS):
            result = await self._settled_by_a_replay(transfer, result)
        raise_for_transfer_result(result)
        [record] = await self._ledger.lookup_transfers([transfer.id])
        return TransferReceipt(
            transfer_id=record.id,
            debit_account_id=record.debit_account_id,
            credit_account_id=record.credit_account_id,
            amount=Money(record.amount),
            description=record.request.user_data,
            created_at=record.timestamp,
            replayed=result is CreateTransferResult.EXISTS,
        )

    async def _settled_by_a_replay(
        self, transfer: Transfer, refusal: CreateTransferResult
    ) -> CreateTransferResult:
        """What a refusal means once the transfer's id is looked up again.

        The id derives from the client's idempotency key, so the same request
        sent twice at once races for it: the ledger checks the id before it
        locks the accounts, and the loser, checked against balances that
        already include the winner's debit, is refused ``exceeds_credits``.
        If the id exists by now (the refusal saw a committed winner, so a
        look-up after it finds it), the request was applied once: answer as
        a replay (``EXISTS``), or as a reused key if the stored transfer
        differs. A replica or process of its own sees the same.
        """
        found = await self._ledger.lookup_transfers([transfer.id])
        if not found:
            return refusal
        return (
            CreateTransferResult.EXISTS
            if _same_request(found[0].request, transfer)
            else CreateTransferResult.EXISTS_WITH_DIFFERENT_FIELDS
        )


def _same_request(stored: Transfer, submitted: Transfer) -> bool:
    """The fields a client's request decides (what ``exists`` compares in the ledger)."""

    def fields(t: Transfer) -> tuple[object, ...]:
        return (
            t.debit_account_id,
            t.credit_account_id,
            t.amount,
            t.code,
            t.flags,
            t.pending_id,
            t.timeout_seconds,
            t.ledger,
            t.user_data,
        )

    return fields(stored) == fields(submitted)


class Deposit(_MoneyMovement):
    """An operator credits cash to a customer account."""

    def __init__(
        self, ledger: Ledger, accounts: AccountRepository, clock: Clock, ids: IdGenerator
    ) -> None:
        super().__init__(ledger, clock, ids)
        self._accounts = accounts

    async def __call__(self, cmd: MoveCashCommand) -> TransferReceipt:
        cmd.amount.require_positive()
        await active_account(self._accounts, cmd.account_id)
        transfer = Transfer(
            id=transfer_id_for(
                "deposit", cmd.operator_id, cmd.idempotency_key, owner_field="operator_id"
            ),
            debit_account_id=BankAccounts.CASH,
            credit_account_id=cmd.account_id,
            amount=cmd.amount.cents,
            code=TransferCode.DEPOSIT,
            user_data=check_memo(cmd.description),
        )
        return await self._submit(
            transfer,
            event_type=DEPOSIT_MADE,
            aggregate_id=cmd.account_id,
            payload={"account_id": str(cmd.account_id), "operator_id": cmd.operator_id},
            correlation_id=None,
        )


class Withdraw(_MoneyMovement):
    """An operator pays cash out of a customer account (no overdraft)."""

    def __init__(
        self, ledger: Ledger, accounts: AccountRepository, clock: Clock, ids: IdGenerator
    ) -> None:
        super().__init__(ledger, clock, ids)
        self._accounts = accounts

    async def __call__(self, cmd: MoveCashCommand) -> TransferReceipt:
        cmd.amount.require_positive()
        await active_account(self._accounts, cmd.account_id)
        transfer = Transfer(
            id=transfer_id_for(
                "withdrawal", cmd.operator_id, cmd.idempotency_key, owner_field="operator_id"
            ),
            debit_account_id=cmd.account_id,
            credit_account_id=BankAccounts.CASH,
            amount=cmd.amount.cents,
            code=TransferCode.WITHDRAWAL,
            user_data=check_memo(cmd.description),
        )
        return await self._submit(
            transfer,
            event_type=WITHDRAWAL_MADE,
            aggregate_id=cmd.account_id,
            payload={"account_id": str(cmd.account_id), "operator_id": cmd.operator_id},
            correlation_id=None,
        )


class InternalTransfer(_MoneyMovement):
    """Move money between two customer accounts of this bank, idempotent by client key.

    The caller must own the source account; the destination may be anyone's
    active account. Replaying the same key and body returns the first
    receipt (``replayed=True``) and moves nothing; the same key with another
    body raises ``IdempotencyKeyReused``.

    The account checks and the ledger's submission are one operation of the
    ``CheckedTransfers`` port (``transfers``): by default composed of
    ``accounts`` and ``ledger`` (``ComposedCheckedTransfers``); an adapter
    holding both stores runs it as one call (PostgreSQL: one round trip).
    """

    def __init__(
        self,
        ledger: Ledger,
        accounts: AccountRepository,
        clock: Clock,
        ids: IdGenerator,
        transfers: CheckedTransfers | None = None,
    ) -> None:
        super().__init__(ledger, clock, ids)
        self._accounts = accounts
        self._transfers = transfers or ComposedCheckedTransfers(accounts, ledger)

    async def __call__(self, cmd: InternalTransferCommand) -> TransferReceipt:
        cmd.amount.require_positive()
        transfer_id = transfer_id_for("internal", cmd.owner_id, cmd.idempotency_key)
        if cmd.correlation_id is not None:  # carried by the event, stored with it
            check_text(cmd.correlation_id, field="correlation_id", name="correlation id")
        if cmd.from_account_id == cmd.to_account_id:
            raise SameAccount()
        transfer = Transfer(
            id=transfer_id,
            debit_account_id=cmd.from_account_id,
            credit_account_id=cmd.to_account_id,
            amount=cmd.amount.cents,
            code=TransferCode.INTERNAL_TRANSFER,
            user_data=check_memo(cmd.description),
        )
        event = self._event(
            transfer,
            event_type=INTERNAL_TRANSFER_MADE,
            aggregate_id=cmd.from_account_id,
            payload={
                "from_account_id": str(cmd.from_account_id),
                "to_account_id": str(cmd.to_account_id),
            },
            correlation_id=cmd.correlation_id,
        )
        # the ownership and status checks (and, when one refuses, whether the id
        # is already stored: a replay is answered as the first call even after a
        # block) happen with the submission, in one call of the port
        submitted = await self._transfers.submit_internal(
            transfer, owner_id=cmd.owner_id, events=[event]
        )
        return await self._receipt(transfer, submitted)


class _OwnedAccountQuery:
    def __init__(self, ledger: Ledger, accounts: AccountRepository) -> None:
        self._ledger = ledger
        self._accounts = accounts

    async def _owned(self, owner_id: str, account_id: uuid.UUID) -> CustomerAccount:
        return await owned_account(self._accounts, owner_id, account_id)


class GetAccount(_OwnedAccountQuery):
    """One of the caller's accounts (``AccountNotFound`` for anyone else's)."""

    async def __call__(self, query: GetAccountQuery) -> CustomerAccount:
        return await self._owned(query.owner_id, query.account_id)


class ListAccounts:
    """Every account of the caller."""

    def __init__(self, accounts: AccountRepository) -> None:
        self._accounts = accounts

    async def __call__(self, query: ListAccountsQuery) -> list[CustomerAccount]:
        check_text(query.owner_id, field="owner_id", name="owner id")  # the store is asked by it
        return await self._accounts.list_by_owner(query.owner_id)


class GetBalance(_OwnedAccountQuery):
    """Posted, available and pending balances of one of the caller's accounts."""

    async def __call__(self, query: GetBalanceQuery) -> BalanceResult:
        account = await self._owned(query.owner_id, query.account_id)
        found = await self._ledger.lookup_accounts([query.account_id])
        if not found:
            raise AccountNotFound()
        ledger_account = found[0]
        return BalanceResult(
            account=account,
            posted=Money(ledger_account.balance_posted),
            available=Money(ledger_account.balance_available),
            pending_debits=Money(ledger_account.debits_pending),
            pending_credits=Money(ledger_account.credits_pending),
        )


class GetStatement(_OwnedAccountQuery):
    """Posted entries of an owned account, date-bounded and paged by cursor."""

    MAX_PAGE = 500

    async def __call__(self, query: GetStatementQuery) -> Statement:
        limit = query.limit
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= self.MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {self.MAX_PAGE}", field="limit")
        # each bound's timezone before the two are compared (naive and aware do not compare)
        for field, bound in (("since", query.since), ("until", query.until)):
            if bound is not None and bound.tzinfo is None:
                raise InvalidInput("dates must carry a timezone", field=field)
        if query.since and query.until and query.since >= query.until:
            raise InvalidInput("'since' must be before 'until'", field="since")
        account = await self._owned(query.owner_id, query.account_id)
        page = await self._ledger.get_account_entries(
            query.account_id,
            since=query.since,
            until=query.until,
            after_sequence=query.after_sequence,
            limit=query.limit,
        )
        return Statement(
            account=account,
            since=query.since,
            until=query.until,
            lines=[_line(e) for e in page.entries],
            next_cursor=page.next_after_sequence,
        )
