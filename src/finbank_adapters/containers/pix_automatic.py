"""Pix Automático: the recurrence store and the use cases (``bank.pix.automatic``).

The store follows the PIX records (``FINBANK_PIX_BACKEND``): ``memory`` in
process, ``postgres`` PostgreSQL (migration ``0013``). There is no DynamoDB
store yet: with ``dynamodb`` the recurrences live in the bank's PostgreSQL
(the database of the ledger on those profiles), which also gives the
scheduler its ``FOR UPDATE SKIP LOCKED`` leases. Debits move money through the
PIX container's ledger steps and publish through its events.
"""

from __future__ import annotations

from typing import Any

from dependency_injector import containers, providers

from finbank_adapters.containers.infrastructure import settings_field
from finbank_adapters.memory.pix_automatic import InMemoryRecurrenceStore
from finbank_adapters.sandbox.recurrences import sandbox_recurrence_network
from finbank_core.pix.automatic import use_cases as automatic


def postgres_recurrence_store(pool: Any) -> Any:
    from finbank_adapters.postgres.pix_automatic import PostgresRecurrenceStore

    return PostgresRecurrenceStore(pool)


class PixAutomaticContainer(containers.DeclarativeContainer):
    """The recurrence store and the Pix Automático use cases."""

    infra = providers.DependenciesContainer()
    accounts = providers.DependenciesContainer()
    pix = providers.DependenciesContainer()

    recurrence_store = providers.Selector(
        providers.Callable(settings_field("backends.pix"), infra.settings),
        memory=providers.Singleton(InMemoryRecurrenceStore),
        postgres=providers.Singleton(postgres_recurrence_store, pool=infra.postgres_pool),
        dynamodb=providers.Singleton(postgres_recurrence_store, pool=infra.postgres_pool),
    )
    _ispb = providers.Callable(settings_field("pix.ispb"), infra.settings)
    _base_url = providers.Callable(settings_field("pix.location_base_url"), infra.settings)
    #: Pix Automático with other institutions, on the payment network's backend (the
    #: sandbox: its peer bank serves recurrences and pays the charges sent to it)
    recurrence_network = providers.Selector(
        providers.Callable(settings_field("backends.pix_network"), infra.settings),
        sandbox=providers.Singleton(
            sandbox_recurrence_network, network=pix.payment_network, clock=infra.clock
        ),
    )
    _elsewhere = providers.Factory(
        automatic.RecurrenceClerk, network=recurrence_network, clock=infra.clock, ispb=_ispb
    )

    create_recurrence = providers.Factory(
        automatic.CreateRecurrence,
        store=recurrence_store,
        accounts=accounts.account_repository,
        events=pix.pix_events,
        clock=infra.clock,
        ids=infra.ids,
        ispb=_ispb,
        location_base_url=_base_url,
    )
    get_recurrence = providers.Factory(automatic.GetRecurrence, store=recurrence_store)
    list_recurrences = providers.Factory(automatic.ListRecurrences, store=recurrence_store)
    request_authorisation = providers.Factory(
        automatic.RequestAuthorisation,
        store=recurrence_store,
        accounts=accounts.account_repository,
        events=pix.pix_events,
        clock=infra.clock,
        ids=infra.ids,
        ispb=_ispb,
    )
    issue_recurrence_code = providers.Factory(
        automatic.IssueRecurrenceCode,
        store=recurrence_store,
        charges=pix.charge_repository,
        location_base_url=_base_url,
    )
    read_recurrence_code = providers.Factory(
        automatic.ReadRecurrenceCode,
        store=recurrence_store,
        location_base_url=_base_url,
        elsewhere=_elsewhere,
    )
    authorise_recurrence = providers.Factory(
        automatic.AuthoriseRecurrence,
        store=recurrence_store,
        accounts=accounts.account_repository,
        events=pix.pix_events,
        clock=infra.clock,
        location_base_url=_base_url,
        elsewhere=_elsewhere,
    )
    reject_recurrence = providers.Factory(
        automatic.RejectRecurrence,
        store=recurrence_store,
        events=pix.pix_events,
        clock=infra.clock,
        location_base_url=_base_url,
        elsewhere=_elsewhere,
    )
    record_receiver_cancellation = providers.Factory(
        automatic.RecordReceiverCancellation,
        store=recurrence_store,
        events=pix.pix_events,
        clock=infra.clock,
    )
    record_recurrence_answer = providers.Factory(
        automatic.RecordRecurrenceAnswer,
        store=recurrence_store,
        events=pix.pix_events,
        clock=infra.clock,
        ispb=_ispb,
    )
    pay_and_authorise = providers.Factory(
        automatic.PayAndAuthorise,
        read=read_recurrence_code,
        authorise=authorise_recurrence,
        send=pix.send_pix,
        events=pix.pix_events,
    )
    list_authorisations = providers.Factory(automatic.ListAuthorisations, store=recurrence_store)
    cancel_recurrence = providers.Factory(
        automatic.CancelRecurrence,
        store=recurrence_store,
        events=pix.pix_events,
        clock=infra.clock,
        elsewhere=_elsewhere,
    )
    schedule_charge = providers.Factory(
        automatic.ScheduleCharge,
        store=recurrence_store,
        events=pix.pix_events,
        clock=infra.clock,
        ids=infra.ids,
        network=recurrence_network,
        accounts=accounts.account_repository,
    )
    receive_recurring_charge = providers.Factory(
        automatic.ReceiveRecurringCharge, schedule=schedule_charge
    )
    receive_recurring_payment = providers.Factory(
        automatic.ReceiveRecurringPayment,
        store=recurrence_store,
        receive=pix.receive_pix,
        events=pix.pix_events,
        clock=infra.clock,
    )
    cancel_recurring_charge = providers.Factory(
        automatic.CancelRecurringCharge,
        store=recurrence_store,
        events=pix.pix_events,
        clock=infra.clock,
    )
    get_recurring_charge = providers.Factory(automatic.GetRecurringCharge, store=recurrence_store)
    list_recurring_charges = providers.Factory(
        automatic.ListRecurringCharges, store=recurrence_store
    )
    execute_due_debit = providers.Factory(
        automatic.ExecuteDueDebit,
        store=recurrence_store,
        steps=pix.pix_ledger_steps,
        events=pix.pix_events,
        clock=infra.clock,
        ispb=_ispb,
        outgoing=providers.Factory(
            automatic.OutgoingDebits,
            payments=pix.pix_payment_repository,
            settle=pix.settle_pix_payment,
            accounts=accounts.account_repository,
        ),
        usage=pix.account_limits_store,
    )
    set_automatic_limit = providers.Factory(
        automatic.SetAutomaticLimit, store=recurrence_store, accounts=accounts.account_repository
    )
    get_automatic_limit = providers.Factory(
        automatic.GetAutomaticLimit, store=recurrence_store, accounts=accounts.account_repository
    )
    run_due_debits = providers.Factory(
        automatic.RunDueDebits,
        store=recurrence_store,
        execute=execute_due_debit,
        clock=infra.clock,
    )
