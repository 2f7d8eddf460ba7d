"""Bad input is refused alike on memory and PostgreSQL, before anything moves.

First text no backend can store, then numbers, dates and enums at their edges (the
second half of the module).

A NUL (PostgreSQL's ``text`` and ``jsonb`` refuse it) or an unpaired surrogate
(``"\\ud800"``: no UTF-8 form; a JSON escape or ``surrogateescape`` decoding puts
one in a ``str``) in a command's free text used to pass the core: the in-memory
adapters kept it, PostgreSQL refused it with a vague error naming no field or
a raw ``UnicodeEncodeError``, sometimes after the money had moved. Found by
probing every free-text field of the public facades on both backends:

* an incoming PIX whose txid held one was credited on PostgreSQL with no
  payment record (the credit comes before the record);
* a precautionary block whose operator id held one held the money with no
  block to release it;
* an infraction report whose id held one was stored on memory and then
  failed on every retry, so the case could not be opened again;
* the rest (a transfer's correlation id, an analyst's id, a requested
  payer's branch, the scheduler's lease holder, a password) answered
  differently on the two backends, or raised raw errors.

Each is now ``InvalidInput`` naming the field, from the use case, on both.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from finbank import Bank, open_bank
from finbank_adapters.containers import resolve
from finbank_core.accounts.model import CustomerAccount, HolderType
from finbank_core.accounts.use_cases import (
    GetBalanceQuery,
    GetStatementQuery,
    InternalTransferCommand,
    ListAccountsQuery,
    MoveCashCommand,
    OpenAccountCommand,
)
from finbank_core.auth.errors import InvalidToken
from finbank_core.auth.model import AuthenticateQuery, SignUpCommand
from finbank_core.auth.use_cases import (
    LoginCommand,
    LogoutCommand,
    RefreshCommand,
    VerifyTotpCommand,
)
from finbank_core.pix.automatic import (
    AuthoriseRecurrenceCommand,
    CancelRecurrenceCommand,
    CancelRecurringChargeCommand,
    CreateRecurrenceCommand,
    ExecuteDebitCommand,
    GetRecurrenceQuery,
    GetRecurringChargeQuery,
    ListAuthorisationsQuery,
    ListRecurrencesQuery,
    ListRecurringChargesQuery,
    Periodicity,
    RecurrenceCancellation,
    RecurrenceCodeQuery,
    RecurrenceStatus,
    RejectRecurrenceCommand,
    RetryPolicy,
    ScheduleChargeCommand,
    SetAutomaticLimitCommand,
)
from finbank_core.pix.automatic.use_cases import RequestAuthorisationCommand, RunDueDebitsCommand
from finbank_core.pix.claims.use_cases import ListKeyClaimsQuery
from finbank_core.pix.codes.identifiers import EndToEndId
from finbank_core.pix.codes.keys import PixKeyType
from finbank_core.pix.errors import ChargeNotFound
from finbank_core.pix.limits import TierLimits
from finbank_core.pix.med.model import CaseStatus, Decision, FraudSituation
from finbank_core.pix.med.use_cases import (
    AnalyseInfractionReportCommand,
    ContestPixPaymentCommand,
    ExecuteMedReturnsCommand,
    MedViewQuery,
    PlacePrecautionaryBlockCommand,
    ReceiveInfractionReportCommand,
    ReceiveMedAnalysisCommand,
    ReleasePrecautionaryBlockCommand,
    RequestMedRefundCommand,
)
from finbank_core.pix.network import IncomingPixOrder
from finbank_core.pix.payments import PixParty
from finbank_core.pix.use_cases import (
    CreateChargeCommand,
    DeletePixKeyCommand,
    GetChargeQuery,
    GetPixPaymentQuery,
    ListPixKeysQuery,
    ListPixPaymentsQuery,
    QrFormat,
    RefundPixCommand,
    RegisterPixKeyCommand,
    RemoveChargeCommand,
    RenderChargeQrQuery,
    SendPixCommand,
    SetPixLimitsCommand,
    SettlePixPaymentCommand,
    SettlePixRefundCommand,
    SimulateIncomingPixCommand,
)
from finbank_core.pix.use_cases.devices import ListPixDevicesQuery
from finbank_core.pix.use_cases.send import AccountData
from finbank_core.reconciliation.use_cases import ReconcileCommand
from finbank_core.shared.errors import InvalidInput, NotFound
from finbank_core.shared.money import MAX_BCB_CENTS, Money
from tests.postgres_support import (
    all_postgres_settings,
    isolated_schema,
    require_postgres,
)

UNSTORABLE = {"nul": "a\x00b", "surrogate": "a\ud800b"}
PASSWORD = "Probe-Passw0rd!x"


@pytest.fixture(params=["memory", "postgres"])
async def bank(request: pytest.FixtureRequest) -> AsyncIterator[Bank]:
    if request.param == "memory":
        async with open_bank(profile="memory") as opened:
            yield opened
        return
    require_postgres()
    async with isolated_schema() as (_, schema):
        settings = all_postgres_settings(schema)
        settings = msgspec.structs.replace(
            settings, pix=msgspec.structs.replace(settings.pix, inline_settlement=True)
        )
        async with open_bank(settings) as opened:
            yield opened


async def _account(bank: Bank, name: str, cents: int = 0) -> CustomerAccount:
    owner = f"{name.lower()}-{uuid.uuid4().hex[:8]}"
    account = await bank.accounts.open(OpenAccountCommand(owner_id=owner, holder_name=name))
    if cents:
        await bank.accounts.deposit(
            MoveCashCommand(
                account_id=account.id,
                amount=Money(cents),
                idempotency_key=f"dep-{owner}",
                operator_id="teller",
            )
        )
    return account


async def _balance(bank: Bank, account: CustomerAccount) -> tuple[int, int]:
    found = await bank.accounts.balance(
        GetBalanceQuery(owner_id=account.owner_id, account_id=account.id)
    )
    return found.posted.cents, found.available.cents


async def _refused(call: object, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await call  # type: ignore[misc]
    assert refused.value.details.get("field") == field, refused.value.details


@pytest.mark.parametrize("bad", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
async def test_an_incoming_pix_with_unstorable_text_is_not_credited(bank: Bank, bad: str) -> None:
    davi = await _account(bank, "Davi")
    for field in ("txid", "description"):
        await _refused(
            bank.pix.simulate_incoming(
                SimulateIncomingPixCommand(
                    owner_id=davi.owner_id,
                    account_id=davi.id,
                    amount=Money(7_00),
                    **{field: bad},
                )
            ),
            field,
        )
    assert await _balance(bank, davi) == (0, 0)
    statement = await bank.accounts.statement(
        GetStatementQuery(owner_id=davi.owner_id, account_id=davi.id)
    )
    assert statement.lines == []
    listed = await bank.pix.list_payments(
        ListPixPaymentsQuery(owner_id=davi.owner_id, account_id=davi.id)
    )
    assert listed.items == []
    # a well-formed one is credited and recorded
    await bank.pix.simulate_incoming(
        SimulateIncomingPixCommand(
            owner_id=davi.owner_id, account_id=davi.id, amount=Money(7_00), txid="***"
        )
    )
    assert await _balance(bank, davi) == (7_00, 7_00)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("txid", "t" * 36),
        ("txid", "abc-def"),
        ("txid", "**"),
        ("description", "d" * 141),
        ("payer.name", "\ud800"),
    ],
)
async def test_an_incoming_order_past_the_networks_limits_is_not_credited(
    bank: Bank, field: str, bad: str
) -> None:
    """The network's order as ``AcceptIncomingPix`` takes it. What is credited must be
    recordable (a DynamoDB item is at most 400 KB), and the network never sends a txid
    past 35 letters or digits nor a note past 140 characters."""
    davi = await _account(bank, "Davi")
    accept = await resolve(bank.container.pix.accept_incoming_pix())
    peer = PixParty(ispb=bank.settings.pix.sandbox_peer_ispb, name="Bia")

    def order(**given: Any) -> IncomingPixOrder:
        fields: dict[str, Any] = {
            "end_to_end_id": EndToEndId.generate(peer.ispb, datetime.now(UTC)).value,
            "amount": Money(7_00),
            "payer": peer,
            "payee_branch": davi.branch,
            "payee_account_number": davi.number,
        }
        return IncomingPixOrder(**{**fields, **given})

    given: dict[str, Any] = {field: bad}
    if field == "payer.name":
        given = {"payer": msgspec.structs.replace(peer, name=bad)}
    await _refused(accept(order(**given)), field)
    assert await _balance(bank, davi) == (0, 0)
    if field == "payer.name":
        return
    longest = {"txid": "t" * 35, "description": "d" * 140}[field]
    taken = await accept(order(**{field: longest}))
    assert taken.payment is not None  # credited in the call (inline on both here)
    assert await _balance(bank, davi) == (7_00, 7_00)


async def _received(bank: Bank) -> tuple[CustomerAccount, CustomerAccount, str]:
    """Carla pays Davi 100.00 here; the payment's EndToEndId."""
    carla = await _account(bank, "Carla", 1_000_00)
    davi = await _account(bank, "Davi")
    key = await bank.pix.register_key(
        RegisterPixKeyCommand(owner_id=davi.owner_id, account_id=davi.id, key_type=PixKeyType.EVP)
    )
    sent = await bank.pix.send(
        SendPixCommand(
            owner_id=carla.owner_id,
            account_id=carla.id,
            idempotency_key="pay",
            amount=Money(100_00),
            key=key.key.value,
        )
    )
    return carla, davi, sent.payment.end_to_end_id


@pytest.mark.parametrize("bad", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
async def test_med_operator_ids_are_checked_before_money_is_held(bank: Bank, bad: str) -> None:
    carla, davi, e2e = await _received(bank)
    await _refused(
        bank.pix.med.place_block(PlacePrecautionaryBlockCommand(end_to_end_id=e2e, blocked_by=bad)),
        "blocked_by",
    )
    assert await _balance(bank, davi) == (100_00, 100_00)  # nothing held
    assert (await bank.pix.med.view(MedViewQuery(end_to_end_id=e2e))).block is None
    await bank.pix.med.contest(
        ContestPixPaymentCommand(
            owner_id=carla.owner_id, end_to_end_id=e2e, situation=FraudSituation.SCAM
        )
    )
    await _refused(
        bank.pix.med.analyse(
            AnalyseInfractionReportCommand(
                end_to_end_id=e2e, decision=Decision.AGREED, analyst_id=bad
            )
        ),
        "analyst_id",
    )
    case = (await bank.pix.med.view(MedViewQuery(end_to_end_id=e2e))).case
    assert case is not None
    assert case.status is CaseStatus.OPEN
    assert await _balance(bank, davi) == (100_00, 100_00)
    analysed = await bank.pix.med.analyse(
        AnalyseInfractionReportCommand(
            end_to_end_id=e2e, decision=Decision.AGREED, analyst_id="analyst-1"
        )
    )
    assert analysed.case.status is CaseStatus.AGREED
    for requested_by in (bad, "", "r" * 65):
        await _refused(
            bank.pix.med.request_refund(
                RequestMedRefundCommand(end_to_end_id=e2e, requested_by=requested_by)
            ),
            "requested_by",
        )
    assert await _balance(bank, carla) == (900_00, 900_00)  # nothing returned yet


@pytest.mark.parametrize(
    "bad", [*UNSTORABLE.values(), "", "r" * 65], ids=[*UNSTORABLE, "empty", "too long"]
)
async def test_a_report_id_is_checked_before_the_case_is_stored(bank: Bank, bad: str) -> None:
    """On memory a surrogate stored the case and then failed to announce it, on every
    retry; on PostgreSQL 10,000 characters passed the index's size limit (raw error)."""
    davi = await _account(bank, "Davi")
    incoming = await bank.pix.simulate_incoming(
        SimulateIncomingPixCommand(owner_id=davi.owner_id, account_id=davi.id, amount=Money(50_00))
    )
    e2e = incoming.end_to_end_id
    report = ReceiveInfractionReportCommand(
        end_to_end_id=e2e,
        report_id=bad,
        situation=FraudSituation.SCAM,
        reporter_ispb=bank.settings.pix.sandbox_peer_ispb,
    )
    await _refused(bank.pix.med.receive_report(report), "report_id")
    assert (await bank.pix.med.view(MedViewQuery(end_to_end_id=e2e))).case is None
    opened = await bank.pix.med.receive_report(msgspec.structs.replace(report, report_id="r" * 64))
    assert opened.case.status is CaseStatus.OPEN
    assert not opened.replayed


@pytest.mark.parametrize("bad", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
async def test_the_other_free_text_is_refused_naming_its_field(bank: Bank, bad: str) -> None:
    ana = await _account(bank, "Ana", 100_00)
    bruno = await _account(bank, "Bruno")
    await _refused(
        bank.accounts.transfer(
            InternalTransferCommand(
                owner_id=ana.owner_id,
                from_account_id=ana.id,
                to_account_id=bruno.id,
                amount=Money(1_00),
                idempotency_key="t",
                correlation_id=bad,
            )
        ),
        "correlation_id",
    )
    assert await _balance(bank, ana) == (100_00, 100_00)
    gym = await _account(bank, "Academia")
    recurrence = await bank.pix.automatic.create(
        CreateRecurrenceCommand(
            owner_id=gym.owner_id,
            account_id=gym.id,
            contract="PLANO-1",
            purpose="Mensalidade",
            debtor_name="Bruno Lima",
            debtor_document="52998224725",
            periodicity=Periodicity.MENSAL,
            start=datetime.now(UTC).date() + timedelta(days=5),
            retry_policy=RetryPolicy.NAO_PERMITE,
            fixed_amount=Money(40_00),
        )
    )
    for field in ("payer_branch", "payer_account_number"):
        given = {"payer_branch": bruno.branch, "payer_account_number": bruno.number, field: bad}
        await _refused(
            bank.pix.automatic.request(
                RequestAuthorisationCommand(
                    owner_id=gym.owner_id,
                    recurrence_id=recurrence.recurrence_id,
                    payer_branch=given["payer_branch"],
                    payer_account_number=given["payer_account_number"],
                )
            ),
            field,
        )
    found = await bank.pix.automatic.get(
        GetRecurrenceQuery(owner_id=gym.owner_id, recurrence_id=recurrence.recurrence_id)
    )
    assert found.status is RecurrenceStatus.CRIADA
    await _refused(bank.pix.automatic.run_due(RunDueDebitsCommand(holder=bad, limit=1)), "holder")


async def test_a_password_with_an_unpaired_surrogate_is_refused_naming_it(bank: Bank) -> None:
    """argon2 (or the identity provider) takes the password as UTF-8: a raw
    ``UnicodeEncodeError`` before. A NUL has a UTF-8 form and stays a password."""
    username = f"u{uuid.uuid4().hex[:10]}"
    await _refused(
        bank.auth.sign_up(SignUpCommand(username=username, password=PASSWORD + "\ud800")),
        "password",
    )
    await bank.auth.sign_up(SignUpCommand(username=username, password=PASSWORD))
    await _refused(
        bank.auth.login(LoginCommand(username=username, password=PASSWORD + "\udfff")), "password"
    )
    await _refused(bank.auth.login(LoginCommand(username="", password=PASSWORD)), "username")
    logged_in = await bank.auth.login(LoginCommand(username=username, password=PASSWORD))
    assert logged_in.tokens is not None


# -- numbers, dates and enums at their edges ---------------------------------------------------
# A second probe (every int, date and enum field of the commands, on both backends) found:
# PIX limits with no upper bound (one figure of 2**63 made every later PIX of the account fail
# on PostgreSQL); enum fields compared by identity, so a plain "DISAGREED" was recorded as an
# agreement and the payee's money held; the scheduler's round and a statement's bounds and a
# reconciliation day that raised raw errors; amounts a PIX charge cannot carry accepted.

TOP = MAX_BCB_CENTS


async def test_limits_are_amounts_a_pix_can_carry(bank: Bank) -> None:
    ana = await _account(bank, "Ana", 100_00)
    for too_big in (TOP + 1, 2**63):
        with pytest.raises(InvalidInput) as refused:
            TierLimits(
                day_per_transaction=too_big,
                day_per_period=too_big,
                night_per_transaction=1_000_00,
                night_per_period=1_000_00,
            )
        assert refused.value.details == {"field": "day_per_transaction"}
        await _refused(
            bank.pix.automatic.set_limit(
                SetAutomaticLimitCommand(
                    owner_id=ana.owner_id, account_id=ana.id, daily_limit=Money(too_big)
                )
            ),
            "daily_limit",
        )
    lowered = TierLimits(
        day_per_transaction=TOP, day_per_period=TOP, night_per_transaction=0, night_per_period=0
    )
    await bank.pix.set_limits(
        SetPixLimitsCommand(owner_id=ana.owner_id, account_id=ana.id, requested=lowered)
    )
    stored = await bank.pix.automatic.set_limit(
        SetAutomaticLimitCommand(owner_id=ana.owner_id, account_id=ana.id, daily_limit=Money(TOP))
    )
    assert stored.daily_limit == Money(TOP)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("limit", 0),
        ("limit", -1),
        ("limit", 2**63),
        ("lease_seconds", 0),
        ("lease_seconds", -1),
        ("lease_seconds", 10**12),
        ("lease_seconds", 2**63),
    ],
)
async def test_a_scheduler_round_outside_its_bounds_is_refused(
    bank: Bank, field: str, value: int
) -> None:
    """A lease of 0 s ended as it was taken (another scheduler could run the charge at
    once); 10**12 s overflowed the date (raw OverflowError); a negative limit was
    refused by PostgreSQL only (vaguely)."""
    given: dict[str, Any] = {"holder": "scheduler-1", field: value}
    await _refused(bank.pix.automatic.run_due(RunDueDebitsCommand(**given)), field)


async def test_a_statements_bounds_name_the_naive_one_and_dates_past_the_calendar_are_refused(
    bank: Bank,
) -> None:
    ana = await _account(bank, "Ana")
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    naive = datetime(2026, 2, 1)  # noqa: DTZ001 - the point of the test
    for since, until, field in ((naive, aware, "since"), (aware, naive, "until")):
        await _refused(
            bank.accounts.statement(
                GetStatementQuery(
                    owner_id=ana.owner_id, account_id=ana.id, since=since, until=until
                )
            ),
            field,
        )
    for day in (date.max, date.min, date(1969, 12, 31)):
        await _refused(
            bank.reconciliation.reconcile_day(ReconcileCommand(business_day=day)),
            "business_day",
        )


async def test_bounds_whose_utc_instant_is_past_the_calendar_select_everything_alike(
    bank: Bank,
) -> None:
    """``0001-01-01T00:00+01:00`` and ``9999-12-31T23:59:59-14:00`` are aware datetimes
    whose UTC instants (years 0 and 10000) Python cannot hold: memory compared them and
    answered every line, PostgreSQL could not be sent them (400 naming no field)."""
    ana = await _account(bank, "Ana", cents=10_00)
    await bank.pix.simulate_incoming(
        SimulateIncomingPixCommand(
            owner_id=ana.owner_id, account_id=ana.id, amount=Money(7_00), txid="edge"
        )
    )
    first = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    last = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14)))
    everything = await bank.accounts.statement(
        GetStatementQuery(owner_id=ana.owner_id, account_id=ana.id)
    )
    payments = await bank.pix.list_payments(
        ListPixPaymentsQuery(owner_id=ana.owner_id, account_id=ana.id)
    )
    assert len(everything.lines) == 2
    assert len(payments.items) == 1
    for since, until in ((first, None), (None, last), (first, last)):
        statement = await bank.accounts.statement(
            GetStatementQuery(owner_id=ana.owner_id, account_id=ana.id, since=since, until=until)
        )
        assert statement.lines == everything.lines
        listed = await bank.pix.list_payments(
            ListPixPaymentsQuery(owner_id=ana.owner_id, account_id=ana.id, since=since, until=until)
        )
        assert listed.items == payments.items
    # a page's cursor opens with the query as sent (an offset, as clients send it)
    await bank.pix.simulate_incoming(
        SimulateIncomingPixCommand(
            owner_id=ana.owner_id, account_id=ana.id, amount=Money(8_00), txid="edge2"
        )
    )
    local = timezone(timedelta(hours=-3))
    paged = ListPixPaymentsQuery(
        owner_id=ana.owner_id, account_id=ana.id, since=datetime(2000, 1, 1, tzinfo=local), limit=1
    )
    first_page = await bank.pix.list_payments(paged)
    assert first_page.next_cursor is not None
    second_page = await bank.pix.list_payments(
        msgspec.structs.replace(paged, cursor=first_page.next_cursor)
    )
    assert len(first_page.items) == len(second_page.items) == 1
    assert first_page.items != second_page.items
    # and a window past the calendar at either end selects nothing, alike
    assert not (
        await bank.accounts.statement(
            GetStatementQuery(owner_id=ana.owner_id, account_id=ana.id, since=last)
        )
    ).lines
    assert not (
        await bank.pix.list_payments(
            ListPixPaymentsQuery(owner_id=ana.owner_id, account_id=ana.id, until=first)
        )
    ).items


async def test_a_decision_given_as_its_text_is_that_decision(bank: Bank) -> None:
    """``"DISAGREED"`` was compared with ``Decision.AGREED`` by identity: recorded as an
    agreement, and the payee's 100.00 held."""
    carla, davi, e2e = await _received(bank)
    await bank.pix.med.contest(
        ContestPixPaymentCommand(
            owner_id=carla.owner_id,
            end_to_end_id=e2e,
            situation="SCAM",  # type: ignore[arg-type]
        )
    )
    await _refused(
        bank.pix.med.analyse(
            AnalyseInfractionReportCommand(
                end_to_end_id=e2e,
                decision="bogus",  # type: ignore[arg-type]
                analyst_id="analyst-1",
            )
        ),
        "decision",
    )
    analysed = await bank.pix.med.analyse(
        AnalyseInfractionReportCommand(
            end_to_end_id=e2e,
            decision="DISAGREED",  # type: ignore[arg-type]
            analyst_id="analyst-1",
        )
    )
    assert analysed.case.status is CaseStatus.DISAGREED
    assert await _balance(bank, davi) == (100_00, 100_00)  # nothing held


async def test_enum_fields_given_as_text_are_checked_before_anything_is_stored(
    bank: Bank,
) -> None:
    owner = f"bia-{uuid.uuid4().hex[:8]}"
    await _refused(
        bank.accounts.open(
            OpenAccountCommand(
                owner_id=owner,
                holder_name="Bia",
                holder_type="bogus",  # type: ignore[arg-type]
            )
        ),
        "holder_type",
    )
    assert await bank.accounts.list(ListAccountsQuery(owner_id=owner)) == []
    company = await bank.accounts.open(
        OpenAccountCommand(
            owner_id=owner,
            holder_name="Bia Ltda",
            holder_type="company",  # type: ignore[arg-type]
        )
    )
    assert company.holder_type is HolderType.COMPANY
    gym = await _account(bank, "Academia")
    terms: dict[str, Any] = {
        "owner_id": gym.owner_id,
        "account_id": gym.id,
        "contract": "PLANO-1",
        "purpose": "Mensalidade",
        "debtor_name": "Bruno Lima",
        "debtor_document": "52998224725",
        "start": datetime.now(UTC).date() + timedelta(days=5),
        "retry_policy": RetryPolicy.NAO_PERMITE,
        "fixed_amount": Money(40_00),
    }
    await _refused(
        bank.pix.automatic.create(
            CreateRecurrenceCommand(
                **terms,
                periodicity="bogus",  # type: ignore[arg-type]
            )
        ),
        "periodicity",
    )
    too_much = {**terms, "fixed_amount": Money(TOP + 1)}
    await _refused(
        bank.pix.automatic.create(
            CreateRecurrenceCommand(**too_much, periodicity=Periodicity.MENSAL)
        ),
        "fixed_amount",
    )
    assert await bank.pix.automatic.recurrences(ListRecurrencesQuery(owner_id=gym.owner_id)) == []
    made = await bank.pix.automatic.create(
        CreateRecurrenceCommand(
            **terms,
            periodicity="MENSAL",  # type: ignore[arg-type]
        )
    )
    assert made.periodicity is Periodicity.MENSAL


@pytest.mark.parametrize("expiry", [0, -1, 60.5, True])
async def test_a_charges_expiry_is_a_whole_number_of_seconds(bank: Bank, expiry: Any) -> None:
    """0 was taken as "the default"; 60.5 stored a charge PostgreSQL could not read back."""
    bruno = await _account(bank, "Bruno")
    key = await bank.pix.register_key(
        RegisterPixKeyCommand(owner_id=bruno.owner_id, account_id=bruno.id, key_type=PixKeyType.EVP)
    )
    txid = uuid.uuid4().hex
    command = CreateChargeCommand(
        owner_id=bruno.owner_id,
        account_id=bruno.id,
        pix_key=key.key.value,
        amount=Money(5_00),
        txid=txid,
        expires_in_seconds=expiry,
    )
    await _refused(bank.pix.create_charge(command), "expires_in_seconds")
    with pytest.raises(ChargeNotFound):
        await bank.pix.get_charge(GetChargeQuery(owner_id=bruno.owner_id, txid=txid))


async def test_enum_sets_and_key_types_given_as_text(bank: Bank) -> None:
    """A set of statuses given as text raised a raw AttributeError on both backends; a key
    type as text is that key type."""
    carla, davi, _ = await _received(bank)
    evp = await bank.pix.register_key(
        RegisterPixKeyCommand(
            owner_id=davi.owner_id,
            account_id=davi.id,
            key_type="EVP",  # type: ignore[arg-type]
        )
    )
    assert evp.key.type is PixKeyType.EVP
    await _refused(
        bank.pix.register_key(
            RegisterPixKeyCommand(
                owner_id=davi.owner_id,
                account_id=davi.id,
                key_type="bogus",  # type: ignore[arg-type]
            )
        ),
        "key_type",
    )
    query = ListPixPaymentsQuery(owner_id=carla.owner_id, account_id=carla.id)
    listed = await bank.pix.list_payments(
        msgspec.structs.replace(query, statuses=frozenset({"SETTLED"}), direction="SENT")
    )
    assert len(listed.items) == 1
    for field, value in (
        ("statuses", frozenset({"bogus"})),
        ("statuses", "SETTLED"),
        ("direction", "bogus"),
    ):
        await _refused(
            bank.pix.list_payments(msgspec.structs.replace(query, **{field: value})), field
        )


@pytest.mark.parametrize("bad", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
async def test_a_listing_by_an_owner_no_backend_can_store_is_refused_alike(
    bank: Bank, bad: str
) -> None:
    """Memory answered an empty list, PostgreSQL a vague refusal with no field named."""
    listings: list[Any] = [
        bank.accounts.list(ListAccountsQuery(owner_id=bad)),
        bank.pix.list_keys(ListPixKeysQuery(owner_id=bad)),
        bank.pix.delete_key(DeletePixKeyCommand(owner_id=bad, key_id=uuid.uuid4())),
        bank.pix.limits.devices(ListPixDevicesQuery(owner_id=bad)),
        bank.pix.claims.list(ListKeyClaimsQuery(owner_id=bad)),
        bank.pix.automatic.recurrences(ListRecurrencesQuery(owner_id=bad)),
        bank.pix.automatic.authorisations(ListAuthorisationsQuery(owner_id=bad)),
    ]
    for listing in listings:
        await _refused(listing, "owner_id")


def _lookups(bank: Bank, bad: str) -> list[tuple[str, Any]]:
    """Every use case that asks a store by an id its caller names, with ``bad`` as the id:
    ``(the field, the call)``."""
    owner = "owner-1"
    auto, med, pix = bank.pix.automatic, bank.pix.med, bank.pix
    recurrence, txid, e2e = "recurrence_id", "txid", "end_to_end_id"
    return [
        (recurrence, auto.get(GetRecurrenceQuery(owner_id=owner, recurrence_id=bad))),
        (recurrence, auto.code(RecurrenceCodeQuery(owner_id=owner, recurrence_id=bad))),
        (recurrence, auto.charges(ListRecurringChargesQuery(owner_id=owner, recurrence_id=bad))),
        (
            recurrence,
            auto.authorise(
                AuthoriseRecurrenceCommand(
                    owner_id=owner, account_id=uuid.uuid4(), recurrence_id=bad
                )
            ),
        ),
        (recurrence, auto.reject(RejectRecurrenceCommand(owner_id=owner, recurrence_id=bad))),
        (recurrence, auto.cancel(CancelRecurrenceCommand(owner_id=owner, recurrence_id=bad))),
        (
            recurrence,
            auto.record_cancellation(
                RecurrenceCancellation(
                    recurrence_id=bad, payer_ispb="12345678", at=datetime.now(UTC)
                )
            ),
        ),
        (
            recurrence,
            auto.schedule(
                ScheduleChargeCommand(
                    owner_id=owner,
                    recurrence_id=bad,
                    amount=Money(10_00),
                    due_date=datetime.now(UTC).date() + timedelta(days=5),
                )
            ),
        ),
        (txid, auto.charge(GetRecurringChargeQuery(owner_id=owner, txid=bad))),
        (txid, auto.cancel_charge(CancelRecurringChargeCommand(owner_id=owner, txid=bad))),
        (txid, auto.execute(ExecuteDebitCommand(txid=bad))),
        (txid, pix.get_charge(GetChargeQuery(owner_id=owner, txid=bad))),
        (txid, pix.remove_charge(RemoveChargeCommand(owner_id=owner, txid=bad))),
        (
            txid,
            pix.render_charge_qr(
                RenderChargeQrQuery(owner_id=owner, txid=bad, format=QrFormat.SVG)
            ),
        ),
        (e2e, pix.get_payment(GetPixPaymentQuery(owner_id=owner, end_to_end_id=bad))),
        (e2e, pix.settle_payment(SettlePixPaymentCommand(end_to_end_id=bad))),
        (
            e2e,
            pix.refund(
                RefundPixCommand(
                    owner_id=owner, end_to_end_id=bad, amount=Money(1_00), client_refund_id="r1"
                )
            ),
        ),
        (e2e, pix.settle_refund(SettlePixRefundCommand(end_to_end_id=bad, return_id="D1"))),
        (e2e, med.view(MedViewQuery(end_to_end_id=bad))),
        (
            e2e,
            med.contest(
                ContestPixPaymentCommand(
                    owner_id=owner, end_to_end_id=bad, situation=FraudSituation.SCAM
                )
            ),
        ),
        (
            e2e,
            med.receive_report(
                ReceiveInfractionReportCommand(
                    end_to_end_id=bad,
                    report_id="rep-1",
                    situation=FraudSituation.SCAM,
                    reporter_ispb="12345678",
                )
            ),
        ),
        (
            e2e,
            med.analyse(
                AnalyseInfractionReportCommand(
                    end_to_end_id=bad, decision=Decision.AGREED, analyst_id="analyst"
                )
            ),
        ),
        (
            e2e,
            med.place_block(PlacePrecautionaryBlockCommand(end_to_end_id=bad, blocked_by="ops")),
        ),
        (
            e2e,
            med.release_block(
                ReleasePrecautionaryBlockCommand(end_to_end_id=bad, released_by="ops")
            ),
        ),
        (e2e, med.request_refund(RequestMedRefundCommand(end_to_end_id=bad, requested_by="ops"))),
        (e2e, med.execute_returns(ExecuteMedReturnsCommand(end_to_end_id=bad))),
        (
            e2e,
            med.receive_analysis(
                ReceiveMedAnalysisCommand(
                    end_to_end_id=bad,
                    report_id="rep-1",
                    decision=Decision.AGREED,
                    analysed_by="12345678",
                )
            ),
        ),
    ]


@pytest.mark.parametrize("bad", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
async def test_a_lookup_by_an_id_no_backend_can_store_is_refused_alike(
    bank: Bank, bad: str
) -> None:
    """Memory answered "not found", PostgreSQL ``InvalidInput`` naming no field: every
    lookup now names the id, alike on both."""
    lookups = _lookups(bank, bad)
    assert len(lookups) == 27
    for field, lookup in lookups:
        await _refused(lookup, field)


async def test_a_lookup_by_a_well_formed_unknown_id_is_still_not_found(bank: Bank) -> None:
    """The check is on the text, not on the id's format: an id that matches nothing is
    "not found", on every backend (only the first two of each kind: the rest differ in
    which record they look for first)."""
    e2e = EndToEndId.generate("12345678", datetime.now(UTC)).value
    for lookup in (
        bank.pix.get_payment(GetPixPaymentQuery(owner_id="owner-1", end_to_end_id=e2e)),
        bank.pix.med.view(MedViewQuery(end_to_end_id=e2e)),
        bank.pix.get_charge(GetChargeQuery(owner_id="owner-1", txid="t" * 30)),
        bank.pix.automatic.get(GetRecurrenceQuery(owner_id="owner-1", recurrence_id="RN1")),
    ):
        with pytest.raises(NotFound):
            await lookup


@pytest.mark.parametrize("bad", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
async def test_a_token_or_listing_owner_no_backend_can_store_is_refused_cleanly(
    bank: Bank, bad: str
) -> None:
    """An unpaired surrogate in a token escaped as a raw ``UnicodeEncodeError`` from the
    JWT library (a NUL was already ``InvalidToken``); in the owner of a payments listing,
    from encoding the cursor's scope."""
    for call in (
        bank.auth.authenticate(AuthenticateQuery(access_token=bad)),
        bank.auth.logout(LogoutCommand(access_token=bad)),
        bank.auth.refresh(RefreshCommand(refresh_token=bad)),
        bank.auth.verify_totp(VerifyTotpCommand(access_token=bad, code="123456")),
    ):
        with pytest.raises(InvalidToken):
            await call
    await _refused(
        bank.pix.list_payments(ListPixPaymentsQuery(owner_id=bad, account_id=uuid.uuid4())),
        "owner_id",
    )


async def test_an_id_given_as_the_text_of_its_uuid_is_that_id(bank: Bank) -> None:
    """Unchecked, an account id given as its text was "not found" on every backend (and a
    raw ``AttributeError`` on PostgreSQL's ledger path) although the account exists."""
    ana = await _account(bank, "Ana", 50_00)
    bia = await _account(bank, "Bia")
    receipt = await bank.accounts.transfer(
        InternalTransferCommand(
            owner_id=ana.owner_id,
            from_account_id=str(ana.id),  # type: ignore[arg-type]
            to_account_id=str(bia.id).upper(),  # type: ignore[arg-type]
            amount=Money(20_00),
            idempotency_key=f"as-text-{uuid.uuid4()}",
        )
    )
    assert receipt.amount == Money(20_00)
    assert await _balance(bank, ana) == (30_00, 30_00)
    found = await bank.accounts.balance(
        GetBalanceQuery(owner_id=bia.owner_id, account_id=str(bia.id))  # type: ignore[arg-type]
    )
    assert found.posted == Money(20_00)


async def test_ids_the_bank_answered_with_are_taken_back_as_they_are(bank: Bank) -> None:
    """asyncpg reads every uuid column as its own ``uuid.UUID`` subclass. The type check
    took only ``uuid.UUID`` itself, so on PostgreSQL an account from ``accounts.list``, or
    the account of a key from ``pix.list_keys``, was refused (``account_id must be a
    UUID``) when used in the next command; memory answers with the ids it was given.
    Found by the differential walk (``test_bank_differential``)."""
    ana = await _account(bank, "Ana")
    await bank.accounts.open(OpenAccountCommand(owner_id=ana.owner_id, holder_name="Ana"))
    listed = await bank.accounts.list(ListAccountsQuery(owner_id=ana.owner_id))
    first, second = sorted(listed, key=lambda account: account.id)
    await bank.accounts.deposit(
        MoveCashCommand(
            account_id=first.id,
            amount=Money(30_00),
            idempotency_key=f"listed-{uuid.uuid4()}",
            operator_id="teller",
        )
    )
    await bank.accounts.transfer(
        InternalTransferCommand(
            owner_id=ana.owner_id,
            from_account_id=first.id,
            to_account_id=second.id,
            amount=Money(10_00),
            idempotency_key=f"listed-{uuid.uuid4()}",
        )
    )
    balances = [
        (
            await bank.accounts.balance(GetBalanceQuery(owner_id=ana.owner_id, account_id=a.id))
        ).posted.cents
        for a in (first, second)
    ]
    assert balances == [20_00, 10_00]
    await bank.pix.register_key(
        RegisterPixKeyCommand(owner_id=ana.owner_id, account_id=second.id, key_type=PixKeyType.EVP)
    )
    [registration] = await bank.pix.list_keys(ListPixKeysQuery(owner_id=ana.owner_id))
    assert registration.account_id == second.id
    charge = await bank.pix.create_charge(
        CreateChargeCommand(
            owner_id=ana.owner_id,
            account_id=registration.account_id,  # as the store answered it
            pix_key=registration.key.value,
            amount=Money(5_00),
        )
    )
    assert charge.charge.account_id == second.id


async def test_a_field_of_the_wrong_type_is_refused_naming_it_before_anything_moves(
    bank: Bank,
) -> None:
    ana = await _account(bank, "Ana", 50_00)
    bia = await _account(bank, "Bia")
    transfer = InternalTransferCommand(
        owner_id=ana.owner_id,
        from_account_id=ana.id,
        to_account_id=bia.id,
        amount=Money(10_00),
        idempotency_key=f"typed-{uuid.uuid4()}",
    )
    wrong: list[tuple[str, Any]] = [
        ("amount", 10_00),  # centavos or reais? a Money says which
        ("amount", "10.00"),
        ("to_account_id", "not-a-uuid"),
        ("to_account_id", 12345),
        ("owner_id", 7),
        ("description", b"bytes"),
    ]
    for field, value in wrong:
        await _refused(
            bank.accounts.transfer(msgspec.structs.replace(transfer, **{field: value})), field
        )
    statement = GetStatementQuery(owner_id=ana.owner_id, account_id=ana.id)
    for field, value in (
        ("since", "2026-01-01T00:00:00+00:00"),
        ("after_sequence", "1"),
        ("limit", True),
    ):
        await _refused(
            bank.accounts.statement(msgspec.structs.replace(statement, **{field: value})), field
        )
    # inside a nested Struct, the path names it
    await _refused(
        bank.pix.send(
            SendPixCommand(
                owner_id=ana.owner_id,
                account_id=ana.id,
                idempotency_key=f"typed-{uuid.uuid4()}",
                amount=Money(1_00),
                account_data=AccountData(
                    ispb="12345678",
                    branch=1,  # type: ignore[arg-type]
                    account_number="123",
                    document="52998224725",
                    name="Bia",
                ),
            )
        ),
        "account_data.branch",
    )
    assert await _balance(bank, ana) == (50_00, 50_00)
    assert await _balance(bank, bia) == (0, 0)
