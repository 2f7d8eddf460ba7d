"""A small bank for MED tests, on every backend of the MED store and the PIX records.

``med_world`` builds the MED use cases over:

* ``memory``: in-memory ledger, accounts, payments and MED store (the
  stores behind :func:`~tests.pix_concurrency_support.interleaved`, so
  concurrent callers take turns at every call);
* ``postgres``: the PostgreSQL ledger, accounts, PIX payments and MED store
  (migration 0014), in a schema of its own;
* ``dynamodb``: the PIX payments and the MED store in a DynamoDB table of
  its own on a serial moto server (DynamoDB serializes conditional writes
  per item; moto's threaded server does not), ledger and accounts in memory.

The world seeds what MED works on directly (accounts, deposits, an incoming
PIX, an on-us PIX, internal transfers) so the tests are about MED alone.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import pytest

from finbank_adapters.memory import FakeClock, InMemoryLedger, SequentialIdGenerator
from finbank_adapters.memory.accounts import InMemoryAccountRepository
from finbank_adapters.memory.claims import InMemoryRequestClaims
from finbank_adapters.memory.events import InMemoryEventPublisher
from finbank_adapters.memory.med import InMemoryMedRepository
from finbank_adapters.memory.pix import InMemoryPixPaymentRepository
from finbank_adapters.sandbox.dict_med import SimulatedMedDirectory
from finbank_adapters.sandbox.spi import RemoteAccount, SimulatedInstitution, SimulatedSpi
from finbank_core.accounts.ledger import Transfer, TransferCode, TransferFlags
from finbank_core.accounts.model import CustomerAccount, HolderType
from finbank_core.accounts.ports import AccountRepository, Ledger
from finbank_core.accounts.use_cases import (
    BankAccounts,
    EnsureBankAccounts,
    MoveCashCommand,
    OpenAccount,
    OpenAccountCommand,
)
from finbank_core.accounts.use_cases import Deposit as DepositCash
from finbank_core.pix.codes.identifiers import EndToEndId
from finbank_core.pix.ledger_steps import PixEvents, PixLedgerSteps
from finbank_core.pix.med import use_cases as med
from finbank_core.pix.med.ports import MedRepository
from finbank_core.pix.payments import (
    Initiation,
    PaymentStatus,
    PixFlow,
    PixParty,
    PixPayment,
    pix_transfer_id,
)
from finbank_core.pix.ports import PixPaymentRepository
from finbank_core.pix.use_cases.refund import RefundPix
from finbank_core.shared.idempotency import RequestClaims
from finbank_core.shared.money import Money
from tests.pix_concurrency_support import interleaved

OUR_ISPB = "99999999"
PEER_ISPB = "88888888"
PEER_ACCOUNT = "12345-6"
T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
MED_BACKENDS = [
    "memory",
    pytest.param("postgres", marks=pytest.mark.services),
    pytest.param("dynamodb", marks=pytest.mark.services),
]


@dataclass
class MedWorld:
    backend: str
    clock: FakeClock
    ledger: Ledger
    accounts: AccountRepository
    payments: PixPaymentRepository
    repository: MedRepository
    network: SimulatedSpi
    directory: SimulatedMedDirectory
    publisher: InMemoryEventPublisher
    deps: med.MedDeps
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    #: ids of seeded accounts and deposits (the MED use cases have their own)
    seed_ids: SequentialIdGenerator = field(
        default_factory=lambda: SequentialIdGenerator(unix_ms=1_700_000_000_000)
    )
    #: the "in flight" claims of this backend, as the container wires them
    claims: RequestClaims | None = None

    # -- the use cases ----------------------------------------------------------------

    @property
    def place_block(self) -> med.PlacePrecautionaryBlock:
        return med.PlacePrecautionaryBlock(self.deps)

    @property
    def release_block(self) -> med.ReleasePrecautionaryBlock:
        return med.ReleasePrecautionaryBlock(self.deps)

    @property
    def contest(self) -> med.ContestPixPayment:
        return med.ContestPixPayment(self.deps)

    @property
    def receive_report(self) -> med.ReceiveInfractionReport:
        return med.ReceiveInfractionReport(self.deps)

    @property
    def analyse(self) -> med.AnalyseInfractionReport:
        return med.AnalyseInfractionReport(self.deps)

    @property
    def request_refund(self) -> med.RequestMedRefund:
        return med.RequestMedRefund(self.deps)

    @property
    def execute_returns(self) -> med.ExecuteMedReturns:
        return med.ExecuteMedReturns(self.deps)

    @property
    def view(self) -> med.GetMedView:
        return med.GetMedView(self.deps)

    @property
    def refund_pix(self) -> RefundPix:
        """The customer's own refund of a received payment, on this world's stores
        (without claims: concurrent calls are not held back)."""
        return self._refund_pix(None)

    @property
    def refund_pix_with_claims(self) -> RefundPix:
        """:attr:`refund_pix` with this backend's claims, as the container builds it."""
        assert self.claims is not None
        return self._refund_pix(self.claims)

    def _refund_pix(self, claims: RequestClaims | None) -> RefundPix:
        return RefundPix(
            ispb=self.deps.ispb,
            accounts=self.accounts,
            payments=self.payments,
            steps=PixLedgerSteps(self.ledger),
            events=self.deps.events,
            clock=self.clock,
            ids=self.deps.ids,
            network=self.network,
            claims=claims,
        )

    def events(self, type: str) -> list[str]:
        """The aggregate ids of the distinct published events of ``type``."""
        seen: dict[uuid.UUID, str] = {}
        for event in self.publisher.published:
            if event.type == type:
                seen[event.event_id] = event.aggregate_id
        return list(seen.values())

    # -- seeding ------------------------------------------------------------------------

    async def open_account(
        self, owner_id: str, *, holder_type: HolderType = HolderType.INDIVIDUAL
    ) -> CustomerAccount:
        use_case = OpenAccount(
            self.ledger,
            self.accounts,
            InMemoryEventPublisher(),
            self.clock,
            self.seed_ids,
        )
        return await use_case(
            OpenAccountCommand(owner_id=owner_id, holder_name=owner_id, holder_type=holder_type)
        )

    async def deposit(self, account: CustomerAccount, cents: int) -> None:
        use_case = DepositCash(self.ledger, self.accounts, self.clock, self.seed_ids)
        await use_case(
            MoveCashCommand(
                account_id=account.id,
                amount=Money(cents),
                idempotency_key=uuid.uuid4().hex,
                operator_id="test",
            )
        )

    async def incoming(self, payee: CustomerAccount, cents: int) -> PixPayment:
        """A PIX from the peer bank, credited to ``payee`` and recorded SETTLED."""
        order = self.network.originate_payment(  # the peer's customer pays (balance goes down)
            from_ispb=PEER_ISPB,
            from_account_number=PEER_ACCOUNT,
            amount=Money(cents),
            to_branch=payee.branch,
            to_account_number=payee.number,
        )
        e2e = order.end_to_end_id
        await self._move(
            pix_transfer_id(e2e, "credit"), BankAccounts.PIX_SETTLEMENT, payee.id, cents, e2e
        )
        return await self.payments.add(
            PixPayment(
                end_to_end_id=e2e,
                flow=PixFlow.INCOMING,
                status=PaymentStatus.SETTLED,
                amount=Money(cents),
                payer=PixParty(ispb=PEER_ISPB, branch="0001", account_number=PEER_ACCOUNT),
                payee=_party(payee),
                initiation=Initiation.KEY,
                created_at=self.clock.now(),
                settled_at=self.clock.now(),
            )
        )

    async def on_us(self, payer: CustomerAccount, payee: CustomerAccount, cents: int) -> PixPayment:
        """A settled PIX between two accounts here (out to settlement and back in)."""
        e2e = EndToEndId.generate(OUR_ISPB, self.clock.now(), self.rng).value
        out = Transfer(
            id=pix_transfer_id(e2e, "post"),
            debit_account_id=payer.id,
            credit_account_id=BankAccounts.PIX_SETTLEMENT,
            amount=cents,
            code=TransferCode.PIX_OUT,
            flags=TransferFlags.LINKED,
            user_data=f"PIX enviado {e2e}",
        )
        back = Transfer(
            id=pix_transfer_id(e2e, "credit"),
            debit_account_id=BankAccounts.PIX_SETTLEMENT,
            credit_account_id=payee.id,
            amount=cents,
            code=TransferCode.PIX_IN,
            user_data=f"PIX recebido {e2e}",
        )
        results = await self.ledger.create_transfers([out, back])
        assert all(r.value == "ok" for r in results), results
        return await self.payments.add(
            PixPayment(
                end_to_end_id=e2e,
                flow=PixFlow.ON_US,
                status=PaymentStatus.SETTLED,
                amount=Money(cents),
                payer=_party(payer),
                payee=_party(payee),
                initiation=Initiation.KEY,
                created_at=self.clock.now(),
                settled_at=self.clock.now(),
            )
        )

    async def outgoing(self, payer: CustomerAccount, cents: int) -> PixPayment:
        """A settled PIX from ``payer`` to the peer bank's customer."""
        e2e = EndToEndId.generate(OUR_ISPB, self.clock.now(), self.rng).value
        await self._move(
            pix_transfer_id(e2e, "post"),
            payer.id,
            BankAccounts.PIX_SETTLEMENT,
            cents,
            f"PIX enviado {e2e}",
            TransferCode.PIX_OUT,
        )
        return await self.payments.add(
            PixPayment(
                end_to_end_id=e2e,
                flow=PixFlow.OUTGOING,
                status=PaymentStatus.SETTLED,
                amount=Money(cents),
                payer=_party(payer),
                payee=PixParty(ispb=PEER_ISPB, branch="0001", account_number=PEER_ACCOUNT),
                initiation=Initiation.KEY,
                created_at=self.clock.now(),
                settled_at=self.clock.now(),
            )
        )

    async def transfer(self, source: CustomerAccount, target: CustomerAccount, cents: int) -> None:
        await self._move(
            uuid.uuid4(), source.id, target.id, cents, "moved on", TransferCode.INTERNAL_TRANSFER
        )

    async def available(self, account: CustomerAccount | uuid.UUID) -> int:
        account_id = account if isinstance(account, uuid.UUID) else account.id
        [found] = await self.ledger.lookup_accounts([account_id])
        return found.balance_available

    async def posted(self, account: CustomerAccount | uuid.UUID) -> int:
        account_id = account if isinstance(account, uuid.UUID) else account.id
        [found] = await self.ledger.lookup_accounts([account_id])
        return found.balance_posted

    async def _move(
        self,
        transfer_id: uuid.UUID,
        debit: uuid.UUID,
        credit: uuid.UUID,
        cents: int,
        memo: str,
        code: TransferCode = TransferCode.PIX_IN,
    ) -> None:
        [result] = await self.ledger.create_transfers(
            [
                Transfer(
                    id=transfer_id,
                    debit_account_id=debit,
                    credit_account_id=credit,
                    amount=cents,
                    code=code,
                    user_data=memo,
                )
            ]
        )
        assert result.value == "ok", result


def as_ledger(ledger: object) -> Ledger:
    """``ledger`` as the port: the metrics decorator on ``create_transfers`` makes mypy see
    an ``Awaitable`` where the ``Protocol`` says ``async def`` (same behaviour)."""
    return cast(Ledger, ledger)


def _party(account: CustomerAccount) -> PixParty:
    return PixParty(
        ispb=OUR_ISPB,
        branch=account.branch,
        account_number=account.number,
        account_id=account.id,
        owner_id=account.owner_id,
    )


def peer_network(clock: FakeClock) -> SimulatedSpi:
    peer = SimulatedInstitution(
        ispb=PEER_ISPB,
        name="Peer Bank",
        accounts=[
            RemoteAccount(
                branch="0001",
                account_number=PEER_ACCOUNT,
                holder_name="Vitima",
                document="52998224725",
            )
        ],
    )
    return SimulatedSpi(clock, institutions=(peer,))


async def _world(
    backend: str,
    ledger: Ledger,
    accounts: AccountRepository,
    payments: PixPaymentRepository,
    repository: MedRepository,
    clock: FakeClock,
    claims: RequestClaims | None = None,
) -> MedWorld:
    await EnsureBankAccounts(ledger)()
    publisher = InMemoryEventPublisher()
    network = peer_network(clock)
    directory = SimulatedMedDirectory()
    ids = SequentialIdGenerator()
    deps = med.MedDeps(
        ispb=OUR_ISPB,
        repository=repository,
        payments=payments,
        accounts=accounts,
        ledger=ledger,
        network=network,
        directory=directory,
        events=PixEvents(publisher, clock, ids),
        clock=clock,
        ids=ids,
    )
    return MedWorld(
        backend=backend,
        clock=clock,
        ledger=ledger,
        accounts=accounts,
        payments=payments,
        repository=repository,
        network=network,
        directory=directory,
        publisher=publisher,
        deps=deps,
        claims=claims,
    )


@pytest.fixture(params=MED_BACKENDS)
async def med_world(request: pytest.FixtureRequest) -> AsyncIterator[MedWorld]:
    clock = FakeClock(T0)
    if request.param == "memory":
        yield await _world(
            "memory",
            as_ledger(interleaved(InMemoryLedger(clock))),
            interleaved(InMemoryAccountRepository()),
            interleaved(InMemoryPixPaymentRepository()),
            interleaved(InMemoryMedRepository()),
            clock,
            interleaved(InMemoryRequestClaims()),
        )
    elif request.param == "postgres":
        from finbank_adapters.postgres.accounts import PostgresAccountRepository
        from finbank_adapters.postgres.ledger import PostgresLedger
        from finbank_adapters.postgres.pix_med import PostgresMedRepository
        from finbank_adapters.postgres.pix_payments import PostgresPixPaymentRepository
        from finbank_adapters.postgres.pix_request_claims import PostgresRequestClaims
        from tests.postgres_support import isolated_schema, require_postgres

        require_postgres()
        async with isolated_schema(max_size=8) as (pool, _schema):
            yield await _world(
                "postgres",
                as_ledger(PostgresLedger(pool, clock)),
                PostgresAccountRepository(pool),
                PostgresPixPaymentRepository(pool),
                PostgresMedRepository(pool),
                clock,
                PostgresRequestClaims(pool),
            )
    elif request.param == "dynamodb":
        from finbank_adapters.aws.dynamo import DynamoPixPaymentRepository
        from finbank_adapters.aws.dynamo_claims import DynamoRequestClaims
        from finbank_adapters.aws.dynamo_med import DynamoMedRepository
        from tests.integration.dynamo_support import dynamodb_client, new_table

        endpoint: str = request.getfixturevalue("serial_moto_endpoint")
        async with dynamodb_client(endpoint) as client, new_table(client) as table:
            yield await _world(
                "dynamodb",
                as_ledger(interleaved(InMemoryLedger(clock))),
                interleaved(InMemoryAccountRepository()),
                DynamoPixPaymentRepository(client, table),
                DynamoMedRepository(client, table),
                clock,
                DynamoRequestClaims(client, table),
            )
    else:  # pragma: no cover - each backend adds its branch
        raise AssertionError(request.param)


async def memory_world(clock: FakeClock | None = None) -> MedWorld:
    """A world on the memory backend, for tests that need one backend only."""
    clock = clock or FakeClock(T0)
    return await _world(
        "memory",
        as_ledger(InMemoryLedger(clock)),
        InMemoryAccountRepository(),
        InMemoryPixPaymentRepository(),
        InMemoryMedRepository(),
        clock,
    )
