"""Differential test: the whole bank on PostgreSQL (or DynamoDB) against the bank in memory.

The ledger has a differential test of its own (``test_ledger_differential``);
this one drives the public facades, where the stores meet: accounts, cash,
transfers, PIX keys, payments to our own customers and to the sandbox's peer
bank (accepted, closed account, timed out), refunds, charges paid by their BR
Codes, limits, incoming payments, precautionary blocks and their release,
Pix Automatico (recurrences created, authorised by a payer, charges scheduled and
debited when due), MED on both sides (a report received and analysed, a refund
requested; a payment contested, the peer's analysis and return), PIX key claims
both ways (our customers' portability and ownership claims on keys held here or at
the peer bank, its answer, confirmation, cancellation and completion; the peer
bank's claims on our customers' keys, their answer and its completion; the claims
read, and the keys they moved), statements and listings. A seeded random walk
makes the same call on both banks, each on a :class:`FakeClock` of its own moved together, and after
every call the two must answer alike: the same result, or the same error with
the same details. One call in five is made twice at once on each bank, as two
replicas would receive a retried request: PostgreSQL may answer one of the pair
``RequestInProgress`` (the claim of a request still running, HTTP 409) where
memory, which never suspends mid-call, has already finished; apart from that,
what each bank answers must be among what the other answers.

At the end every account must show the same balance, statement and PIX
payments on both, and none may be below zero.

Both banks draw the same ids where they can: each has its own
``SequentialIdGenerator``, and the random part of end-to-end ids, return ids and
txids, and the id of a claim the peer bank opens, comes from a generator seeded per
step, one per bank (``identifiers._random_alnum`` and the sandbox's ``uuid4`` patched
for the test). Ids that may still differ
(a PIX key's EVP, an id drawn once more on one side after a
``RequestInProgress``, end-to-end ids drawn by debits running side by side) are
compared by their order of first appearance on each side, not by value; a
request's fingerprint (a digest of the request, those ids included) is left out.
Beyond the values, what each answer holds must be of the same Python types on
both sides (``types_of``): an id from PostgreSQL was asyncpg's ``UUID`` subclass,
which ``orjson`` refuses, where memory gave ``uuid.UUID``.

The walk also counts what it did: each run must have made every kind of money
movement succeed at least once (payments, charges paid, refunds, blocks and their
release...), and made enough concurrent pairs and clock moves. A walk that only
collected refusals would prove nothing.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import types
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest

from finbank import Bank, open_bank
from finbank_adapters.aws.dynamo_schema import create_tables
from finbank_adapters.aws_wiring import open_dynamodb_client
from finbank_adapters.memory.clock import FakeClock
from finbank_adapters.memory.ids import SequentialIdGenerator
from finbank_adapters.sandbox import (
    PEER_ACCOUNT_NUMBER,
    PEER_CLOSED_KEY,
    PEER_KEY_EMAIL,
    PEER_KEY_EVP,
    PEER_TIMEOUT_AMOUNT,
)
from finbank_adapters.sandbox import claims as sandbox_claims
from finbank_adapters.settings import Settings
from finbank_core.accounts.use_cases import (
    BalanceResult,
    GetBalanceQuery,
    GetStatementQuery,
    InternalTransferCommand,
    MoveCashCommand,
    OpenAccountCommand,
)
from finbank_core.pix.automatic import (
    BRASILIA,
    AuthoriseRecurrenceCommand,
    CreateRecurrenceCommand,
    ListRecurrencesQuery,
    Periodicity,
    RecurrenceCodeQuery,
    RetryPolicy,
    ScheduleChargeCommand,
)
from finbank_core.pix.automatic.use_cases import RecurrenceRole, RunDueDebitsCommand
from finbank_core.pix.claims.model import CancelReason, ClaimStatus, ClaimType, KeyClaim
from finbank_core.pix.claims.use_cases import (
    CancelKeyClaimCommand,
    CompleteKeyClaimCommand,
    ConfirmKeyClaimCommand,
    GetKeyClaimQuery,
    ListKeyClaimsQuery,
    OpenKeyClaimCommand,
)
from finbank_core.pix.codes import identifiers
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.limits import TierLimits
from finbank_core.pix.med.model import CaseStatus, Decision, FraudSituation
from finbank_core.pix.med.use_cases import (
    AnalyseInfractionReportCommand,
    ContestPixPaymentCommand,
    PlacePrecautionaryBlockCommand,
    ReceiveInfractionReportCommand,
    ReleasePrecautionaryBlockCommand,
    RequestMedRefundCommand,
)
from finbank_core.pix.use_cases import (
    CreateChargeCommand,
    ListPixKeysQuery,
    ListPixPaymentsQuery,
    RefundPixCommand,
    RegisterPixKeyCommand,
    SendPixCommand,
    SetPixLimitsCommand,
    SimulateIncomingPixCommand,
)
from finbank_core.pix.use_cases.devices import ListPixDevicesQuery
from finbank_core.pix.use_cases.limit_changes import GetPixLimitsQuery
from finbank_core.shared.money import Money
from tests.differential_support import types_of
from tests.integration.dynamo_support import serial_moto_endpoint
from tests.postgres_support import (
    POSTGRES_DSN,
    all_postgres_settings,
    isolated_schema,
    require_postgres,
)
from tests.support_redis import open_test_redis

__all__ = ["serial_moto_endpoint"]  # fixture

#: a call made on one bank: ``side`` is 0 for memory, 1 for the other
Call = Callable[[Bank, int], Awaitable[object]]
#: each side's value of something the banks made (an account id, a key, a BR Code)
Pair = tuple[Any, Any]

OWNERS = ("ana", "bia", "caio")
#: each owner's document: Ana is Carla of the peer bank (she may port Carla's key here), Bia
#: another person, Caio gave none (a portability needs the same document on both sides)
DOCUMENTS = {"ana": "52998224725", "bia": "11144477735", "caio": None}
PEER_CLOSED_ACCOUNT = "765432-1"  # the peer bank's closed account (a company), PEER_CLOSED_KEY's
#: the documents of the peer bank's accounts, and of the holders of the keys held there
PEER_DOCUMENTS = {
    PEER_ACCOUNT_NUMBER: "52998224725",
    PEER_CLOSED_ACCOUNT: "11222333000181",
    PEER_KEY_EMAIL: "52998224725",
    PEER_CLOSED_KEY: "11222333000181",
}
PEER_ISPB = "88888888"  # the sandbox's peer bank
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
#: ids a bank makes that may differ between the sides, compared by order of appearance
_IDS = re.compile(
    r"(?<=cob/)[0-9a-f]{32}|\b[0-9a-f]{32}\b"  # a charge's location id, alone or in its URL
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|R[RN][0-9]{16}[0-9A-Za-z]{11}"  # a recurrence's id, made of an id the bank draws
    # an end-to-end or return id: the same draws on both sides, but the debits of one
    # run of Pix Automatico draw theirs in whatever order their calls interleave
    r"|[ED][0-9]{20}[0-9A-Za-z]{11}"
)
_CRC = re.compile(r"6304[0-9A-F]{4}$")  # a BR Code's CRC covers the ids above


def _unmatched(field: str, item: dict[str, Any]) -> bool:
    """What is left out of the comparison: a request's digest (it covers the ids above) and
    a key claim's ``version``, the count of its stored writes: PostgreSQL writes each step
    with its event in one transaction, memory and DynamoDB write the step, publish its
    event, then mark it announced (docs/pix-claims.md), two writes where PostgreSQL makes
    one. What the claim says (status, parties, deadlines, ``announced``) is compared.

    Likewise a PIX payment's ``version``: of two MED returns made at once, the one the
    case refuses (the other closed it) has reserved its amount in the payment's refunds
    and gives it back, two writes that memory, where the second call only starts once
    the first is done, never makes. The refunds themselves are compared."""
    if field != "version":
        return field == "request_fingerprint"
    return "claim_type" in item or ("refunds" in item and "flow" in item)


class Sides:
    """What makes both banks draw the same random ids: one generator per side."""

    def __init__(self) -> None:
        self.rngs = (random.Random(), random.Random())
        self.current = 0

    def reseed(self, step: int) -> None:
        for rng in self.rngs:
            rng.seed(step)

    def draw(self, length: int, rng: random.Random | None) -> str:
        return _DRAW(length, rng if rng is not None else self.rngs[self.current])

    def uuid4(self) -> uuid.UUID:
        """The id of a claim the sandbox's peer bank opens (``uuid.uuid4`` there)."""
        return uuid.UUID(int=self.rngs[self.current].getrandbits(128), version=4)


_DRAW = identifiers._random_alnum


class Walk:
    """The seeded walk: picks each call, makes it on both banks, compares the answers."""

    def __init__(self, banks: tuple[Bank, Bank], clocks: tuple[FakeClock, FakeClock], seed: int):
        self.banks = banks
        self.clocks = clocks
        self.rnd = random.Random(seed)
        self.sides = Sides()
        self.seen: tuple[dict[str, str], dict[str, str]] = ({}, {})
        self.accounts: list[tuple[str, Pair]] = []  # owner, account ids
        self.keys: list[tuple[str, Pair, Pair]] = []  # owner, account ids, key values
        self.received: list[tuple[str, Pair]] = []  # payee's owner, end-to-end ids
        self.blocked: list[Pair] = []  # end-to-end ids of payments blocked
        self.br_codes: list[Pair] = []
        #: payee, recurrence ids, codes, the fixed amount
        self.recurrences: list[tuple[str, Pair, Pair, Money | None]] = []
        self.authorised: list[tuple[str, Pair, Pair, Money | None]] = []  # a payer said yes
        self.from_peer: list[Pair] = []  # payments the peer bank sent our customers
        self.to_peer: list[tuple[str, Pair]] = []  # payer, payments settled to the peer
        #: how far each MED case got, by its payment's end-to-end ids
        self.med: dict[str, list[Pair]] = {"report": [], "analyse": [], "contest": []}
        #: key claims: the claimer's and the donor's owner (``None``: the peer bank), ids
        self.claims: list[tuple[str | None, str | None, Pair]] = []
        self.completed: set[object] = set()  # the claims completed (memory's ids)
        self.idempotency_keys: list[str] = []
        self.differences: list[str] = []
        self.done: Counter[str] = Counter()

    # -- what a call answers, comparable across the sides -------------------------------

    def comparable(self, value: object, side: int) -> object:
        seen = self.seen[side]

        def walk(item: Any) -> Any:
            if isinstance(item, dict):  # a request's digest covers the ids above, too
                return {k: walk(v) for k, v in item.items() if not _unmatched(k, item)}
            if isinstance(item, list | tuple):
                return [walk(v) for v in item]
            if isinstance(item, str):
                item = _CRC.sub("6304", item)
                return _IDS.sub(lambda m: seen.setdefault(m.group(0), f"<id {len(seen)}>"), item)
            return item

        return walk(msgspec.to_builtins(value, str_keys=True, enc_hook=repr))

    async def answer(self, call: Call, side: int) -> tuple[str, object, object]:
        """``("ok", comparable result, result)`` or ``(error class, comparable details, None)``."""
        self.sides.current = side
        try:
            result = await call(self.banks[side], side)
        except Exception as exc:  # every error a facade raises is compared
            details = {"message": str(exc), "details": getattr(exc, "details", None)}
            return type(exc).__name__, self.comparable(details, side), None
        return "ok", self.comparable(result, side), result

    async def twice(self, call: Call, side: int) -> set[str]:
        """The kinds of answer to ``call`` made twice at once, ``RequestInProgress`` apart."""
        self.sides.current = side
        bank = self.banks[side]
        answers = await asyncio.gather(call(bank, side), call(bank, side), return_exceptions=True)
        kinds = {"ok" if not isinstance(a, BaseException) else type(a).__name__ for a in answers}
        return kinds - {"RequestInProgress"}

    # -- the calls ----------------------------------------------------------------------

    def today(self) -> date:
        """The date in Brasília, which due dates and the debits' runs are in."""
        return self.clocks[0].now().astimezone(BRASILIA).date()

    def idempotency_key(self) -> str:
        if self.idempotency_keys and self.rnd.random() < 0.15:
            return self.rnd.choice(self.idempotency_keys)  # a retry, or a key reused
        key = f"k-{self.rnd.getrandbits(48):x}"
        self.idempotency_keys.append(key)
        return key

    def amount(self) -> Money:
        r = self.rnd.random()
        if r < 0.04:
            return Money(0)
        if r < 0.1:  # the edges of the limits, the new-device cap and the largest amount
            return Money(self.rnd.choice([1, 200_00, 200_01, 1_000_00, 1_000_01, 99_999_999_99]))
        return Money(self.rnd.randint(1, 60_000))

    def pick(self) -> tuple[str, str, Call | None]:
        """The next call's kind, owner and the call (``None``: nothing to do it with)."""
        rnd = self.rnd
        kinds = {
            "open": 4, "deposit": 6, "withdraw": 4, "transfer": 9, "key": 3, "send": 12,
            "refund": 5, "charge": 4, "pay_charge": 5, "limits": 2, "incoming": 4, "block": 3,
            "release": 2, "statement": 4, "payments": 3, "recurrence": 3, "authorise": 4,
            "schedule": 5, "run_due": 4, "report": 2, "analyse": 2, "med_refund": 2,
            "contest": 2, "peer_analysis": 2, "peer_return": 2,
            # key claims: ours on keys held elsewhere (here or at the peer bank), the peer
            # bank's on keys held here, their steps and their reading
            "claim_open": 3, "claim_answer": 2, "claim_confirm": 2, "claim_cancel": 2,
            "claim_complete": 2, "claim_incoming": 2, "claim_peer_complete": 2, "claim_get": 1,
            "claim_list": 1,
        }  # fmt: skip
        kind = rnd.choices(list(kinds), weights=list(kinds.values()))[0]
        if kind == "open" or not self.accounts:
            owner = rnd.choice(OWNERS)
            name = f"{owner.title()} Souza"
            document = DOCUMENTS[owner]
            return (
                "open",
                owner,
                lambda b, _: b.accounts.open(
                    OpenAccountCommand(owner_id=owner, holder_name=name, holder_document=document)
                ),
            )
        owner, a = rnd.choice(self.accounts)
        amount = self.amount()
        if kind.startswith("claim_"):
            return self.pick_claim(kind, owner, a)
        if kind in ("deposit", "withdraw"):
            key = self.idempotency_key()
            move = "deposit" if kind == "deposit" else "withdraw"
            return (
                kind,
                owner,
                lambda b, s: getattr(b.accounts, move)(
                    MoveCashCommand(
                        account_id=a[s], amount=amount, idempotency_key=key, operator_id="teller-1"
                    )
                ),
            )
        if kind == "transfer":
            _, to = rnd.choice(self.accounts)
            key = self.idempotency_key()
            return (
                kind,
                owner,
                lambda b, s: b.accounts.transfer(
                    InternalTransferCommand(
                        owner_id=owner,
                        from_account_id=a[s],
                        to_account_id=to[s],
                        amount=amount,
                        idempotency_key=key,
                    )
                ),
            )
        if kind == "key":
            key_type = rnd.choice([PixKeyType.EVP, PixKeyType.EVP, PixKeyType.EMAIL])
            value = None if key_type is PixKeyType.EVP else f"{owner}{rnd.randint(0, 5)}@ex.com.br"
            return (
                kind,
                owner,
                lambda b, s: b.pix.register_key(
                    RegisterPixKeyCommand(
                        owner_id=owner, account_id=a[s], key_type=key_type, key=value
                    )
                ),
            )
        if kind == "send":
            r = rnd.random()
            target: Pair
            if r < 0.5 and self.keys:
                target = rnd.choice(self.keys)[2]
            elif r < 0.8:
                target = (PEER_KEY_EMAIL, PEER_KEY_EMAIL)
            elif r < 0.9:
                target = (PEER_CLOSED_KEY, PEER_CLOSED_KEY)  # the peer answers AC03
            else:
                target = (PEER_KEY_EVP, PEER_KEY_EVP)
                if rnd.random() < 0.5:
                    amount = PEER_TIMEOUT_AMOUNT  # the peer never answers: AB03
            device = rnd.choice([None, "phone-1", "phone-2"])
            key = self.idempotency_key()
            return (
                kind,
                owner,
                lambda b, s: b.pix.send(
                    SendPixCommand(
                        owner_id=owner,
                        account_id=a[s],
                        idempotency_key=key,
                        amount=amount,
                        key=target[s],
                        device_id=device,
                    )
                ),
            )
        if kind == "refund" and self.received:
            payee, e2e = rnd.choice(self.received)
            key = self.idempotency_key()
            return (
                kind,
                payee,
                lambda b, s: b.pix.refund(
                    RefundPixCommand(
                        owner_id=payee, end_to_end_id=e2e[s], amount=amount, client_refund_id=key
                    )
                ),
            )
        if kind == "charge" and self.keys:
            payee, account, pix_key = rnd.choice(self.keys)
            expires = rnd.choice([None, 60, 3600, 86400])
            return (
                kind,
                payee,
                lambda b, s: b.pix.create_charge(
                    CreateChargeCommand(
                        owner_id=payee,
                        account_id=account[s],
                        pix_key=pix_key[s],
                        amount=amount,
                        expires_in_seconds=expires,
                    )
                ),
            )
        if kind == "pay_charge" and self.br_codes:
            # mostly the newest charge: an older one is often paid or expired already
            code = self.br_codes[-1] if rnd.random() < 0.6 else rnd.choice(self.br_codes)
            key = self.idempotency_key()
            return (
                kind,
                owner,
                lambda b, s: b.pix.send(
                    SendPixCommand(
                        owner_id=owner, account_id=a[s], idempotency_key=key, br_code=code[s]
                    )
                ),
            )
        if kind == "limits":
            day = rnd.choice([100_00, 1_000_00, 5_000_00])
            night = rnd.choice([50_00, 1_000_00])
            limits = TierLimits(
                day_per_transaction=day,
                day_per_period=day * rnd.choice([1, 3]),
                night_per_transaction=night,
                night_per_period=night * rnd.choice([1, 2]),
            )
            return (
                kind,
                owner,
                lambda b, s: b.pix.set_limits(
                    SetPixLimitsCommand(owner_id=owner, account_id=a[s], requested=limits)
                ),
            )
        if kind == "incoming":
            return (
                kind,
                owner,
                lambda b, s: b.pix.simulate_incoming(
                    SimulateIncomingPixCommand(owner_id=owner, account_id=a[s], amount=amount)
                ),
            )
        if kind == "block" and self.received:
            _, e2e = rnd.choice(self.received)
            return (
                kind,
                owner,
                lambda b, s: b.pix.med.place_block(
                    PlacePrecautionaryBlockCommand(end_to_end_id=e2e[s], blocked_by="fraud-engine")
                ),
            )
        if kind == "release" and self.blocked:
            # mostly a block placed: a payment never blocked is only NotFound
            pool = self.blocked if rnd.random() < 0.8 else [e for _, e in self.received]
            e2e = rnd.choice(pool)
            return (
                kind,
                owner,
                lambda b, s: b.pix.med.release_block(
                    ReleasePrecautionaryBlockCommand(end_to_end_id=e2e[s], released_by="analyst-7")
                ),
            )
        if kind == "recurrence":
            start = self.today() + timedelta(days=rnd.randint(2, 12))
            fixed = rnd.random() < 0.6
            periodicity = rnd.choice([Periodicity.SEMANAL, Periodicity.MENSAL])
            policy = rnd.choice([RetryPolicy.NAO_PERMITE, RetryPolicy.PERMITE_3R_7D])
            contract = f"PLANO-{rnd.getrandbits(24):x}"
            return (
                kind,
                owner,
                lambda b, s: recurrence(
                    b,
                    CreateRecurrenceCommand(
                        owner_id=owner,
                        account_id=a[s],
                        contract=contract,
                        debtor_name="Davi Lima",
                        debtor_document="52998224725",
                        periodicity=periodicity,
                        start=start,
                        retry_policy=policy,
                        fixed_amount=amount if fixed else None,
                    ),
                ),
            )
        if kind == "authorise" and self.recurrences:
            _, _, code, _ = rnd.choice(self.recurrences)
            cap = amount if rnd.random() < 0.3 else None
            return (
                kind,
                owner,
                lambda b, s: b.pix.automatic.authorise(
                    AuthoriseRecurrenceCommand(
                        owner_id=owner, account_id=a[s], br_code=code[s], max_amount=cap
                    )
                ),
            )
        if kind == "schedule" and self.recurrences:
            # mostly an authorised one: the others are only RecurrenceNotActive
            chosen = self.authorised if self.authorised and rnd.random() < 0.8 else self.recurrences
            payee, recurrence_id, _, fixed_amount = rnd.choice(chosen)
            if fixed_amount is not None and rnd.random() < 0.8:
                amount = fixed_amount  # a charge of a fixed recurrence is of that amount
            due = self.today() + timedelta(days=rnd.choice([0, 1, 2, 3, 5, 10, 11]))
            return (
                kind,
                payee,
                lambda b, s: b.pix.automatic.schedule(
                    ScheduleChargeCommand(
                        owner_id=payee, recurrence_id=recurrence_id[s], amount=amount, due_date=due
                    )
                ),
            )
        if kind == "run_due":
            return (
                kind,
                owner,
                lambda b, _: b.pix.automatic.run_due(RunDueDebitsCommand(holder="walk")),
            )
        if kind in ("report", "analyse", "med_refund") and self.from_peer:
            # the receiving side of MED: the payer's bank reports a payment we received
            # mostly a case at the step before: the others are only MedCaseNotFound
            before = {"analyse": "report", "med_refund": "analyse"}.get(kind)
            cases = self.med[before] if before else []
            e2e = rnd.choice(cases if cases and rnd.random() < 0.8 else self.from_peer)
            situation = rnd.choice(list(FraudSituation))
            decision = rnd.choice(list(Decision))
            report_id = f"report-{rnd.getrandbits(32):x}"
            if kind == "report":
                return (
                    kind,
                    owner,
                    lambda b, s: b.pix.med.receive_report(
                        ReceiveInfractionReportCommand(
                            end_to_end_id=e2e[s],
                            report_id=report_id,
                            situation=situation,
                            reporter_ispb=PEER_ISPB,
                        )
                    ),
                )
            if kind == "analyse":
                return (
                    kind,
                    owner,
                    lambda b, s: b.pix.med.analyse(
                        AnalyseInfractionReportCommand(
                            end_to_end_id=e2e[s], decision=decision, analyst_id="analyst-7"
                        )
                    ),
                )
            refund = amount if rnd.random() < 0.5 else None
            return (
                kind,
                owner,
                lambda b, s: b.pix.med.request_refund(
                    RequestMedRefundCommand(
                        end_to_end_id=e2e[s], amount=refund, requested_by="analyst-7"
                    )
                ),
            )
        if kind in ("contest", "peer_analysis", "peer_return") and self.to_peer:
            # the paying side: our customer contests a payment to the peer bank
            payer, e2e = rnd.choice(self.to_peer)
            contested = [(p, e) for p, e in self.to_peer if e in self.med["contest"]]
            if kind != "contest" and contested and rnd.random() < 0.8:
                payer, e2e = rnd.choice(contested)
            if kind == "contest":
                situation = rnd.choice(list(FraudSituation))
                return (
                    kind,
                    payer,
                    lambda b, s: b.pix.med.contest(
                        ContestPixPaymentCommand(
                            owner_id=payer, end_to_end_id=e2e[s], situation=situation
                        )
                    ),
                )
            if kind == "peer_analysis":
                decision = rnd.choice(list(Decision))
                return kind, payer, lambda b, s: b.pix.med.simulate_peer_analysis(e2e[s], decision)
            final = rnd.random() < 0.5
            return (
                kind,
                payer,
                lambda b, s: b.pix.med.simulate_peer_return(e2e[s], amount, final=final),
            )
        if kind == "statement":
            return (
                kind,
                owner,
                lambda b, s: b.accounts.statement(
                    GetStatementQuery(owner_id=owner, account_id=a[s])
                ),
            )
        if kind == "payments":
            return (
                kind,
                owner,
                lambda b, s: b.pix.list_payments(
                    ListPixPaymentsQuery(owner_id=owner, account_id=a[s])
                ),
            )
        return kind, owner, None

    def pick_claim(self, kind: str, owner: str, a: Pair) -> tuple[str, str, Call | None]:
        """A call on key claims: ``owner`` and their account ``a`` as the claimer's."""
        rnd = self.rnd
        claims = self.claims
        if kind == "claim_list":
            return kind, owner, claims_of(owner)
        if kind in ("claim_open", "claim_incoming"):
            emails = [k for k in self.keys if "@" in k[2][0]]
            r = rnd.random()
            # mostly a key one of our customers holds (the peer bank claims only those)
            held_here = 0.8 if kind == "claim_incoming" else 0.5
            value: Pair
            if r < held_here and self.keys:  # mostly an email: a random key is never claimed
                value = rnd.choice(emails if emails and rnd.random() < 0.85 else self.keys)[2]
            elif r < held_here + (1 - held_here) * 0.6:
                value = (PEER_KEY_EMAIL, PEER_KEY_EMAIL)  # Carla's, at the peer bank
            elif r < held_here + (1 - held_here) * 0.75:
                value = (PEER_CLOSED_KEY, PEER_CLOSED_KEY)  # a company's, at the peer bank
            elif r < held_here + (1 - held_here) * 0.9:
                value = (PEER_KEY_EVP, PEER_KEY_EVP)
            else:
                value = (f"ninguem{rnd.randint(0, 2)}@ex.com.br",) * 2  # registered nowhere
            key_type = PixKeyType.EMAIL if "@" in value[0] else PixKeyType.EVP
            # mostly the claim the rules allow: a portability between the same holder's
            # accounts, an ownership claim between different holders
            number = PEER_ACCOUNT_NUMBER if rnd.random() < 0.8 else PEER_CLOSED_ACCOUNT
            claimer = DOCUMENTS[owner] if kind == "claim_open" else PEER_DOCUMENTS[number]
            holder = next((DOCUMENTS[k[0]] for k in self.keys if k[2] == value), None)
            same = claimer is not None and claimer == (holder or PEER_DOCUMENTS.get(value[0]))
            claim_type = ClaimType.PORTABILITY if same else ClaimType.OWNERSHIP
            if rnd.random() < 0.25:
                claim_type = rnd.choice(list(ClaimType))
            if kind == "claim_incoming":
                # from Carla's account at the peer bank, or its closed company account
                return (
                    kind,
                    owner,
                    lambda b, s: b.pix.claims.simulate_incoming_claim(
                        claim_type=claim_type,
                        key=PixKey(key_type, value[s]),
                        from_ispb=PEER_ISPB,
                        from_account_number=number,
                    ),
                )
            if rnd.random() < 0.05:
                key_type = PixKeyType.PHONE  # the key typed as what it is not
            return (
                kind,
                owner,
                lambda b, s: b.pix.claims.open(
                    OpenKeyClaimCommand(
                        owner_id=owner,
                        account_id=a[s],
                        claim_type=claim_type,
                        key_type=key_type,
                        key=value[s],
                    )
                ),
            )
        if not claims:
            return kind, owner, None
        # mostly the newest claim of the right flow, a side of it calling: the others are
        # mostly refusals (someone else's claim, a step out of turn)
        ours = [c for c in claims if c[0] is not None]  # our customer is the claimer
        held = [c for c in claims if c[1] is not None]  # our customer is the donor
        pool = {"claim_answer": ours, "claim_complete": ours, "claim_confirm": held}.get(kind)
        if kind == "claim_peer_complete":
            pool = [c for c in claims if c[0] is None]
        if not pool or rnd.random() < 0.15:
            pool = claims
        claimer, donor, ids = pool[-1] if rnd.random() < 0.5 else rnd.choice(pool)
        side = {"claim_complete": claimer, "claim_confirm": donor}.get(
            kind, rnd.choice([claimer, donor])
        )
        if side is not None and rnd.random() < 0.85:
            owner = side
        if kind == "claim_answer":
            answer = rnd.choice(["CONFIRM", "CONFIRM", "CANCEL", None])
            return kind, owner, lambda b, s: donor_answers(b, ids[s], answer, owner)
        if kind == "claim_get":
            return (
                kind,
                owner,
                lambda b, s: b.pix.claims.get(GetKeyClaimQuery(owner_id=owner, claim_id=ids[s])),
            )
        if kind == "claim_confirm":
            return (
                kind,
                owner,
                lambda b, s: b.pix.claims.confirm(
                    ConfirmKeyClaimCommand(owner_id=owner, claim_id=ids[s])
                ),
            )
        if kind == "claim_cancel":
            reason = rnd.choices(list(CancelReason), weights=[6, 2, 2, 1])[0]
            return (
                kind,
                owner,
                lambda b, s: b.pix.claims.cancel(
                    CancelKeyClaimCommand(owner_id=owner, claim_id=ids[s], reason=reason)
                ),
            )
        if kind == "claim_complete":
            return (
                kind,
                owner,
                lambda b, s: b.pix.claims.complete(
                    CompleteKeyClaimCommand(owner_id=owner, claim_id=ids[s])
                ),
            )
        # the peer bank completes (a claim of ours is not its to complete: KeyClaimNotFound)
        return kind, owner, lambda b, s: b.pix.claims.simulate_peer_completion(ids[s])

    def remember_claim(self, kind: str, first: Any, second: Any) -> None:
        """Keep a claim opened, and move the key of a claim completed."""
        if kind in ("claim_open", "claim_incoming") and first.id not in [
            c[2][0] for c in self.claims
        ]:
            self.claims.append(
                (first.claimer.owner_id, first.donor.owner_id, (first.id, second.id))
            )
        if kind == "claim_list" or first.status is not ClaimStatus.COMPLETED:
            return
        if first.id in self.completed:
            return
        self.completed.add(first.id)
        self.done[
            "claim completed here" if first.claimer.owner_id else "claim completed by the peer"
        ] += 1
        key = first.key.value
        self.keys = [k for k in self.keys if k[2][0] != key]
        if first.claimer.owner_id is not None:
            self.keys.append(
                (
                    first.claimer.owner_id,
                    (first.claimer.account_id, second.claimer.account_id),
                    (key, second.key.value),
                )
            )

    def remember(self, kind: str, owner: str, results: tuple[Any, Any]) -> None:
        """Keep what a successful call made, each side's own value."""
        first, second = results
        if kind.startswith("claim_"):
            self.remember_claim(kind, first, second)
        elif kind == "open":
            self.accounts.append((owner, (first.id, second.id)))
        elif kind == "key":
            self.keys.append(
                (owner, (first.account_id, second.account_id), (first.key.value, second.key.value))
            )
        elif kind == "recurrence":
            self.recurrences.append(
                (
                    owner,
                    (first[0].recurrence_id, second[0].recurrence_id),
                    (first[1].br_code, second[1].br_code),
                    first[0].fixed_amount,
                )
            )
        elif kind == "authorise":
            ids = (first.recurrence_id, second.recurrence_id)
            self.authorised.extend(r for r in self.recurrences if r[1] == ids)
        elif kind == "run_due":
            self.done["debits run"] += len(first.charges)
        elif kind in self.med:  # a report received, analysed (agreed) or a contest sent
            if kind != "analyse" or first.case.status == CaseStatus.AGREED:
                self.med[kind].append((first.case.end_to_end_id, second.case.end_to_end_id))
        elif kind == "block":
            self.blocked.append((first.block.end_to_end_id, second.block.end_to_end_id))
        elif kind == "charge":
            dynamic = self.rnd.random() < 0.5
            self.br_codes.append(
                (first.dynamic_brcode, second.dynamic_brcode)
                if dynamic
                else (first.static_brcode, second.static_brcode)
            )
        if kind == "incoming":
            self.from_peer.append((first.payment.end_to_end_id, second.payment.end_to_end_id))
        elif (
            kind in ("send", "pay_charge")
            and first.payment.payee.account_id is None
            and first.payment.status == "SETTLED"
        ):
            self.to_peer.append(
                (owner, (first.payment.end_to_end_id, second.payment.end_to_end_id))
            )
        if kind == "incoming" or (
            kind in ("send", "pay_charge")
            and first.payment.payee.account_id is not None
            and first.payment.status == "SETTLED"
        ):  # a payment one of our customers received: it can be refunded or blocked
            payment = first.payment
            self.received.append(
                (payment.payee.owner_id, (payment.end_to_end_id, second.payment.end_to_end_id))
            )

    async def step(self, number: int) -> None:
        self.sides.reseed(number)
        if self.rnd.random() < 0.07:
            # seconds (a charge's expiry), hours (the night limits), days (debits falling
            # due, the 72 h of a block, the 7 days a claim's donor has to answer, then the
            # 30 its claimer has to complete) and the edges of the 90 days a refund is open
            seconds = self.rnd.choices(
                [1, 59, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400, 89 * 86400, 91 * 86400],
                weights=[5, 5, 5, 3, 5, 3, 2, 1, 1],
            )[0]
            for clock in self.clocks:
                clock.advance(seconds)
            self.done["clock moved"] += 1
            return
        kind, owner, call = self.pick()
        if call is None:
            return
        # an account opened or a payment received twice at once is two of them, made in
        # an order the event loop decides: their ids would be drawn in either order
        if kind not in ("open", "incoming") and self.rnd.random() < 0.2:
            reference, other = await self.twice(call, 0), await self.twice(call, 1)
            if not other or not other <= reference:
                self.differences.append(f"step {number}, {kind} twice: {reference} != {other}")
            self.done["twice at once"] += 1
            return
        reference_answer, other_answer = await self.answer(call, 0), await self.answer(call, 1)
        if reference_answer[:2] != other_answer[:2]:
            self.differences.append(
                f"step {number}, {kind}:\n  memory: {reference_answer[:2]}\n"
                f"  other:  {other_answer[:2]}"
            )
            return
        self.done[f"{kind} {reference_answer[0]}"] += 1
        if reference_answer[0] == "ok":
            reference_types, other_types = (
                types_of(a[2]) for a in (reference_answer, other_answer)
            )
            if reference_types != other_types:
                self.differences.append(
                    f"step {number}, {kind}: types\n  memory: {reference_types}\n"
                    f"  other:  {other_types}"
                )
            self.remember(kind, owner, (reference_answer[2], other_answer[2]))

    async def read_alike(self, what: str, call: Call) -> list[str]:
        """``call`` made on both banks: its differences in value and in types."""
        reference, other = await self.answer(call, 0), await self.answer(call, 1)
        if reference[:2] != other[:2]:
            return [f"{what}:\n  memory: {reference[:2]}\n  other: {other[:2]}"]
        reference_types, other_types = types_of(reference[2]), types_of(other[2])
        if reference_types != other_types:
            return [f"{what}, types:\n  memory: {reference_types}\n  other: {other_types}"]
        found = []
        for side, answer in enumerate((reference, other)):
            if isinstance(answer[2], BalanceResult):
                posted, available = answer[2].posted, answer[2].available
                if posted.cents < 0 or available.cents < 0:
                    found.append(f"{what} on side {side} below zero: {answer[2]}")
        return found

    async def final_state(self) -> list[str]:
        """The differences left in every account's balance, statement, payments and
        limits, and in every owner's keys, devices and recurrences."""
        found: list[str] = []
        reads = {"balance": balance, "statement": statement, "payments": payments, "limits": limits}
        for owner, a in self.accounts:
            for what, read in reads.items():
                found += await self.read_alike(f"{what} of {a[0]}", of_account(read, owner, a))
        for owner in OWNERS:
            found += await self.read_alike(f"{owner}'s keys", keys_of(owner))
            found += await self.read_alike(f"{owner}'s devices", devices_of(owner))
            found += await self.read_alike(f"{owner}'s key claims", claims_of(owner))
            for role in RecurrenceRole:
                calls = recurrences_of(owner, role)
                found += await self.read_alike(f"{owner}'s recurrences ({role})", calls)
        return found


def keys_of(owner: str) -> Call:
    return lambda bank, _: bank.pix.list_keys(ListPixKeysQuery(owner_id=owner))


def claims_of(owner: str) -> Call:
    """The owner's key claims, as claimer or donor (reading applies the periods ended)."""
    return lambda bank, _: bank.pix.claims.list(ListKeyClaimsQuery(owner_id=owner))


async def donor_answers(
    bank: Bank, claim_id: uuid.UUID, answer: str | None, owner: str
) -> KeyClaim:
    """The donor institution's answer to a claim (the sandbox's), then the claim as ``owner``
    reads it: the answer applies when a claim of ours on a key held elsewhere is read."""
    await bank.pix.claims.simulate_donor_answer(claim_id, answer)
    return await bank.pix.claims.get(GetKeyClaimQuery(owner_id=owner, claim_id=claim_id))


def devices_of(owner: str) -> Call:
    """The devices the owner paid from (the new-device cap counts from their first use)."""
    return lambda bank, _: bank.pix.limits.devices(ListPixDevicesQuery(owner_id=owner))


async def limits(bank: Bank, owner: str, account_id: uuid.UUID) -> object:
    return await bank.pix.limits.get(GetPixLimitsQuery(owner_id=owner, account_id=account_id))


def recurrences_of(owner: str, role: RecurrenceRole) -> Call:
    return lambda bank, _: bank.pix.automatic.recurrences(
        ListRecurrencesQuery(owner_id=owner, role=role)
    )


async def recurrence(bank: Bank, command: CreateRecurrenceCommand) -> tuple[object, object]:
    """A recurrence created, and its QR code for the payer to authorise."""
    created = await bank.pix.automatic.create(command)
    code = await bank.pix.automatic.code(
        RecurrenceCodeQuery(owner_id=command.owner_id, recurrence_id=created.recurrence_id)
    )
    return created, code


def of_account(
    read: Callable[[Bank, str, uuid.UUID], Awaitable[object]], owner: str, a: Pair
) -> Call:
    """``read`` of the account ``a`` (each side's id) as a call on either bank."""
    return lambda bank, side: read(bank, owner, a[side])


async def balance(bank: Bank, owner: str, account_id: uuid.UUID) -> BalanceResult:
    return await bank.accounts.balance(GetBalanceQuery(owner_id=owner, account_id=account_id))


async def statement(bank: Bank, owner: str, account_id: uuid.UUID) -> list[object]:
    """Every line of the account's statement, page by page."""
    lines: list[object] = []
    after: int | None = None
    while True:
        page = await bank.accounts.statement(
            GetStatementQuery(owner_id=owner, account_id=account_id, after_sequence=after)
        )
        lines.extend(page.lines)
        if page.next_cursor is None:
            return lines
        after = page.next_cursor


async def payments(bank: Bank, owner: str, account_id: uuid.UUID) -> list[object]:
    """Every PIX payment of the account, page by page."""
    found: list[object] = []
    cursor: str | None = None
    while True:
        page = await bank.pix.list_payments(
            ListPixPaymentsQuery(owner_id=owner, account_id=account_id, cursor=cursor)
        )
        found.extend(page.items)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


#: (backend, seed, steps): seeds whose walk moves money every way, debits included
WALKS = [
    *(("postgres", seed, 600) for seed in (9, 13, 16, 17, 28)),
    *(pytest.param("dynamodb", seed, 600, marks=pytest.mark.services) for seed in (13, 17)),
]


@asynccontextmanager
async def stores_settings(request: pytest.FixtureRequest, backend: str) -> AsyncIterator[Settings]:
    """Settings of a bank on its stores, in a schema (and a table) of their own: every store
    on PostgreSQL (``postgres``), or the local profile with its PIX stores on DynamoDB
    (``dynamodb``, moto serving one request at a time); payments settle as they are made,
    as in memory (the worker's path has its own tests)."""
    require_postgres()
    async with AsyncExitStack() as stack:
        _, schema = await stack.enter_async_context(isolated_schema())
        if backend == "postgres":
            settings = all_postgres_settings(schema)
        else:
            endpoint: str = request.getfixturevalue("serial_moto_endpoint")
            _redis, prefix = await stack.enter_async_context(open_test_redis())
            table = f"pix-{uuid.uuid4().hex[:12]}"
            settings = Settings.from_env(
                {
                    "FINBANK_PROFILE": "local",
                    "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
                    "FINBANK_REDIS_KEY_PREFIX": prefix,
                    "FINBANK_AWS_ENDPOINT_URL": endpoint,
                    "FINBANK_AWS_REGION": "sa-east-1",
                    "FINBANK_PIX_BACKEND": "dynamodb",
                    "FINBANK_PIX_TABLE_NAME": table,
                    "FINBANK_JWT_SECRET": secrets.token_hex(32),
                    "FINBANK_SANDBOX": "true",
                }
            )
            assert settings.backends.pix == "dynamodb"
            async with open_dynamodb_client(settings) as dynamodb:
                await create_tables(dynamodb, table)
        yield msgspec.structs.replace(
            settings, pix=msgspec.structs.replace(settings.pix, inline_settlement=True)
        )


@pytest.fixture
async def other_settings(request: pytest.FixtureRequest) -> AsyncIterator[Settings]:
    """The bank compared with memory: :func:`stores_settings` of the walk's backend."""
    async with stores_settings(request, request.node.callspec.params["backend"]) as settings:
        yield settings


@pytest.mark.parametrize(("backend", "seed", "steps"), WALKS)
async def test_the_bank_answers_alike_on_memory_and_on_its_stores(
    other_settings: Settings, backend: str, seed: int, steps: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = other_settings
    clocks = (FakeClock(START), FakeClock(START))
    async with (
        open_bank(profile="memory", clock=clocks[0], ids=SequentialIdGenerator()) as memory,
        open_bank(settings, clock=clocks[1], ids=SequentialIdGenerator()) as other,
    ):
        run = Walk((memory, other), clocks, seed)
        monkeypatch.setattr(identifiers, "_random_alnum", run.sides.draw)
        # the id of a claim the peer bank opens, drawn as the ids above
        sandbox_uuid = types.SimpleNamespace(UUID=uuid.UUID, uuid4=run.sides.uuid4)
        monkeypatch.setattr(sandbox_claims, "uuid", sandbox_uuid)
        for number in range(steps):
            await run.step(number)
            assert len(run.differences) < 5, "\n".join(run.differences)
        assert run.differences == []
        assert list(await run.final_state()) == []
    # the walk did what it is for: money moved every way, concurrently too
    for what in (
        "send ok", "pay_charge ok", "refund ok", "transfer ok", "incoming ok", "block ok",
        "release ok", "deposit ok", "withdraw ok", "recurrence ok", "authorise ok", "schedule ok",
        "debits run", "report ok", "analyse ok", "contest ok",
        "claim_open ok", "claim_incoming ok", "claim_confirm ok", "claim_cancel ok",
        "claim_get ok", "claim completed here", "claim completed by the peer",
    ):  # fmt: skip
        assert run.done[what] >= 1, (what, run.done)
    assert run.done["twice at once"] >= steps // 10, run.done
    assert run.done["clock moved"] >= steps // 50, run.done
