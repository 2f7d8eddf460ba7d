"""A PIX world for tests: the core's use cases over the in-memory adapters, a fake clock,
seeded randomness and a simulated network with one peer bank."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from finbank_adapters.memory import (
    FakeClock,
    InMemoryAccountRepository,
    InMemoryEventPublisher,
    InMemoryLedger,
    SequentialIdGenerator,
)
from finbank_adapters.memory.claims import InMemoryRequestClaims
from finbank_adapters.memory.pix import (
    InMemoryAccountLimitsStore,
    InMemoryChargeRepository,
    InMemoryDeviceRegistry,
    InMemoryKeyDirectory,
    InMemoryPixPaymentRepository,
)
from finbank_adapters.pix_charges import LocalChargeResolver
from finbank_adapters.sandbox import institution_keys, sandbox_peer
from finbank_adapters.sandbox.spi import SimulatedSpi
from finbank_core.accounts.ledger import EntrySide
from finbank_core.accounts.model import CustomerAccount, HolderType
from finbank_core.accounts.ports import Ledger
from finbank_core.accounts.use_cases import (
    BankAccounts,
    Deposit,
    EnsureBankAccounts,
    MoveCashCommand,
    OpenAccount,
    OpenAccountCommand,
)
from finbank_core.pix.codes.keys import PixKeyType
from finbank_core.pix.ledger_steps import PixEvents, PixLedgerSteps
from finbank_core.pix.limits import LimitPolicy, LimitSettings
from finbank_core.pix.ports import PaymentNetwork
from finbank_core.pix.use_cases import (
    AcceptIncomingPix,
    CreateCharge,
    DeletePixKey,
    GetCharge,
    GetPixPayment,
    ListPixKeys,
    PixLimiter,
    ReceivePix,
    RefundPix,
    RegisterPixKey,
    RegisterPixKeyCommand,
    SendPix,
    SetPixLimits,
    SettlePixPayment,
    SettlePixRefund,
)
from finbank_core.shared.ids import IdGenerator
from finbank_core.shared.money import Money

OUR_ISPB = "99999999"
PEER_ISPB = "88888888"
BASE_URL = "pix.finbank.test/v2"
#: 09:00 in São Paulo (UTC-3): daytime
DAYTIME = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@dataclass
class PixWorld:
    clock: FakeClock
    ledger: Ledger
    accounts: InMemoryAccountRepository
    payments: InMemoryPixPaymentRepository
    directory: InMemoryKeyDirectory
    charges: InMemoryChargeRepository
    limits_store: InMemoryAccountLimitsStore
    devices: InMemoryDeviceRegistry
    spi: SimulatedSpi
    publisher: InMemoryEventPublisher
    ids: IdGenerator
    rng: random.Random
    #: the ledger steps and events the use cases share
    steps: PixLedgerSteps
    events: PixEvents
    policy: LimitPolicy
    send: SendPix
    settle: SettlePixPayment
    receive: ReceivePix
    refund: RefundPix
    register_key: RegisterPixKey
    delete_key: DeletePixKey
    list_keys: ListPixKeys
    create_charge: CreateCharge
    get_charge: GetCharge
    get_payment: GetPixPayment
    set_limits: SetPixLimits
    account_ids: list[uuid.UUID] = field(default_factory=list)
    #: in-flight claims of SendPix and RefundPix (the container wires them too)
    claims: InMemoryRequestClaims = field(default_factory=InMemoryRequestClaims)

    async def open(
        self,
        owner_id: str,
        name: str = "Holder",
        *,
        document: str | None = None,
        holder_type: HolderType = HolderType.INDIVIDUAL,
        deposit: Money | None = None,
    ) -> CustomerAccount:
        account = await OpenAccount(
            self.ledger, self.accounts, self.publisher, self.clock, self.ids
        )(
            OpenAccountCommand(
                owner_id=owner_id,
                holder_name=name,
                holder_document=document,
                holder_type=holder_type,
            )
        )
        self.account_ids.append(account.id)
        if deposit is not None:
            await Deposit(self.ledger, self.accounts, self.clock, self.ids)(
                MoveCashCommand(
                    account_id=account.id,
                    amount=deposit,
                    idempotency_key=f"seed-{account.id}",
                    operator_id="teller",
                )
            )
        return account

    def refund_with(
        self,
        network: PaymentNetwork,
        *,
        settle_inline: bool = True,
        claims: InMemoryRequestClaims | None = None,
    ) -> RefundPix:
        """A ``RefundPix`` of this world over ``network``."""
        return RefundPix(
            ispb=OUR_ISPB,
            accounts=self.accounts,
            payments=self.payments,
            steps=self.steps,
            events=self.events,
            clock=self.clock,
            ids=self.ids,
            network=network,
            settle_inline=settle_inline,
            claims=claims,
            rng=self.rng,
        )

    def settle_refund_with(self, network: PaymentNetwork) -> SettlePixRefund:
        """A ``SettlePixRefund`` of this world over ``network``."""
        return SettlePixRefund(
            payments=self.payments,
            steps=self.steps,
            events=self.events,
            clock=self.clock,
            network=network,
        )

    def accept_incoming(self, *, credit_inline: bool = True) -> AcceptIncomingPix:
        """An ``AcceptIncomingPix`` of this world, crediting in the call or not."""
        return AcceptIncomingPix(
            ispb=OUR_ISPB,
            accounts=self.accounts,
            payments=self.payments,
            events=self.events,
            directory=self.directory,
            receive=self.receive,
            credit_inline=credit_inline,
        )

    async def evp(self, account: CustomerAccount) -> str:
        registration = await self.register_key(
            RegisterPixKeyCommand(
                owner_id=account.owner_id, account_id=account.id, key_type=PixKeyType.EVP
            )
        )
        return registration.key.value

    async def posted(self, account_id: uuid.UUID) -> int:
        [account] = await self.ledger.lookup_accounts([account_id])
        return account.balance_posted

    async def available(self, account_id: uuid.UUID) -> int:
        [account] = await self.ledger.lookup_accounts([account_id])
        return account.balance_available

    async def assert_ledger_balanced(self) -> None:
        """Posted debits equal posted credits over every account, pending ones too,
        and every account's entries add up to its balance."""
        ids = [a.id for a in BankAccounts.all()] + self.account_ids
        found = await self.ledger.lookup_accounts(ids)
        assert len(found) == len(ids)
        assert sum(a.debits_posted for a in found) == sum(a.credits_posted for a in found)
        assert sum(a.debits_pending for a in found) == sum(a.credits_pending for a in found)
        for account in found:
            page = await self.ledger.get_account_entries(account.id, limit=10_000)
            total = sum(e.amount if e.side is EntrySide.CREDIT else -e.amount for e in page.entries)
            assert total == account.balance_posted
            if page.entries:
                assert page.entries[-1].balance_after == account.balance_posted


async def build_world(
    *,
    inline_settlement: bool = True,
    start: datetime = DAYTIME,
    limits: LimitSettings | None = None,
    ledger_factory: Callable[[FakeClock, InMemoryEventPublisher], Ledger] | None = None,
) -> PixWorld:
    """The world; ``ledger_factory`` swaps the in-memory ledger (e.g. for PostgreSQL)."""
    clock = FakeClock(start)
    rng = random.Random(20260105)
    publisher = InMemoryEventPublisher()
    ledger = (ledger_factory or InMemoryLedger)(clock, publisher)
    await EnsureBankAccounts(ledger)()
    accounts = InMemoryAccountRepository()
    payments = InMemoryPixPaymentRepository()
    directory = InMemoryKeyDirectory(random.Random(7))
    charges = InMemoryChargeRepository()
    limits_store = InMemoryAccountLimitsStore()
    devices = InMemoryDeviceRegistry()
    spi = SimulatedSpi(clock, institutions=(sandbox_peer(PEER_ISPB),), rng=rng)
    for institution in spi.institutions.values():
        directory.preload(institution_keys(institution))
    ids = SequentialIdGenerator()
    steps = PixLedgerSteps(ledger)
    events = PixEvents(publisher, clock, ids)
    policy = LimitPolicy(limits)
    settle = SettlePixPayment(
        payments=payments,
        steps=steps,
        events=events,
        clock=clock,
        network=spi,
        charges=charges,
        limits=limits_store,
    )
    limiter = PixLimiter(policy, payments, limits_store, devices)
    claims = InMemoryRequestClaims()
    return PixWorld(
        claims=claims,
        clock=clock,
        ledger=ledger,
        accounts=accounts,
        payments=payments,
        directory=directory,
        charges=charges,
        limits_store=limits_store,
        devices=devices,
        spi=spi,
        publisher=publisher,
        ids=ids,
        rng=rng,
        steps=steps,
        events=events,
        policy=policy,
        send=SendPix(
            ispb=OUR_ISPB,
            accounts=accounts,
            payments=payments,
            steps=steps,
            events=events,
            clock=clock,
            ids=ids,
            directory=directory,
            resolver=LocalChargeResolver(charges, BASE_URL),
            charges=charges,
            limiter=limiter,
            settle_inline=settle if inline_settlement else None,
            claims=claims,
            rng=rng,
        ),
        settle=settle,
        receive=ReceivePix(
            ispb=OUR_ISPB,
            accounts=accounts,
            payments=payments,
            steps=steps,
            events=events,
            clock=clock,
            directory=directory,
            charges=charges,
        ),
        refund=RefundPix(
            ispb=OUR_ISPB,
            accounts=accounts,
            payments=payments,
            steps=steps,
            events=events,
            clock=clock,
            ids=ids,
            network=spi,
            claims=claims,
            rng=rng,
        ),
        register_key=RegisterPixKey(
            ispb=OUR_ISPB,
            accounts=accounts,
            directory=directory,
            events=events,
            clock=clock,
            ids=ids,
        ),
        delete_key=DeletePixKey(directory=directory, events=events),
        list_keys=ListPixKeys(accounts, directory),
        create_charge=CreateCharge(
            accounts=accounts,
            charges=charges,
            directory=directory,
            events=events,
            clock=clock,
            ids=ids,
            location_base_url=BASE_URL,
            rng=rng,
        ),
        get_charge=GetCharge(charges=charges, location_base_url=BASE_URL),
        get_payment=GetPixPayment(payments),
        set_limits=SetPixLimits(accounts=accounts, clock=clock, policy=policy, store=limits_store),
    )
