"""Payer side: the debit of a recurring charge on its due date, retried as its policy allows.

Every attempt has an EndToEndId derived from the txid and its number
(:func:`~finbank_core.pix.automatic.model.debit_end_to_end_id`), and its
money moves through :class:`~finbank_core.pix.ledger_steps.PixLedgerSteps`
with step ids derived from it: reserve (payer -> settlement, pending), then
post linked with the credit to the receiver (both here). Any number of
runners may run the same charge at once; the charge's record decides:

1. A runner **claims** the attempt (``RUNNING``, a write on the version: one
   claim per attempt; a runner that finds it ``RUNNING`` joins it, which is
   how a crashed runner's attempt is finished).
2. It **reserves**. Short of funds (or the account no longer usable): the
   attempt is recorded ``FAILED`` from ``RUNNING`` and the next attempt is
   set for the next day if the policy allows one, else the charge is
   ``EXPIRADA``. Reserved: the attempt is recorded ``RESERVED`` from
   ``RUNNING``.
3. ``RESERVED`` is **posted** and recorded ``SETTLED``, the charge
   ``CONCLUIDA``. If the ledger refuses the post for good (the receiving
   account closed or gone), the reservation is voided, then the attempt is
   recorded ``FAILED`` (``receiver_account_unavailable``) and the charge
   ``EXPIRADA``: no retry can change the receiver's account, and the payer's
   money is not held for it.

A charge whose receiver is at another institution goes out as a PIX payment
instead of the on-us post: its ``RESERVED`` attempt is recorded as an
outgoing payment under the attempt's EndToEndId (the one its reservation is
keyed by) and settled by :class:`~finbank_core.pix.use_cases.settle.SettlePixPayment`,
the settlement flow of every PIX payment: the order to the network, then the
post on acceptance or the void on rejection. Accepted: ``SETTLED``; rejected:
``FAILED`` with the ISO reason (a timeout, ``AB03``/``AB09``, is retried as the
policy allows; a refusal of the receiving account ends the charge); the
network unreachable: the attempt stays ``RESERVED`` and the next round sends
the same order again (the network answers an EndToEndId once).

A reservation is posted only when the record says ``RESERVED`` and voided
only when it says ``FAILED``, and a record cannot say both, so a debit is
applied at most once; the post excludes the void in the ledger besides. A
runner whose ``RESERVED`` write loses to a ``FAILED`` one voids the
reservation it (or a runner it joined) made, and any runner that reads an
attempt ``FAILED`` gives back what a late runner of it may still hold: the
reservation and the attempt's share of the payer's daily limit (a runner that
read it ``RUNNING`` can count it again after the failing one released it).
Each change is published under an id derived from the txid (and the
attempt), so a replay re-announces, never doubles.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

import msgspec

from finbank_core.accounts.errors import InsufficientFunds
from finbank_core.accounts.ledger import PendingStatus, TransferCode
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.automatic.errors import RecurringChargeNotFound
from finbank_core.pix.automatic.events import DEBIT_FAILED, charge_payload, event_id
from finbank_core.pix.automatic.model import (
    AttemptStatus,
    ChargeStatus,
    DebitAttempt,
    RecurrenceStatus,
    RecurringCharge,
    attempt_window,
    business_date,
    debit_end_to_end_id,
    start_of_day,
)
from finbank_core.pix.automatic.ports import RecurrenceStore
from finbank_core.pix.automatic.use_cases.common import publish_charge, retrying
from finbank_core.pix.automatic.use_cases.limits import AUTOMATIC_DAILY_LIMIT
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.directory import safe_mask
from finbank_core.pix.errors import PixPaymentAlreadyExists, PixPaymentNotFound
from finbank_core.pix.ledger_steps import PixEvents, PixLedgerSteps
from finbank_core.pix.limits import ReserveOutcome, UsageCounter, UsageHold
from finbank_core.pix.payments import (
    Initiation,
    PaymentStatus,
    PixFlow,
    PixParty,
    PixPayment,
)
from finbank_core.pix.ports import AccountLimitsStore, PixPaymentRepository
from finbank_core.pix.use_cases.settle import SettlePixPayment, SettlePixPaymentCommand
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import (
    AccountNotActive,
    AccountNotFound,
    DomainError,
    InvalidInput,
    ServiceUnavailable,
    TransferRejected,
)
from finbank_core.shared.inputs import check_lookup_id, check_text

#: the reason of an attempt that would pass the payer's daily Pix Automático limit
LIMIT_EXCEEDED = "automatic_limit_exceeded"
#: the reason of an attempt (and charge) whose credit the ledger refused for good
RECEIVER_UNAVAILABLE = "receiver_account_unavailable"
#: refusals of the reservation that fail the attempt (anything else propagates and is retried)
_FAILS_ATTEMPT = (InsufficientFunds, AccountNotActive, AccountNotFound, TransferRejected)


def _failure_reason(refused: Exception) -> str:
    if isinstance(refused, InsufficientFunds):
        return "insufficient_funds"
    return "payer_account_unavailable"


#: network rejections worth another attempt (a timeout); any other ends the charge
_RETRIED_REJECTIONS = frozenset({IsoReason.AB03, IsoReason.AB09})


class OutgoingDebits(msgspec.Struct, frozen=True, kw_only=True):
    """What a debit to a receiver at another institution goes out through."""

    payments: PixPaymentRepository
    settle: SettlePixPayment
    accounts: AccountRepository


class ExecuteDebitCommand(msgspec.Struct, frozen=True, kw_only=True):
    txid: str


#: a round's bounds: at most this many charges, each leased for 1 s to a day
MAX_ROUND_CHARGES = 10_000
MAX_LEASE_SECONDS = 86_400


class RunDueDebitsCommand(msgspec.Struct, frozen=True, kw_only=True):
    """One round of the scheduler: lease up to ``limit`` due charges for ``lease_seconds``.

    ``limit`` is 1 to :data:`MAX_ROUND_CHARGES`, ``lease_seconds`` 1 to
    :data:`MAX_LEASE_SECONDS` (a lease that ended as it was taken would let
    another scheduler run the same charge at once).
    """

    holder: str
    limit: int = 100
    lease_seconds: int = 60


class RunDueDebitsResult(msgspec.Struct, frozen=True, kw_only=True):
    charges: list[RecurringCharge]
    #: txids whose run raised (left to a later round: the lease lapses); the first error each
    failed: list[tuple[str, str]] = []


class ExecuteDueDebit:
    """Run the due attempt of a charge (nothing before its day; final charges are returned)."""

    def __init__(
        self,
        *,
        store: RecurrenceStore,
        steps: PixLedgerSteps,
        events: PixEvents,
        clock: Clock,
        ispb: str,
        outgoing: OutgoingDebits | None = None,
        usage: AccountLimitsStore | None = None,
    ) -> None:
        """``usage``: where the payer's daily Pix Automático limit is counted (None: unchecked)."""
        self._store = store
        self._steps = steps
        self._events = events
        self._clock = clock
        self._ispb = ispb
        self._outgoing = outgoing
        self._usage = usage

    async def __call__(self, cmd: ExecuteDebitCommand) -> RecurringCharge:
        check_lookup_id(cmd.txid, "txid")
        charge = await retrying(lambda: self._advance(cmd.txid))
        if charge.is_final:
            await publish_charge(self._events, charge)  # again if a crash ate it: same id
        return charge

    async def _advance(self, txid: str) -> RecurringCharge:
        """Move the charge as far as it goes now; ``StaleAutomaticRecord`` if a write lost."""
        charge = await self._store.get_charge(txid)
        if charge is None:
            raise RecurringChargeNotFound()
        if charge.attempts and charge.attempts[-1].status is AttemptStatus.FAILED:
            # a runner that read the attempt RUNNING before it failed may have counted
            # (and reserved) it again after the failing runner gave both back, then lost
            # its own FAILED write: whoever reads the failure gives them back
            await self._void_failed(charge)
        while not charge.is_final:
            attempt = charge.current_attempt
            if attempt is None:
                started = await self._start(charge)
                if started is None:
                    return charge  # not due yet
                charge = started
            elif attempt.status is AttemptStatus.RUNNING:
                charge = await self._reserve(charge, attempt)
            else:
                charge = await self._post(charge, attempt)
        return charge

    async def _start(self, charge: RecurringCharge) -> RecurringCharge | None:
        now = self._clock.now()
        today = business_date(now)
        if charge.next_attempt_on is None or today < charge.next_attempt_on:
            return None
        if charge.next_attempt_at is not None and now < charge.next_attempt_at:
            return None  # the same-day retry waits for 18:00
        if attempt_window(now) is None and today <= charge.retry_policy.last_day(charge.due_date):
            return None  # attempts start only in the day's windows
        recurrence = await self._store.get_recurrence(charge.recurrence_id)
        if recurrence is None or recurrence.status is not RecurrenceStatus.APROVADA:
            status = recurrence.status.value.lower() if recurrence else "missing"
            return await self._store.update_charge(
                charge.moved(
                    ChargeStatus.CANCELADA,
                    now,
                    next_attempt_on=None,
                    reason=f"recurrence_{status}",
                )
            )
        # (a failed attempt's late reservation and usage: given back by _advance, which
        # reads the failure first, and by _fail)
        if today > charge.retry_policy.last_day(charge.due_date):
            return await self._store.update_charge(
                charge.moved(
                    ChargeStatus.EXPIRADA, now, next_attempt_on=None, reason="not_run_in_time"
                )
            )
        days = {a.on for a in charge.attempts}
        retry_days = {d for d in days if d > charge.due_date}
        # a new day after the due date is a retry day: only if the policy has one left
        # (a missed same-day retry does not carry over to another day for free)
        new_day = today > charge.due_date and today not in days
        if new_day and len(retry_days) >= charge.retry_policy.max_retries:
            last = charge.attempts[-1].reason if charge.attempts else None
            return await self._store.update_charge(
                charge.moved(
                    ChargeStatus.EXPIRADA,
                    now,
                    next_attempt_on=None,
                    next_attempt_at=None,
                    reason=last or "not_run_in_time",
                )
            )
        number = len(charge.attempts) + 1
        attempt = DebitAttempt(
            number=number,
            on=today,
            end_to_end_id=debit_end_to_end_id(self._ispb, charge.txid, number, today),
            status=AttemptStatus.RUNNING,
            started_at=now,
        )
        return await self._store.update_charge(charge.with_attempt(attempt))

    async def _reserve(self, charge: RecurringCharge, attempt: DebitAttempt) -> RecurringCharge:
        if not await self._within_payer_limit(charge, attempt):
            return await self._fail(charge, attempt, LIMIT_EXCEEDED)
        try:
            await self._steps.reserve(
                attempt.end_to_end_id,
                charge.payer_account_id,
                charge.amount,
                TransferCode.PIX_OUT,
                _memo("Pix Automatico", charge, attempt),
            )
        except _FAILS_ATTEMPT as refused:
            return await self._fail(charge, attempt, _failure_reason(refused))
        except BaseException:
            await self._release_usage(charge, attempt)
            raise
        reserved = msgspec.structs.replace(attempt, status=AttemptStatus.RESERVED)
        try:
            return await self._store.update_charge(charge.with_attempt(reserved))
        except Exception:
            await self._void_if_failed(charge.txid, attempt)
            raise

    async def _within_payer_limit(self, charge: RecurringCharge, attempt: DebitAttempt) -> bool:
        """Count the attempt on the payer's daily Pix Automático limit; False if it passes it."""
        if self._usage is None:
            return True
        daily = await self._store.get_payer_limit(charge.payer_account_id)
        if daily is None:
            return True
        reservation = await self._usage.reserve_usage(
            UsageHold(
                account_id=charge.payer_account_id,
                hold_id=_usage_hold(attempt),
                amount=charge.amount.cents,
                counters=(
                    UsageCounter(
                        limit=AUTOMATIC_DAILY_LIMIT,
                        period=f"automatic:{attempt.on.isoformat()}",
                        cap=daily.cents,
                        ends_at=start_of_day(attempt.on + timedelta(days=1)),
                    ),
                ),
                created_at=self._clock.now(),
            )
        )
        return reservation.outcome is not ReserveOutcome.EXCEEDED

    async def _release_usage(self, charge: RecurringCharge, attempt: DebitAttempt) -> None:
        """Give a failed attempt's share of the daily limit back (once; none: nothing)."""
        if self._usage is not None:
            await self._usage.release_usage(charge.payer_account_id, _usage_hold(attempt))

    async def _fail(
        self,
        charge: RecurringCharge,
        attempt: DebitAttempt,
        reason: str,
        *,
        final: bool = False,
    ) -> RecurringCharge:
        """Record the attempt ``FAILED``; the next one as the policy allows (none if ``final``)."""
        now = self._clock.now()
        failed = msgspec.structs.replace(attempt, status=AttemptStatus.FAILED, reason=reason)
        following = None if final else charge.next_attempt_after(attempt)
        updated = charge.with_attempt(
            failed,
            next_attempt_on=None if following is None else business_date(following),
            next_attempt_at=following,
        )
        if following is None:
            updated = updated.moved(ChargeStatus.EXPIRADA, now, reason=reason)
        stored = await self._store.update_charge(updated)
        await self._release_usage(stored, attempt)
        await self._events.publish(
            DEBIT_FAILED,
            stored.txid,
            charge_payload(stored, attempt=attempt.number, attempt_reason=reason),
            event_id=event_id(DEBIT_FAILED, f"{stored.txid}:{attempt.number}"),
        )
        await self._void_failed(stored)
        return stored

    async def _post(self, charge: RecurringCharge, attempt: DebitAttempt) -> RecurringCharge:
        if charge.receiver_party is not None:
            return await self._send_out(charge, attempt, charge.receiver_party)
        try:
            await self._steps.post(
                attempt.end_to_end_id,
                TransferCode.PIX_OUT,
                _memo("Pix Automatico", charge, attempt),
                then_credit=charge.receiver_account_id,
                credit_code=TransferCode.PIX_IN,
                credit_memo=_memo("Pix Automatico recebido", charge, attempt),
            )
        except (TransferRejected, AccountNotFound, AccountNotActive):
            # A reservation that timed out (FINBANK_PIX_PENDING_TIMEOUT_SECONDS) before
            # its post cannot be posted: the attempt failed, nothing moved.
            status = await self._steps.pending_status(attempt.end_to_end_id)
            if status is PendingStatus.EXPIRED:
                return await self._fail(charge, attempt, "reservation_expired")
            if status is PendingStatus.VOIDED:
                # only a runner that saw this post refused for good voids a RESERVED
                # attempt's reservation (below): join its outcome
                return await self._fail(charge, attempt, RECEIVER_UNAVAILABLE, final=True)
            if status is not PendingStatus.PENDING:
                raise
            # The ledger refuses the credit (the receiving account closed or gone):
            # no retry can change that, so the payer's money is not held for it.
            # Void first: once voided no runner can post, so the record that
            # follows (FAILED, the charge EXPIRADA) cannot contradict the ledger.
            await self._steps.void(attempt.end_to_end_id, TransferCode.PIX_OUT)
            return await self._fail(charge, attempt, RECEIVER_UNAVAILABLE, final=True)
        settled = msgspec.structs.replace(attempt, status=AttemptStatus.SETTLED)
        return await self._store.update_charge(
            charge.with_attempt(settled, next_attempt_on=None, next_attempt_at=None).moved(
                ChargeStatus.CONCLUIDA, self._clock.now(), reason=None
            )
        )

    async def _send_out(
        self, charge: RecurringCharge, attempt: DebitAttempt, receiver: PixParty
    ) -> RecurringCharge:
        """Settle the reserved attempt as an outgoing PIX payment (see the module docstring)."""
        out = self._outgoing
        if out is None:
            raise ServiceUnavailable("no payment network to reach the receiver's institution")
        e2e = attempt.end_to_end_id
        try:
            payment = await out.payments.get(e2e)
        except PixPaymentNotFound:
            payer = await out.accounts.get(charge.payer_account_id)
            record = PixPayment(
                end_to_end_id=e2e,
                flow=PixFlow.OUTGOING,
                status=PaymentStatus.PENDING,
                amount=charge.amount,
                payer=PixParty(
                    ispb=self._ispb,
                    branch=payer.branch,
                    account_number=payer.number,
                    account_kind=payer.kind.value,
                    name=payer.holder_name,
                    document_masked=safe_mask(payer.holder_document),
                    account_id=payer.id,
                    owner_id=payer.owner_id,
                ),
                payee=receiver,
                initiation=Initiation.MANUAL,
                created_at=self._clock.now(),
                txid=charge.txid,
                description=f"Pix Automatico {charge.recurrence_id}",
            )
            try:
                payment = await out.payments.add(record)
            except PixPaymentAlreadyExists:
                payment = await out.payments.get(e2e)  # a concurrent runner recorded it
        if payment.status is PaymentStatus.PENDING:
            payment = await out.settle(SettlePixPaymentCommand(end_to_end_id=e2e))
        if payment.status is PaymentStatus.SETTLED:
            settled = msgspec.structs.replace(attempt, status=AttemptStatus.SETTLED)
            return await self._store.update_charge(
                charge.with_attempt(settled, next_attempt_on=None, next_attempt_at=None).moved(
                    ChargeStatus.CONCLUIDA, self._clock.now(), reason=None
                )
            )
        if payment.status is PaymentStatus.REJECTED:
            reason = payment.reject_reason or IsoReason.AB09
            return await self._fail(
                charge,
                attempt,
                f"rejected_{reason.value}",
                final=reason not in _RETRIED_REJECTIONS,
            )
        raise ServiceUnavailable("the payment is still pending at the network")

    async def _void_if_failed(self, txid: str, attempt: DebitAttempt) -> None:
        """After losing the RESERVED write: void our reservation if the attempt ended FAILED."""
        with contextlib.suppress(Exception):
            now = await self._store.get_charge(txid)
            if now is not None:
                await self._void_failed(now)

    async def _void_failed(self, charge: RecurringCharge) -> None:
        """Void what a failed attempt's late runner may have reserved (nobody posts it), and
        give back its share of the payer's daily limit (the limits store keeps no mark of
        a released hold, so a late runner's ``reserve_usage`` takes it again)."""
        for attempt in charge.attempts:
            if attempt.status is not AttemptStatus.FAILED:
                continue
            if await self._steps.pending_status(attempt.end_to_end_id) is PendingStatus.PENDING:
                await self._steps.void(attempt.end_to_end_id, TransferCode.PIX_OUT)
            await self._release_usage(charge, attempt)


def _usage_hold(attempt: DebitAttempt) -> str:
    return f"automatic:{attempt.end_to_end_id}"


def _memo(prefix: str, charge: RecurringCharge, attempt: DebitAttempt) -> str:
    return f"{prefix} {attempt.end_to_end_id} {charge.txid}"


class RunDueDebits:
    """Lease the charges due today (Brasília) and run each: one scheduler round."""

    def __init__(self, *, store: RecurrenceStore, execute: ExecuteDueDebit, clock: Clock) -> None:
        self._store = store
        self._execute = execute
        self._clock = clock

    async def __call__(self, cmd: RunDueDebitsCommand) -> RunDueDebitsResult:
        check_text(cmd.holder, field="holder", name="holder")  # stored on each lease
        for field, value, top in (
            ("limit", cmd.limit, MAX_ROUND_CHARGES),
            ("lease_seconds", cmd.lease_seconds, MAX_LEASE_SECONDS),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise InvalidInput(f"{field} must be a whole number from 1 to {top}", field=field)
        now: datetime = self._clock.now()
        txids = await self._store.lease_due_charges(
            today=business_date(now),
            now=now,
            lease_until=now + timedelta(seconds=cmd.lease_seconds),
            holder=cmd.holder,
            limit=cmd.limit,
        )
        done: list[RecurringCharge] = []
        failed: list[tuple[str, str]] = []
        for txid in txids:  # one charge's trouble does not hold the others back
            try:
                done.append(await self._execute(ExecuteDebitCommand(txid=txid)))
            except ServiceUnavailable:
                raise
            except DomainError as error:
                failed.append((txid, error.code))
        return RunDueDebitsResult(charges=done, failed=failed)


__all__ = [
    "ExecuteDebitCommand",
    "ExecuteDueDebit",
    "OutgoingDebits",
    "RunDueDebits",
    "RunDueDebitsCommand",
    "RunDueDebitsResult",
]
